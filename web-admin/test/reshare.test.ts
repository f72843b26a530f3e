// Re-sharing in the browser (issue 18): a board of three where one leaves and one joins.
// Two current holders deal in the page, each new holder takes a new share there, and the
// new shares rebuild the secret while a leaver's old share with a new one does not; any
// page replays the re-share from the signed deals. A lying server is caught: a swapped
// sealed sub-share, a deal signed in a holder's name by someone else, deals onto another
// roster, and made-up current commitments.
import { generateIdentity, identityToRecipient } from "age-encryption";
import { describe, expect, it } from "vitest";

import type { MemberIdentity } from "../src/identity";
import { type Board, type SharedKey, accept, boardFor, currentSharing, deal, freshReshareId } from "../src/reshare";
import { Roster } from "../src/roster";
import {
  bindingFor,
  checkCurrentSharePlaintext,
  encodeSharePlaintext,
  open,
  recipientBytes,
  rewrap,
  seal,
  secretKeyText,
  voteBinding,
} from "../src/sealed";
import { type SplitKey, type Subject, type UnlockRequest, encodeRecordingManifest, encodeVaultPolicy, verify, parseSigned, sign } from "../src/statements";
import { ageKeyBytes, randomScalar, scalarFromBytes, split } from "../src/vss";
import { fromBase64, hex, toBase64 } from "../src/wire";
import { LyingServer, adminDevice, adminIdentity, genesis, interpolate, memberIdentity, rosterChange, serveRoster } from "./fixtures";
import type { Schemas } from "../src/client";

const VAULT = "0a0a0a0a-0a0a-4a0a-8a0a-0a0a0a0a0a0a";
const SUBJECT: Subject = { kind: "recording", id: "0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b" };

/** Ada (admin), Bo and Cy hold a 2-of-3 key; then Dee joins and Bo leaves. */
async function board() {
  const [ada, bo, cy, dee] = [await adminIdentity(), await memberIdentity(), await memberIdentity(), await memberIdentity()];
  const chain = [await genesis(VAULT, ada)];
  chain.push(await rosterChange(VAULT, chain, ada, bo, true, "Bo"));
  chain.push(await rosterChange(VAULT, chain, ada, cy, true, "Cy"));
  const secret = randomScalar();
  const sharing = split(secret, 2, 3);
  const keyBytes = await ageKeyBytes(secret, SUBJECT);
  const splitKey: SplitKey = {
    recipient: recipientBytes(await identityToRecipient(secretKeyText(keyBytes))),
    k: 2,
    n: 3,
    holders: [ada, bo, cy].map((holder) => holder.fingerprintHex),
    commitments: sharing.commitments,
  };
  const sealed = new Map<string, Uint8Array>();
  for (const [i, holder] of [ada, bo, cy].entries()) {
    const binding = bindingFor(VAULT, SUBJECT, splitKey, holder.fingerprintHex)!;
    sealed.set(holder.fingerprintHex, await seal(encodeSharePlaintext(binding, sharing.shares[i]!.value), recipientBytes(holder.recipient)));
  }
  const uploadHead = (await Roster.verify(VAULT, chain)).head();
  chain.push(await rosterChange(VAULT, chain, ada, dee, true, "Dee"));
  chain.push(await rosterChange(VAULT, chain, ada, bo, false, "Bo"));
  const roster = await Roster.verify(VAULT, chain);
  const key: SharedKey = { vaultId: VAULT, subject: SUBJECT, split: splitKey, current: { commitments: splitKey.commitments, holders: splitKey.holders } };
  return { ada, bo, cy, dee, chain, uploadHead, roster, secret, sharing, key, sealed, newBoard: boardFor(roster, 2, 2) };
}

/** The open re-share as the server hands it to `holder`. */
function offered(reshareId: string, deals: Awaited<ReturnType<typeof deal>>[], holder: MemberIdentity) {
  return {
    reshareId,
    deals: deals.map((dealt) => dealt.deal),
    subshares: deals.map((dealt) => dealt.subshares.find((sub) => sub.member === holder.fingerprintHex)!.sealed),
  };
}

/** `holder`'s new share, opened from what `accept` sealed to them and checked as a vote checks it. */
async function opened(holder: MemberIdentity, splitKey: SplitKey, sealed: Uint8Array): Promise<bigint> {
  const expected = { ...bindingFor(VAULT, SUBJECT, splitKey, splitKey.holders[0]!)!, member: holder.fingerprintHex };
  const { share } = checkCurrentSharePlaintext(await open(sealed, holder.ageSecret, "new share"), expected);
  return scalarFromBytes(share);
}

