// The browser's device facing a server that lies (docs/PROTOCOL.md, "what a lying server can
// try, and what stops it"): each test programs the server's answers as a compromised server
// or database would forge them, and shows the device refusing, with nothing signed or pinned.
import { afterEach, describe, expect, it, vi } from "vitest";

import type { Schemas } from "../src/client";
import { auditEntryHash, signIn } from "../src/device";
import { Roster } from "../src/roster";
import {
  type PublicKeys,
  encodeNodeApproval,
  encodeUnlockRequest,
  fingerprintOf,
  parseSigned,
  shortFingerprint,
  sign,
  verify,
} from "../src/statements";
import { hex, toBase64, uuidText } from "../src/wire";
import {
  GOLDEN_NODE,
  GOLDEN_VAULT,
  LyingServer,
  Pins,
  adminDevice,
  adminIdentity,
  apiKeys,
  genesis,
  golden,
  serveRoster,
  signer,
  strangerKeys,
} from "./fixtures";

afterEach(() => {
  vi.unstubAllGlobals();
});

function pendingMember(keys: PublicKeys, fingerprint: string): Schemas["MemberView"] {
  return { name: "Dee", role: "member", status: "pending", fingerprint, keys: apiKeys(keys) };
}

function pendingNode(keys: PublicKeys, fingerprint: string): Schemas["NodeView"] {
  return { name: "gpu-1", node_id: GOLDEN_NODE, status: "pending", fingerprint, keys: apiKeys(keys) };
}

/** An admin's device in a vault whose roster is the admin alone; no search key, nothing released yet. */
async function vault(vaultId: string = crypto.randomUUID()) {
  const admin = await adminIdentity();
  const server = new LyingServer();
  const chain = [await genesis(vaultId, admin)];
  serveRoster(server, vaultId, chain);
  server
    .on("GET", /\/search-key$/, () => ({ holders: [] }))
    .on("GET", /\/released$/, () => []);
  return { admin, server, chain, device: adminDevice(vaultId, admin) };
}

