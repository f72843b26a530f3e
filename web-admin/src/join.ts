// Joining a vault from the browser, as `quorate enroll` does: the code is looked up, the
// identity (made in this page) enrols with it, and the vault's genesis is checked here and
// pinned before anything else is trusted. With the first-admin code the page signs the
// genesis entry itself. No page code here; `pages.ts`'s join page calls these.

import { ApiError, Client, type Schemas } from "./client";
import type { PinStore } from "./device";
import type { MemberIdentity } from "./identity";
import { Roster, type RosterMember } from "./roster";
import { StatementError, encodeRosterEntry, sign } from "./statements";
import { recipientBytes } from "./sealed";
import { hex, sha256, toBase64, toBase64Url, uuidBytes, uuidText } from "./wire";

/** What a one-time code enrols, once looked up (the code is not used by looking). */
export interface CodeLookup {
  vaultId: string;
  purpose: Schemas["CodePurpose"];
  expiresAt: number;
}

/** What enrolment pinned and what to show. */
export interface Joined {
  vaultId: string;
  /** The genesis digest (hex) pinned in this browser: the member compares it with an admin's. */
  genesis: string;
  /** The vault's first admin, from the checked genesis entry. */
  founder: RosterMember;
  /** Whether this identity is the vault's first admin (active at once) or waits for approval. */
  firstAdmin: boolean;
  /** Whether the code enrolled a recorder. */
  recorder: boolean;
}

/** A genesis digest as typed or read out: 64 hex digits; spaces, dashes and colons ignored. */
export function parseGenesis(typed: string): string {
  const digits = typed.replace(/[\s:-]/g, "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(digits)) {
    throw new StatementError(
      "the genesis is 64 hex digits, as an admin's Members page or `quorate members` shows it: check what you typed, or leave it empty",
    );
  }
  return digits;
}

/** Looks a code up: which vault it enrols into, and whom. */
export async function lookUpCode(client: Client, code: string): Promise<CodeLookup> {
  const trimmed = code.trim();
  if (!trimmed) throw new StatementError("type the code your admin gave you (or the one the server printed at its first start)");
  const info = await client.call("post", "/api/v1/enrol/lookup", { body: { code: trimmed } }).catch((error: unknown) => {
    if (error instanceof ApiError && error.status === 404) {
      throw new ApiError(404, error.code, "the server knows no such code: check it with whoever gave it to you; a code works once, and only until it expires");
    }
    throw error;
  });
  let vaultId: string;
  try {
    vaultId = uuidText(uuidBytes(info.vault_id));
  } catch {
    throw new StatementError("the server named a malformed vault ID for this code: refused");
  }
  if (info.purpose === "node") {
    throw new StatementError("this is a node invite: run `quorate-node enroll` with it on the transcription node, not here");
  }
  return { vaultId, purpose: info.purpose, expiresAt: info.expires_at };
}

/**
 * Enrols `identity` with `code` (looked up as `lookup`), then checks the server's answer
 * and pins the genesis. `expectedGenesis` (hex, optional) is the digest an admin read out:
 * enrolment is refused, and nothing pinned, when the server names another.
 */
export async function enrol(
  client: Client,
  code: string,
  lookup: CodeLookup,
  name: string,
  identity: MemberIdentity,
  expectedGenesis: string | null,
  pins: PinStore,
): Promise<Joined> {
  const trimmedName = name.trim();
  if (!trimmedName) throw new StatementError("type your name, as the admins will see it");
  const keys = { recipient: identity.recipient, verifying_key: toBase64Url(identity.verifyingKey) };
  const firstAdmin = lookup.purpose === "first-admin";
  let enrolled: Schemas["Enrolled"];
  if (firstAdmin) {
    const genesis = await signGenesis(lookup.vaultId, identity, trimmedName);
    enrolled = await client.call("post", "/api/v1/enrol/first-admin", {
      body: { code: code.trim(), genesis: toBase64(genesis) },
    });
    if (enrolled.roster_genesis.toLowerCase() !== hex(await sha256(genesis))) {
      throw new StatementError(
        "the server answered with a genesis other than the one this browser signed, so nothing was pinned: the server is not keeping the vault you started. Do not use it; tell whoever runs it",
      );
    }
  } else {
    enrolled = await client.call("post", "/api/v1/enrol/member", { body: { code: code.trim(), name: trimmedName, keys } });
  }
  if (enrolled.vault_id.toLowerCase() !== lookup.vaultId) {
    throw new StatementError("the server enrolled you in another vault than the code names, so nothing was pinned");
  }
  // What is pinned and shown is computed here from the checked genesis entry, never from the
  // server's own strings.
  const roster = await Roster.verifyText(lookup.vaultId, [enrolled.genesis_entry]).catch((error: unknown) => {
    throw new StatementError(`the vault's genesis entry: ${error instanceof Error ? error.message : String(error)}; nothing was pinned`);
  });
  const genesis = roster.genesis();
  const founder = roster.active[0];
  if (!founder || genesis !== enrolled.roster_genesis.toLowerCase()) {
    throw new StatementError("the server's genesis entry is not the genesis it names: nothing was pinned");
  }
  if (expectedGenesis && genesis !== expectedGenesis) {
    throw new StatementError(
      `the server names genesis ${genesis} for this vault, not the ${expectedGenesis} you were given, so nothing was pinned. The server may be showing you a vault of its own: tell the admin who invited you`,
    );
  }
  pinGenesis(pins, lookup.vaultId, genesis);
  return { vaultId: lookup.vaultId, genesis, founder, firstAdmin, recorder: lookup.purpose === "recorder" };
}

/** The genesis roster entry: the first admin adds themself, signed with their new key. */
async function signGenesis(vaultId: string, identity: MemberIdentity, name: string): Promise<Uint8Array<ArrayBuffer>> {
  const body = encodeRosterEntry({
    vaultId,
    sequence: 0,
    previous: new Uint8Array(32),
    change: "add",
    role: "admin",
    member: { recipient: recipientBytes(identity.recipient), verifyingKey: identity.verifyingKey },
    name,
    issuedAt: Math.floor(Date.now() / 1000),
  });
  return sign("roster-entry", body, identity.signingKey, identity.verifyingKey);
}

/**
 * Pins `genesis` for `vaultId` as the device's first sight of the roster, unless this browser
 * pinned the vault before: a pin for another genesis is a fork, and refused.
 */
function pinGenesis(pins: PinStore, vaultId: string, genesis: string): void {
  const key = `quorate:pin:${vaultId}`;
  const stored = pins.getItem(key);
  if (stored) {
    if ((JSON.parse(stored) as { genesis: string }).genesis !== genesis) {
      throw new StatementError("this browser pinned another genesis for this vault before: the server is showing you a vault of its own, so nothing was changed");
    }
  } else {
    pins.setItem(key, JSON.stringify({ genesis, length: 1, head: genesis }));
  }
  pins.setItem("quorate:vault", vaultId);
}
