// The member's device in the browser: signs in, keeps the verified roster pinned, and does
// every check the `quorate` command does before it signs or seals anything. No page code
// here; the pages call these and show what they return or why they refused.

import { ApiError, Client, type Schemas } from "./client";
import type { MemberIdentity } from "./identity";
import { type SharedKey, accept, boardFor, currentSharing, deal, freshReshareId } from "./reshare";
import { Roster } from "./roster";
import { importSearchKey, postings } from "./blind";
import { searchKeyChain, staleSince } from "./searchkeys";
import {
  type BodyOf,
  type Kind,
  type NodeApproval,
  type PublicKeys,
  type RecordingManifest,
  type RecordingMetadata,
  type ReleaseManifest,
  type Role,
  type Subject,
  type TranscriptManifest,
  type UnlockRequest,
  type VaultPolicy,
  StatementError,
  approvalVouchesFor,
  checkActive,
  decodeRecordingMetadata,
  encodeSearchKeyCommitment,
  encodeSearchKeyRotation,
  encodeNodeApproval,
  encodeUnlockRequest,
  encodeVaultPolicy,
  encodeVote,
  fingerprintMatches,
  fingerprintOf,
  holdsShares,
  parseSigned,
  shortFingerprint,
  sign,
  verify,
} from "./statements";
import {
  open,
  openReleaseKey,
  openSearchKey,
  recipientBytes,
  rewrap,
  seal,
  searchKeyCheck,
  searchKeyPlaintext,
  voteBinding,
} from "./sealed";
import {
  Writer,
  concat,
  equalBytes,
  fromBase64,
  fromBase64Url,
  fromHex,
  hex,
  sha256,
  toBase64,
  uuidBytes,
  uuidText,
} from "./wire";

/** What this member's device did for one key of a re-share. */
export type ReshareOutcome = "dealt" | "accepted" | "completed" | "waiting";

/** Where a device keeps what it pinned (the browser's localStorage; a map in tests). */
export interface PinStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

interface Pin {
  genesis: string;
  length: number;
  head: string;
}

export function now(): number {
  return Math.floor(Date.now() / 1000);
}

/** The API's public keys as bytes. */
export function publicKeys(keys: Schemas["PublicKeys"]): PublicKeys {
  return { recipient: recipientBytes(keys.recipient), verifyingKey: fromBase64Url(keys.verifying_key) };
}

/**
 * Refuses unless `typed`, the fingerprint `who` read out over a channel the admin trusts, is
 * the fingerprint of `keys`, the keys about to be signed. The fingerprint the server lists
 * beside them is never used: it is a separate column a database writer keeps honest while
 * swapping the keys. `where` says where `who` finds their fingerprint.
 */
async function checkReadOut(typed: string, keys: PublicKeys, who: string, where: string): Promise<void> {
  if (!typed.trim()) {
    throw new StatementError(`type the fingerprint ${who} reads out to you (${where}), then approve`);
  }
  if (!fingerprintMatches(typed, await fingerprintOf(keys))) {
    throw new StatementError(
      `the fingerprint you typed is not that of the keys the server sent for ${who}, so nothing was signed. ` +
        `Compare it again with ${who} (${where}); if it still differs, the server is not sending their keys: do not approve, and tell whoever runs the server`,
    );
  }
}

/** Signs in to `vaultId`: asks a challenge, signs it with Ed25519, returns the session's device. */
export async function signIn(
  base: string,
  chosenVault: string,
  identity: MemberIdentity,
  pins: PinStore,
): Promise<Device> {
  let vaultId: string;
  try {
    vaultId = uuidText(uuidBytes(chosenVault.trim()));
  } catch {
    throw new StatementError(`${chosenVault} is not a vault ID: it looks like 0d6c2a4e-…, as \`quorate enroll\` printed it`);
  }
  const client = new Client(base);
  const challenge = await client.call("post", "/api/v1/auth/challenge", {
    body: { vault_id: vaultId, fingerprint: identity.fingerprintHex },
  });
  // The sign-in domain, which no statement uses, then the nonce.
  const message = concat(new TextEncoder().encode("quorate/sign-in/v1\0"), fromBase64(challenge.nonce));
  const signature = new Uint8Array(await crypto.subtle.sign("Ed25519", identity.signingKey, message));
  const session = await client.call("post", "/api/v1/auth/session", {
    body: { challenge_id: challenge.challenge_id, signature: toBase64(signature) },
  });
  client.token = session.token;
  const me = await client.call("get", "/api/v1/me");
  // The device works in the vault the person chose, never in one the server names: its pins
  // are kept per vault, so a server answering with another vault's ID would get a first
  // sign-in's trust for a roster (and a search key) of its own making.
  if (me.vault_id.toLowerCase() !== vaultId) {
    throw new StatementError(
      `the server answered for vault ${me.vault_id}, not for the vault you chose (${vaultId}), so this browser refused to go on: check the vault ID and the server's address, and tell whoever runs the server`,
    );
  }
  return new Device(client, identity, vaultId, me, pins);
}

/**
 * An audit entry's hash: SHA-256 over its fields, the SHA-256 of the statement it carries
 * (or zeros) and `previous`, the hash of the entry before it (zeros for entry 0).
 */
export async function auditEntryHash(
  vaultId: string,
  entry: Omit<Schemas["AuditEntryView"], "hash" | "prev_hash">,
  previous: Uint8Array,
): Promise<Uint8Array> {
  const statement = entry.statement ? fromBase64(entry.statement) : null;
  return sha256(
    new Writer("quorate/audit-entry/v1")
      .fixed(uuidBytes(vaultId))
      .u64(entry.seq)
      .i64(entry.time)
      .str(entry.actor)
      .str(entry.action)
      .str(entry.subject)
      .u8(statement ? 1 : 0)
      .fixed(statement ? await sha256(statement) : new Uint8Array(32))
      .fixed(previous)
      .finish(),
  );
}

