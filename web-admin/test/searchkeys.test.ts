// Search-key rotation in the browser (issue 18): Ada (admin), Bo and Cy share the vault's
// search key; Bo leaves and Ada rotates it. Cy's page opens the newest key (and the one before
// while minutes are re-indexed) only through the chain of commitment and rotations Ada
// signed. A lying server is caught: a withheld rotation (the newest key it admits to is one
// Bo holds), the old key's copy served as the new one's, a rotation signed by a member who is
// no admin, and one naming a roster head the chain does not hold.
import { describe, expect, it } from "vitest";

import type { Schemas } from "../src/client";
import type { MemberIdentity } from "../src/identity";
import { Roster } from "../src/roster";
import { recipientBytes, seal, searchKeyCheck, searchKeyPlaintext } from "../src/sealed";
import {
  type SearchKeyRotation,
  encodeNodeApproval,
  encodeSearchKeyCommitment,
  encodeSearchKeyRotation,
  sign,
} from "../src/statements";
import { hex, toBase64 } from "../src/wire";
import { searchKeyChain } from "../src/searchkeys";
import { LyingServer, adminDevice, adminIdentity, genesis, memberIdentity, rosterChange, serveRoster } from "./fixtures";

const VAULT = "0c0c0c0c-0c0c-4c0c-8c0c-0c0c0c0c0c0c";

async function sealedTo(key: Uint8Array, holder: MemberIdentity): Promise<string> {
  return toBase64(await seal(searchKeyPlaintext(VAULT, key), recipientBytes(holder.recipient)));
}

/** The board after Bo left and Ada rotated: what an honest server serves Cy. */
async function rotated() {
  const [ada, bo, cy] = [await adminIdentity(), await memberIdentity(), await memberIdentity()];
  const chain = [await genesis(VAULT, ada)];
  chain.push(await rosterChange(VAULT, chain, ada, bo, true, "Bo"));
  chain.push(await rosterChange(VAULT, chain, ada, cy, true, "Cy"));
  const [oldKey, newKey] = [crypto.getRandomValues(new Uint8Array(32)), crypto.getRandomValues(new Uint8Array(32))];
  const commitment = await sign(
    "search-key-commitment",
    encodeSearchKeyCommitment({ vaultId: VAULT, keyCheck: await searchKeyCheck(oldKey), issuedAt: 1 }),
    ada.signingKey,
    ada.verifyingKey,
  );
  chain.push(await rosterChange(VAULT, chain, ada, bo, false, "Bo"));
  const roster = await Roster.verify(VAULT, chain);
  const rotation: SearchKeyRotation = {
    vaultId: VAULT,
    generation: 1,
    previousCheck: await searchKeyCheck(oldKey),
    keyCheck: await searchKeyCheck(newKey),
    rosterSequence: chain.length - 1,
    rosterHead: roster.head(),
    issuedAt: 2,
  };
  const signRotation = (body: SearchKeyRotation, by: MemberIdentity) =>
    sign("search-key-rotation", encodeSearchKeyRotation(body), by.signingKey, by.verifyingKey).then(toBase64);
  const view: Schemas["SearchKeyView"] = {
    commitment: toBase64(commitment),
    rotations: [await signRotation(rotation, ada)],
    sealed: await sealedTo(newKey, cy),
    previous_sealed: await sealedTo(oldKey, cy),
    holders: [],
    reindexing: 1,
  };
  return { ada, bo, cy, roster, oldKey, newKey, rotation, signRotation, view, device: adminDevice(VAULT, cy) };
}

describe("the vault's search key after a rotation, in the browser", () => {
  it("opens the newest key and the one before through the signed chain", async () => {
    const { roster, oldKey, newKey, view, device } = await rotated();
    const keys = (await device.searchKeys(roster, view))!;
    expect([keys.generation, keys.staleSince]).toEqual([1, null]);
    expect(hex(keys.current)).toBe(hex(newKey));
    expect(hex(keys.previous!)).toBe(hex(oldKey));
  });

  it("sees a withheld rotation: the newest key admitted to is one a removed member holds", async () => {
    const { roster, oldKey, view, cy, device } = await rotated();
    const withheld = { ...view, rotations: [], sealed: await sealedTo(oldKey, cy), previous_sealed: null };
    const keys = (await device.searchKeys(roster, withheld))!;
    expect([keys.generation, keys.staleSince]).toEqual([0, 3]);
  });

  it("refuses the old key's copy served as the new one's", async () => {
    const { roster, oldKey, view, cy, device } = await rotated();
    const swapped = { ...view, sealed: await sealedTo(oldKey, cy) };
    await expect(device.searchKeys(roster, swapped)).rejects.toThrow(/not the one an admin committed to/);
  });

  it("refuses a rotation signed by a member who is no admin, to a key the server chose", async () => {
    const { roster, view, bo, cy, rotation, signRotation, device } = await rotated();
    const chosen = crypto.getRandomValues(new Uint8Array(32));
    const forged = { ...rotation, keyCheck: await searchKeyCheck(chosen) };
    for (const signer of [bo, cy]) {
      const lie = { ...view, rotations: [await signRotation(forged, signer)], sealed: await sealedTo(chosen, cy) };
      await expect(device.searchKeys(roster, lie)).rejects.toThrow(/not signed by an admin/);
    }
  });

  it("refuses a rotation naming a roster head the chain does not hold, or skipping a generation", async () => {
    const { ada, roster, view, rotation, signRotation, device } = await rotated();
    const elsewhere = { ...view, rotations: [await signRotation({ ...rotation, rosterHead: new Uint8Array(32).fill(7) }, ada)] };
    await expect(device.searchKeys(roster, elsewhere)).rejects.toThrow(/roster head/);
    const skipped = { ...view, rotations: [await signRotation({ ...rotation, generation: 2 }, ada)] };
    await expect(device.searchKeys(roster, skipped)).rejects.toThrow(/missing or repeated/);
  });
});

