// Re-sharing in the browser, equal to quorate-crypto's `reshare` module and the CLI's
// `quorate_client::reshare`: a key's current sharing replayed from its signed manifest
// through every completed re-share, a current holder's signed deal of their share to the
// board this page verified, and a new holder's new share taken from k deals, every check
// made here. The page never holds a key: only the member's own share and sub-shares.

import type { MemberIdentity } from "./identity";
import type { Roster } from "./roster";
import {
  type ShareBinding,
  type SubShareBinding,
  checkCurrentSharePlaintext,
  checkSubsharePlaintext,
  encodeSharePlaintext,
  encodeSubsharePlaintext,
  open,
  seal,
} from "./sealed";
import {
  type ReshareDeal,
  type SplitKey,
  type Subject,
  type Verified,
  StatementError,
  encodeReshareDeal,
  sign,
  verify,
} from "./statements";
import { dealShare, receive, redistributedCommitments } from "./vss";
import { equalBytes, hex, sha256 } from "./wire";

/** A sharing of one key's secret: its commitments (k × 32 bytes) and who holds share i. */
export interface Sharing {
  commitments: Uint8Array;
  holders: string[];
}

/** Shares a sharing needs. */
export function sharingK(sharing: Sharing): number {
  return sharing.commitments.length / 32;
}

/** The board a re-share moves a key to: the roster head, the members in order, the new k. */
export interface Board {
  rosterHead: Uint8Array;
  holders: string[];
  newK: number;
}

/**
 * The board of a verified roster for a key first split with `firstK`: the policy's k, or
 * the uploader's if higher (a re-share never lowers what the manifest asked for).
 */
export function boardFor(roster: Roster, policyK: number, firstK: number): Board {
  const holders = roster.active.map((member) => member.fingerprint);
  const newK = Math.max(policyK, firstK);
  if (newK < 1 || newK > holders.length) {
    throw new StatementError(`the key needs ${newK} of ${holders.length} members: an admin adds members or lowers the threshold first`);
  }
  return { rosterHead: roster.head(), holders, newK };
}

/** What a key's deals are checked against. */
interface Expected {
  vaultId: string;
  subject: Subject;
  current: Sharing;
  /** The commitment to the secret in the signed manifest (32 bytes), which no re-share changes. */
  secretCommitment: Uint8Array;
  board: Board;
  /** The signing key of a member of the roster (removed ones too), by fingerprint. */
  keyOf: (member: string) => Uint8Array | undefined;
}

/** The signing key of `member` in `roster`, current or removed. */
function keyIn(roster: Roster): (member: string) => Uint8Array | undefined {
  return (member) =>
    [...roster.active, ...roster.removed].find((entry) => entry.fingerprint === member)?.keys.verifyingKey;
}

function mismatch(field: string): never {
  throw new StatementError(`the re-share's deals do not agree on the ${field}`);
}

/**
 * Checks that `deals` are one re-share of the current sharing onto the expected board:
 * exactly the current k of them, each signed by the current holder at its dealer index, all
 * naming the same re-share, subject, sharing, roster head, holders and new k, each dealing
 * its own share. Returns them parsed with the new commitments.
 */
async function checkDeals(
  expected: Expected,
  signed: Uint8Array[],
): Promise<{ deals: ReshareDeal[]; commitments: Uint8Array }> {
  const { current, board } = expected;
  if (!equalBytes(current.commitments.subarray(0, 32), expected.secretCommitment)) {
    mismatch("secret (the current commitments are not the signed manifest's sharing)");
  }
  if (signed.length !== sharingK(current)) mismatch("number of dealers (exactly the current k)");
  const currentSha256 = await sha256(current.commitments);
  const verified: Verified<ReshareDeal>[] = await Promise.all(signed.map((bytes) => verify("reshare-deal", bytes)));
  const first = verified[0]!.statement;
  for (const { statement: deal, signer } of verified) {
    if (deal.vaultId !== expected.vaultId) mismatch("vault");
    if (deal.subject.kind !== expected.subject.kind || deal.subject.id !== expected.subject.id) mismatch("subject");
    if (!equalBytes(deal.currentCommitmentsSha256, currentSha256)) mismatch("current commitments");
    if (!equalBytes(deal.rosterHead, board.rosterHead)) mismatch("roster head");
    if (deal.holders.join() !== board.holders.join()) mismatch("new holders");
    if (deal.reshareId !== first.reshareId) mismatch("re-share");
    if (deal.newK !== board.newK) mismatch("new threshold");
    // Anyone (the server too) can sign a deal in a holder's name: not the holder's fault.
    const holder = current.holders[deal.dealer - 1];
    const key = holder === undefined ? undefined : expected.keyOf(holder);
    if (key === undefined || !equalBytes(key, signer)) mismatch("signer of a deal (not the current holder at its index)");
  }
  const deals = verified.map(({ statement }) => statement);
  const commitments = redistributedCommitments(
    current.commitments,
    board.newK,
    deals.map((deal): [number, Uint8Array] => [deal.dealer, deal.commitments]),
  );
  return { deals, commitments };
}