/** A request with everything it asks verified, as a voter sees it before deciding. */
export interface CheckedRequest {
  view: Schemas["RequestView"];
  request: UnlockRequest;
  digest: Uint8Array;
  requesterName: string;
  manifest: RecordingManifest;
  metadata: RecordingMetadata | null;
  transcript: TranscriptManifest | null;
  node: NodeApproval;
  /** The votes so far, each verified here: signed by its voter, bound to this request. */
  votes: { name: string; approve: boolean; comment: string; problem: string | null }[];
}

/** A transcript's plaintext (JSON inside the sealed and released copies; never sent to the API). */
export interface TranscriptDocument {
  language: string;
  model_sha256: string;
  node_id: string;
  recording_id: string;
  /** In time order; `speaker` names who said it, in a recording of one track per participant. */
  segments: { start: number; end: number; text: string; speaker?: string }[];
}

/** A released transcript, opened and checked. */
export interface OpenedRelease {
  manifest: ReleaseManifest;
  document: TranscriptDocument;
}

/** The vault's search keys as this device opened them (zero them after use). */
export interface SearchKeys {
  generation: number;
  current: Uint8Array<ArrayBuffer>;
  previous: Uint8Array<ArrayBuffer> | null;
  /** The roster entry that removed a holder of the newest key after it was made, or null. */
  staleSince: number | null;
}

export class Device {
  constructor(
    readonly client: Client,
    readonly identity: MemberIdentity,
    /** The vault chosen at sign-in (checked against the server's `/me`), by which pins are kept. */
    readonly vaultId: string,
    readonly me: Schemas["Me"],
    private readonly pins: PinStore,
  ) {}

  get isAdmin(): boolean {
    return this.me.role === "admin";
  }

  /**
   * The roster, replayed from its genesis and checked against what this browser pinned: the
   * genesis must be the pinned one, and the chain must still hold the head seen last. The
   * first sign-in in a browser pins what it sees (compare the admins' fingerprints).
   */
  async roster(): Promise<Roster> {
    const chain = await this.client.call("get", "/api/v1/vaults/{vault}/roster", {
      path: { vault: this.vaultId },
    });
    const roster = await Roster.verifyText(this.vaultId, chain.entries);
    const key = `quorate:pin:${this.vaultId}`;
    const stored = this.pins.getItem(key);
    if (stored) {
      const pin = JSON.parse(stored) as Pin;
      if (roster.genesis() !== pin.genesis) {
        throw new StatementError("the roster does not start at the genesis this browser pinned: refused");
      }
      if (!roster.contains(pin.length - 1, pin.head)) {
        throw new StatementError("the roster no longer holds the entries this browser saw: refused (rolled back?)");
      }
    }
    this.pins.setItem(
      key,
      JSON.stringify({ genesis: roster.genesis(), length: roster.digests.length, head: hex(roster.head()) }),
    );
    return roster;
  }

  /**
   * The vault's newest policy: signed by a current admin of `roster`, and not older than one
   * this browser verified before (a server rolling the threshold back is refused).
   */
  async policy(roster: Roster): Promise<VaultPolicy> {
    const answer = await this.client.call("get", "/api/v1/vaults/{vault}/policy", { path: { vault: this.vaultId } });
    // A policy stays in force when the admin who signed it leaves or is replaced.
    const policy = (await roster.verifyByAdminEver("vault-policy", answer.statement)).statement;
    const key = `quorate:policy:${this.vaultId}`;
    const seen = Number(this.pins.getItem(key) ?? -1);
    if (policy.sequence < seen) {
      throw new StatementError(
        `the server shows policy ${policy.sequence}, but this browser verified policy ${seen} before (a rollback): refused; tell an admin`,
      );
    }
    this.pins.setItem(key, String(policy.sequence));
    return policy;
  }

  /**
   * As `policy`, but `null` for a vault that has none yet. "None" is believed only if this
   * browser never verified a policy of the vault: after one, it is a rollback, and refused.
   */
  async policyIfAny(roster: Roster): Promise<VaultPolicy | null> {
    try {
      return await this.policy(roster);
    } catch (error) {
      if (!(error instanceof ApiError && error.code === "no_policy")) throw error;
      const seen = this.pins.getItem(`quorate:policy:${this.vaultId}`);
      if (seen !== null) {
        throw new StatementError(
          `the server says this vault has no policy, but this browser verified policy ${seen} before (a rollback): refused; tell an admin`,
        );
      }
      return null;
    }
  }

