// The vault's search keys as the browser checks them, as quorate-crypto's SearchKeyChain
// does: generation 0's commitment, then each rotation an admin signed, every rotation naming
// the key before it and a roster head of the verified chain. The newest key is refused as
// stale when a member who held it was removed after it was made: a server that withholds a
// rotation is caught that way.

import { Roster } from "./roster";
import { StatementError, verify } from "./statements";
import { equalBytes, fromBase64 } from "./wire";

/** Each generation's check value, from 0, and the roster entry the newest was made for. */
export interface SearchKeyChain {
  checks: Uint8Array[];
  madeFor: number;
}

/** Verifies the commitment (base64) and the rotations (base64, generation 1 first). */
export async function searchKeyChain(roster: Roster, commitment: string, rotations: string[]): Promise<SearchKeyChain> {
  const first = await roster.verifyByAdminEver("search-key-commitment", commitment);
  const chain: SearchKeyChain = { checks: [first.statement.keyCheck], madeFor: 0 };
  for (const text of rotations) {
    const verified = await verify("search-key-rotation", fromBase64(text));
    const rotation = verified.statement;
    const generation = chain.checks.length;
    if (rotation.vaultId !== roster.vaultId) throw new StatementError("a search key rotation is another vault's");
    if (rotation.generation !== generation) {
      throw new StatementError("a search key rotation is missing or repeated");
    }
    if (!equalBytes(rotation.previousCheck, chain.checks[generation - 1]!)) {
      throw new StatementError("a search key rotation replaces another key than the one before it");
    }
    const head = roster.digests[rotation.rosterSequence];
    if (!head || !equalBytes(head, rotation.rosterHead) || rotation.rosterSequence < chain.madeFor) {
      throw new StatementError("a search key rotation names a roster head the verified roster does not hold");
    }
    if (!roster.adminAt(verified.signer, rotation.rosterSequence)) {
      throw new StatementError("a search key rotation is not signed by an admin of the roster it names");
    }
    chain.checks.push(rotation.keyCheck);
    chain.madeFor = rotation.rosterSequence;
  }
  return chain;
}

/** The removal after which the newest key is known to someone who left, or null. */
export function staleSince(roster: Roster, chain: SearchKeyChain): number | null {
  const removal = roster.lastHolderRemoval();
  return removal !== undefined && removal > chain.madeFor ? removal : null;
}