describe("rotating and re-indexing in the browser", () => {
  it("signs a rotation for the verified head, sealed to every member of the verified roster", async () => {
    const { ada, cy, roster, oldKey, view } = await rotated();
    const lying = new LyingServer()
      .on("GET", /\/search-key$/, () => ({ commitment: view.commitment, rotations: [], holders: [] }))
      .on("GET", /\/nodes$/, () => [])
      .on("POST", /\/search-key\/rotations$/, () => ({ holders: [] }));
    const device = adminDevice(VAULT, ada);
    expect(await device.rotateSearchKey(roster)).toBe(1);
    const [posted] = lying.writes();
    const body = posted!.body as { rotation: string; grants: { holder: string; sealed: string }[] };
    const chain = await searchKeyChain(roster, view.commitment!, [body.rotation]);
    expect(hex(chain.checks[0]!)).toBe(hex(await searchKeyCheck(oldKey)));
    expect(chain.madeFor).toBe(roster.digests.length - 1);
    expect(body.grants.map((grant) => grant.holder).sort()).toEqual(roster.active.map((member) => member.fingerprint).sort());
    // Cy's copy opens to the key the rotation names.
    const mine = body.grants.find((grant) => grant.holder === cy.fingerprintHex)!;
    const keys = await adminDevice(VAULT, cy).searchKeys(roster, { ...view, rotations: [body.rotation], sealed: mine.sealed, previous_sealed: null });
    expect(hex(await searchKeyCheck(keys!.current))).toBe(hex(chain.checks[1]!));
  });

  it("re-indexes nothing under a key a removed member holds (a withheld rotation), and says so", async () => {
    const { roster, oldKey, view, cy } = await rotated();
    const lying = new LyingServer()
      .on("GET", /\/search-key$/, async () => ({ ...view, rotations: [], sealed: await sealedTo(oldKey, cy), previous_sealed: null }))
      .on("GET", /\/released$/, () => [{ transcript_id: "t", members: [cy.fingerprintHex], key_generation: 0 }]);
    await expect(adminDevice(VAULT, cy).reindex(roster, () => {})).rejects.toThrow(/removed a member who holds it/);
    expect(lying.writes()).toHaveLength(0);
  });

  it("rotates nothing for a roster that still holds the member just removed", async () => {
    const [ada, bo] = [await adminIdentity(), await memberIdentity()];
    const chain = [await genesis(VAULT, ada)];
    chain.push(await rosterChange(VAULT, chain, ada, bo, true, "Bo"));
    // The server took the removal, then answers with the roster from before it.
    const lying = new LyingServer().on("GET", /\/roster$/, () => ({ entries: chain.map(toBase64) }));
    const device = adminDevice(VAULT, ada);
    await expect(device.rotateAfterRemoval(bo.fingerprintHex, () => {})).rejects.toThrow(/still holds the member just removed/);
    expect(lying.writes()).toHaveLength(0);
  });

  it("takes a removed member's role from the verified roster, not the server's list", async () => {
    const [ada, bo] = [await adminIdentity(), await memberIdentity()];
    const chain = [await genesis(VAULT, ada)];
    chain.push(await rosterChange(VAULT, chain, ada, bo, true, "Bo"));
    const server = new LyingServer();
    serveRoster(server, VAULT, chain);
    // The server lists Bo as a recorder, so that the page would skip the rotation.
    const listed = { fingerprint: bo.fingerprintHex, name: "Bo", role: "recorder", status: "active" } as Schemas["MemberView"];
    expect(await adminDevice(VAULT, ada).removeMember(listed)).toBe("member");
  });

  it("seals the new key only to nodes an admin approves now: not a revoked one, not a lapsed one", async () => {
    const { ada, roster, view } = await rotated();
    const nowSeconds = Math.floor(Date.now() / 1000);
    const node = async (nodeId: string, issuedAt: number, expiresAt: number, revoked: boolean) => {
      const keys = await memberIdentity();
      const body = encodeNodeApproval({
        vaultId: VAULT,
        nodeId,
        node: { recipient: recipientBytes(keys.recipient), verifyingKey: keys.verifyingKey },
        hardware: "cpu",
        modelSha256: new Uint8Array(32),
        attestation: new Uint8Array(0),
        issuedAt,
        expiresAt,
        revoked,
      });
      const approval = await sign("node-approval", body, ada.signingKey, ada.verifyingKey);
      return { node_id: nodeId, status: "approved", approval: toBase64(approval) };
    };
    const [current, lapsed, revoked] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    const nodes = [
      await node(current, nowSeconds - 60, nowSeconds + 86_400, false),
      await node(lapsed, nowSeconds - 86_400, nowSeconds - 60, false),
      await node(revoked, nowSeconds - 60, nowSeconds + 86_400, true),
    ];
    const lying = new LyingServer()
      .on("GET", /\/search-key$/, () => ({ commitment: view.commitment, rotations: [], holders: [] }))
      .on("GET", /\/nodes$/, () => nodes)
      .on("POST", /\/search-key\/rotations$/, () => ({ holders: [] }));
    await adminDevice(VAULT, ada).rotateSearchKey(roster);
    const body = lying.writes()[0]!.body as { grants: { holder: string }[] };
    const holders = body.grants.map((grant) => grant.holder);
    expect(holders).toContain(current);
    expect(holders).not.toContain(lapsed);
    expect(holders).not.toContain(revoked);
  });
});
