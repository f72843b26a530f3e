// Joining from the browser (issue 18, item 5) against a server that lies about the vault
// the code enrols into: each lie is refused and nothing is pinned.
import { afterEach, describe, expect, it, vi } from "vitest";

import { Client } from "../src/client";
import { adminDevice } from "./fixtures";
import { createIdentity } from "../src/identity";
import { enrol, lookUpCode, parseGenesis } from "../src/join";
import { Roster } from "../src/roster";
import { encodeVaultPolicy, parseSigned, sign, verify } from "../src/statements";
import { fromBase64, hex, sha256, toBase64 } from "../src/wire";
import { LyingServer, Pins, adminIdentity, genesis, memberIdentity, rosterChange } from "./fixtures";

afterEach(() => {
  vi.unstubAllGlobals();
});

const CODE = "ABCD-EFGH-JKLM";

/** A server with one code for `purpose` in `vaultId`; answers enrolment with `answer`. */
function server(vaultId: string, purpose: "first-admin" | "member" | "node", answer: (body: unknown) => unknown) {
  return new LyingServer()
    .on("POST", /^\/api\/v1\/enrol\/lookup$/, () => ({ vault_id: vaultId, purpose, expires_at: 2_000_000_000 }))
    .on("POST", /^\/api\/v1\/enrol\/(first-admin|member)$/, answer);
}

async function newcomer() {
  return (await createIdentity("a passphrase long enough", 10)).identity;
}

describe("the first admin starts a vault in the browser", () => {
  it("signs the genesis entry, checks the server kept it, and pins it", async () => {
    const vaultId = crypto.randomUUID();
    const me = await newcomer();
    let posted: Uint8Array | null = null;
    server(vaultId, "first-admin", async (body) => {
      posted = fromBase64((body as { genesis: string }).genesis);
      return { vault_id: vaultId, roster_genesis: hex(await sha256(posted)), genesis_entry: toBase64(posted), fingerprint: me.fingerprintHex };
    });
    const pins = new Pins();
    const client = new Client("");
    const joined = await enrol(client, CODE, await lookUpCode(client, CODE), "Ada", me, null, pins);
    expect(joined.firstAdmin).toBe(true);
    expect(joined.founder.fingerprint).toBe(me.fingerprintHex);
    expect(joined.founder.name).toBe("Ada");
    // The entry is a genesis the Rust side's rules accept too: sequence 0, self-signed admin.
    const roster = await Roster.verify(vaultId, [posted!]);
    expect(roster.genesis()).toBe(joined.genesis);
    expect(parseSigned(posted!).kind).toBe("roster-entry");
    expect((await verify("roster-entry", posted!)).statement.role).toBe("admin");
    expect(JSON.parse(pins.getItem(`quorate:pin:${vaultId}`)!)).toEqual({ genesis: joined.genesis, length: 1, head: joined.genesis });
  });

  it("refuses a server that answers with a genesis of its own, and pins nothing", async () => {
    const vaultId = crypto.randomUUID();
    const me = await newcomer();
    const theirs = await genesis(vaultId, await adminIdentity());
    server(vaultId, "first-admin", async () => ({
      vault_id: vaultId,
      roster_genesis: hex(await sha256(theirs)),
      genesis_entry: toBase64(theirs),
      fingerprint: me.fingerprintHex,
    }));
    const pins = new Pins();
    const client = new Client("");
    await expect(enrol(client, CODE, await lookUpCode(client, CODE), "Ada", me, null, pins)).rejects.toThrow(
      /a genesis other than the one this browser signed, so nothing was pinned/,
    );
    expect(pins.items.size).toBe(0);
  });
});

