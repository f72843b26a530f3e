// What the browser opens and seals with typage, equal to quorate-crypto: a member's sealed
// share (checked against the binding the manifest implies), the share re-sealed to a node
// bound to one request, the vault's search key (checked against an admin's commitment) and
// a released copy's key (checked against its manifest). Opened secrets stay in memory.

import { Decrypter, Encrypter, identityToRecipient } from "age-encryption";
import { bech32 } from "@scure/base";

import {
  type Purpose,
  type ReleaseManifest,
  type SplitKey,
  type Subject,
  type UnlockRequest,
  StatementError,
  encodeSubject,
} from "./statements";
import { verifyShare } from "./vss";
import { Reader, Writer, concat, equalBytes, fromHex, hex, sha256, uuidBytes, uuidText } from "./wire";

/** An X25519 public key as an age recipient, `age1…`. */
export function recipientText(bytes: Uint8Array): string {
  return bech32.encode("age", bech32.toWords(bytes));
}

/** The 32 bytes of an `age1…` recipient (checksum checked). */
export function recipientBytes(text: string): Uint8Array {
  const decoded = bech32.decode(text as `${string}1${string}`);
  if (decoded.prefix !== "age") throw new StatementError(`${text} is not an age recipient`);
  return Uint8Array.from(bech32.fromWords(decoded.words));
}

/** A 32-byte X25519 secret as the identity string typage takes. */
export function secretKeyText(secret: Uint8Array): string {
  return bech32.encode("age-secret-key-", bech32.toWords(secret)).toUpperCase();
}

/** Opens an age file (binary or armoured bytes) with an identity, in memory. */
export async function open(sealed: Uint8Array, identity: string, what: string): Promise<Uint8Array> {
  const decrypter = new Decrypter();
  decrypter.addIdentity(identity);
  try {
    return await decrypter.decrypt(sealed);
  } catch {
    throw new StatementError(`the ${what} does not open with your key (not sealed to you, or damaged)`);
  }
}

/** Seals `plaintext` as a binary age file to one recipient (32 bytes). */
export async function seal(plaintext: Uint8Array, recipient: Uint8Array): Promise<Uint8Array> {
  return sealToAll(plaintext, [recipient]);
}

/** Seals `plaintext` as one binary age file that each of `recipients` (32 bytes) opens. */
export async function sealToAll(plaintext: Uint8Array, recipients: Uint8Array[]): Promise<Uint8Array> {
  const encrypter = new Encrypter();
  for (const recipient of recipients) encrypter.addRecipient(recipientText(recipient));
  return encrypter.encrypt(plaintext);
}

/** What a share is for and whose it is: `B` of the protocol. */
export interface ShareBinding {
  vaultId: string;
  subject: Subject;
  recipient: Uint8Array;
  k: number;
  n: number;
  index: number;
  member: string;
  /** The Feldman commitments of the sharing the share is a point of (k × 32 bytes). */
  commitments: Uint8Array;
}

function encodeBinding(writer: Writer, binding: ShareBinding): void {
  writer.fixed(uuidBytes(binding.vaultId));
  encodeSubject(writer, binding.subject);
  writer
    .fixed(binding.recipient)
    .u8(binding.k)
    .u8(binding.n)
    .u8(binding.index)
    .fixed(fromHex(binding.member))
    .bytes(binding.commitments);
}

/** The plaintext of a sealed share: "quorate/share/v2" ‖ B ‖ share. */
export function encodeSharePlaintext(binding: ShareBinding, share: Uint8Array): Uint8Array<ArrayBuffer> {
  const writer = new Writer("quorate/share/v2");
  encodeBinding(writer, binding);
  return writer.fixed(share).finish();
}

/** The binding of `member`'s share in a split, if they hold one. */
export function bindingFor(
  vaultId: string,
  subject: Subject,
  split: SplitKey,
  member: string,
): ShareBinding | undefined {
  const position = split.holders.indexOf(member);
  if (position < 0) return undefined;
  const { recipient, k, n, commitments } = split;
  return { vaultId, subject, recipient, k, n, index: position + 1, member, commitments };
}

/**
 * What a vote checks a member's share against: the manifest's vault, subject, key and
 * commitment to the secret, and the member. Their place among the manifest's holders does
 * not matter: after a re-share a member holds a share of keys split before they joined, in
 * whichever sharing the re-share made (`checkCurrentSharePlaintext` checks it).
 */