  /**
   * Signs and sets the vault's policy: recordings unlock with at least `threshold` approvals.
   * The sequence follows the newest policy verified here, so the server cannot have an old
   * one replace it.
   */
  async setPolicy(roster: Roster, threshold: number): Promise<VaultPolicy> {
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > 255) {
      throw new StatementError("the threshold is a whole number of approvals, 1 to 255");
    }
    if (roster.member(this.identity.fingerprintHex)?.role !== "admin") throw new StatementError("only an admin of this vault sets the policy");
    const current = await this.policyIfAny(roster);
    const policy = { vaultId: this.vaultId, sequence: current ? current.sequence + 1 : 0, minThreshold: threshold, issuedAt: now() };
    const statement = await sign("vault-policy", encodeVaultPolicy(policy), this.identity.signingKey, this.identity.verifyingKey);
    await this.client.call("put", "/api/v1/vaults/{vault}/policy", {
      path: { vault: this.vaultId },
      body: { statement: toBase64(statement) },
    });
    this.pins.setItem(`quorate:policy:${this.vaultId}`, String(policy.sequence));
    return policy;
  }

  /** Opens sealed recording metadata with this member's key (null when sealed before they joined). */
  async metadata(manifest: RecordingManifest): Promise<RecordingMetadata | null> {
    try {
      return decodeRecordingMetadata(await open(manifest.sealedMetadata, this.identity.ageSecret, "recording metadata"));
    } catch {
      return null;
    }
  }

  /** A recording's manifest: signed by its uploader, a member or recorder of the roster. */
  async recordingManifest(roster: Roster, view: Schemas["RecordingView"]): Promise<RecordingManifest> {
    const verified = await verify("recording-manifest", fromBase64(view.manifest));
    const manifest = verified.statement;
    if (manifest.vaultId !== this.vaultId || manifest.recordingId !== view.recording_id) {
      throw new StatementError("the server sent the manifest of another recording");
    }
    // Its uploader may have left the vault since: a member of the roster at any time.
    if (roster.everHeldBy(verified.signer)?.fingerprint !== manifest.uploader) {
      throw new StatementError("the recording manifest is not signed by its uploader, a member of the roster");
    }
    if (!roster.hasEntry(manifest.rosterHead)) {
      throw new StatementError(
        "the recording's key was split for a roster that is not this vault's chain: the server showed the uploader a forked roster",
      );
    }
    return manifest;
  }

  /** A node's newest approval: signed by an admin, naming this node, current. */
  async approvedNode(roster: Roster, nodeId: string): Promise<NodeApproval> {
    const view = await this.client.call("get", "/api/v1/vaults/{vault}/nodes/{node}", {
      path: { vault: this.vaultId, node: nodeId },
    });
    if (!view.approval) throw new StatementError(`node ${nodeId} has no approval yet: an admin approves it first`);
    const [verified] = await roster.verifyByAdmin("node-approval", view.approval);
    if (verified.statement.nodeId !== nodeId) throw new StatementError("the server sent another node's approval");
    checkActive(verified.statement, now());
    return verified.statement;
  }

  /**
   * Refuses a statement node `nodeId` signed at `madeAt` unless `signer` is the key of its
   * newest approval by an admin, and that approval still vouches for it (not revoked; made
   * before it lapsed).
   */
  private async checkNodeSigner(roster: Roster, nodeId: string, signer: Uint8Array, madeAt: number): Promise<void> {
    const view = await this.client.call("get", "/api/v1/vaults/{vault}/nodes/{node}", {
      path: { vault: this.vaultId, node: nodeId },
    });
    if (!view.approval) throw new StatementError(`node ${nodeId} was never approved`);
    const [approval] = await roster.verifyByAdmin("node-approval", view.approval);
    if (approval.statement.nodeId !== nodeId || !equalBytes(approval.statement.node.verifyingKey, signer)) {
      throw new StatementError(`a statement is not signed by the key an admin approved for node ${nodeId}`);
    }
    approvalVouchesFor(approval.statement, madeAt);
  }

  /**
   * A node's statement about a transcript (its manifest, or a release manifest): signed by
   * the node it names, with the key an admin approved for it, and about `view`'s transcript.
   */
  private async nodeStatement<K extends "transcript-manifest" | "release-manifest">(
    roster: Roster,
    kind: K,
    view: { manifest: string; transcript_id: string },
  ): Promise<BodyOf<K>> {
    const verified = await verify(kind, fromBase64(view.manifest));
    const manifest = verified.statement;
    if (manifest.vaultId !== this.vaultId || manifest.transcriptId !== view.transcript_id) {
      throw new StatementError(`the server sent the ${kind} of another transcript`);
    }
    await this.checkNodeSigner(roster, manifest.nodeId, verified.signer, manifest.createdAt);
    return manifest;
  }

  /** A transcript's manifest: signed by the node that made it, as an admin approved it. */
  async transcriptManifest(roster: Roster, view: Schemas["TranscriptView"]): Promise<TranscriptManifest> {
    return this.nodeStatement(roster, "transcript-manifest", view);
  }

  /** This member's sealed share of `subject`'s key, as the server keeps it. */
  private async sealedShare(subject: Subject): Promise<Uint8Array> {
    const share =
      subject.kind === "transcript"
        ? await this.client.call("get", "/api/v1/vaults/{vault}/transcripts/{transcript}/share", {
            path: { vault: this.vaultId, transcript: subject.id },
          })
        : await this.client.call("get", "/api/v1/vaults/{vault}/recordings/{recording}/share", {
            path: { vault: this.vaultId, recording: subject.id },
          });
    return fromBase64(share.sealed);
  }

  /** The keys whose shares do not follow the roster, or that a re-share is moving. */
  async reshareWork(): Promise<Schemas["ReshareItem"][]> {
    const work = await this.client.call("get", "/api/v1/vaults/{vault}/reshares", { path: { vault: this.vaultId } });
    return work.items;
  }

  /**
   * This member's part in the re-share of one key: deal their share (as a current holder
   * who has not dealt), or take their new share (as a new holder once the deals are in).
   * Everything is checked here first: the key's manifest, its replayed sharing, the board
   * this page verified (roster head, members, the policy's k or the uploader's if higher).
   */
  async reshareStep(roster: Roster, policyK: number, item: Schemas["ReshareItem"]): Promise<ReshareOutcome> {
    const me = this.identity.fingerprintHex;
    const subject = { kind: item.kind, id: item.subject_id } as const;
    const split =
      item.kind === "recording"
        ? (await this.recordingManifest(roster, { manifest: item.manifest, recording_id: item.subject_id } as Schemas["RecordingView"])).split
        : (await this.transcriptManifest(roster, { manifest: item.manifest, transcript_id: item.subject_id } as Schemas["TranscriptView"])).split;
    const current = await currentSharing(roster, this.vaultId, subject, split, item.history.map((deals) => deals.map(fromBase64)));
    const key: SharedKey = { vaultId: this.vaultId, subject, split, current };
    const board = boardFor(roster, policyK, split.k);
    const open = item.open ?? null;
    const index = current.holders.indexOf(me) + 1;
    const dealt = open === null ? [] : await Promise.all(open.deals.map(async (bytes) => (await verify("reshare-deal", fromBase64(bytes))).statement));
    if (index > 0 && (open === null || (dealt.length < open.needed && !dealt.some((deal) => deal.dealer === index)))) {
      const reshareId = open?.reshare_id ?? freshReshareId();
      if (dealt.some((deal) => deal.rosterHead.join() !== board.rosterHead.join() || deal.holders.join() !== board.holders.join() || deal.newK !== board.newK)) {
        throw new StatementError("the open re-share moves the key to another board than the roster and policy this page verified");
      }
      const made = await deal(this.identity, key, board, roster, reshareId, await this.sealedShare(subject), now());
      await this.client.call("post", "/api/v1/vaults/{vault}/reshares/deals", {
        path: { vault: this.vaultId },
        body: { deal: toBase64(made.deal), subshares: made.subshares.map(({ member, sealed }) => ({ member, sealed: toBase64(sealed) })) },
      });
      return "dealt";
    }
    if (open !== null && board.holders.includes(me) && open.deals.length >= open.needed && !open.accepted.includes(me)) {
      const taken = await accept(this.identity, key, board, roster, {
        reshareId: open.reshare_id,
        deals: open.deals.map(fromBase64),
        subshares: open.subshares.map(fromBase64),
      });
      const state = await this.client.call("post", "/api/v1/vaults/{vault}/reshares/{reshare}/accept", {
        path: { vault: this.vaultId, reshare: open.reshare_id },
        body: { sealed: toBase64(taken.sealed), commitments: toBase64(taken.commitments) },
      });
      return state.completed ? "completed" : "accepted";
    }
    return "waiting";
  }

  /** Verifies a request and everything it names: the checks made before any vote. */
  async checkRequest(roster: Roster, view: Schemas["RequestView"]): Promise<CheckedRequest> {
    const [verified, requester] = await roster.verifyByMember("unlock-request", view.statement);
    const request = verified.statement;
    if (request.requester !== requester.fingerprint || request.requestId !== view.request_id) {
      throw new StatementError("the request's signer, requester or ID do not match");
    }
    let recordingId = request.subject.id;
    let transcript: TranscriptManifest | null = null;
    if (request.subject.kind === "transcript") {
      const transcripts = await this.client.call("get", "/api/v1/vaults/{vault}/transcripts", {
        path: { vault: this.vaultId },
      });
      const found = transcripts.find((item) => item.transcript_id === request.subject.id);
      if (!found) throw new StatementError("the request names a transcript the server does not list");
      transcript = await this.transcriptManifest(roster, found);
      recordingId = transcript.recordingId;
    }
    const recording = await this.client.call("get", "/api/v1/vaults/{vault}/recordings/{recording}", {
      path: { vault: this.vaultId, recording: recordingId },
    });
    const manifest = await this.recordingManifest(roster, recording);
    const node = await this.approvedNode(roster, request.nodeId);
    const votes = await Promise.all(
      view.votes.map(async (item) => {
        const name = roster.member(item.voter)?.name ?? `a former member (${shortFingerprint(item.voter)})`;
        try {
          const [vote, voter] = await roster.verifyByMember("vote", item.statement);
          if (voter.fingerprint !== vote.statement.voter || vote.statement.voter !== item.voter) {
            throw new StatementError("the vote is not signed by its voter");
          }
          if (!equalBytes(vote.statement.requestDigest, verified.digest)) {
            throw new StatementError("the vote was made for another request");
          }
          return { name, approve: vote.statement.resealedShareSha256 !== null, comment: vote.statement.comment, problem: null };
        } catch (error) {
          return { name, approve: false, comment: "", problem: (error as Error).message };
        }
      }),
    );
    return {
      votes,
      view,
      request,
      digest: verified.digest,
      requesterName: requester.name,
      manifest,
      metadata: await this.metadata(manifest),
      transcript,
      node,
    };
  }

  /**
   * Votes on a checked request. To approve, opens this member's own share (checking its
   * binding), re-seals it to the approved node bound to this request, and signs the vote
   * with the re-sealed share's SHA-256 in it. Returns the request as it now stands.
   */
  async vote(checked: CheckedRequest, approve: boolean, comment: string): Promise<Schemas["RequestView"]> {
    const me = this.identity.fingerprintHex;
    let resealed: Uint8Array | null = null;
    let digest: Uint8Array | null = null;
    if (approve) {
      const split = checked.transcript ?? checked.manifest;
      const subject = checked.transcript
        ? ({ kind: "transcript", id: checked.transcript.transcriptId } as const)
        : ({ kind: "recording", id: checked.manifest.recordingId } as const);
      const binding = voteBinding(this.vaultId, subject, split.split, me);
      ({ resealed, digest } = await rewrap(
        await this.sealedShare(subject),
        this.identity.ageSecret,
        binding,
        checked.request,
        checked.node.node.recipient,
      ));
    }
    const body = encodeVote({
      vaultId: this.vaultId,
      requestId: checked.request.requestId,
      requestDigest: checked.digest,
      voter: me,
      resealedShareSha256: digest,
      comment,
      issuedAt: now(),
    });
    const vote = await sign("vote", body, this.identity.signingKey, this.identity.verifyingKey);
    return this.client.call("post", "/api/v1/vaults/{vault}/requests/{request}/votes", {
      path: { vault: this.vaultId, request: checked.request.requestId },
      body: { vote: toBase64(vote), resealed_share: resealed ? toBase64(resealed) : null },
    });
  }

  /** Asks for a recording to be transcribed (in `language`, or in the one the node detects
   * when null), or its transcript released, on one node. */
  async createRequest(
    roster: Roster,
    subject: { kind: "recording" | "transcript"; id: string },
    nodeId: string,
    reason: string,
    days: number,
    language: string | null = null,
  ): Promise<Schemas["RequestView"]> {
    await this.approvedNode(roster, nodeId);
    const created = now();
    const body = encodeUnlockRequest({
      vaultId: this.vaultId,
      requestId: crypto.randomUUID(),
      subject,
      purpose: subject.kind === "recording" ? "transcribe" : "release-transcript",
      nodeId,
      requester: this.identity.fingerprintHex,
      reason,
      createdAt: created,
      expiresAt: created + Math.round(days * 86_400),
      language,
    });
    const signed = await sign("unlock-request", body, this.identity.signingKey, this.identity.verifyingKey);
    return this.client.call("post", "/api/v1/vaults/{vault}/requests", {
      path: { vault: this.vaultId },
      body: { request: toBase64(signed) },
    });
  }

  /**
   * An admin adds a pending member to the roster, then shares keys with them. `typed` is the
   * fingerprint the member read out: it must be that of the very keys signed here.
   */
  async approveMember(member: Schemas["MemberView"], role: Role, typed: string): Promise<number> {
    const keys = publicKeys(member.keys);
    await checkReadOut(typed, keys, member.name, "`quorate enroll` printed it on their device");
    if (!["admin", "member", "recorder"].includes(role)) {
      throw new Error(`Choose ${member.name}'s role: member or admin for a person, recorder for a recording machine`);
    }
    const roster = await this.roster();
    const entry = await roster.signChange(
      this.identity.signingKey,
      this.identity.verifyingKey,
      "add",
      keys,
      member.name,
      role,
      now(),
    );
    await this.client.call("post", "/api/v1/vaults/{vault}/roster", {
      path: { vault: this.vaultId },
      body: { entry: toBase64(entry) },
    });
    // Nothing is sealed to a recorder. Every released key is sealed to a new member by
    // this admin, replacing any a member sealed first (the server keeps an admin's grant).
    if (!holdsShares(role)) return 0;
    return this.shareKeys(await this.roster(), await fingerprintOf(keys));
  }

  /**
   * An admin removes a member or a recorder from the roster. Returns their role as the
   * verified roster has it (a member held the search key; a recorder held nothing).
   */
  async removeMember(member: Schemas["MemberView"]): Promise<Role> {
    const roster = await this.roster();
    const current = roster.member(member.fingerprint) ?? roster.recorder(member.fingerprint);
    if (!current) throw new StatementError(`${member.name} is not on the verified roster`);
    const entry = await roster.signChange(
      this.identity.signingKey,
      this.identity.verifyingKey,
      "remove",
      current.keys,
      current.name,
      current.role,
      now(),
    );
    await this.client.call("post", "/api/v1/vaults/{vault}/roster", {
      path: { vault: this.vaultId },
      body: { entry: toBase64(entry) },
    });
    return current.role;
  }

  /**
   * After `fingerprint`'s removal, which held the search key: replaces the key and
   * re-indexes the released minutes under the new one. Refuses a roster that still holds
   * them (a server answering with the roster from before would have the new key sealed to
   * the member who just left).
   */
  async rotateAfterRemoval(
    fingerprint: string,
    progress: (done: number, total: number) => void,
  ): Promise<{ reindexed: number; unreadable: number }> {
    const roster = await this.roster();
    if (roster.member(fingerprint)) {
      throw new StatementError("the server shows a roster that still holds the member just removed: nothing was rotated");
    }
    await this.rotateSearchKey(roster);
    return this.reindex(roster, progress);
  }

  /**
   * An admin approves (or renews) a node for a model, signing the approval, then shares the
   * search key with it. `typed` is the node's fingerprint as `quorate-node status` shows it on
   * the node: it must be that of the very keys signed here.
   */
  async approveNode(
    node: Schemas["NodeView"],
    typed: string,
    modelSha256: string,
    hardware: string,
    days: number,
  ): Promise<Schemas["NodeView"]> {
    if (!/^[0-9a-f]{64}$/i.test(modelSha256)) {
      throw new StatementError("the model's SHA-256 is 64 hex digits: `quorate-node models import` prints it");
    }
    const keys = publicKeys(node.keys);
    await checkReadOut(typed, keys, `node ${node.name}`, "`quorate-node status` prints it on the node");
    const roster = await this.roster();
    const view = await this.signNodeApproval(node.node_id, keys, fromHex(modelSha256.toLowerCase()), hardware, days, false);
    await this.shareKeys(roster);
    return view;
  }

  /**
   * An admin revokes a node. The revocation names the keys and model of the approval this
   * browser verifies, not whatever keys the server lists for the node now.
   */
  async revokeNode(node: Schemas["NodeView"]): Promise<Schemas["NodeView"]> {
    const roster = await this.roster();
    if (!node.approval) throw new StatementError(`${node.name} was never approved, so there is nothing to revoke`);
    const [approval] = await roster.verifyByAdmin("node-approval", node.approval);
    if (approval.statement.nodeId !== node.node_id) throw new StatementError("the server sent another node's approval");
    return this.signNodeApproval(node.node_id, approval.statement.node, approval.statement.modelSha256, "revoked", 1, true);
  }

  private async signNodeApproval(
    nodeId: string,
    keys: PublicKeys,
    modelSha256: Uint8Array,
    hardware: string,
    days: number,
    revoked: boolean,
  ): Promise<Schemas["NodeView"]> {
    const issued = now();
    const body = encodeNodeApproval({
      vaultId: this.vaultId,
      nodeId,
      node: keys,
      hardware,
      modelSha256,
      attestation: new Uint8Array(),
      issuedAt: issued,
      expiresAt: issued + Math.round(days * 86_400),
      revoked,
    });
    const approval = await sign("node-approval", body, this.identity.signingKey, this.identity.verifyingKey);
    return this.client.call("post", "/api/v1/vaults/{vault}/nodes/{node}/approval", {
      path: { vault: this.vaultId, node: nodeId },
      body: { approval: toBase64(approval) },
    });
  }

  /**
   * The vault's search keys, each opened and checked against the chain of commitment and
   * rotations admins signed (null while there is none, or the newest is not sealed to this
   * member yet): the newest, and the one before while released minutes are still indexed
   * under it.
   */
  async searchKeys(roster: Roster, view?: Schemas["SearchKeyView"]): Promise<SearchKeys | null> {
    view ??= await this.client.call("get", "/api/v1/vaults/{vault}/search-key", { path: { vault: this.vaultId } });
    if (!view.commitment || !view.sealed) return null;
    const chain = await searchKeyChain(roster, view.commitment, view.rotations ?? []);
    const generation = chain.checks.length - 1;
    const current = await openSearchKey(fromBase64(view.sealed), this.identity.ageSecret, this.vaultId, chain.checks[generation]!);
    const previous =
      view.previous_sealed && generation > 0
        ? await openSearchKey(fromBase64(view.previous_sealed), this.identity.ageSecret, this.vaultId, chain.checks[generation - 1]!)
        : null;
    return { generation, current, previous, staleSince: staleSince(roster, chain) };
  }

  /**
   * Makes the vault's search key, as the first admin's device does once at enrolment: a
   * random 32-byte key, a commitment to it signed here, and the key sealed to this member
   * only (they share it as members are approved). Refuses if the vault has a key already.
   */
  async makeSearchKey(): Promise<void> {
    const view = await this.client.call("get", "/api/v1/vaults/{vault}/search-key", { path: { vault: this.vaultId } });
    if (view.commitment) throw new StatementError("this vault has a search key already: nothing was made");
    const key = crypto.getRandomValues(new Uint8Array(32));
    const plaintext = searchKeyPlaintext(this.vaultId, key);
    try {
      const body = encodeSearchKeyCommitment({ vaultId: this.vaultId, keyCheck: await searchKeyCheck(key), issuedAt: now() });
      const commitment = await sign("search-key-commitment", body, this.identity.signingKey, this.identity.verifyingKey);
      const sealed = await seal(plaintext, recipientBytes(this.identity.recipient));
      await this.client.call("post", "/api/v1/vaults/{vault}/search-key", {
        path: { vault: this.vaultId },
        body: { commitment: toBase64(commitment), grants: [{ holder: this.identity.fingerprintHex, sealed: toBase64(sealed) }] },
      });
    } finally {
      plaintext.fill(0);
      key.fill(0);
    }
  }

  /** Who holds the search key: every current member, and every node an admin approves now. */
  private async searchKeyHolders(roster: Roster): Promise<[string, Uint8Array][]> {
    const holders: [string, Uint8Array][] = roster.active.map((member) => [member.fingerprint, member.keys.recipient]);
    const nodes = await this.client.call("get", "/api/v1/vaults/{vault}/nodes", { path: { vault: this.vaultId } });
    for (const node of nodes) {
      if (node.status !== "approved" || !node.approval) continue;
      const [approval] = await roster.verifyByAdmin("node-approval", node.approval);
      // Only to a node an admin approves now: not revoked, not lapsed.
      const current = !approval.statement.revoked && approval.statement.expiresAt > now();
      if (approval.statement.nodeId === node.node_id && current) {
        holders.push([node.node_id, approval.statement.node.recipient]);
      }
    }
    return holders;
  }

  /**
   * Replaces the vault's search key (an admin, after a member left who held it): a fresh key,
   * a rotation signed here for the verified roster's head and naming the current key, and the
   * new key sealed to every current member and approved node. Returns the new generation.
   */
  async rotateSearchKey(roster: Roster): Promise<number> {
    const view = await this.client.call("get", "/api/v1/vaults/{vault}/search-key", { path: { vault: this.vaultId } });
    if (!view.commitment) throw new StatementError("the vault has no search key to rotate yet");
    const chain = await searchKeyChain(roster, view.commitment, view.rotations ?? []);
    const generation = chain.checks.length;
    const key = crypto.getRandomValues(new Uint8Array(32));
    const plaintext = searchKeyPlaintext(this.vaultId, key);
    try {
      const body = encodeSearchKeyRotation({
        vaultId: this.vaultId,
        generation,
        previousCheck: chain.checks[generation - 1]!,
        keyCheck: await searchKeyCheck(key),
        rosterSequence: roster.digests.length - 1,
        rosterHead: roster.head(),
        issuedAt: now(),
      });
      const rotation = await sign("search-key-rotation", body, this.identity.signingKey, this.identity.verifyingKey);
      const grants = [];
      for (const [holder, recipient] of await this.searchKeyHolders(roster)) {
        grants.push({ holder, sealed: toBase64(await seal(plaintext, recipient)) });
      }
      await this.client.call("post", "/api/v1/vaults/{vault}/search-key/rotations", {
        path: { vault: this.vaultId },
        body: { rotation: toBase64(rotation), grants },
      });
    } finally {
      plaintext.fill(0);
      key.fill(0);
    }
    return generation;
  }

  /**
   * Re-indexes the released minutes still under an older search key (any member who can
   * read them): each copy is opened here as for reading, its postings computed under the
   * newest key and sent in place of the old. Refuses a newest key a removed member holds.
   */
  async reindex(roster: Roster, progress: (done: number, total: number) => void): Promise<{ reindexed: number; unreadable: number }> {
    const keys = await this.searchKeys(roster);
    if (!keys) throw new StatementError("the vault's newest search key is not sealed to you yet: an admin's device shares it");
    keys.previous?.fill(0);
    if (keys.staleSince !== null) {
      keys.current.fill(0);
      throw new StatementError(
        `the vault's newest search key was made before roster entry ${keys.staleSince} removed a member who holds it: an admin rotates it first`,
      );
    }
    const key = await importSearchKey(keys.current);
    keys.current.fill(0);
    const released = await this.client.call("get", "/api/v1/vaults/{vault}/released", { path: { vault: this.vaultId } });
    const behind = released.filter((view) => (view.key_generation ?? 0) < keys.generation);
    let reindexed = 0;
    let unreadable = 0;
    for (const [done, view] of behind.entries()) {
      if (view.members.includes(this.identity.fingerprintHex)) {
        const opened = await this.openReleased(roster, view);
        const packed = await postings(key, opened.document.segments.map((segment) => segment.text));
        try {
          await this.client.call("put", "/api/v1/vaults/{vault}/released/{transcript}/index", {
            path: { vault: this.vaultId, transcript: view.transcript_id },
            body: { generation: keys.generation, postings: toBase64(packed) },
          });
          reindexed += 1;
        } catch (error) {
          // Another member's device re-indexed it meanwhile.
          if (!(error instanceof ApiError && error.code === "already_indexed")) throw error;
        }
      } else {
        unreadable += 1;
      }
      progress(done + 1, behind.length);
    }
    return { reindexed, unreadable };
  }

  /**
   * Shares what this device can open with those who lack it: the search key with current
   * members and approved nodes (admins), and every released copy's key with current
   * members. With `renewFor` (an admin), every released key is sealed to that member again
   * even when they hold one: another member may have sealed them a bad key first. Returns
   * how many keys were sealed.
   */
  async shareKeys(roster: Roster, renewFor?: string): Promise<number> {
    let shared = 0;
    if (this.isAdmin) {
      const view = await this.client.call("get", "/api/v1/vaults/{vault}/search-key", {
        path: { vault: this.vaultId },
      });
      const keys = await this.searchKeys(roster, view).catch(() => null);
      if (keys) {
        const key = keys.current;
        keys.previous?.fill(0);
        const holders = await this.searchKeyHolders(roster);
        const plaintext = searchKeyPlaintext(this.vaultId, key);
        const grants = [];
        for (const [holder, recipient] of holders) {
          if (view.holders.includes(holder)) continue;
          grants.push({ holder, sealed: toBase64(await seal(plaintext, recipient)) });
        }
        plaintext.fill(0);
        key.fill(0);
        if (grants.length) {
          await this.client.call("post", "/api/v1/vaults/{vault}/search-key", {
            path: { vault: this.vaultId },
            body: { commitment: null, generation: keys.generation, grants },
          });
          shared += grants.length;
        }
      }
    }
    const released = await this.client.call("get", "/api/v1/vaults/{vault}/released", { path: { vault: this.vaultId } });
    for (const view of released) {
      if (!view.members.includes(this.identity.fingerprintHex)) continue;
      const missing = roster.active.filter(
        (member) =>
          !view.members.includes(member.fingerprint) || (this.isAdmin && member.fingerprint === renewFor),
      );
      if (!missing.length) continue;
      const manifest = await this.releaseManifest(roster, view);
      const { secret } = await openReleaseKey(await this.releaseGrant(manifest), this.identity.ageSecret, manifest);
      const grants = [];
      for (const member of missing) {
        const plaintext = new Writer("quorate/release-key/v1")
          .fixed(uuidBytes(this.vaultId))
          .fixed(uuidBytes(manifest.transcriptId))
          .fixed(secret)
          .finish();
        grants.push({ holder: member.fingerprint, sealed: toBase64(await seal(plaintext, member.keys.recipient)) });
        plaintext.fill(0);
      }
      secret.fill(0);
      await this.client.call("post", "/api/v1/vaults/{vault}/released/{transcript}/grants", {
        path: { vault: this.vaultId, transcript: manifest.transcriptId },
        body: grants,
      });
      shared += grants.length;
    }
    return shared;
  }

  /** A release manifest: signed by the node it names, as an admin approved it. */
  async releaseManifest(roster: Roster, view: Schemas["ReleasedView"]): Promise<ReleaseManifest> {
    return this.nodeStatement(roster, "release-manifest", view);
  }

  private async releaseGrant(manifest: ReleaseManifest): Promise<Uint8Array> {
    const grant = await this.client.call("get", "/api/v1/vaults/{vault}/released/{transcript}/grant", {
      path: { vault: this.vaultId, transcript: manifest.transcriptId },
    });
    return fromBase64(grant.sealed);
  }

  /** Downloads a released copy, checks it against its verified manifest and opens it in memory. */
  async openReleased(roster: Roster, view: Schemas["ReleasedView"]): Promise<OpenedRelease> {
    const manifest = await this.releaseManifest(roster, view);
    const { key, secret } = await openReleaseKey(await this.releaseGrant(manifest), this.identity.ageSecret, manifest);
    secret.fill(0);
    const copy = await this.client.bytes("/api/v1/vaults/{vault}/released/{transcript}/ciphertext", {
      vault: this.vaultId,
      transcript: manifest.transcriptId,
    });
    if (copy.length !== manifest.ciphertextLen || !equalBytes(await sha256(copy), manifest.ciphertextSha256)) {
      throw new StatementError("the released copy differs from the one its node signed");
    }
    const plaintext = await open(copy, key, "released copy");
    const document = JSON.parse(new TextDecoder().decode(plaintext)) as TranscriptDocument;
    plaintext.fill(0);
    if (document.recording_id !== manifest.recordingId) {
      throw new StatementError("the released transcript names another recording than its manifest");
    }
    return { manifest, document };
  }

  /**
   * Verifies the whole audit log in the browser: each entry's hash and the chain from entry 0,
   * who signed every statement an entry carries (against the verified roster), and that the
   * log still holds the head this browser verified last (the server could otherwise delete an
   * entry and re-hash everything after it). Then pins the new head. Returns the entries, the
   * head hash, and the roster the statements were checked against.
   */
  async verifyAudit(
    progress: (checked: number) => void,
  ): Promise<{ entries: Schemas["AuditEntryView"][]; head: string; roster: Roster }> {
    const all: Schemas["AuditEntryView"][] = [];
    let previous: Uint8Array = new Uint8Array(32);
    let after: number | undefined;
    for (;;) {
      const page = await this.client.call("get", "/api/v1/vaults/{vault}/audit", {
        path: { vault: this.vaultId },
        query: { after, limit: 1000 },
      });
      for (const entry of page) {
        // Entry i has sequence number i: the chain starts at 0 with no predecessor.
        if (entry.seq !== all.length || hex(previous) !== entry.prev_hash) {
          throw new StatementError(`audit entry ${entry.seq} does not follow the entry before it (dropped, reordered or inserted entries)`);
        }
        const hash = await auditEntryHash(this.vaultId, entry, previous);
        if (hex(hash) !== entry.hash) throw new StatementError(`audit entry ${entry.seq} was altered: its hash does not match its contents`);
        previous = hash;
        all.push(entry);
      }
      progress(all.length);
      if (page.length < 1000) break;
      after = all[all.length - 1]?.seq;
    }
    // Fetched after the log, so every roster entry the log carries is already on it.
    const roster = await this.roster();
    const carried = new CarriedStatements(roster);
    for (const entry of all) {
      if (!entry.statement) continue;
      try {
        await carried.check(fromBase64(entry.statement));
      } catch (error) {
        throw new StatementError(`audit entry ${entry.seq} carries a statement that is refused: ${(error as Error).message}`);
      }
    }
    const key = `quorate:audit:${this.vaultId}`;
    const stored = this.pins.getItem(key);
    if (stored) {
      const pin = JSON.parse(stored) as { seq: number; hash: string };
      if (all[pin.seq]?.hash !== pin.hash) {
        throw new StatementError(
          `the audit log no longer holds entry ${pin.seq} as this browser verified it before: it was rewritten or cut, so it is refused. ` +
            "Tell an admin, and compare with `quorate audit verify` on another device",
        );
      }
    }
    const head = hex(previous);
    const last = all[all.length - 1];
    if (last) this.pins.setItem(key, JSON.stringify({ seq: last.seq, hash: head }));
    return { entries: all, head, roster };
  }
}

