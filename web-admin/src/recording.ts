// A recording made or uploaded from the page, as the `quorate` command uploads one: the
// plaintext is encrypted in the tab as it arrives (typage's STREAM encryption to a fresh
// recording key), and the ciphertext goes to the server through a live upload whose length
// is deferred (tus) while recording continues. When the source ends, the key is split k-of-n
// among the members of the verified roster, each share sealed to its holder and bound to
// this recording, the metadata sealed to every member, and the manifest naming the
// ciphertext's length and SHA-256 signed here; the server completes the upload with it only
// if the bytes it stored are exactly those. Nothing secret is stored, and the key is zeroed
// when the manifest is sent.

import { Encrypter, identityToRecipient } from "age-encryption";
import { sha256 as sha256Stream } from "@noble/hashes/sha2.js";

import { ApiError, type Schemas } from "./client";
import { type Device, now } from "./device";
import type { Roster } from "./roster";
import {
  encodeSharePlaintext,
  recipientBytes,
  recipientText,
  seal,
  sealToAll,
  secretKeyText,
} from "./sealed";
import {
  type RecordingMetadata,
  StatementError,
  encodeRecordingManifest,
  encodeRecordingMetadata,
  sign,
} from "./statements";
import { ageKeyBytes, randomScalar, split } from "./vss";
import { concat, toBase64 } from "./wire";

/** What the page reports while a recording is made and uploaded. */
export interface UploadProgress {
  /** Ciphertext bytes made so far. */
  encrypted: number;
  /** Ciphertext bytes the server has acknowledged. */
  uploaded: number;
  /** Why the upload is waiting, when it is (the server did not answer). */
  waiting: string | null;
}

/** Most bytes sent in one PATCH. */
const MOST_PER_PATCH = 8 << 20;
/**
 * A live recording waits for this much before a PATCH, or for `LONGEST_HOLD_MS`: on S3 each
 * PATCH rewrites the upload's unfinished part, so a PATCH a second would cost far more than
 * the audio.
 */
const LEAST_PER_PATCH = 1 << 20;
const LONGEST_HOLD_MS = 20_000;
/** Most bytes kept in the page for the server; reading the source waits beyond it. */
const MOST_WAITING = 32 << 20;
/** Longest wait between attempts while the server does not answer. */
const LONGEST_WAIT_MS = 15_000;
/** How often a manifest is sent again (split again when the roster changed meanwhile). */
const MANIFEST_ATTEMPTS = 5;

/**
 * A recording's shared secret and the age key derived from it for this recording, as
 * quorate-crypto's `vss::Secret` makes them.
 */
class RecordingKey {
  private constructor(
    /** The scalar that is split (a bigint cannot be wiped; dropped with this object). */
    readonly secret: bigint,
    /** The age key, clamped X25519. */
    readonly key: Uint8Array,
    readonly recipient: Uint8Array,
  ) {}

  static async generate(recordingId: string): Promise<RecordingKey> {
    const secret = randomScalar();
    const key = await ageKeyBytes(secret, { kind: "recording", id: recordingId });
    const recipient = recipientBytes(await identityToRecipient(secretKeyText(key)));
    return new RecordingKey(secret, key, recipient);
  }

  wipe(): void {
    this.key.fill(0);
  }
}

/**
 * The upload of a ciphertext as it is made: appends in order, several pieces to a PATCH when
 * they wait, and resumes from the server's offset after a failure. Keeps only what the server
 * has not acknowledged, and makes the reader wait when too much is kept.
 */
class LiveUpload {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private acknowledged = 0;
  private encrypted = 0;
  private waiting: string | null = null;
  private running: Promise<void> | null = null;
  private holding: ReturnType<typeof setTimeout> | null = null;
  private failure: Error | null = null;
  private stopped = false;
  /** Everything is encrypted: send what waits without holding it back. */
  private flushing = false;

  constructor(
    private readonly device: Device,
    readonly url: string,
    private readonly progress: (progress: UploadProgress) => void,
    /** Hold small pieces back for a bigger PATCH (a live recording). */
    private readonly batched: boolean,
  ) {}

