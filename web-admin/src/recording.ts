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
  shareCommitment,
} from "./sealed";
import { split } from "./shamir";
import {
  type ManifestShare,
  type RecordingMetadata,
  StatementError,
  encodeRecordingManifest,
  encodeRecordingMetadata,
  sign,
} from "./statements";
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
/** Longest wait between attempts while the server does not answer. */
const LONGEST_WAIT_MS = 15_000;
/** How often a manifest is split again when the roster changed meanwhile. */
const ROSTER_RETRIES = 3;

/** A recording key in clamped X25519 form, as quorate-crypto makes split keys. */
class RecordingKey {
  private constructor(
    readonly secret: Uint8Array,
    readonly recipient: Uint8Array,
  ) {}

  static async generate(): Promise<RecordingKey> {
    const secret = crypto.getRandomValues(new Uint8Array(32));
    secret[0] = secret[0]! & 248;
    secret[31] = (secret[31]! & 127) | 64;
    const recipient = recipientBytes(await identityToRecipient(secretKeyText(secret)));
    return new RecordingKey(secret, recipient);
  }

  wipe(): void {
    this.secret.fill(0);
  }
}

/**
 * The upload of a ciphertext as it is made: appends in order, several pieces to a PATCH when
 * they wait, and resumes from the server's offset after a failure. Keeps only what the server
 * has not acknowledged.
 */
class LiveUpload {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private acknowledged = 0;
  private encrypted = 0;
  private waiting: string | null = null;
  private running: Promise<void> | null = null;
  private failure: Error | null = null;
  private stopped = false;

  constructor(
    private readonly device: Device,
    readonly url: string,
    private readonly progress: (progress: UploadProgress) => void,
  ) {}

  push(bytes: Uint8Array): void {
    if (this.failure) throw this.failure;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    this.encrypted += bytes.length;
    this.report();
    this.running ??= this.send().finally(() => {
      this.running = null;
    });
  }

  /** Waits until the server has every byte; returns how many. */
  async drain(): Promise<number> {
    while (this.running) await this.running;
    if (this.failure) throw this.failure;
    return this.acknowledged;
  }

  /** Gives up: nothing more is sent. */
  stop(): void {
    this.stopped = true;
  }

  private report(): void {
    this.progress({ encrypted: this.encrypted, uploaded: this.acknowledged, waiting: this.waiting });
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
          this.failure = new Error(`the upload stopped: ${error instanceof Error ? error.message : String(error)}`);
          return;
        }
        failures += 1;
        this.waiting = `the server did not take the last piece (${error instanceof Error ? error.message : String(error)}); trying again`;
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
 * Encrypts `source` in this tab and uploads it while it flows; when it ends, signs the
 * manifest for the roster verified then and completes the recording. `describe` gives the
 * metadata at that moment (a title typed while recording counts). Returns the recording's ID.
 *
 * Before anything is opened on the server the roster and the policy are verified, so a
 * recording is refused before the meeting rather than after it.
 */
export async function recordToVault(
  device: Device,
  source: ReadableStream<Uint8Array>,
  describe: () => RecordingMetadata,
  progress: (progress: UploadProgress) => void,
  signal?: AbortSignal,
): Promise<string> {
  await holders(device, await device.roster());
  const key = await RecordingKey.generate();
  const recordingId = crypto.randomUUID();
  try {
    const upload = await openLiveUpload(device, recordingId, progress);
    signal?.addEventListener("abort", () => upload.stop());
    const discarded = async () => {
      await device.client.abandonUpload(upload.url).catch(() => undefined);
      return new DOMException("the recording was discarded; nothing of it is kept", "AbortError");
    };
    const encrypter = new Encrypter();
    encrypter.addRecipient(recipientText(key.recipient));
    const hasher = sha256Stream.create();
    const reader = (await encrypter.encrypt(source)).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (signal?.aborted) throw await discarded();
      hasher.update(value);
      upload.push(value);
    }
    const length = await upload.drain();
    if (signal?.aborted) throw await discarded();
    const digest = hasher.digest();
    await completeRecording(device, recordingId, key, { length, digest }, describe());
    return recordingId;
  } finally {
    key.wipe();
  }
}

async function openLiveUpload(
  device: Device,
  recordingId: string,
  progress: (progress: UploadProgress) => void,
): Promise<LiveUpload> {
  const state = await device.client.call("post", "/api/v1/vaults/{vault}/live-uploads", {
    path: { vault: device.vaultId },
    body: { recording_id: recordingId },
  });
  if (state.recording_id !== recordingId || state.upload_offset !== 0 || state.upload_length != null) {
    throw new StatementError("the server did not open a fresh live upload for this recording: refused");
  }
  return new LiveUpload(device, state.upload_url, progress);
}

/**
 * Splits the key among the roster's members, seals each share and the metadata, signs the
 * manifest and sends it; when the roster changed meanwhile, does so again for the new one.
 */
async function completeRecording(
  device: Device,
  recordingId: string,
  key: RecordingKey,
  ciphertext: { length: number; digest: Uint8Array },
  metadata: RecordingMetadata,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const roster = await device.roster();
    const body = await signedManifest(device, roster, recordingId, key, ciphertext, metadata);
    try {
      const state = await device.client.call("post", "/api/v1/vaults/{vault}/recordings", {
        path: { vault: device.vaultId },
        body,
      });
      if (state.recording_id !== recordingId || state.upload_offset !== ciphertext.length) {
        throw new StatementError("the server's answer does not say that this recording is complete");
      }
      return;
    } catch (error) {
      if (!(error instanceof ApiError && error.code === "roster_changed" && attempt < ROSTER_RETRIES)) throw error;
    }
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
  const shares = split(key.secret, k, n);
  const manifestShares: ManifestShare[] = [];
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
        index: position + 1,
        member: member.fingerprint,
      };
      const plaintext = encodeSharePlaintext(binding, share);
      const box = await seal(plaintext, member.keys.recipient);
      plaintext.fill(0);
      manifestShares.push({ member: member.fingerprint, commitment: await shareCommitment(binding, share) });
      sealed.push({ member: member.fingerprint, sealed: toBase64(box) });
    }
  } finally {
    shares.forEach((share) => share.fill(0));
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
    split: { recipient: key.recipient, k, n, shares: manifestShares },
    sealedMetadata,
  });
  const signed = await sign("recording-manifest", body, device.identity.signingKey, device.identity.verifyingKey);
  return { manifest: toBase64(signed), shares: sealed };
}