export function voteBinding(vaultId: string, subject: Subject, split: SplitKey, member: string): ShareBinding {
  const { recipient, k, n, commitments } = split;
  return { vaultId, subject, recipient, k, n, index: split.holders.indexOf(member) + 1, member, commitments };
}

/** A sealed share's plaintext ("quorate/share/v2" ‖ B ‖ share), parsed. */
function parseSharePlaintext(plaintext: Uint8Array): { binding: ShareBinding; share: Uint8Array } {
  const reader = new Reader(plaintext, "quorate/share/v2", "sealed share");
  const vaultId = uuidText(reader.fixed(16));
  const kind = ({ 1: "recording", 2: "transcript" } as const)[reader.u8()];
  if (!kind) throw reader.malformed();
  const subject = { kind, id: uuidText(reader.fixed(16)) };
  const recipient = reader.fixed(32);
  const [k, n, index] = [reader.u8(), reader.u8(), reader.u8()];
  if (k < 1 || k > n || index < 1 || index > n) throw reader.malformed();
  const member = hex(reader.fixed(32));
  const commitments = reader.bytes();
  if (commitments.length !== 32 * k) throw reader.malformed();
  const share = reader.fixed(32);
  reader.finish();
  return { binding: { vaultId, subject, recipient, k, n, index, member, commitments }, share };
}

/** Names the first of `fields` that differs, after wiping `share`; else nothing. */
function refuseDiffering(fields: [string, boolean][], share: Uint8Array): void {
  const wrong = fields.find(([, ok]) => !ok);
  if (wrong) {
    share.fill(0);
    throw new StatementError(`your sealed share does not match its manifest: the ${wrong[0]} differs`);
  }
}

/** Refuses (after wiping it) a share that is not a point of its binding's commitments. */
function refuseOffSharing(binding: ShareBinding, share: Uint8Array): void {
  if (!verifyShare(binding.commitments, { index: binding.index, value: share })) {
    share.fill(0);
    throw new StatementError(
      `your sealed share (number ${binding.index}) is not a point of the sharing its manifest commits to: it is damaged or forged; tell an admin`,
    );
  }
}

function sameSubject(a: Subject, b: Subject): boolean {
  return a.kind === b.kind && equalBytes(uuidBytes(a.id), uuidBytes(b.id));
}

/** Whether two IDs or fingerprints, as text, name the same bytes. */
function sameVault(a: string, b: string): boolean {
  return equalBytes(uuidBytes(a), uuidBytes(b));
}

function sameMember(a: string, b: string): boolean {
  return equalBytes(fromHex(a), fromHex(b));
}

/**
 * Parses a sealed share's plaintext, checks every field of its binding against `expected`
 * (naming the first that differs) and the share against the binding's commitments. Returns
 * the share.
 */
export function checkSharePlaintext(plaintext: Uint8Array, expected: ShareBinding): Uint8Array {
  const { binding, share } = parseSharePlaintext(plaintext);
  refuseDiffering(
    [
      ["vault ID", sameVault(binding.vaultId, expected.vaultId)],
      ["subject", sameSubject(binding.subject, expected.subject)],
      ["key recipient", equalBytes(binding.recipient, expected.recipient)],
      ["threshold", binding.k === expected.k && binding.n === expected.n],
      ["share index", binding.index === expected.index],
      ["member", sameMember(binding.member, expected.member)],
      ["commitments", equalBytes(binding.commitments, expected.commitments)],
    ],
    share,
  );
  refuseOffSharing(binding, share);
  return share;
}

/**
 * Parses a sealed share's plaintext in whichever sharing it belongs to now (the manifest's,
 * `manifest`, or one a re-share made): its binding must name the manifest's vault, subject,
 * key and member, its commitments must commit to the manifest's secret (their first point)
 * and the share must be a point of them. Returns the binding it carries and the share.
 */