/**
 * Who may have signed each statement the audit log carries, checked in log order: roster
 * entries must be the verified roster's own; admin statements an admin's; requests, votes
 * and recording manifests those of the member they name; a node's statements the key an
 * admin approved for that node earlier in the log. Members are anyone on the roster at any
 * time (someone removed since signed legitimately before), and a node's later revocation
 * does not un-sign what it made: a lying server's insertion is what this catches, while the
 * pages refuse revoked nodes' work where it is used.
 */
class CarriedStatements {
  /** The keys admins approved per node, as the log reached them. */
  private readonly nodeKeys = new Map<string, Uint8Array[]>();

  constructor(private readonly roster: Roster) {}

  async check(bytes: Uint8Array): Promise<void> {
    const kind = parseSigned(bytes).kind;
    const { statement, signer, digest } = await verify(kind, bytes);
    // The kind was just checked: the body is that kind's.
    const body = <K extends Kind>(_: K) => statement as BodyOf<K>;
    if (statement.vaultId !== this.roster.vaultId) throw new StatementError(`the ${kind} belongs to another vault`);
    // Only a manifest may be a recorder's: requests and votes are members' alone.
    const signedBy = (fingerprint: string, who: string, recorderMay = false) => {
      const held = this.roster.everHeldBy(signer);
      if (held?.fingerprint !== fingerprint || !(recorderMay || holdsShares(held.role))) {
        throw new StatementError(`the ${kind} is not signed by ${who}, a member of the roster`);
      }
    };
    switch (kind) {
      case "roster-entry":
        if (!this.roster.digests.some((known) => equalBytes(known, digest))) {
          throw new StatementError("the roster entry is not one of the verified roster's");
        }
        return;
      case "search-key-rotation":
        if (!this.roster.adminAt(signer, body(kind).rosterSequence)) {
          throw new StatementError("the search key rotation is not signed by an admin of the roster it names");
        }
        return;
      case "node-approval":
      case "vault-policy":
      case "search-key-commitment":
        if (!this.roster.everHeldBy(signer, "admin")) throw new StatementError(`the ${kind} is not signed by an admin`);
        if (kind === "node-approval") {
          const approval = body(kind);
          this.nodeKeys.set(approval.nodeId, [...(this.nodeKeys.get(approval.nodeId) ?? []), approval.node.verifyingKey]);
        }
        return;
      case "recording-manifest":
        return signedBy(body(kind).uploader, "its uploader", true);
      case "unlock-request":
        return signedBy(body(kind).requester, "its requester");
      case "vote":
        return signedBy(body(kind).voter, "its voter");
      case "retention-rule":
        // A rule stays in force when the admin who signed it leaves.
        if (!this.roster.everHeldBy(signer, "admin")) throw new StatementError("the retention rule is not signed by an admin");
        return;
      case "legal-hold": {
        const voter = this.roster.everHeldBy(signer);
        if (!voter || !holdsShares(voter.role)) throw new StatementError("the legal hold vote is not signed by a member of the roster");
        return;
      }
      case "reshare-deal":
        // `verify` refuses it before this: the browser does not read re-share deals yet.
        return;
      case "transcript-manifest":
      case "release-manifest": {
        const { nodeId } = body(kind);
        if (!this.nodeKeys.get(nodeId)?.some((key) => equalBytes(key, signer))) {
          throw new StatementError(`the ${kind} is not signed by a key an admin approved for node ${nodeId}`);
        }
        return;
      }
    }
  }
}

export { ApiError };