describe("re-sharing in the browser", () => {
  it("moves a key to the new board, whose shares rebuild it while a leaver's old share does not help", async () => {
    const { ada, cy, dee, roster, secret, sharing, key, sealed, newBoard } = await board();
    expect(newBoard.holders).toEqual([ada, cy, dee].map((holder) => holder.fingerprintHex));
    const reshareId = freshReshareId();
    const deals = [
      await deal(ada, key, newBoard, roster, reshareId, sealed.get(ada.fingerprintHex)!, 1_700_000_100),
      await deal(cy, key, newBoard, roster, reshareId, sealed.get(cy.fingerprintHex)!, 1_700_000_101),
    ];
    const taken = new Map<string, Awaited<ReturnType<typeof accept>>>();
    for (const holder of [ada, cy, dee]) taken.set(holder.fingerprintHex, await accept(holder, key, newBoard, roster, offered(reshareId, deals, holder)));
    const commitments = [...taken.values()].map((acceptance) => hex(acceptance.commitments));
    expect(new Set(commitments).size).toBe(1);

    // Any page replays the re-share from the signed deals to the same sharing.
    const replayed = await currentSharing(roster, VAULT, SUBJECT, key.split, [deals.map((dealt) => dealt.deal)]);
    expect(hex(replayed.commitments)).toBe(commitments[0]);
    expect(replayed.holders).toEqual(newBoard.holders);

    const deeShare = await opened(dee, key.split, taken.get(dee.fingerprintHex)!.sealed);
    const adaShare = await opened(ada, key.split, taken.get(ada.fingerprintHex)!.sealed);
    expect(interpolate([[1, adaShare], [3, deeShare]])).toBe(secret);
    // Dee, who joined after the recording was made, approves a request on it: the page
    // re-seals her new share to the node with the binding of the sharing the re-share made.
    const request: UnlockRequest = {
      vaultId: VAULT,
      requestId: "0c0c0c0c-0c0c-4c0c-8c0c-0c0c0c0c0c0c",
      subject: SUBJECT,
      purpose: "transcribe",
      nodeId: "0d0d0d0d-0d0d-4d0d-8d0d-0d0d0d0d0d0d",
      requester: ada.fingerprintHex,
      reason: "the minutes",
      createdAt: 1_700_000_200,
      expiresAt: 1_700_003_800,
      language: null,
    };
    expect(bindingFor(VAULT, SUBJECT, key.split, dee.fingerprintHex), "the manifest names Dee nowhere").toBeUndefined();
    const node = await generateIdentity();
    const { resealed } = await rewrap(
      taken.get(dee.fingerprintHex)!.sealed,
      dee.ageSecret,
      voteBinding(VAULT, SUBJECT, key.split, dee.fingerprintHex),
      request,
      recipientBytes(await identityToRecipient(node)),
    );
    const atNode = await open(resealed, node, "re-sealed share");
    expect(hex(atNode)).toContain(hex(taken.get(dee.fingerprintHex)!.commitments));

    // Bo's old share (index 2) with a new one rebuilds nothing.
    const bosOld = scalarFromBytes(sharing.shares[1]!.value);
    expect(interpolate([[2, bosOld], [3, deeShare]])).not.toBe(secret);
  });

  it("refuses what a lying server hands a new holder", async () => {
    const { ada, cy, dee, roster, key, sealed, newBoard } = await board();
    const reshareId = freshReshareId();
    const deals = [
      await deal(ada, key, newBoard, roster, reshareId, sealed.get(ada.fingerprintHex)!, 1_700_000_100),
      await deal(cy, key, newBoard, roster, reshareId, sealed.get(cy.fingerprintHex)!, 1_700_000_101),
    ];
    const honest = offered(reshareId, deals, dee);

    // The sealed sub-shares swapped: the server's doing, and said to be.
    const swapped = { ...honest, subshares: [honest.subshares[1]!, honest.subshares[0]!] };
    await expect(accept(dee, key, newBoard, roster, swapped)).rejects.toThrow(/server altered or swapped/);

    // Dee signs a deal in Cy's place (dealer 3): not the holder at that index.
    const forged = await deal(cy, key, newBoard, roster, reshareId, sealed.get(cy.fingerprintHex)!, 1_700_000_102);
    const reSigned = await sign(
      "reshare-deal",
      parseSigned(forged.deal).body,
      dee.signingKey,
      dee.verifyingKey,
    );
    await expect(accept(dee, key, newBoard, roster, { ...honest, deals: [honest.deals[0]!, reSigned] })).rejects.toThrow(/signer of a deal/);

    // Deals onto a board this page did not verify (another roster head).
    const otherBoard: Board = { ...newBoard, rosterHead: new Uint8Array(32).fill(7) };
    await expect(accept(dee, key, otherBoard, roster, honest)).rejects.toThrow(/roster head/);

    // Made-up current commitments (a sharing of another secret) are refused before any deal.
    const madeUp: SharedKey = { ...key, current: { ...key.current, commitments: split(randomScalar(), 2, 3).commitments } };
    await expect(accept(dee, madeUp, newBoard, roster, honest)).rejects.toThrow(/secret/);
  });
});