export function checkCurrentSharePlaintext(
  plaintext: Uint8Array,
  manifest: ShareBinding,
): { binding: ShareBinding; share: Uint8Array } {
  const { binding, share } = parseSharePlaintext(plaintext);
  refuseDiffering(
    [
      ["vault ID", sameVault(binding.vaultId, manifest.vaultId)],
      ["subject", sameSubject(binding.subject, manifest.subject)],
      ["key recipient", equalBytes(binding.recipient, manifest.recipient)],
      ["member", sameMember(binding.member, manifest.member)],
      [
        "commitment to the secret",
        binding.commitments.length === 32 * binding.k &&
          equalBytes(binding.commitments.subarray(0, 32), manifest.commitments.subarray(0, 32)),
      ],
    ],
    share,
  );
  refuseOffSharing(binding, share);
  return { binding, share };
}

/** Opens a member's sealed share and checks its binding. */
export async function openShare(sealed: Uint8Array, identity: string, expected: ShareBinding): Promise<Uint8Array> {
  const plaintext = await open(sealed, identity, "sealed share");
  try {
    return checkSharePlaintext(plaintext, expected);
  } finally {
    plaintext.fill(0);
  }
}

const PURPOSE_CODES: Record<Purpose, number> = { transcribe: 1, "release-transcript": 2 };

/** The plaintext of a share re-sealed to a node: its request binding R, its binding B, the share. */
export function encodeNodeShare(
  request: Pick<UnlockRequest, "requestId" | "nodeId" | "purpose" | "expiresAt">,
  binding: ShareBinding,
  share: Uint8Array,
): Uint8Array {
  const writer = new Writer("quorate/node-share/v2")
    .fixed(uuidBytes(request.requestId))
    .fixed(uuidBytes(request.nodeId))
    .u8(PURPOSE_CODES[request.purpose])
    .i64(request.expiresAt);
  encodeBinding(writer, binding);
  return writer.fixed(share).finish();
}

/**
 * Re-wraps a member's share to a node: opens it (checking its binding against the manifest's,
 * `expected`, as [`checkCurrentSharePlaintext`] does), then seals
 * "quorate/node-share/v2" ‖ request binding ‖ share binding ‖ share to the node's recipient.
 * Returns the re-sealed share and its SHA-256 (which the vote signs).
 */
export async function rewrap(
  sealed: Uint8Array,
  identity: string,
  expected: ShareBinding,
  request: UnlockRequest,
  nodeRecipient: Uint8Array,
): Promise<{ resealed: Uint8Array; digest: Uint8Array }> {
  if ((request.purpose === "transcribe") !== (expected.subject.kind === "recording")) {
    throw new StatementError("the request's purpose does not fit what the share opens");
  }
  // The share may be of the manifest's sharing or of one a re-share made: its own binding
  // goes to the node, which checks it commits to the manifest's secret.
  const opened = await open(sealed, identity, "sealed share");
  let current: { binding: ShareBinding; share: Uint8Array };
  try {
    current = checkCurrentSharePlaintext(opened, expected);
  } finally {
    opened.fill(0);
  }
  const plaintext = encodeNodeShare(request, current.binding, current.share);
  current.share.fill(0);
  const resealed = await seal(plaintext, nodeRecipient);
  plaintext.fill(0);
  return { resealed, digest: await sha256(resealed) };
}

/** What an admin's commitment names of a search key: a hash that does not reveal it. */
export async function searchKeyCheck(key: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return sha256(concat(new TextEncoder().encode("quorate/search-key-check/v1"), key));
}

/** The sealed search key's plaintext (zero it after sealing). */
export function searchKeyPlaintext(vaultId: string, key: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Writer("quorate/search-key/v1").fixed(uuidBytes(vaultId)).fixed(key).finish();
}

/**
 * Opens a sealed search key and checks it against `keyCheck`, the check value an admin signed
 * for its generation (in the commitment or a rotation).
 */
export async function openSearchKey(
  sealed: Uint8Array,
  identity: string,
  vaultId: string,
  keyCheck: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  const plaintext = await open(sealed, identity, "sealed search key");
  const reader = new Reader(plaintext, "quorate/search-key/v1", "sealed search key");
  if (!equalBytes(reader.fixed(16), uuidBytes(vaultId))) throw new StatementError("the search key is another vault's");
  const key = reader.fixed(32) as Uint8Array<ArrayBuffer>;
  reader.finish();
  plaintext.fill(0);
  if (!equalBytes(await searchKeyCheck(key), keyCheck)) {
    key.fill(0);
    throw new StatementError("the search key is not the one an admin committed to: refused");
  }
  return key;
}

