// Signed statements, equal to quorate-crypto's `statement` module: a body in the canonical
// encoding signed with Ed25519 over
// "quorate/statement-signature/v1" ‖ kind code ‖ kind name ‖ body; on the wire
// "quorate/signed-statement/v1" ‖ kind ‖ signer key ‖ signature ‖ body, whose SHA-256 is
// the statement's digest. The browser parses and checks every kind and signs the ones a
// member or an admin makes here: roster entries, node approvals, requests and votes.

import { Reader, Writer, equalBytes, hasDomain, fromBase64, fromHex, hex, sha256, uuidBytes, uuidText } from "./wire";

export const KINDS = [
  "roster-entry",
  "node-approval",
  "recording-manifest",
  "unlock-request",
  "vote",
  "transcript-manifest",
  "vault-policy",
  "search-key-commitment",
  "release-manifest",
  "reshare-deal",
  "retention-rule",
  "legal-hold",
  "search-key-rotation",
] as const;
export type Kind = (typeof KINDS)[number];

/** Why a statement was refused, in words for the member. */
export class StatementError extends Error {}

const SIGNED_DOMAIN = "quorate/signed-statement/v1";
const SIGNATURE_DOMAIN = "quorate/statement-signature/v1";
const MAX_TEXT_LEN = 4096;

function code(kind: Kind): number {
  return KINDS.indexOf(kind) + 1;
}

function signatureMessage(kind: Kind, body: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Writer(SIGNATURE_DOMAIN).u8(code(kind)).str(kind).bytes(body).finish();
}

export interface SignedStatement {
  kind: Kind;
  signer: Uint8Array;
  signature: Uint8Array;
  body: Uint8Array;
}

export function encodeSigned(signed: SignedStatement): Uint8Array<ArrayBuffer> {
  return new Writer(SIGNED_DOMAIN)
    .u8(code(signed.kind))
    .fixed(signed.signer)
    .fixed(signed.signature)
    .bytes(signed.body)
    .finish();
}

export function parseSigned(bytes: Uint8Array): SignedStatement {
  const reader = new Reader(bytes, SIGNED_DOMAIN, "signed statement");
  const kind = KINDS[reader.u8() - 1];
  if (!kind) throw reader.malformed();
  const signer = reader.fixed(32);
  const signature = reader.fixed(64);
  const body = reader.bytes();
  reader.finish();
  return { kind, signer, signature, body };
}

/** Signs `body` (of `kind`) with a member's non-extractable Ed25519 key. */
export async function sign(
  kind: Kind,
  body: Uint8Array,
  signingKey: CryptoKey,
  verifyingKey: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  const signature = new Uint8Array(
    await crypto.subtle.sign("Ed25519", signingKey, signatureMessage(kind, body)),
  );
  return encodeSigned({ kind, signer: verifyingKey, signature, body });
}

/** Whether an Ed25519 signature by `key` over `message` is valid. */
export async function verifySignature(
  key: Uint8Array,
  signature: Uint8Array,
  message: Uint8Array,
): Promise<boolean> {
  try {
    const imported = await crypto.subtle.importKey(
      "raw",
      key as Uint8Array<ArrayBuffer>,
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    return await crypto.subtle.verify(
      "Ed25519",
      imported,
      signature as Uint8Array<ArrayBuffer>,
      message as Uint8Array<ArrayBuffer>,
    );
  } catch {
    return false;
  }
}

/** A statement whose signature was checked, with its parsed body, signer and digest. */
export interface Verified<T> {
  statement: T;
  signer: Uint8Array;
  digest: Uint8Array;
  bytes: Uint8Array;
}

type Decoders = { [K in Kind]: (body: Uint8Array) => BodyOf<K> };
export type BodyOf<K extends Kind> = {
  "roster-entry": RosterEntry;
  "node-approval": NodeApproval;
  "recording-manifest": RecordingManifest;
  "unlock-request": UnlockRequest;
  vote: Vote;
  "transcript-manifest": TranscriptManifest;
  "vault-policy": VaultPolicy;
  "search-key-commitment": SearchKeyCommitment;
  "release-manifest": ReleaseManifest;
  "reshare-deal": ReshareDeal;
  "retention-rule": RetentionRule;
  "legal-hold": LegalHold;
  "search-key-rotation": SearchKeyRotation;
}[K];

/** Checks the kind and signature of a wire-form statement, then parses its body. */
export async function verify<K extends Kind>(
  kind: K,
  bytes: Uint8Array,
): Promise<Verified<BodyOf<K>>> {
  const signed = parseSigned(bytes);
  if (signed.kind !== kind) {
    throw new StatementError(`expected a ${kind} statement, found a ${signed.kind}`);
  }
  if (!(await verifySignature(signed.signer, signed.signature, signatureMessage(kind, signed.body)))) {
    throw new StatementError(`the ${kind}'s signature does not verify`);
  }
  const statement = (DECODERS[kind] as (body: Uint8Array) => BodyOf<K>)(signed.body);
  return { statement, signer: signed.signer, digest: await sha256(bytes), bytes };
}

/** As `verify`, for a statement the API sent as base64. */
export async function verifyText<K extends Kind>(kind: K, text: string): Promise<Verified<BodyOf<K>>> {
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(text);
  } catch {
    throw new StatementError(`the server sent a ${kind} that is not base64`);
  }
  return verify(kind, bytes);
}