/**
 * The current sharing of the key `split` first shared, `history` (the deals of each
 * completed re-share, oldest first) replayed against `roster`: each re-share's deals checked
 * as a new holder checks them, onto a roster head in the verified chain.
 */
export async function currentSharing(
  roster: Roster,
  vaultId: string,
  subject: Subject,
  split: SplitKey,
  history: Uint8Array[][],
): Promise<Sharing> {
  let current: Sharing = { commitments: split.commitments, holders: split.holders };
  for (const [generation, signed] of history.entries()) {
    const first = signed[0] === undefined ? undefined : (await verify("reshare-deal", signed[0])).statement;
    if (first === undefined || !roster.hasEntry(first.rosterHead)) {
      throw new StatementError(`re-share ${generation + 1} of this key names no roster head of the verified chain`);
    }
    const board = { rosterHead: first.rosterHead, holders: first.holders, newK: first.newK };
    const expected = { vaultId, subject, current, secretCommitment: split.commitments.subarray(0, 32), board, keyOf: keyIn(roster) };
    const { commitments } = await checkDeals(expected, signed);
    current = { commitments, holders: first.holders };
  }
  return current;
}

/** The binding of `member`'s share in `sharing`, if they hold one. */
export function bindingIn(vaultId: string, subject: Subject, recipient: Uint8Array, sharing: Sharing, member: string): ShareBinding | undefined {
  const position = sharing.holders.indexOf(member);
  if (position < 0) return undefined;
  const k = sharingK(sharing);
  return { vaultId, subject, recipient, k, n: sharing.holders.length, index: position + 1, member, commitments: sharing.commitments };
}

/** A key as a re-share sees it. */
export interface SharedKey {
  vaultId: string;
  subject: Subject;
  split: SplitKey;
  current: Sharing;
}

/** A signed deal with its sealed sub-shares, as `POST /reshares/deals` takes them. */
export interface NewDeal {
  deal: Uint8Array;
  subshares: { member: string; sealed: Uint8Array }[];
}

/**
 * Deals `holder`'s current share of `key` (sealed in `sealedShare`) to `board`, into the
 * re-share `reshareId` (16 bytes, hex: the open one's, or a fresh one to open). The share is
 * opened and checked against the current sharing first.
 */
export async function deal(
  holder: MemberIdentity,
  key: SharedKey,
  board: Board,
  roster: Roster,
  reshareId: string,
  sealedShare: Uint8Array,
  issuedAt: number,
): Promise<NewDeal> {
  const expected = bindingIn(key.vaultId, key.subject, key.split.recipient, key.current, holder.fingerprintHex);
  if (!expected) throw new StatementError("you hold no share of this key's current sharing");
  const plaintext = await open(sealedShare, holder.ageSecret, "sealed share");
  const { binding, share } = checkCurrentSharePlaintext(plaintext, expected);
  plaintext.fill(0);
  try {
    if (!equalBytes(binding.commitments, key.current.commitments) || binding.index !== expected.index) {
      throw new StatementError("the server sent you a share of another sharing than this key's current one: ask the others, and tell an admin");
    }
    const dealt = dealShare({ index: binding.index, value: share }, key.current.commitments, board.newK, board.holders.length);
    const dealtSha256 = await sha256(dealt.commitments);
    const subshares: NewDeal["subshares"] = [];
    for (const [position, member] of board.holders.entries()) {
      const recipient = roster.active.find((entry) => entry.fingerprint === member)?.keys.recipient;
      if (!recipient) throw new StatementError("a new holder is not on the roster");
      const subshare = dealt.subshares[position]!;
      const subshareBinding: SubShareBinding = {
        vaultId: key.vaultId,
        subject: key.subject,
        reshareId,
        rosterHead: board.rosterHead,
        dealer: dealt.dealer,
        dealtCommitmentsSha256: dealtSha256,
        index: subshare.index,
        holder: member,
      };
      const sealedPlaintext = encodeSubsharePlaintext(subshareBinding, subshare.value);
      subshares.push({ member, sealed: await seal(sealedPlaintext, recipient) });
      sealedPlaintext.fill(0);
      subshare.value.fill(0);
    }
    const statement: ReshareDeal = {
      vaultId: key.vaultId,
      subject: key.subject,
      reshareId,
      currentCommitmentsSha256: await sha256(key.current.commitments),
      dealer: dealt.dealer,
      newK: board.newK,
      rosterHead: board.rosterHead,
      holders: board.holders,
      commitments: dealt.commitments,
      sealedSubsharesSha256: await Promise.all(subshares.map(({ sealed }) => sha256(sealed))),
      issuedAt,
    };
    const signed = await sign("reshare-deal", encodeReshareDeal(statement), holder.signingKey, holder.verifyingKey);
    return { deal: signed, subshares };
  } finally {
    share.fill(0);
  }
}