describe("a member joins with an invite", () => {
  async function honestVault() {
    const vaultId = crypto.randomUUID();
    const entry = await genesis(vaultId, await adminIdentity());
    const digest = hex(await sha256(entry));
    return { vaultId, entry, digest };
  }

  it("sends only public keys, pins the genesis the entry proves, and compares it with the one read out", async () => {
    const { vaultId, entry, digest } = await honestVault();
    const me = await newcomer();
    const lying = server(vaultId, "member", () => ({ vault_id: vaultId, roster_genesis: digest, genesis_entry: toBase64(entry), fingerprint: me.fingerprintHex }));
    const pins = new Pins();
    const client = new Client("");
    const typed = `${digest.slice(0, 32).toUpperCase()} ${digest.slice(32)}`;
    const joined = await enrol(client, CODE, await lookUpCode(client, CODE), "Dee", me, parseGenesis(typed), pins);
    expect(joined).toMatchObject({ vaultId, genesis: digest, firstAdmin: false, recorder: false });
    expect(joined.founder.name).toBe("Ada");
    const sent = JSON.stringify(lying.writes());
    expect(sent).not.toContain(me.ageSecret);
    expect(lying.writes().map((write) => write.path)).toEqual(["/api/v1/enrol/lookup", "/api/v1/enrol/member"]);
  });

  it("refuses a genesis other than the one an admin read out, and pins nothing", async () => {
    const { vaultId, entry, digest } = await honestVault();
    const other = await honestVault();
    const me = await newcomer();
    server(vaultId, "member", () => ({ vault_id: vaultId, roster_genesis: digest, genesis_entry: toBase64(entry), fingerprint: me.fingerprintHex }));
    const pins = new Pins();
    const client = new Client("");
    await expect(enrol(client, CODE, await lookUpCode(client, CODE), "Dee", me, other.digest, pins)).rejects.toThrow(
      /not the .* you were given, so nothing was pinned/,
    );
    expect(pins.items.size).toBe(0);
  });

  it("refuses a genesis entry that is not the digest the server names, or another vault's", async () => {
    const { vaultId, entry } = await honestVault();
    const other = await honestVault();
    const me = await newcomer();
    for (const answer of [
      { vault_id: vaultId, roster_genesis: other.digest, genesis_entry: toBase64(entry) },
      { vault_id: vaultId, roster_genesis: other.digest, genesis_entry: toBase64(other.entry) },
      { vault_id: other.vaultId, roster_genesis: other.digest, genesis_entry: toBase64(other.entry) },
    ]) {
      server(vaultId, "member", () => ({ ...answer, fingerprint: me.fingerprintHex }));
      const pins = new Pins();
      const client = new Client("");
      await expect(enrol(client, CODE, await lookUpCode(client, CODE), "Dee", me, null, pins)).rejects.toThrow(/nothing was pinned/);
      expect(pins.items.size).toBe(0);
    }
  });

  it("refuses a genesis other than the one this browser pinned for the vault before", async () => {
    const { vaultId, entry, digest } = await honestVault();
    const me = await newcomer();
    server(vaultId, "member", () => ({ vault_id: vaultId, roster_genesis: digest, genesis_entry: toBase64(entry), fingerprint: me.fingerprintHex }));
    const pins = new Pins();
    const earlier = JSON.stringify({ genesis: "ab".repeat(32), length: 3, head: "cd".repeat(32) });
    pins.setItem(`quorate:pin:${vaultId}`, earlier);
    const client = new Client("");
    await expect(enrol(client, CODE, await lookUpCode(client, CODE), "Dee", me, null, pins)).rejects.toThrow(/pinned another genesis/);
    expect(pins.getItem(`quorate:pin:${vaultId}`)).toBe(earlier);
  });

  it("sends a node invite to the node, and says what a mistyped code means", async () => {
    server(crypto.randomUUID(), "node", () => undefined);
    await expect(lookUpCode(new Client(""), CODE)).rejects.toThrow(/node invite: run `quorate-node enroll`/);
    new LyingServer();
    await expect(lookUpCode(new Client(""), CODE)).rejects.toThrow(/knows no such code/);
    await expect(lookUpCode(new Client(""), "  ")).rejects.toThrow(/type the code/);
  });

  it("reads a genesis typed with dashes, spaces or colons, and refuses anything else", () => {
    const digest = "0123456789abcdef".repeat(4);
    expect(parseGenesis(digest.toUpperCase().match(/.{4}/g)!.join("-"))).toBe(digest);
    expect(parseGenesis(digest.match(/.{2}/g)!.join(":"))).toBe(digest);
    expect(() => parseGenesis(digest.slice(1))).toThrow(/64 hex digits/);
  });
});