/** Verifies a statement of whatever kind it says it is (the audit log's check). */
export async function verifyAny(bytes: Uint8Array): Promise<Kind> {
  const kind = parseSigned(bytes).kind;
  await verify(kind, bytes);
  return kind;
}

function text(field: string, value: string, allowEmpty = false): string {
  if (!allowEmpty && value.trim() === "") throw new StatementError(`the ${field} must not be empty`);
  if (new TextEncoder().encode(value).length > MAX_TEXT_LEN) {
    throw new StatementError(`the ${field} is longer than 4096 bytes`);
  }
  // Control characters other than newline and tab (Unicode category Cc).
  if (/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(value)) {
    throw new StatementError(`the ${field} contains control characters`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------
// Public keys and fingerprints

export interface PublicKeys {
  /** X25519 public key (an age recipient's 32 bytes). */
  recipient: Uint8Array;
  /** Ed25519 verifying key. */
  verifyingKey: Uint8Array;
}

function encodePublic(writer: Writer, keys: PublicKeys): void {
  writer.fixed(keys.recipient).fixed(keys.verifyingKey);
}

function decodePublic(reader: Reader): PublicKeys {
  return { recipient: reader.fixed(32), verifyingKey: reader.fixed(32) };
}

/** SHA-256("quorate/fingerprint/v1\0" ‖ recipient ‖ verifying key), hex. */
export async function fingerprintOf(keys: PublicKeys): Promise<string> {
  const domain = new TextEncoder().encode("quorate/fingerprint/v1\0");
  const material = new Uint8Array(domain.length + 64);
  material.set(domain);
  material.set(keys.recipient, domain.length);
  material.set(keys.verifyingKey, domain.length + 32);
  return hex(await sha256(material));
}

/** The form people compare: the first 15 bytes in base32, six groups of four (120 bits). */
export function shortFingerprint(fingerprintHex: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let buffer = 0;
  let bits = 0;
  let out = "";
  for (const byte of fromHex(fingerprintHex.slice(0, 30))) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += alphabet[(buffer >> bits) & 31];
    }
  }
  return out.match(/.{4}/g)?.join("-") ?? out;
}

/**
 * Whether what someone typed is the fingerprint `fingerprintHex`: its whole short form or its
 * whole hex, in any case, with any dashes or spaces (as the CLI's `find_by_fingerprint`
 * takes it). A prefix is not enough: what is compared is all that is read out.
 */
export function fingerprintMatches(typed: string, fingerprintHex: string): boolean {
  const wanted = typed.replace(/[^0-9A-Za-z]/g, "").toUpperCase();
  return wanted === shortFingerprint(fingerprintHex).replace(/-/g, "") || wanted === fingerprintHex.toUpperCase();
}

// ---------------------------------------------------------------------------------------
// Bodies

/** A recorder uploads and holds nothing: no share, no vote, nothing sealed to it. */
export type Role = "admin" | "member" | "recorder";

const ROLE_CODES = { admin: 1, member: 2, recorder: 3 } as const;

/** Whether `role` holds shares, requests, votes and reads what is sealed to the members. */
export function holdsShares(role: Role): boolean {
  return role !== "recorder";
}

export interface RosterEntry {
  vaultId: string;
  sequence: number;
  previous: Uint8Array;
  change: "add" | "remove";
  role: Role;
  member: PublicKeys;
  name: string;
  issuedAt: number;
}

export function encodeRosterEntry(entry: RosterEntry): Uint8Array<ArrayBuffer> {
  const writer = new Writer("quorate/roster-entry/v1")
    .fixed(uuidBytes(entry.vaultId))
    .u64(entry.sequence)
    .fixed(entry.previous)
    .u8(entry.change === "add" ? 1 : 2)
    .u8(ROLE_CODES[entry.role]);
  encodePublic(writer, entry.member);
  return writer.str(text("name", entry.name)).i64(entry.issuedAt).finish();
}

function decodeRosterEntry(body: Uint8Array): RosterEntry {
  const reader = new Reader(body, "quorate/roster-entry/v1", "roster entry");
  const vaultId = uuidText(reader.fixed(16));
  const sequence = reader.u64();
  const previous = reader.fixed(32);
  const change = ({ 1: "add", 2: "remove" } as const)[reader.u8()];
  const role = ({ 1: "admin", 2: "member", 3: "recorder" } as const)[reader.u8()];
  if (!change || !role) throw reader.malformed();
  const entry = {
    vaultId,
    sequence,
    previous,
    change,
    role,
    member: decodePublic(reader),
    name: reader.str(),
    issuedAt: reader.i64(),
  };
  reader.finish();
  text("name", entry.name);
  return entry;
}

export interface NodeApproval {
  vaultId: string;
  nodeId: string;
  node: PublicKeys;
  hardware: string;
  modelSha256: Uint8Array;
  attestation: Uint8Array;
  issuedAt: number;
  expiresAt: number;
  revoked: boolean;
}

export function encodeNodeApproval(approval: NodeApproval): Uint8Array<ArrayBuffer> {
  const writer = new Writer("quorate/node-approval/v1")
    .fixed(uuidBytes(approval.vaultId))
    .fixed(uuidBytes(approval.nodeId));
  encodePublic(writer, approval.node);
  if (approval.expiresAt <= approval.issuedAt) throw new StatementError("the expiry must be after issue");
  return writer
    .str(text("hardware description", approval.hardware))
    .fixed(approval.modelSha256)
    .bytes(approval.attestation)
    .i64(approval.issuedAt)
    .i64(approval.expiresAt)
    .u8(approval.revoked ? 1 : 0)
    .finish();
}

function decodeNodeApproval(body: Uint8Array): NodeApproval {
  const reader = new Reader(body, "quorate/node-approval/v1", "node approval");
  const approval = {
    vaultId: uuidText(reader.fixed(16)),
    nodeId: uuidText(reader.fixed(16)),
    node: decodePublic(reader),
    hardware: reader.str(),
    modelSha256: reader.fixed(32),
    attestation: reader.bytes(),
    issuedAt: reader.i64(),
    expiresAt: reader.i64(),
    revoked: [false, true][reader.u8()],
  };
  if (approval.revoked === undefined) throw reader.malformed();
  reader.finish();
  text("hardware description", approval.hardware);
  if (approval.expiresAt <= approval.issuedAt) throw reader.malformed();
  return approval as NodeApproval;
}

/** Refuses an approval that is revoked or expired at `now`. */
export function checkActive(approval: NodeApproval, now: number): void {
  if (approval.revoked) throw new StatementError(`node ${approval.nodeId} was revoked`);
  if (now > approval.expiresAt) throw new StatementError(`node ${approval.nodeId}'s approval expired`);
}

function isoTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

/**
 * Refuses an approval as a voucher for what its node signed at `madeAt` (a transcript or a
 * release manifest), as the CLI's `approval_vouches_for` does. A revocation vouches for
 * nothing, whatever time the statement claims: that time is the node's own word, and a
 * revoked key may be a thief's, who would simply backdate. An approval vouches for what was
 * made before it lapsed; the start of its window is not checked, because the server keeps
 * only the newest approval and a renewal starts later than what the node made before it.
 */
export function approvalVouchesFor(approval: NodeApproval, madeAt: number): void {
  if (approval.revoked) {
    throw new StatementError(
      `node ${approval.nodeId} was revoked, so nothing it signed is trusted: have another node make it again`,
    );
  }
  if (madeAt > approval.expiresAt) {
    throw new StatementError(
      `node ${approval.nodeId} signed it at ${isoTime(madeAt)}, after its approval lapsed at ${isoTime(approval.expiresAt)}: refused; tell an admin`,
    );
  }
}

export interface SplitKey {
  recipient: Uint8Array;
  k: number;
  n: number;
  /** Share i (1-based) is `holders[i − 1]`'s (fingerprints, hex). */
  holders: string[];
  /** The Feldman commitments to the sharing polynomial, k × 32 bytes. */
  commitments: Uint8Array;
}

function encodeSplit(writer: Writer, split: SplitKey): void {
  writer
    .fixed(split.recipient)
    .u8(split.k)
    .u8(split.n)
    .list(split.holders, (w, holder) => w.fixed(fromHex(holder)))
    .bytes(split.commitments);
}

function decodeSplit(reader: Reader): SplitKey {
  const recipient = reader.fixed(32);
  const k = reader.u8();
  const n = reader.u8();
  if (k < 1 || k > n) throw reader.malformed();
  const holders = reader.list((r) => hex(r.fixed(32)));
  const commitments = reader.bytes();
  if (holders.length !== n || new Set(holders).size !== n || commitments.length !== 32 * k) {
    throw reader.malformed();
  }
  return { recipient, k, n, holders, commitments };
}

export type Subject = { kind: "recording" | "transcript"; id: string };

export function encodeSubject(writer: Writer, subject: Subject): void {
  writer.u8(subject.kind === "recording" ? 1 : 2).fixed(uuidBytes(subject.id));
}

function decodeSubject(reader: Reader): Subject {
  const kind = ({ 1: "recording", 2: "transcript" } as const)[reader.u8()];
  if (!kind) throw reader.malformed();
  return { kind, id: uuidText(reader.fixed(16)) };
}

export interface RecordingManifest {
  vaultId: string;
  recordingId: string;
  uploader: string;
  rosterHead: Uint8Array;
  createdAt: number;
  ciphertextLen: number;
  ciphertextSha256: Uint8Array;
  split: SplitKey;
  sealedMetadata: Uint8Array;
}

/** The body of a recording manifest, which the uploader signs. */
export function encodeRecordingManifest(manifest: RecordingManifest): Uint8Array<ArrayBuffer> {
  const { split } = manifest;
  if (split.k < 1 || split.k > split.n || split.holders.length !== split.n || split.commitments.length !== 32 * split.k) {
    throw new StatementError("a split lists exactly n members and needs 1 ≤ k ≤ n");
  }
  const writer = new Writer("quorate/recording-manifest/v2")
    .fixed(uuidBytes(manifest.vaultId))
    .fixed(uuidBytes(manifest.recordingId))
    .fixed(fromHex(manifest.uploader))
    .fixed(manifest.rosterHead)
    .i64(manifest.createdAt)
    .u64(manifest.ciphertextLen)
    .fixed(manifest.ciphertextSha256);
  encodeSplit(writer, split);
  return writer.bytes(manifest.sealedMetadata).finish();
}

function decodeRecordingManifest(body: Uint8Array): RecordingManifest {
  const reader = new Reader(body, "quorate/recording-manifest/v2", "recording manifest");
  const manifest = {
    vaultId: uuidText(reader.fixed(16)),
    recordingId: uuidText(reader.fixed(16)),
    uploader: hex(reader.fixed(32)),
    rosterHead: reader.fixed(32),
    createdAt: reader.i64(),
    ciphertextLen: reader.u64(),
    ciphertextSha256: reader.fixed(32),
    split: decodeSplit(reader),
    sealedMetadata: reader.bytes(),
  };
  reader.finish();
  return manifest;
}

/** What members see of a recording (sealed to each of them). */
export interface RecordingMetadata {
  title: string;
  startedAt: number | null;
  endedAt: number | null;
  mediaType: string;
  attendees: string[];
  /** The language the meeting was held in (a Whisper code such as "fr"); null: not stated. */
  language: string | null;
}

/** Metadata that names a language has the second domain and the language last. */
const METADATA_DOMAIN = "quorate/recording-metadata/v1";
const METADATA_WITH_LANGUAGE_DOMAIN = "quorate/recording-metadata/v2";

/** Whether `code` has the shape of a Whisper language code (which ones a model knows is the
 * node's to check). */
export function isLanguageCode(code: string): boolean {
  return /^[a-z]{2,3}$/.test(code);
}

const LANGUAGE_CODE_RULE = "a language code is two or three lowercase letters, such as fr or haw";

/** The plaintext of recording metadata, checked as the Rust side checks it. */
export function encodeRecordingMetadata(metadata: RecordingMetadata): Uint8Array<ArrayBuffer> {
  checkRecordingMetadata(metadata);
  const writer = new Writer(metadata.language === null ? METADATA_DOMAIN : METADATA_WITH_LANGUAGE_DOMAIN)
    .str(metadata.title)
    .optionI64(metadata.startedAt)
    .optionI64(metadata.endedAt)
    .str(metadata.mediaType)
    .list(metadata.attendees, (w, attendee) => w.str(attendee));
  if (metadata.language !== null) writer.str(metadata.language);
  return writer.finish();
}

function checkRecordingMetadata(metadata: RecordingMetadata): void {
  text("title", metadata.title);
  text("media type", metadata.mediaType);
  metadata.attendees.forEach((attendee) => text("attendee", attendee));
  if (metadata.language !== null && !isLanguageCode(metadata.language)) throw new StatementError(LANGUAGE_CODE_RULE);
  if (metadata.startedAt !== null && metadata.endedAt !== null && metadata.endedAt < metadata.startedAt) {
    throw new StatementError("the meeting ends before it starts");
  }
}

export function decodeRecordingMetadata(plaintext: Uint8Array): RecordingMetadata {
  const namesLanguage = hasDomain(plaintext, METADATA_WITH_LANGUAGE_DOMAIN);
  const reader = new Reader(plaintext, namesLanguage ? METADATA_WITH_LANGUAGE_DOMAIN : METADATA_DOMAIN, "recording metadata");
  const metadata = {
    title: reader.str(),
    startedAt: reader.optionI64(),
    endedAt: reader.optionI64(),
    mediaType: reader.str(),
    attendees: reader.list((r) => r.str()),
    language: namesLanguage ? reader.str() : null,
  };
  reader.finish();
  checkRecordingMetadata(metadata);
  return metadata;
}

export type Purpose = "transcribe" | "release-transcript";

export interface UnlockRequest {
  vaultId: string;
  requestId: string;
  subject: Subject;
  purpose: Purpose;
  nodeId: string;
  requester: string;
  reason: string;
  createdAt: number;
  expiresAt: number;
  /** The language the recording is spoken in (a Whisper code such as "fr"); null: detected. */
  language: string | null;
}

/** A request that names a language has the second domain and the language last, so every
 * request made before languages keeps its encoding. */
const REQUEST_DOMAIN = "quorate/unlock-request/v1";
const REQUEST_WITH_LANGUAGE_DOMAIN = "quorate/unlock-request/v2";

function purposeFits(purpose: Purpose, subject: Subject): boolean {
  return (purpose === "transcribe") === (subject.kind === "recording");
}

export function encodeUnlockRequest(request: UnlockRequest): Uint8Array<ArrayBuffer> {
  checkRequest(request);
  const writer = new Writer(request.language === null ? REQUEST_DOMAIN : REQUEST_WITH_LANGUAGE_DOMAIN)
    .fixed(uuidBytes(request.vaultId))
    .fixed(uuidBytes(request.requestId));
  encodeSubject(writer, request.subject);
  writer
    .u8(request.purpose === "transcribe" ? 1 : 2)
    .fixed(uuidBytes(request.nodeId))
    .fixed(fromHexFingerprint(request.requester))
    .str(request.reason)
    .i64(request.createdAt)
    .i64(request.expiresAt);
  if (request.language !== null) writer.str(request.language);
  return writer.finish();
}

function checkRequest(request: UnlockRequest): void {
  text("reason", request.reason);
  if (!purposeFits(request.purpose, request.subject)) {
    throw new StatementError("transcribe takes a recording, release-transcript a transcript");
  }
  if (request.expiresAt <= request.createdAt) throw new StatementError("the expiry must be after creation");
  if (request.language !== null) {
    if (request.purpose !== "transcribe") throw new StatementError("only a transcription names a language");
    if (!isLanguageCode(request.language)) throw new StatementError(LANGUAGE_CODE_RULE);
  }
}

function decodeUnlockRequest(body: Uint8Array): UnlockRequest {
  const namesLanguage = hasDomain(body, REQUEST_WITH_LANGUAGE_DOMAIN);
  const reader = new Reader(body, namesLanguage ? REQUEST_WITH_LANGUAGE_DOMAIN : REQUEST_DOMAIN, "unlock request");
  const vaultId = uuidText(reader.fixed(16));
  const requestId = uuidText(reader.fixed(16));
  const subject = decodeSubject(reader);
  const purpose = ({ 1: "transcribe", 2: "release-transcript" } as const)[reader.u8()];
  if (!purpose) throw reader.malformed();
  const request = {
    vaultId,
    requestId,
    subject,
    purpose,
    nodeId: uuidText(reader.fixed(16)),
    requester: hex(reader.fixed(32)),
    reason: reader.str(),
    createdAt: reader.i64(),
    expiresAt: reader.i64(),
    language: namesLanguage ? reader.str() : null,
  };
  reader.finish();
  checkRequest(request);
  return request;
}

export interface Vote {
  vaultId: string;
  requestId: string;
  requestDigest: Uint8Array;
  voter: string;
  /** The SHA-256 of the re-sealed share for an approval; null for a denial. */
  resealedShareSha256: Uint8Array | null;
  comment: string;
  issuedAt: number;
}

function fromHexFingerprint(fingerprint: string): Uint8Array {
  const bytes = Uint8Array.from(fingerprint.match(/../g) ?? [], (pair) => parseInt(pair, 16));
  if (bytes.length !== 32) throw new StatementError(`${fingerprint} is not a fingerprint`);
  return bytes;
}

export function encodeVote(vote: Vote): Uint8Array<ArrayBuffer> {
  const writer = new Writer("quorate/vote/v1")
    .fixed(uuidBytes(vote.vaultId))
    .fixed(uuidBytes(vote.requestId))
    .fixed(vote.requestDigest)
    .fixed(fromHexFingerprint(vote.voter));
  if (vote.resealedShareSha256) writer.u8(1).fixed(vote.resealedShareSha256);
  else writer.u8(2);
  return writer.str(text("comment", vote.comment, true)).i64(vote.issuedAt).finish();
}

function decodeVote(body: Uint8Array): Vote {
  const reader = new Reader(body, "quorate/vote/v1", "vote");
  const vaultId = uuidText(reader.fixed(16));
  const requestId = uuidText(reader.fixed(16));
  const requestDigest = reader.fixed(32);
  const voter = hex(reader.fixed(32));
  const decision = reader.u8();
  if (decision !== 1 && decision !== 2) throw reader.malformed();
  const vote = {
    vaultId,
    requestId,
    requestDigest,
    voter,
    resealedShareSha256: decision === 1 ? reader.fixed(32) : null,
    comment: reader.str(),
    issuedAt: reader.i64(),
  };
  reader.finish();
  text("comment", vote.comment, true);
  return vote;
}

export interface TranscriptManifest {
  vaultId: string;
  transcriptId: string;
  recordingId: string;
  recordingManifestDigest: Uint8Array;
  requestId: string;
  nodeId: string;
  modelSha256: Uint8Array;
  language: string;
  createdAt: number;
  ciphertextLen: number;
  ciphertextSha256: Uint8Array;
  split: SplitKey;
}

function decodeTranscriptManifest(body: Uint8Array): TranscriptManifest {
  const reader = new Reader(body, "quorate/transcript-manifest/v2", "transcript manifest");
  const manifest = {
    vaultId: uuidText(reader.fixed(16)),
    transcriptId: uuidText(reader.fixed(16)),
    recordingId: uuidText(reader.fixed(16)),
    recordingManifestDigest: reader.fixed(32),
    requestId: uuidText(reader.fixed(16)),
    nodeId: uuidText(reader.fixed(16)),
    modelSha256: reader.fixed(32),
    language: reader.str(),
    createdAt: reader.i64(),
    ciphertextLen: reader.u64(),
    ciphertextSha256: reader.fixed(32),
    split: decodeSplit(reader),
  };
  reader.finish();
  text("language", manifest.language);
  return manifest;
}

export interface VaultPolicy {
  vaultId: string;
  sequence: number;
  minThreshold: number;
  issuedAt: number;
}

/** The body of a vault policy, which an admin signs. */
export function encodeVaultPolicy(policy: VaultPolicy): Uint8Array<ArrayBuffer> {
  if (policy.minThreshold < 1) throw new StatementError("the least threshold is at least 1");
  return new Writer("quorate/vault-policy/v1")
    .fixed(uuidBytes(policy.vaultId))
    .u64(policy.sequence)
    .u8(policy.minThreshold)
    .i64(policy.issuedAt)
    .finish();
}

function decodeVaultPolicy(body: Uint8Array): VaultPolicy {
  const reader = new Reader(body, "quorate/vault-policy/v1", "vault policy");
  const policy = {
    vaultId: uuidText(reader.fixed(16)),
    sequence: reader.u64(),
    minThreshold: reader.u8(),
    issuedAt: reader.i64(),
  };
  reader.finish();
  if (policy.minThreshold === 0) throw reader.malformed();
  return policy;
}

export interface SearchKeyCommitment {
  vaultId: string;
  keyCheck: Uint8Array;
  issuedAt: number;
}

export function encodeSearchKeyCommitment(commitment: SearchKeyCommitment): Uint8Array<ArrayBuffer> {
  return new Writer("quorate/search-key-commitment/v1")
    .fixed(uuidBytes(commitment.vaultId))
    .fixed(commitment.keyCheck)
    .i64(commitment.issuedAt)
    .finish();
}

function decodeSearchKeyCommitment(body: Uint8Array): SearchKeyCommitment {
  const reader = new Reader(body, "quorate/search-key-commitment/v1", "search key commitment");
  const commitment = {
    vaultId: uuidText(reader.fixed(16)),
    keyCheck: reader.fixed(32),
    issuedAt: reader.i64(),
  };
  reader.finish();
  return commitment;
}

/**
 * An admin replaces the vault's search key: generation `generation` (from 1) names the key it
 * replaces (`previousCheck`) and the roster head it was made for.
 */
export interface SearchKeyRotation {
  vaultId: string;
  generation: number;
  previousCheck: Uint8Array;
  keyCheck: Uint8Array;
  rosterSequence: number;
  rosterHead: Uint8Array;
  issuedAt: number;
}

const ROTATION_DOMAIN = "quorate/search-key-rotation/v1";

export function encodeSearchKeyRotation(rotation: SearchKeyRotation): Uint8Array<ArrayBuffer> {
  return new Writer(ROTATION_DOMAIN)
    .fixed(uuidBytes(rotation.vaultId))
    .u64(rotation.generation)
    .fixed(rotation.previousCheck)
    .fixed(rotation.keyCheck)
    .u64(rotation.rosterSequence)
    .fixed(rotation.rosterHead)
    .i64(rotation.issuedAt)
    .finish();
}

function decodeSearchKeyRotation(body: Uint8Array): SearchKeyRotation {
  const reader = new Reader(body, ROTATION_DOMAIN, "search key rotation");
  const rotation = {
    vaultId: uuidText(reader.fixed(16)),
    generation: reader.u64(),
    previousCheck: reader.fixed(32),
    keyCheck: reader.fixed(32),
    rosterSequence: reader.u64(),
    rosterHead: reader.fixed(32),
    issuedAt: reader.i64(),
  };
  reader.finish();
  if (rotation.generation === 0) throw new StatementError("a rotation makes generation 1 or later");
  if (equalBytes(rotation.keyCheck, rotation.previousCheck)) throw new StatementError("a rotation must change the key");
  return rotation;
}

export interface ReleaseManifest {
  vaultId: string;
  transcriptId: string;
  recordingId: string;
  transcriptManifestDigest: Uint8Array;
  requestId: string;
  nodeId: string;
  releaseRecipient: Uint8Array;
  members: string[];
  ciphertextLen: number;
  ciphertextSha256: Uint8Array;
  postingsCount: number;
  postingsSha256: Uint8Array;
  createdAt: number;
}

function decodeReleaseManifest(body: Uint8Array): ReleaseManifest {
  const reader = new Reader(body, "quorate/release-manifest/v1", "release manifest");
  const manifest = {
    vaultId: uuidText(reader.fixed(16)),
    transcriptId: uuidText(reader.fixed(16)),
    recordingId: uuidText(reader.fixed(16)),
    transcriptManifestDigest: reader.fixed(32),
    requestId: uuidText(reader.fixed(16)),
    nodeId: uuidText(reader.fixed(16)),
    releaseRecipient: reader.fixed(32),
    members: reader.list((r) => hex(r.fixed(32))),
    ciphertextLen: reader.u64(),
    ciphertextSha256: reader.fixed(32),
    postingsCount: reader.u64(),
    postingsSha256: reader.fixed(32),
    createdAt: reader.i64(),
  };
  reader.finish();
  if (manifest.members.length === 0 || new Set(manifest.members).size !== manifest.members.length) {
    throw reader.malformed();
  }
  return manifest;
}

/** What a retention rule or a legal hold applies to: the vault, or one recording. */
export type Scope = { vault: true } | { recordingId: string };

function decodeScope(reader: Reader): Scope {
  switch (reader.u8()) {
    case 1:
      return { vault: true };
    case 2:
      return { recordingId: uuidText(reader.fixed(16)) };
    default:
      throw reader.malformed();
  }
}

/** How long something is kept: `seconds` after the upload or the release of its minutes. */
export interface Period {
  anchor: "uploaded" | "released";
  seconds: number;
}

/** Shortest period a rule may set (as `quorate_crypto::retention::MIN_PERIOD_SECONDS`). */
const MIN_PERIOD_SECONDS = 86_400;

function decodePeriod(reader: Reader): Period | null {
  const anchor = reader.u8();
  if (anchor === 0) return null;
  if (anchor !== 1 && anchor !== 2) throw reader.malformed();
  const seconds = reader.u64();
  if (seconds < MIN_PERIOD_SECONDS) throw new StatementError("a retention period must be at least one day");
  return { anchor: anchor === 1 ? "uploaded" : "released", seconds };
}

/** An admin's signed retention rule (kind 11): read from the audit log, not made here. */
export interface RetentionRule {
  vaultId: string;
  scope: Scope;
  sequence: number;
  recordings: Period | null;
  minutes: Period | null;
  issuedAt: number;
}

function decodeRetentionRule(body: Uint8Array): RetentionRule {
  const reader = new Reader(body, "quorate/retention-rule/v1", "retention rule");
  const rule = {
    vaultId: uuidText(reader.fixed(16)),
    scope: decodeScope(reader),
    sequence: reader.u64(),
    recordings: decodePeriod(reader),
    minutes: decodePeriod(reader),
    issuedAt: reader.i64(),
  };
  reader.finish();
  return rule;
}

/** A member's signed vote to place or lift a legal hold (kind 12). */
export interface LegalHold {
  vaultId: string;
  holdId: string;
  action: "place" | "lift";
  scope: Scope;
  reason: string;
  rosterHead: Uint8Array;
  issuedAt: number;
}

function decodeLegalHold(body: Uint8Array): LegalHold {
  const reader = new Reader(body, "quorate/legal-hold/v1", "legal hold");
  const vaultId = uuidText(reader.fixed(16));
  const holdId = uuidText(reader.fixed(16));
  const action = reader.u8();
  if (action !== 1 && action !== 2) throw reader.malformed();
  const hold = {
    vaultId,
    holdId,
    action: action === 1 ? ("place" as const) : ("lift" as const),
    scope: decodeScope(reader),
    reason: reader.str(),
    rosterHead: reader.fixed(32),
    issuedAt: reader.i64(),
  };
  reader.finish();
  text("reason", hold.reason);
  return hold;
}

/**
 * One current holder's signed deal of their share to a changed board (kind 10): bound to the
 * sharing it replaces (SHA-256 of its commitments), the roster head and holders it moves to,
 * and the SHA-256 of each sealed sub-share, in holder order.
 */
export interface ReshareDeal {
  vaultId: string;
  subject: Subject;
  /** 16 bytes, chosen by whoever opened the re-share; hex. */
  reshareId: string;
  currentCommitmentsSha256: Uint8Array;
  /** The dealer's index in the current sharing. */
  dealer: number;
  newK: number;
  rosterHead: Uint8Array;
  /** The new holders (fingerprints, hex): new share i is `holders[i − 1]`'s. */
  holders: string[];
  /** The dealer's commitments, 32 bytes per coefficient of the new threshold. */
  commitments: Uint8Array;
  sealedSubsharesSha256: Uint8Array[];
  issuedAt: number;
}

const RESHARE_DEAL_DOMAIN = "quorate/reshare-deal/v1";

export function encodeReshareDeal(deal: ReshareDeal): Uint8Array {
  const writer = new Writer(RESHARE_DEAL_DOMAIN).fixed(uuidBytes(deal.vaultId));
  encodeSubject(writer, deal.subject);
  return writer
    .fixed(fromHex(deal.reshareId))
    .fixed(deal.currentCommitmentsSha256)
    .u8(deal.dealer)
    .u8(deal.newK)
    .fixed(deal.rosterHead)
    .list(deal.holders, (w, holder) => w.fixed(fromHex(holder)))
    .bytes(deal.commitments)
    .list(deal.sealedSubsharesSha256, (w, digest) => w.fixed(digest))
    .i64(deal.issuedAt)
    .finish();
}

function decodeReshareDeal(body: Uint8Array): ReshareDeal {
  const reader = new Reader(body, RESHARE_DEAL_DOMAIN, "reshare deal");
  const deal = {
    vaultId: uuidText(reader.fixed(16)),
    subject: decodeSubject(reader),
    reshareId: hex(reader.fixed(16)),
    currentCommitmentsSha256: reader.fixed(32),
    dealer: reader.u8(),
    newK: reader.u8(),
    rosterHead: reader.fixed(32),
    holders: reader.list((r) => hex(r.fixed(32))),
    commitments: reader.bytes(),
    sealedSubsharesSha256: reader.list((r) => r.fixed(32)),
    issuedAt: reader.i64(),
  };
  reader.finish();
  // The shape quorate-crypto's `ReshareDeal::check` requires.
  const n = deal.holders.length;
  if (
    deal.dealer === 0 ||
    n === 0 ||
    n > 255 ||
    deal.sealedSubsharesSha256.length !== n ||
    new Set(deal.holders).size !== n ||
    deal.newK < 1 ||
    deal.newK > n ||
    deal.commitments.length !== 32 * deal.newK
  ) {
    throw new StatementError("a re-share deal names a dealer, 1 to 255 distinct new holders with a sealed sub-share each, and k commitments");
  }
  return deal;
}

const DECODERS: Decoders = {
  "roster-entry": decodeRosterEntry,
  "node-approval": decodeNodeApproval,
  "recording-manifest": decodeRecordingManifest,
  "unlock-request": decodeUnlockRequest,
  vote: decodeVote,
  "transcript-manifest": decodeTranscriptManifest,
  "vault-policy": decodeVaultPolicy,
  "search-key-commitment": decodeSearchKeyCommitment,
  "release-manifest": decodeReleaseManifest,
  "reshare-deal": decodeReshareDeal,
  "retention-rule": decodeRetentionRule,
  "legal-hold": decodeLegalHold,
  "search-key-rotation": decodeSearchKeyRotation,
};

export { equalBytes };