/** An open re-share as the server hands it to a new holder. */
export interface OpenReshare {
  reshareId: string;
  deals: Uint8Array[];
  /** The sub-shares sealed to this member, in deal order. */
  subshares: Uint8Array[];
}

/** A new share sealed to its holder, with the new commitments, as `POST …/accept` takes it. */
export interface Acceptance {
  sealed: Uint8Array;
  commitments: Uint8Array;
}

/**
 * Takes `holder`'s new share of `key` from the k deals of `open` and the sub-shares sealed
 * to them: the deals checked against the board this page verified, each sealed sub-share
 * against the SHA-256 its dealer signed (a swap is the server's doing), opened against its
 * binding and checked against its dealer's commitments (a bad one names the dealer). The
 * new share is sealed to the holder with a binding naming the new commitments.
 */
export async function accept(holder: MemberIdentity, key: SharedKey, board: Board, roster: Roster, open_: OpenReshare): Promise<Acceptance> {
  const position = board.holders.indexOf(holder.fingerprintHex);
  if (position < 0) throw new StatementError("you are not one of this re-share's new holders");
  const expected: Expected = {
    vaultId: key.vaultId,
    subject: key.subject,
    current: key.current,
    secretCommitment: key.split.commitments.subarray(0, 32),
    board,
    keyOf: keyIn(roster),
  };
  const { deals, commitments } = await checkDeals(expected, open_.deals);
  if (deals[0]!.reshareId !== open_.reshareId) mismatch("re-share");
  if (open_.subshares.length !== deals.length) throw new StatementError("the server sent a sub-share count that does not match the deals");
  const received: [number, Uint8Array, { index: number; value: Uint8Array }][] = [];
  try {
    for (const [i, dealt] of deals.entries()) {
      const sealed = open_.subshares[i]!;
      if (!equalBytes(await sha256(sealed), dealt.sealedSubsharesSha256[position]!)) {
        throw new StatementError(`the sub-share of holder ${dealt.dealer} is not the one they signed: the server altered or swapped it`);
      }
      const plaintext = await open(sealed, holder.ageSecret, "sealed sub-share");
      const value = checkSubsharePlaintext(plaintext, {
        vaultId: key.vaultId,
        subject: key.subject,
        reshareId: dealt.reshareId,
        rosterHead: board.rosterHead,
        dealer: dealt.dealer,
        dealtCommitmentsSha256: await sha256(dealt.commitments),
        index: position + 1,
        holder: holder.fingerprintHex,
      });
      received.push([dealt.dealer, dealt.commitments, { index: position + 1, value }]);
    }
    const { share } = receive(key.current.commitments, board.newK, received);
    const binding: ShareBinding = {
      vaultId: key.vaultId,
      subject: key.subject,
      recipient: key.split.recipient,
      k: board.newK,
      n: board.holders.length,
      index: share.index,
      member: holder.fingerprintHex,
      commitments,
    };
    const plaintext = encodeSharePlaintext(binding, share.value);
    share.value.fill(0);
    const own = roster.active.find((entry) => entry.fingerprint === holder.fingerprintHex)?.keys.recipient;
    if (!own) throw new StatementError("you are not on the roster this page verified");
    const sealed = await seal(plaintext, own);
    plaintext.fill(0);
    return { sealed, commitments };
  } finally {
    for (const [, , subshare] of received) subshare.value.fill(0);
  }
}

/** A fresh re-share ID (16 random bytes, hex). */
export function freshReshareId(): string {
  return hex(crypto.getRandomValues(new Uint8Array(16)));
}
