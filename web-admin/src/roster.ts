// The roster in the browser, equal to quorate-crypto's `Roster`: a hash chain of
// admin-signed entries replayed from its genesis. Each entry must be signed by an admin
// active at that point (the genesis by the first admin, for themself); no member is added
// twice, nobody absent is removed, the last admin is never removed. Recorders are kept
// apart from the members, so that what seals to or splits among the members leaves them out.

import {
  type BodyOf,
  type Kind,
  type PublicKeys,
  type Role,
  type Verified,
  StatementError,
  encodeRosterEntry,
  holdsShares,
  fingerprintOf,
  sign,
  verify,
} from "./statements";
import { equalBytes, fromBase64, hex } from "./wire";

export interface RosterMember {
  keys: PublicKeys;
  fingerprint: string;
  name: string;
  role: Role;
  addedIn: number;
}

export class Roster {
  readonly digests: Uint8Array[] = [];
  /** Current members (admins and members: the share holders). */
  readonly active: RosterMember[] = [];
  /** Current recorders. */
  readonly recorders: RosterMember[] = [];
  /** Members and recorders who were removed. */
  readonly removed: RosterMember[] = [];
  /** The sequence number of the entry that removed each of `removed`, in the same order. */
  private readonly removedIn: number[] = [];
  /** The entries' wire form, to re-check a change before it is sent. */
  private readonly wire: Uint8Array[] = [];

  private constructor(readonly vaultId: string) {}

  /** Replays `entries` (wire form) for `vaultId`; refuses a chain that breaks any rule. */
  static async verify(vaultId: string, entries: Uint8Array[]): Promise<Roster> {
    const roster = new Roster(vaultId);
    for (const entry of entries) await roster.apply(entry);
    if (roster.digests.length === 0) throw new StatementError("the roster has no entries");
    return roster;
  }

  /** As `verify`, for the API's base64 entries. */
  static async verifyText(vaultId: string, entries: string[]): Promise<Roster> {
    return Roster.verify(vaultId, entries.map(fromBase64));
  }

  genesis(): string {
    return hex(this.digests[0] ?? new Uint8Array(32));
  }

  /**
   * Whether `digest` is one of this chain's entries: a manifest names the head its uploader
   * verified, and a head outside the chain means the uploader was shown a forked roster.
   */
  hasEntry(digest: Uint8Array): boolean {
    return this.digests.some((entry) => equalBytes(entry, digest));
  }

  head(): Uint8Array {
    return this.digests[this.digests.length - 1] ?? new Uint8Array(32);
  }

  /** Whether the chain holds `digest` (hex) at `sequence`: no rollback past what was seen. */
  contains(sequence: number, digest: string): boolean {
    const found = this.digests[sequence];
    return found !== undefined && hex(found) === digest;
  }

  private async apply(bytes: Uint8Array): Promise<void> {
    const verified = await verify("roster-entry", bytes);
    const entry = verified.statement;
    const sequence = this.digests.length;
    if (entry.vaultId !== this.vaultId) throw new StatementError(`roster entry ${sequence} is another vault's`);
    if (entry.sequence !== sequence) throw new StatementError(`roster entry ${sequence} has the wrong sequence`);
    if (!equalBytes(entry.previous, this.head())) {
      throw new StatementError(`roster entry ${sequence} does not follow the entry before it`);
    }
    const authorised =
      sequence === 0
        ? entry.change === "add" && entry.role === "admin" && equalBytes(entry.member.verifyingKey, verified.signer)
        : this.adminByKey(verified.signer) !== undefined;
    if (!authorised) throw new StatementError(`roster entry ${sequence} is not signed by an admin`);
    const fingerprint = await fingerprintOf(entry.member);
    if (entry.change === "add") {
      const clash = [...this.active, ...this.recorders].some(
        (member) =>
          member.fingerprint === fingerprint ||
          equalBytes(member.keys.recipient, entry.member.recipient) ||
          equalBytes(member.keys.verifyingKey, entry.member.verifyingKey),
      );
      if (clash) throw new StatementError(`roster entry ${sequence} adds someone already on the roster`);
      const added = { keys: entry.member, fingerprint, name: entry.name, role: entry.role, addedIn: sequence };
      (holdsShares(entry.role) ? this.active : this.recorders).push(added);
    } else if (this.recorders.some((recorder) => recorder.fingerprint === fingerprint)) {
      this.removed.push(...this.recorders.splice(this.recorders.findIndex((recorder) => recorder.fingerprint === fingerprint), 1));
      this.removedIn.push(sequence);
    } else {
      const position = this.active.findIndex((member) => member.fingerprint === fingerprint);
      if (position < 0) throw new StatementError(`roster entry ${sequence} removes someone not on the roster`);
      const admins = this.active.filter((member) => member.role === "admin").length;
      if (this.active[position]?.role === "admin" && admins === 1) {
        throw new StatementError(`roster entry ${sequence} removes the last admin`);
      }
      this.removed.push(...this.active.splice(position, 1));
      this.removedIn.push(sequence);
    }
    this.digests.push(verified.digest);
    this.wire.push(bytes);
  }