  /** Adds encrypted bytes; resolves once there is room for more. */
  async push(bytes: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    this.encrypted += bytes.length;
    this.report();
    this.kick();
    while (this.pendingBytes > MOST_WAITING && this.running && !this.failure) await this.running;
    if (this.failure) throw this.failure;
  }

  /** Sends what waits and waits until the server has every byte; returns how many. */
  async drain(): Promise<number> {
    this.flushing = true;
    this.kick();
    while (this.running) await this.running;
    if (this.failure) throw this.failure;
    if (this.acknowledged !== this.encrypted) {
      throw new Error(`the server has ${this.acknowledged} of the ${this.encrypted} bytes encrypted: try again`);
    }
    return this.encrypted;
  }

  /** Gives up: nothing more is sent; resolves when no PATCH is under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.holding) clearTimeout(this.holding);
    while (this.running) await this.running;
  }

  private report(): void {
    this.progress({ encrypted: this.encrypted, uploaded: this.acknowledged, waiting: this.waiting });
  }

  /** Starts sending unless a send runs, the upload ended, or a live recording holds back. */
  private kick(): void {
    if (this.running || this.failure || this.stopped || this.pendingBytes === 0) return;
    if (this.batched && !this.flushing && this.pendingBytes < LEAST_PER_PATCH) {
      this.holding ??= setTimeout(() => {
        this.holding = null;
        this.flushing = true;
        this.kick();
        this.flushing = false;
      }, LONGEST_HOLD_MS);
      return;
    }
    if (this.holding) clearTimeout(this.holding);
    this.holding = null;
    // Pieces pushed while the last PATCH ended are sent by the next round.
    this.running = this.send().finally(() => {
      this.running = null;
      this.kick();
    });
  }

  private async send(): Promise<void> {
    let failures = 0;
    while (this.pendingBytes > 0 && !this.stopped) {
      const batch = this.batch();
      try {
        const offset = await this.device.client.appendUpload(this.url, this.acknowledged, batch);
        this.acknowledge(offset);
        failures = 0;
        this.waiting = null;
      } catch (error) {
        if (!retryable(error)) {
          this.failure = new Error(`the upload stopped: ${message(error)}`);
          return;
        }
        failures += 1;
        this.waiting = `the server did not take the last piece (${message(error)}); trying again`;
        this.report();
        await new Promise((resolve) => setTimeout(resolve, Math.min(LONGEST_WAIT_MS, 500 * 2 ** failures)));
        try {
          this.acknowledge(await this.device.client.uploadOffset(this.url));
        } catch (resync) {
          if (resync instanceof StatementError) {
            this.failure = resync;
            return;
          }
          // Still unreachable: the next round tries again.
        }
      }
      this.report();
    }
  }

  /** What waits, up to one PATCH's worth, as one piece. */
  private batch(): Uint8Array<ArrayBuffer> {
    const pieces: Uint8Array[] = [];
    let size = 0;
    for (const piece of this.pending) {
      if (size > 0 && size + piece.length > MOST_PER_PATCH) break;
      pieces.push(piece);
      size += piece.length;
    }
    return concat(...pieces);
  }