/**
 * Opens a released copy's key with the member's identity and checks it against the manifest.
 * Returns it as the identity typage takes, and as bytes (to seal to a member who lacks it;
 * zero them after use).
 */
export async function openReleaseKey(
  sealed: Uint8Array,
  identity: string,
  manifest: ReleaseManifest,
): Promise<{ key: string; secret: Uint8Array }> {
  const plaintext = await open(sealed, identity, "sealed release key");
  const reader = new Reader(plaintext, "quorate/release-key/v1", "sealed release key");
  if (!equalBytes(reader.fixed(16), uuidBytes(manifest.vaultId))) throw new StatementError("the release key is another vault's");
  if (!equalBytes(reader.fixed(16), uuidBytes(manifest.transcriptId))) {
    throw new StatementError("the release key is another transcript's");
  }
  const secret = reader.fixed(32);
  reader.finish();
  plaintext.fill(0);
  const key = secretKeyText(secret);
  if (!equalBytes(recipientBytes(await identityToRecipient(key)), manifest.releaseRecipient)) {
    secret.fill(0);
    throw new StatementError("the release key does not open this copy");
  }
  return { key, secret };
}

/** Where a sealed sub-share of a re-share belongs: sealed inside it and checked on opening. */
export interface SubShareBinding {
  vaultId: string;
  subject: Subject;
  /** The re-share (16 bytes, hex). */
  reshareId: string;
  rosterHead: Uint8Array;
  /** The dealer's index in the current sharing. */
  dealer: number;
  /** SHA-256 of the dealer's commitments, which the sub-share must satisfy. */
  dealtCommitmentsSha256: Uint8Array;
  /** The new holder's share index. */
  index: number;
  /** The new holder (fingerprint, hex). */
  holder: string;
}

const SUBSHARE_DOMAIN = "quorate/reshare-subshare/v1";

/** The plaintext of a sealed sub-share: "quorate/reshare-subshare/v1" ‖ binding ‖ sub-share. */
export function encodeSubsharePlaintext(binding: SubShareBinding, subshare: Uint8Array): Uint8Array<ArrayBuffer> {
  const writer = new Writer(SUBSHARE_DOMAIN).fixed(uuidBytes(binding.vaultId));
  encodeSubject(writer, binding.subject);
  return writer
    .fixed(fromHex(binding.reshareId))
    .fixed(binding.rosterHead)
    .u8(binding.dealer)
    .fixed(binding.dealtCommitmentsSha256)
    .u8(binding.index)
    .fixed(fromHex(binding.holder))
    .fixed(subshare)
    .finish();
}

/**
 * A sealed sub-share's plaintext checked against the binding this device expects, field by
 * field (the first that differs is named, and the plaintext wiped); returns the sub-share.
 */
export function checkSubsharePlaintext(plaintext: Uint8Array, expected: SubShareBinding): Uint8Array {
  const reader = new Reader(plaintext, SUBSHARE_DOMAIN, "sealed sub-share");
  const vaultId = uuidText(reader.fixed(16));
  const kind = ({ 1: "recording", 2: "transcript" } as const)[reader.u8()];
  if (!kind) throw reader.malformed();
  const subjectId = uuidText(reader.fixed(16));
  const reshareId = hex(reader.fixed(16));
  const rosterHead = reader.fixed(32);
  const dealer = reader.u8();
  const dealtCommitmentsSha256 = reader.fixed(32);
  const index = reader.u8();
  const holder = hex(reader.fixed(32));
  const subshare = reader.fixed(32).slice();
  reader.finish();
  plaintext.fill(0);
  const fields: [string, boolean][] = [
    ["vault", vaultId === expected.vaultId],
    ["subject", kind === expected.subject.kind && subjectId === expected.subject.id],
    ["re-share", reshareId === expected.reshareId],
    ["roster head", equalBytes(rosterHead, expected.rosterHead)],
    ["dealer", dealer === expected.dealer],
    ["dealer's commitments", equalBytes(dealtCommitmentsSha256, expected.dealtCommitmentsSha256)],
    ["share index", index === expected.index],
    ["holder", holder === expected.holder],
  ];
  const wrong = fields.find(([, ok]) => !ok);
  if (wrong) {
    subshare.fill(0);
    throw new StatementError(`a sealed sub-share belongs elsewhere: its ${wrong[0]} differs`);
  }
  return subshare;
}
