// The Record page: a meeting recorded in this tab (the microphone, or the audio of a shared
// tab or window) or a recording file picked or dropped here, each encrypted in the page and
// uploaded while it is read (`recording.ts`). The plaintext never leaves the tab.

import type { Device } from "./device";
import { type UploadProgress, VaultRecording, recordToVault } from "./recording";
import { type RecordingMetadata, isLanguageCode } from "./statements";
import { act, field, fill, h, say } from "./ui";

/** MediaRecorder's formats, preferred first (the node decodes Opus in WebM and in Ogg). */
const FORMATS = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm"];
/** How often MediaRecorder hands over what it has, in milliseconds. */
const TIMESLICE_MS = 1000;

function size(bytes: number): string {
  return bytes < 1 << 20 ? `${(bytes / 1024).toFixed(0)} KiB` : `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

function elapsed(milliseconds: number): string {
  const seconds = Math.floor(milliseconds / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

/** The metadata fields of the form; read when the manifest is signed. */
class Details {
  readonly title = h("input", { type: "text", required: true, autocomplete: "off" });
  readonly attendees = h("input", { type: "text", autocomplete: "off" });
  readonly language = h("input", { type: "text", autocomplete: "off", placeholder: "detected", size: "4" });

  constructor(defaultTitle: string) {
    this.title.value = defaultTitle;
  }

  fields(): HTMLElement[] {
    return [
      field("Title", this.title, "sealed to the members; the server never sees it"),
      field("Attendees", this.attendees, "optional, separated by commas"),
      field("Language", this.language, "optional: en, fr, nl, …; otherwise the node detects it"),
    ];
  }

  check(): void {
    if (!this.title.value.trim()) throw new Error("give the recording a title");
    const language = this.spokenLanguage();
    if (language !== null && !isLanguageCode(language)) {
      throw new Error("the language is a Whisper code such as en, fr or nl, or empty to have it detected");
    }
  }

  private spokenLanguage(): string | null {
    return this.language.value.trim().toLowerCase() || null;
  }

  read(mediaType: string, startedAt: number, endedAt: number): RecordingMetadata {
    return {
      title: this.title.value.trim() || "Untitled recording",
      startedAt,
      endedAt,
      mediaType,
      attendees: this.attendees.value
        .split(",")
        .map((name) => name.trim())
        .filter(Boolean),
      language: this.spokenLanguage(),
    };
  }
}

/** A line that says how far encryption and upload are, announced politely. */
function progressLine(): [HTMLElement, (prefix: string, progress: UploadProgress) => void] {
  const line = h("p", { class: "meta", role: "status", "aria-live": "polite" });
  return [
    line,
    (prefix, progress) =>
      fill(
        line,
        `${prefix} · ${size(progress.encrypted)} encrypted · ${size(progress.uploaded)} on the server`,
        progress.waiting ? ` · ${progress.waiting}` : "",
      ),
  ];
}

/** Asks the browser for the audio to record: the microphone, or a shared tab's or window's. */
async function captureAudio(source: string): Promise<MediaStream> {
  if (source === "microphone") return navigator.mediaDevices.getUserMedia({ audio: true });
  // Browsers share audio only with a screen, tab or window; only its audio is kept.
  const shared = await navigator.mediaDevices.getDisplayMedia({ audio: true, video: true });
  shared.getVideoTracks().forEach((track) => track.stop());
  if (!shared.getAudioTracks().length) {
    throw new Error("the shared tab or window has no audio: share again and tick \"share audio\"");
  }
  return new MediaStream(shared.getAudioTracks());
}

/** MediaRecorder's chunks, in order, as a stream that ends when recording stops. */
function chunksOf(recorder: MediaRecorder): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      // Reading a chunk is asynchronous: one chain keeps the chunks and the end in order.
      let chain = Promise.resolve();
      recorder.addEventListener("dataavailable", (event) => {
        chain = chain.then(async () => controller.enqueue(new Uint8Array(await event.data.arrayBuffer())));
      });
      recorder.addEventListener("stop", () => {
        chain = chain.then(() => controller.close());
      });
    },
  });
}

/** Keeps the tab from closing unnoticed while a recording is under way. */
function guardTab(active: boolean): void {
  window.onbeforeunload = active ? (event) => event.preventDefault() : null;
}

function recorderSection(device: Device): HTMLElement {
  const details = new Details(`Meeting of ${new Date().toLocaleDateString()}`);
  const source = h(
    "select",
    {},
    h("option", { value: "microphone" }, "Microphone"),
    h("option", { value: "shared" }, "Audio of a shared tab or window"),
  );
  const [line, report] = progressLine();
  const start = h("button", { type: "button", class: "primary" }, "Start recording");
  const stop = h("button", { type: "button", disabled: true }, "Stop and seal");
  const discard = h("button", { type: "button", class: "danger", disabled: true }, "Discard");
  let recorder: MediaRecorder | null = null;
  let aborter: AbortController | null = null;

  start.addEventListener("click", () =>
    act(start, "Checking the roster and the policy…", async () => {
      details.check();
      let latest: UploadProgress = { encrypted: 0, uploaded: 0, waiting: null };
      let startedAt = Date.now();
      const clock = () => `Recording ${elapsed(Date.now() - startedAt)}`;
      // Nothing is captured until the roster and the policy verify and the upload is open.
      const session = await VaultRecording.open(
        device,
        (progress) => {
          latest = progress;
          report(recorder?.state === "recording" ? clock() : "Sealing", progress);
        },
        true,
      );
      let stream: MediaStream;
      try {
        stream = await captureAudio(source.value);
      } catch (error) {
        await session.discard().catch(() => undefined);
        throw error;
      }
      const mimeType = FORMATS.find((format) => MediaRecorder.isTypeSupported(format));
      const active = new MediaRecorder(stream, mimeType ? { mimeType } : {});
      active.addEventListener("stop", () => stream.getTracks().forEach((track) => track.stop()));
      recorder = active;
      aborter = new AbortController();
      const chunks = chunksOf(active);
      startedAt = Date.now();
      active.start(TIMESLICE_MS);
      const ticking = setInterval(() => report(clock(), latest), 1000);
      guardTab(true);
      [start.hidden, stop.disabled, discard.disabled, source.disabled] = [true, false, false, true];
      say("Recording. The audio is encrypted in this tab and uploaded as you speak.");
      try {
        const recordingId = await session.record(
          chunks,
          () => details.read(active.mimeType || "audio/webm", Math.floor(startedAt / 1000), Math.floor(Date.now() / 1000)),
          aborter.signal,
        );
        fill(line, `Sealed and uploaded: recording ${recordingId}.`);
        say(`Recording ${recordingId.slice(0, 8)} is in the vault. Ask for its transcription on the Recordings page.`);
      } finally {
        // A failure mid-meeting must not leave the microphone on.
        if (active.state !== "inactive") active.stop();
        clearInterval(ticking);
        guardTab(false);
        recorder = null;
        [start.hidden, stop.disabled, discard.disabled, source.disabled] = [false, true, true, false];
      }
    }),
  );
  stop.addEventListener("click", () => {
    say("Stopping; the last audio is encrypted and the manifest signed…");
    stop.disabled = true;
    recorder?.stop();
  });
  discard.addEventListener("click", () => {
    aborter?.abort();
    recorder?.stop();
    say("Discarding: the server removes what it received.");
  });
  return h(
    "section",
    { "aria-labelledby": "record-live" },
    h("h2", { id: "record-live" }, "Record a meeting"),
    details.fields(),
    field("Audio", source),
    h("div", { class: "row-actions" }, start, stop, discard),
    line,
  );
}

function fileSection(device: Device): HTMLElement {
  const details = new Details("");
  const input = h("input", { type: "file", accept: "audio/*,video/*" });
  const progress = h("progress", { max: 1, value: 0, "aria-label": "Upload progress" });
  const [line, report] = progressLine();
  const upload = h("button", { type: "button", class: "primary" }, "Encrypt and upload");
  const drop = h(
    "div",
    { class: "drop" },
    field("Recording file", input, "or drop a file here; it is encrypted in this tab before it is sent"),
  );
  input.addEventListener("change", () => {
    const file = input.files?.[0];
    if (file && !details.title.value.trim()) details.title.value = file.name.replace(/\.[^.]+$/, "");
  });
  drop.addEventListener("dragover", (event) => event.preventDefault());
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer?.files.length) {
      input.files = event.dataTransfer.files;
      input.dispatchEvent(new Event("change"));
    }
  });
  upload.addEventListener("click", () =>
    act(upload, "Checking the roster and the policy…", async () => {
      const file = input.files?.[0];
      if (!file) throw new Error("choose a recording file first");
      details.check();
      const modified = Math.floor(file.lastModified / 1000);
      const recordingId = await recordToVault(
        device,
        file.stream(),
        () => details.read(file.type || "application/octet-stream", modified, modified),
        (state) => {
          // The ciphertext is the plaintext and 16 bytes per 64 KiB, so this is near enough.
          progress.value = Math.min(1, state.uploaded / Math.max(1, file.size));
          report(`Uploading ${file.name}`, state);
        },
      );
      progress.value = 1;
      fill(line, `Sealed and uploaded: recording ${recordingId}.`);
      say(`${file.name} is in the vault as recording ${recordingId.slice(0, 8)}.`);
    }),
  );
  return h(
    "section",
    { "aria-labelledby": "record-file" },
    h("h2", { id: "record-file" }, "Upload a recording file"),
    drop,
    details.fields(),
    h("div", { class: "row-actions" }, upload),
    progress,
    line,
  );
}

/** The Record page. */
export async function record(device: Device, main: HTMLElement): Promise<void> {
  const roster = await device.roster();
  fill(
    main,
    h("h1", { tabindex: -1 }, "Record"),
    h(
      "p",
      { class: "intro" },
      `Audio is encrypted in this tab as it is captured or read, and uploaded while you record. Its key is split among the ${roster.active.length} members and sealed to each of them here; the server never holds it.`,
    ),
    recorderSection(device),
    fileSection(device),
  );
}