describe("the first admin's search key, made in the browser", () => {
  it("is committed to, sealed to the admin alone, and opens to the committed key", async () => {
    const vaultId = crypto.randomUUID();
    const admin = await adminIdentity();
    const chain = [await genesis(vaultId, admin)];
    const lying = new LyingServer()
      .on("GET", /\/roster$/, () => ({ entries: chain.map(toBase64) }))
      .on("GET", /\/search-key$/, () => ({ holders: [] }))
      .on("POST", /\/search-key$/, () => undefined);
    const device = adminDevice(vaultId, admin);
    await device.makeSearchKey();
    const [post] = lying.writes();
    const body = post!.body as { commitment: string; grants: { holder: string; sealed: string }[] };
    expect(body.grants.map((grant) => grant.holder)).toEqual([admin.fingerprintHex]);
    lying.on("GET", /\/search-key$/, () => ({ commitment: body.commitment, sealed: body.grants[0]!.sealed, holders: [admin.fingerprintHex] }));
    const key = (await device.searchKeys(await device.roster()))?.current;
    expect(key).toHaveLength(32);
    // A vault that has a key already gets no second one.
    await expect(device.makeSearchKey()).rejects.toThrow(/has a search key already/);
    expect(lying.writes()).toHaveLength(1);
  });
});

describe("the vault policy, set in the browser", () => {
  async function adminVault() {
    const vaultId = crypto.randomUUID();
    const admin = await adminIdentity();
    const chain = [await genesis(vaultId, admin)];
    const lying = new LyingServer().on("GET", /\/roster$/, () => ({ entries: chain.map(toBase64) }));
    const device = adminDevice(vaultId, admin);
    return { lying, device, roster: await device.roster() };
  }

  const noPolicy = () => Response.json({ code: "no_policy", message: "none yet" }, { status: 404 });

  it("starts at sequence 0, then follows the newest verified policy", async () => {
    const { lying, device, roster } = await adminVault();
    lying.on("GET", /\/policy$/, noPolicy).on("PUT", /\/policy$/, () => undefined);
    expect(await device.policyIfAny(roster)).toBeNull();
    expect(await device.setPolicy(roster, 2)).toMatchObject({ sequence: 0, minThreshold: 2 });
    const sent = (lying.writes()[0]!.body as { statement: string }).statement;
    expect((await verify("vault-policy", fromBase64(sent))).statement).toMatchObject({ sequence: 0, minThreshold: 2, vaultId: device.vaultId });
    lying.on("GET", /\/policy$/, () => ({ statement: sent }));
    expect(await device.setPolicy(roster, 3)).toMatchObject({ sequence: 1, minThreshold: 3 });
  });

  it("refuses a server that says there is no policy after this browser verified one, and signs nothing", async () => {
    const { lying, device, roster } = await adminVault();
    lying.on("GET", /\/policy$/, noPolicy).on("PUT", /\/policy$/, () => undefined);
    await device.setPolicy(roster, 2);
    await expect(device.policyIfAny(roster)).rejects.toThrow(/verified policy 0 before \(a rollback\)/);
    await expect(device.setPolicy(roster, 1)).rejects.toThrow(/rollback/);
    expect(lying.writes()).toHaveLength(1);
  });

  it("keeps a policy in force after the admin who signed it was replaced", async () => {
    const vaultId = crypto.randomUUID();
    const [ada, bo] = [await adminIdentity(), await memberIdentity()];
    const chain = [await genesis(vaultId, ada)];
    const policy = await sign(
      "vault-policy",
      encodeVaultPolicy({ vaultId, sequence: 0, minThreshold: 2, issuedAt: 1 }),
      ada.signingKey,
      ada.verifyingKey,
    );
    chain.push(await rosterChange(vaultId, chain, ada, bo, true, "Bo", "admin"));
    chain.push(await rosterChange(vaultId, chain, bo, ada, false, "Ada", "admin"));
    const lying = new LyingServer()
      .on("GET", /\/roster$/, () => ({ entries: chain.map(toBase64) }))
      .on("GET", /\/policy$/, () => ({ statement: toBase64(policy) }));
    const device = adminDevice(vaultId, bo);
    expect(await device.policy(await device.roster())).toMatchObject({ minThreshold: 2 });
    expect(lying.writes()).toHaveLength(0);
  });

  it("refuses a threshold that is not 1 to 255", async () => {
    const { device, roster } = await adminVault();
    for (const threshold of [0, 1.5, 256, Number.NaN]) {
      await expect(device.setPolicy(roster, threshold)).rejects.toThrow(/1 to 255/);
    }
  });
});
