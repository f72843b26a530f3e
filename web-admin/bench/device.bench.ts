// What the browser's device spends its time on, measured with Vitest's bench mode (tinybench)
// in Node.js, whose WebCrypto is the same primitives a browser has:
//   npx vitest bench --run
// - opening an identity file at the default scrypt work factor (18): the sign-in wait;
// - verifying a statement (Ed25519 + parse + SHA-256), which every page does many times;
// - replaying a roster of 50 entries; re-wrapping a share to a node (open, check, seal).
import { Encrypter, armor, generateIdentity, identityToRecipient } from "age-encryption";
import { bench, describe } from "vitest";

import { openIdentityFile, signingKeys } from "../src/identity";
import { Roster } from "../src/roster";
import { bindingFor, rewrap, seal } from "../src/sealed";
import { encodeRosterEntry, sign, verify } from "../src/statements";
import { Writer, uuidBytes } from "../src/wire";
import { bech32 } from "@scure/base";

const VAULT = "11111111-2222-3333-4444-555555555555";

async function identityFile(workFactor: number): Promise<string> {
  const age = await generateIdentity();
  const seed = btoa(String.fromCharCode(...new Uint8Array(32).fill(7)));
  const encrypter = new Encrypter();
  encrypter.setPassphrase("bench");
  encrypter.setScryptWorkFactor(workFactor);
  const sealed = await encrypter.encrypt(`quorate-identity-v1\nage: ${age}\ned25519: ${seed}\n`);
  return armor.encode(sealed);
}

async function roster(length: number): Promise<Uint8Array[]> {
  const [adminKey, adminPublic] = await signingKeys(new Uint8Array(32).fill(1));
  const genesis = encodeRosterEntry({
    vaultId: VAULT,
    sequence: 0,
    previous: new Uint8Array(32),
    change: "add",
    role: "admin",
    member: { recipient: new Uint8Array(32).fill(1), verifyingKey: adminPublic },
    name: "Ada",
    issuedAt: 1_700_000_000,
  });
  const entries: Uint8Array[] = [await sign("roster-entry", genesis, adminKey, adminPublic)];
  for (let i = 1; i < length; i++) {
    const chain = await Roster.verify(VAULT, entries);
    const [, memberPublic] = await signingKeys(new Uint8Array(32).fill(i + 1));
    entries.push(
      await chain.signChange(
        adminKey,
        adminPublic,
        "add",
        { recipient: new Uint8Array(32).fill(i + 1), verifyingKey: memberPublic },
        `Member ${i}`,
        "member",
        1_700_000_000 + i,
      ),
    );
  }
  return entries;
}

const file = await identityFile(18);
const chain = await roster(50);
const statement = chain[chain.length - 1] as Uint8Array;

// A member's sealed share, and what re-wrapping it needs.
const member = await generateIdentity();
const memberRecipient = Uint8Array.from(bech32.fromWords(bech32.decode((await identityToRecipient(member)) as `${string}1${string}`).words));
const split = { recipient: new Uint8Array(32).fill(9), k: 2, n: 2, shares: [{ member: "aa".repeat(32) }, { member: "bb".repeat(32) }] };
const subject = { kind: "recording", id: VAULT } as const;
const binding = bindingFor(VAULT, subject, split, "bb".repeat(32));
if (!binding) throw new Error("no binding");
const plaintext = new Writer("quorate/share/v1")
  .fixed(uuidBytes(VAULT))
  .u8(1)
  .fixed(uuidBytes(VAULT))
  .fixed(split.recipient)
  .u8(2)
  .u8(2)
  .u8(2)
  .fixed(new Uint8Array(32).fill(0xbb))
  .fixed(new Uint8Array(32).fill(0x77))
  .finish();
const sealedShare = await seal(plaintext, memberRecipient);
const request = {
  vaultId: VAULT,
  requestId: VAULT,
  subject,
  purpose: "transcribe",
  nodeId: VAULT,
  requester: "aa".repeat(32),
  reason: "bench",
  createdAt: 1,
  expiresAt: 2,
} as const;

describe("the browser's device", () => {
  bench("open an identity file (scrypt work factor 18)", async () => {
    await openIdentityFile(file, "bench");
  }, { iterations: 5, warmupIterations: 1 });

  bench("verify one statement (roster entry)", async () => {
    await verify("roster-entry", statement);
  });

  bench("replay a roster of 50 entries", async () => {
    await Roster.verify(VAULT, chain);
  });

  bench("re-wrap a share to a node (open, check binding, seal)", async () => {
    await rewrap(sealedShare, member, binding, request, memberRecipient);
  });
});