describe("the Re-share page's device", () => {
  /** A server with the board's roster, a policy of 2 and the recording's re-share work. */
  async function served(open: Schemas["OpenReshare"] | null) {
    const made = await board();
    const { ada, cy, chain, uploadHead, key, sealed } = made;
    const server = new LyingServer();
    serveRoster(server, VAULT, chain);
    const policy = await sign("vault-policy", encodeVaultPolicy({ vaultId: VAULT, sequence: 0, minThreshold: 2, issuedAt: 1_700_000_050 }), ada.signingKey, ada.verifyingKey);
    const manifest = await sign(
      "recording-manifest",
      encodeRecordingManifest({
        vaultId: VAULT,
        recordingId: SUBJECT.id,
        uploader: cy.fingerprintHex,
        rosterHead: uploadHead,
        createdAt: 1_700_000_060,
        ciphertextLen: 1,
        ciphertextSha256: new Uint8Array(32),
        split: key.split,
        sealedMetadata: new Uint8Array([1]),
      }),
      cy.signingKey,
      cy.verifyingKey,
    );
    const item: Schemas["ReshareItem"] = { kind: "recording", subject_id: SUBJECT.id, manifest: toBase64(manifest), history: [], open };
    server
      .on("GET", /\/policy$/, () => ({ statement: toBase64(policy) }))
      .on("GET", /\/reshares$/, () => ({ items: [item] }))
      .on("GET", /\/recordings\/[^/]+\/share$/, () => ({ sealed: toBase64(sealed.get(ada.fingerprintHex)!) }))
      .on("POST", /\/reshares\/deals$/, () => ({ reshare_id: "00", deals: 1, needed: 2, accepted: 0, holders: 3, completed: false }));
    const device = adminDevice(VAULT, ada);
    return { ...made, server, device };
  }

  it("deals the member's share to the board the page verified", async () => {
    const { server, device, newBoard } = await served(null);
    const roster = await device.roster();
    const [item] = await device.reshareWork();
    expect(await device.reshareStep(roster, (await device.policy(roster)).minThreshold, item!)).toBe("dealt");
    const [posted] = server.writes();
    const body = posted!.body as Schemas["NewDeal"];
    const dealt = (await verify("reshare-deal", fromBase64(body.deal))).statement;
    expect(dealt.holders).toEqual(newBoard.holders);
    expect(body.subshares.map((sub) => sub.member)).toEqual(newBoard.holders);
  });

  it("refuses to deal into a re-share that moves the key to another board", async () => {
    const other = await served(null);
    const elsewhere = await deal(
      other.cy,
      other.key,
      { ...other.newBoard, holders: [other.cy.fingerprintHex, other.ada.fingerprintHex, other.dee.fingerprintHex] },
      other.roster,
      freshReshareId(),
      other.sealed.get(other.cy.fingerprintHex)!,
      1_700_000_100,
    );
    const open = { reshare_id: "11".repeat(16), deals: [toBase64(elsewhere.deal)], needed: 2, subshares: [], accepted: [] };
    const { server, device } = await served(open);
    const roster = await device.roster();
    const [item] = await device.reshareWork();
    await expect(device.reshareStep(roster, 2, item!)).rejects.toThrow(/another board/);
    expect(server.writes()).toEqual([]);
  });
});