  /**
   * The server says it has `offset` bytes: drops what that covers. A server that claims
   * fewer than it acknowledged, or more than was sent, is refused.
   */
  private acknowledge(offset: number): void {
    if (offset < this.acknowledged || offset > this.acknowledged + this.pendingBytes) {
      throw new StatementError(
        `the server says it has ${offset} bytes of this upload, but it acknowledged ${this.acknowledged} and was sent ${this.acknowledged + this.pendingBytes}: refused`,
      );
    }
    let covered = offset - this.acknowledged;
    while (covered > 0) {
      const first = this.pending[0]!;
      if (first.length <= covered) {
        this.pending.shift();
        covered -= first.length;
        this.pendingBytes -= first.length;
      } else {
        this.pending[0] = first.subarray(covered);
        this.pendingBytes -= covered;
        covered = 0;
      }
    }
    this.acknowledged = offset;
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A failure worth another attempt: no answer, a server error, or a PATCH that crossed. */
function retryable(error: unknown): boolean {
  if (!(error instanceof ApiError)) return false;
  return error.status === 0 || error.status >= 500 || ["offset_mismatch", "upload_busy", "checksum_mismatch"].includes(error.code);
}

/** The members who hold shares, and how many of them must agree (the policy's least k). */
async function holders(device: Device, roster: Roster): Promise<{ k: number; n: number }> {
  const policy = await device.policy(roster);
  const n = roster.active.length;
  if (n < policy.minThreshold) {
    throw new StatementError(
      `the vault's policy asks for ${policy.minThreshold} approvals but the roster has ${n} members: an admin must approve more members first`,
    );
  }
  return { k: policy.minThreshold, n };
}

/**
 * A recording opened on the server, its key made in this tab, waiting for its source. It is
 * opened only after the roster and the policy verify, so a recording is refused before the
 * meeting rather than after it.
 */
export class VaultRecording {
  private constructor(
    private readonly device: Device,
    readonly id: string,
    private readonly key: RecordingKey,
    private readonly upload: LiveUpload,
  ) {}

  /**
   * Verifies the roster and the policy, makes a fresh key and opens a live upload. A `live`
   * recording (a meeting under way) holds small pieces back for fewer, bigger PATCHes.
   */
  static async open(
    device: Device,
    progress: (progress: UploadProgress) => void,
    live: boolean,
  ): Promise<VaultRecording> {
    await holders(device, await device.roster());
    const id = crypto.randomUUID();
    const state = await device.client.call("post", "/api/v1/vaults/{vault}/live-uploads", {
      path: { vault: device.vaultId },
      body: { recording_id: id },
    });
    if (state.recording_id !== id || state.upload_offset !== 0 || state.upload_length != null) {
      throw new StatementError("the server did not open a fresh live upload for this recording: refused");
    }
    const upload = new LiveUpload(device, state.upload_url, progress, live);
    return new VaultRecording(device, id, await RecordingKey.generate(id), upload);
  }

  /**
   * Encrypts `source` in this tab and uploads it while it flows; when it ends, signs the
   * manifest for the roster verified then and completes the recording. `describe` gives the
   * metadata at that moment (a title typed while recording counts). Aborting `signal`
   * discards it. The key is wiped whatever happens.
   */
  async record(
    source: ReadableStream<Uint8Array>,
    describe: () => RecordingMetadata,
    signal?: AbortSignal,
  ): Promise<string> {
    try {
      const encrypter = new Encrypter();
      encrypter.addRecipient(recipientText(this.key.recipient));
      const hasher = sha256Stream.create();
      const reader = (await encrypter.encrypt(source)).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (signal?.aborted) throw await this.discarded(reader);
        if (done) break;
        hasher.update(value);
        await this.upload.push(value);
      }
      const length = await this.upload.drain();
      if (signal?.aborted) throw await this.discarded(reader);
      await completeRecording(this.device, this.id, this.key, { length, digest: hasher.digest() }, describe());
      return this.id;
    } finally {
      this.key.wipe();
    }
  }

  /** Abandons the recording: nothing more is sent and the server removes what it has. */
  async discard(): Promise<void> {
    this.key.wipe();
    await this.upload.stop();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.device.client.abandonUpload(this.upload.url);
      } catch (error) {
        // A PATCH the server still counts as running ends within its lock's minute.
        if (!(error instanceof ApiError && error.status === 409 && attempt < 30)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }
  }

  private async discarded(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<Error> {
    await reader.cancel().catch(() => undefined);
    await this.discard().catch(() => undefined);
    return new DOMException("the recording was discarded; nothing of it is kept", "AbortError");
  }
}

/** Opens a recording and records `source` into it ([`VaultRecording`]); returns its ID. */
export async function recordToVault(
  device: Device,
  source: ReadableStream<Uint8Array>,
  describe: () => RecordingMetadata,
  progress: (progress: UploadProgress) => void,
  signal?: AbortSignal,
): Promise<string> {
  const recording = await VaultRecording.open(device, progress, false);
  return recording.record(source, describe, signal);
}

/**
 * Splits the key among the roster's members, seals each share and the metadata, signs the
 * manifest and sends it, then checks that the server lists the recording complete with that
 * manifest. The same manifest is sent again while the server cannot answer; when the roster
 * changed meanwhile the key is split and signed again for the new one.
 */
async function completeRecording(
  device: Device,
  recordingId: string,
  key: RecordingKey,
  ciphertext: { length: number; digest: Uint8Array },
  metadata: RecordingMetadata,
): Promise<void> {
  let body: Schemas["NewRecording"] | null = null;
  for (let attempt = 1; ; attempt++) {
    body ??= await signedManifest(device, await device.roster(), recordingId, key, ciphertext, metadata);
    try {
      const state = await device.client.call("post", "/api/v1/vaults/{vault}/recordings", {
        path: { vault: device.vaultId },
        body,
      });
      if (state.recording_id !== recordingId || state.upload_offset !== ciphertext.length) {
        throw new StatementError("the server's answer does not say that this recording is complete");
      }
      break;
    } catch (error) {
      if (attempt >= MANIFEST_ATTEMPTS || !(error instanceof ApiError)) throw error;
      if (error.code === "roster_changed") {
        body = null;
      } else if (error.status === 0 || error.status >= 500 || error.code === "upload_busy") {
        await new Promise((resolve) => setTimeout(resolve, Math.min(LONGEST_WAIT_MS, 1000 * 2 ** attempt)));
      } else {
        throw error;
      }
    }
  }
  const view = await device.client.call("get", "/api/v1/vaults/{vault}/recordings/{recording}", {
    path: { vault: device.vaultId, recording: recordingId },
  });
  if (view.status !== "complete" || view.manifest !== body.manifest) {
    throw new StatementError("the server does not list this recording as complete with the manifest signed here");
  }
}

/** The manifest and the sealed shares for `roster`, as the API takes them. */
async function signedManifest(
  device: Device,
  roster: Roster,
  recordingId: string,
  key: RecordingKey,
  ciphertext: { length: number; digest: Uint8Array },
  metadata: RecordingMetadata,
): Promise<Schemas["NewRecording"]> {
  const { k, n } = await holders(device, roster);
  const members = roster.active;
  const subject = { kind: "recording", id: recordingId } as const;
  const { shares, commitments } = split(key.secret, k, n);
  const sealed: Schemas["SealedShareUpload"][] = [];
  try {
    for (const [position, member] of members.entries()) {
      const share = shares[position]!;
      const binding = {
        vaultId: device.vaultId,
        subject,
        recipient: key.recipient,
        k,
        n,
        index: share.index,
        member: member.fingerprint,
        commitments,
      };
      const plaintext = encodeSharePlaintext(binding, share.value);
      const box = await seal(plaintext, member.keys.recipient);
      plaintext.fill(0);
      sealed.push({ member: member.fingerprint, sealed: toBase64(box) });
    }
  } finally {
    shares.forEach((share) => share.value.fill(0));
  }
  const plaintext = encodeRecordingMetadata(metadata);
  const sealedMetadata = await sealToAll(
    plaintext,
    members.map((member) => member.keys.recipient),
  );
  plaintext.fill(0);
  const body = encodeRecordingManifest({
    vaultId: device.vaultId,
    recordingId,
    uploader: device.identity.fingerprintHex,
    rosterHead: roster.head(),
    createdAt: now(),
    ciphertextLen: ciphertext.length,
    ciphertextSha256: ciphertext.digest,
    split: { recipient: key.recipient, k, n, holders: members.map((member) => member.fingerprint), commitments },
    sealedMetadata,
  });
  const signed = await sign("recording-manifest", body, device.identity.signingKey, device.identity.verifyingKey);
  return { manifest: toBase64(signed), shares: sealed };
}