  /** A current member (not a recorder). */
  member(fingerprint: string): RosterMember | undefined {
    return this.active.find((member) => member.fingerprint === fingerprint);
  }

  /** A current recorder. */
  recorder(fingerprint: string): RosterMember | undefined {
    return this.recorders.find((recorder) => recorder.fingerprint === fingerprint);
  }

  memberByKey(key: Uint8Array): RosterMember | undefined {
    return this.active.find((member) => equalBytes(member.keys.verifyingKey, key));
  }

  /**
   * Who held `key` at any time on this roster, member or recorder (with `role`, if given):
   * the signer of a statement made before they left. The current roster is looked at first.
   */
  everHeldBy(key: Uint8Array, role?: Role): RosterMember | undefined {
    return [...this.active, ...this.recorders, ...this.removed].find(
      (member) => equalBytes(member.keys.verifyingKey, key) && (role === undefined || member.role === role),
    );
  }

  /**
   * The sequence number of the newest entry that removed a member who held keys (not a
   * recorder): anything sealed to the board before it is known to someone who left.
   */
  lastHolderRemoval(): number | undefined {
    const removals = this.removed.flatMap((member, i) => (holdsShares(member.role) ? [this.removedIn[i]!] : []));
    return removals.length ? Math.max(...removals) : undefined;
  }

  /** The admin with `key` as the roster stood after entry `sequence`: added by then, not yet removed. */
  adminAt(key: Uint8Array, sequence: number): RosterMember | undefined {
    const current = this.active.map((member) => [member, undefined] as const);
    const former = this.removed.map((member, i) => [member, this.removedIn[i]] as const);
    return [...current, ...former].find(
      ([member, removedIn]) =>
        member.role === "admin" &&
        equalBytes(member.keys.verifyingKey, key) &&
        member.addedIn <= sequence &&
        (removedIn === undefined || removedIn > sequence),
    )?.[0];
  }

  adminByKey(key: Uint8Array): RosterMember | undefined {
    const member = this.memberByKey(key);
    return member?.role === "admin" ? member : undefined;
  }

  /** Verifies a statement and that a current member (not a recorder) of this vault signed it. */
  async verifyByMember<K extends Kind>(
    kind: K,
    text: string,
  ): Promise<[Verified<BodyOf<K>>, RosterMember]> {
    const verified = await verify(kind, fromBase64(text));
    if ((verified.statement as { vaultId: string }).vaultId !== this.vaultId) {
      throw new StatementError(`the ${kind} belongs to another vault`);
    }
    const signer = this.memberByKey(verified.signer);
    if (!signer) throw new StatementError(`the ${kind} is not signed by a member of the roster`);
    return [verified, signer];
  }

  /** Verifies a statement and that a current admin of this vault signed it. */
  async verifyByAdmin<K extends Kind>(
    kind: K,
    text: string,
  ): Promise<[Verified<BodyOf<K>>, RosterMember]> {
    const [verified, signer] = await this.verifyByMember(kind, text);
    if (signer.role !== "admin") throw new StatementError(`the ${kind} is not signed by an admin`);
    return [verified, signer];
  }

  /**
   * Verifies a statement and that a current or former admin of this vault signed it: what an
   * admin signed (a policy, the search key's commitment) stays in force when they leave or
   * replace their identity.
   */
  async verifyByAdminEver<K extends Kind>(kind: K, text: string): Promise<Verified<BodyOf<K>>> {
    const verified = await verify(kind, fromBase64(text));
    if ((verified.statement as { vaultId: string }).vaultId !== this.vaultId) {
      throw new StatementError(`the ${kind} belongs to another vault`);
    }
    if (!this.everHeldBy(verified.signer, "admin")) throw new StatementError(`the ${kind} is not signed by an admin`);
    return verified;
  }

  /** Signs the next entry of this chain (an admin adding or removing someone). */
  async signChange(
    signingKey: CryptoKey,
    verifyingKey: Uint8Array,
    change: "add" | "remove",
    member: PublicKeys,
    name: string,
    role: Role,
    now: number,
  ): Promise<Uint8Array<ArrayBuffer>> {
    const body = encodeRosterEntry({
      vaultId: this.vaultId,
      sequence: this.digests.length,
      previous: this.head(),
      change,
      role,
      member,
      name,
      issuedAt: now,
    });
    const signed = await sign("roster-entry", body, signingKey, verifyingKey);
    // The same rules a device replaying the chain applies, before anything is sent.
    await Roster.verify(this.vaultId, [...this.wire, signed]);
    return signed;
  }
}