describe("approving a pending member (issue 14, item 1)", () => {
  it("refuses keys the server swapped under the member's honest fingerprint, and signs nothing", async () => {
    const { server, device, chain } = await vault();
    const dee = await strangerKeys();
    const honest = await fingerprintOf(dee);
    // A database writer keeps Dee's fingerprint in its column and puts their own keys beside it.
    const forged = pendingMember(await strangerKeys(), honest);
    await expect(device.approveMember(forged, "admin", shortFingerprint(honest))).rejects.toThrow(
      /not that of the keys the server sent for Dee, so nothing was signed/,
    );
    expect(server.writes()).toEqual([]);
    expect(chain).toHaveLength(1);
  });

  it("takes the fingerprint as it is read out: grouped or hex, any case, with dashes or spaces", async () => {
    const dee = await strangerKeys();
    const honest = await fingerprintOf(dee);
    const short = shortFingerprint(honest);
    for (const typed of [short, short.toLowerCase().replace(/-/g, " "), ` ${short.replace(/-/g, "")} `, honest, honest.toUpperCase()]) {
      const { server, device, chain } = await vault();
      await device.approveMember(pendingMember(dee, "00".repeat(32)), "member", typed);
      expect(server.writes().map((write) => write.path)).toEqual([`/api/v1/vaults/${device.vaultId}/roster`]);
      const roster = await Roster.verify(device.vaultId, chain);
      expect(roster.member(honest)?.name, typed).toBe("Dee");
    }
  });

  it("refuses a prefix or a typo, and asks for the fingerprint when none is typed", async () => {
    const { server, device } = await vault();
    const dee = await strangerKeys();
    const short = shortFingerprint(await fingerprintOf(dee));
    await expect(device.approveMember(pendingMember(dee, ""), "member", short.slice(0, 14))).rejects.toThrow(/not that of the keys/);
    const typo = (short[0] === "A" ? "B" : "A") + short.slice(1);
    await expect(device.approveMember(pendingMember(dee, ""), "member", typo)).rejects.toThrow(/not that of the keys/);
    await expect(device.approveMember(pendingMember(dee, ""), "member", "  ")).rejects.toThrow(
      /type the fingerprint Dee reads out to you \(`quorate enroll` printed it/,
    );
    expect(server.writes()).toEqual([]);
  });
});

describe("approving a node (issue 14, item 2)", () => {
  const model = "ab".repeat(32);

  it("refuses keys the server swapped under the node's honest fingerprint, and signs nothing", async () => {
    const { server, device } = await vault();
    const node = await strangerKeys();
    const honest = shortFingerprint(await fingerprintOf(node));
    const forged = pendingNode(await strangerKeys(), await fingerprintOf(node));
    await expect(device.approveNode(forged, honest, model, "rack 3", 30)).rejects.toThrow(
      /not that of the keys the server sent for node gpu-1, so nothing was signed.*`quorate-node status` prints it/,
    );
    expect(server.writes()).toEqual([]);
  });

  it("signs the keys whose fingerprint was typed", async () => {
    const { server, device } = await vault();
    const node = await strangerKeys();
    let signed: Uint8Array | null = null;
    server.on("POST", /\/nodes\/[^/]+\/approval$/, (body) => {
      signed = Uint8Array.from(atob((body as { approval: string }).approval), (c) => c.charCodeAt(0));
      return pendingNode(node, "");
    });
    await device.approveNode(pendingNode(node, ""), shortFingerprint(await fingerprintOf(node)), model, "rack 3", 30);
    expect(signed).not.toBeNull();
    const approval = await verify("node-approval", signed as unknown as Uint8Array);
    expect(hex(approval.statement.node.verifyingKey)).toBe(hex(node.verifyingKey));
  });
});

describe("revoking a node", () => {
  it("names the keys of the approval verified here, not the keys the server lists now", async () => {
    const { admin, server, device } = await vault(GOLDEN_VAULT);
    const approved = (await verify("node-approval", golden("node-approval"))).statement;
    let signed = "";
    server.on("POST", /\/nodes\/[^/]+\/approval$/, (body) => {
      signed = (body as { approval: string }).approval;
      return pendingNode(approved.node, "");
    });
    // The server lists the node with keys of its own beside the approval an admin signed.
    const listed = { ...pendingNode(await strangerKeys(), ""), status: "approved" as const, approval: toBase64(golden("node-approval")) };
    await device.revokeNode(listed);
    const [revocation, signer] = await (await device.roster()).verifyByAdmin("node-approval", signed);
    expect(signer.fingerprint).toBe(admin.fingerprintHex);
    expect(revocation.statement.revoked).toBe(true);
    expect(hex(revocation.statement.node.verifyingKey)).toBe(hex(approved.node.verifyingKey));
  });
});

describe("a node's statements are vouched for only by a live approval (issue 14, item 2)", () => {
  /** The golden transcript manifest (node key 6s, made at 1_700_000_400) as the server lists it. */
  const transcript: Schemas["TranscriptView"] = {
    transcript_id: uuidText(new Uint8Array(16).fill(0x14)),
    recording_id: uuidText(new Uint8Array(16).fill(0x11)),
    request_id: uuidText(new Uint8Array(16).fill(0x12)),
    node_id: GOLDEN_NODE,
    ciphertext_len: 4321,
    created_at: 1_700_000_400,
    manifest: toBase64(golden("transcript-manifest")),
  };

  /** The golden vault, whose admin signed the golden node approval; the server serves `approval` for the node. */
  async function withApproval(change: Partial<{ revoked: boolean; issuedAt: number; expiresAt: number }>) {
    const { admin, server, device } = await vault(GOLDEN_VAULT);
    const honest = (await verify("node-approval", golden("node-approval"))).statement;
    const approval = await sign("node-approval", encodeNodeApproval({ ...honest, ...change }), admin.signingKey, admin.verifyingKey);
    server.on("GET", new RegExp(`/nodes/${GOLDEN_NODE}$`), () => ({
      ...pendingNode(honest.node, ""),
      status: "approved",
      approval: toBase64(approval),
    }));
    return { device, roster: await device.roster() };
  }

  it("accepts a transcript its node made while approved", async () => {
    const { device, roster } = await withApproval({});
    expect((await device.transcriptManifest(roster, transcript)).language).toBe("en");
  });

  it("refuses every transcript of a node whose newest approval is a revocation", async () => {
    const { device, roster } = await withApproval({ revoked: true });
    await expect(device.transcriptManifest(roster, transcript)).rejects.toThrow(
      /was revoked, so nothing it signed is trusted: have another node make it again/,
    );
  });

  it("refuses a transcript its node made after its approval lapsed", async () => {
    const { device, roster } = await withApproval({ issuedAt: 1_699_000_000, expiresAt: 1_700_000_300 });
    await expect(device.transcriptManifest(roster, transcript)).rejects.toThrow(/after its approval lapsed/);
  });

  it("accepts a transcript made before a renewal (the window's start is not the test)", async () => {
    const { device, roster } = await withApproval({ issuedAt: 1_700_000_500, expiresAt: 1_800_000_000 });
    expect((await device.transcriptManifest(roster, transcript)).language).toBe("en");
  });
});

describe("a recording's manifest (issue 14, item 4, as the browser mirrors it)", () => {
  /** The golden vault with the golden member (the golden manifest's uploader) on its roster. */
  async function withUploader() {
    const { admin, device, chain } = await vault(GOLDEN_VAULT);
    const member = (await verify("roster-entry", golden("roster-entry"))).statement.member;
    const roster = await Roster.verify(GOLDEN_VAULT, chain);
    chain.push(await roster.signChange(admin.signingKey, admin.verifyingKey, "add", member, "Bo", "member", 1_700_000_050));
    return { admin, device, roster: await device.roster() };
  }

  function view(manifest: Uint8Array): Schemas["RecordingView"] {
    return { recording_id: uuidText(new Uint8Array(16).fill(0x11)), manifest: toBase64(manifest) } as Schemas["RecordingView"];
  }

  /** The golden manifest with its roster head set to `head`, signed again by its uploader. */
  async function manifestFor(head: Uint8Array): Promise<Uint8Array> {
    const verified = await verify("recording-manifest", golden("recording-manifest"));
    const body = parseSigned(golden("recording-manifest")).body.slice();
    const at = findBytes(body, verified.statement.rosterHead);
    body.set(head, at);
    for (let seed = 1; seed < 32; seed++) {
      const [key, public_] = await signer(seed);
      if (hex(public_) === hex(verified.signer)) return sign("recording-manifest", body, key, public_);
    }
    throw new Error("the golden uploader's seed is not a repeated byte below 32");
  }

  function findBytes(haystack: Uint8Array, needle: Uint8Array): number {
    for (let at = 0; at + needle.length <= haystack.length; at++) {
      if (needle.every((byte, i) => haystack[at + i] === byte)) return at;
    }
    throw new Error("not found");
  }

  it("accepts the manifest its uploader signed for a head of the vault's chain", async () => {
    const { device, roster } = await withUploader();
    const manifest = await manifestFor(roster.head());
    expect((await device.recordingManifest(roster, view(manifest))).ciphertextLen).toBe(123_456);
  });

  it("refuses a manifest its uploader signed for a roster head outside the vault's chain (issue 14, item 15)", async () => {
    const { device, roster } = await withUploader();
    const manifest = await manifestFor(new Uint8Array(32).fill(7));
    await expect(device.recordingManifest(roster, view(manifest))).rejects.toThrow(/forked roster/);
  });

  it("refuses a manifest re-signed by another member (titles and attendees of the server's choosing)", async () => {
    const { admin, device, roster } = await withUploader();
    const forged = await sign("recording-manifest", parseSigned(golden("recording-manifest")).body, admin.signingKey, admin.verifyingKey);
    await expect(device.recordingManifest(roster, view(forged))).rejects.toThrow(
      /the recording manifest is not signed by its uploader, a member of the roster/,
    );
  });
});

describe("the roster pin", () => {
  it("refuses a roster rolled back past the head this browser saw", async () => {
    const { admin, device, chain } = await vault();
    const roster = await device.roster();
    chain.push(await roster.signChange(admin.signingKey, admin.verifyingKey, "add", await strangerKeys(), "Dee", "member", 1_700_000_100));
    await device.roster();
    chain.pop();
    await expect(device.roster()).rejects.toThrow(/no longer holds the entries this browser saw/);
  });

  it("refuses a roster that starts at another genesis", async () => {
    const { device, chain } = await vault();
    await device.roster();
    chain[0] = await genesis(device.vaultId, await adminIdentity());
    await expect(device.roster()).rejects.toThrow(/does not start at the genesis this browser pinned/);
  });
});

describe("signing in (issue 14, item 6)", () => {
  async function signInTo(chosen: string, answeredVault: string) {
    const admin = await adminIdentity();
    const server = new LyingServer();
    server
      .on("POST", /\/auth\/challenge$/, () => ({
        challenge_id: crypto.randomUUID(),
        nonce: toBase64(crypto.getRandomValues(new Uint8Array(32))),
        expires_at: 0,
      }))
      .on("POST", /\/auth\/session$/, () => ({ token: "session", expires_at: 0 }))
      .on("GET", /^\/api\/v1\/me$/, () => ({ fingerprint: admin.fingerprintHex, name: "Ada", role: "admin", vault_id: answeredVault }));
    // The server holds a chain for the vault it names, of its own making.
    serveRoster(server, answeredVault, [await genesis(answeredVault, await adminIdentity())]);
    serveRoster(server, chosen, [await genesis(chosen, admin)]);
    const pins = new Pins();
    return { pins, signedIn: signIn("", chosen, admin, pins) };
  }

  it("refuses a server whose /me names another vault than the one chosen, and pins nothing", async () => {
    const chosen = crypto.randomUUID();
    const { pins, signedIn } = await signInTo(chosen, crypto.randomUUID());
    await expect(signedIn).rejects.toThrow(/the server answered for vault .*, not for the vault you chose \(/);
    expect([...pins.items.keys()]).toEqual([]);
  });

  it("pins the roster under the vault chosen at sign-in", async () => {
    const chosen = crypto.randomUUID();
    const { pins, signedIn } = await signInTo(chosen.toUpperCase(), chosen);
    const device = await signedIn;
    expect(device.vaultId).toBe(chosen);
    await device.roster();
    expect([...pins.items.keys()]).toEqual([`quorate:pin:${chosen}`]);
  });
});

describe("the audit log (issue 14, item 8)", () => {
  type Item = { action: string; statement?: Uint8Array };

  /** The chain an honest server would keep for `items`, hashed from entry 0. */
  async function chain(items: Item[]): Promise<Schemas["AuditEntryView"][]> {
    const entries: Schemas["AuditEntryView"][] = [];
    let previous = new Uint8Array(32);
    for (const [seq, item] of items.entries()) {
      const entry = {
        seq,
        time: 1_700_000_000 + seq,
        actor: "server",
        action: item.action,
        subject: `thing ${seq}`,
        statement: item.statement ? toBase64(item.statement) : null,
      };
      const hash = await auditEntryHash(GOLDEN_VAULT, entry, previous);
      entries.push({ ...entry, prev_hash: hex(previous), hash: hex(hash) });
      previous = new Uint8Array(hash);
    }
    return entries;
  }

  /** The golden vault's admin device, over a server that serves `log` (changed by the test). */
  async function auditVault() {
    const { admin, server, chain: roster, device } = await vault(GOLDEN_VAULT);
    const items: Item[] = [
      { action: "vault.created" },
      { action: "roster.genesis", statement: roster[0] },
      { action: "policy.set", statement: golden("vault-policy") },
      { action: "node.enrolled" },
      { action: "node.approved", statement: golden("node-approval") },
      { action: "transcript.stored", statement: golden("transcript-manifest") },
    ];
    const served = { log: await chain(items) };
    server.on("GET", /\/audit$/, () => served.log);
    return { admin, chain: roster, device, items, served };
  }

  /** `statement`'s body signed again by a key of no one in the vault: a valid signature. */
  async function resignedByStranger(statement: Uint8Array): Promise<Uint8Array> {
    const signed = parseSigned(statement);
    const [key, verifyingKey] = await signer(0x66);
    return sign(signed.kind, signed.body, key, verifyingKey);
  }

  it("accepts an honest log that grows, and pins its head", async () => {
    const { device, items, served } = await auditVault();
    expect((await device.verifyAudit(() => {})).entries).toHaveLength(6);
    served.log = await chain([...items, { action: "job.queued" }]);
    const { head } = await device.verifyAudit(() => {});
    expect(head).toBe(served.log[6]?.hash);
  });

  it("refuses a log rewritten without an entry and re-hashed, once it has seen the head", async () => {
    const { device, items, served } = await auditVault();
    await device.verifyAudit(() => {});
    // The server deletes entry 3 and recomputes every later hash: a valid chain, one shorter…
    served.log = await chain(items.filter((_, seq) => seq !== 3));
    await expect(device.verifyAudit(() => {})).rejects.toThrow(
      /the audit log no longer holds entry 5 as this browser verified it before: it was rewritten or cut/,
    );
    // …and with an entry appended to make up the length, the head still differs.
    served.log = await chain([...items.filter((_, seq) => seq !== 3), { action: "job.queued" }]);
    await expect(device.verifyAudit(() => {})).rejects.toThrow(/no longer holds entry 5/);
  });

  it("refuses a log cut before the head it verified", async () => {
    const { device, items, served } = await auditVault();
    await device.verifyAudit(() => {});
    served.log = await chain(items.slice(0, 4));
    await expect(device.verifyAudit(() => {})).rejects.toThrow(/no longer holds entry 5/);
  });

  it("refuses a log that does not start at entry 0", async () => {
    const { device, served } = await auditVault();
    served.log = served.log.slice(2).map((entry, i) => (i === 0 ? { ...entry, prev_hash: "00".repeat(32) } : entry));
    await expect(device.verifyAudit(() => {})).rejects.toThrow(/audit entry 2 does not follow/);
  });

  it("refuses an admin's statement validly signed by a key off the roster", async () => {
    const { device, items, served } = await auditVault();
    served.log = await chain([...items, { action: "policy.set", statement: await resignedByStranger(golden("vault-policy")) }]);
    await expect(device.verifyAudit(() => {})).rejects.toThrow(
      /audit entry 6 carries a statement that is refused: the vault-policy is not signed by an admin/,
    );
  });

  it("refuses a node's statement signed by a key no admin approved for that node", async () => {
    const { device, items, served } = await auditVault();
    const forged = await resignedByStranger(golden("transcript-manifest"));
    served.log = await chain([...items, { action: "transcript.stored", statement: forged }]);
    await expect(device.verifyAudit(() => {})).rejects.toThrow(
      /audit entry 6 carries a statement that is refused: the transcript-manifest is not signed by a key an admin approved for node/,
    );
    // Nor does a node's statement count before any approval of that node in the log.
    served.log = await chain([items[0]!, items[1]!, items[5]!]);
    await expect(device.verifyAudit(() => {})).rejects.toThrow(/entry 2 carries a statement that is refused/);
  });

  it("refuses a member's statement signed by someone else than the member it names", async () => {
    const { device, items, served } = await auditVault();
    // The golden request names the golden member as requester; the admin signs it here.
    const request = parseSigned(golden("unlock-request"));
    const [admin, adminKey] = await signer(2);
    const signed = await sign("unlock-request", request.body, admin, adminKey);
    served.log = await chain([...items, { action: "request.created", statement: signed }]);
    await expect(device.verifyAudit(() => {})).rejects.toThrow(/the unlock-request is not signed by its requester/);
  });

  it("refuses a request a recorder signed in its own name: a recorder only uploads", async () => {
    const { admin, chain: roster, device, items, served } = await auditVault();
    const [recorderKey, verifyingKey] = await signer(0x52);
    const keys = { recipient: new Uint8Array(32).fill(0x52), verifyingKey };
    const added = await (
      await Roster.verify(GOLDEN_VAULT, roster)
    ).signChange(admin.signingKey, admin.verifyingKey, "add", keys, "jibri-1", "recorder", 1_700_000_100);
    roster.push(added);
    const goldenRequest = (await verify("unlock-request", golden("unlock-request"))).statement;
    const body = encodeUnlockRequest({ ...goldenRequest, requester: await fingerprintOf(keys) });
    const signed = await sign("unlock-request", body, recorderKey, verifyingKey);
    served.log = await chain([
      ...items,
      { action: "roster.added", statement: added },
      { action: "request.created", statement: signed },
    ]);
    await expect(device.verifyAudit(() => {})).rejects.toThrow(
      /audit entry 7 carries a statement that is refused: the unlock-request is not signed by its requester/,
    );
  });
});
