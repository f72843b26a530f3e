// What the browser's device spends its time on, measured with Vitest's bench mode (tinybench)
// in Node.js, whose WebCrypto is the same primitives a browser has:
//   npx vitest bench --run
// - opening an identity file at the default scrypt work factor (18): the sign-in wait;
// - verifying a statement (Ed25519 + parse + SHA-256), which every page does many times;
// - replaying a roster of 50 entries; re-wrapping a share to a node (open, check, seal);
// - what the Record page does: encrypting and hashing a recording as a stream (per 8 MiB,
//   the speed a file upload can reach at most), and splitting a secret among 10 members with
//   its Feldman commitments and each share sealed (the wait after Stop).
import { Encrypter, armor, generateIdentity, identityToRecipient } from "age-encryption";
import { bench, describe } from "vitest";

import { openIdentityFile, signingKeys } from "../src/identity";
import { Roster } from "../src/roster";
import { sha256 as sha256Stream } from "@noble/hashes/sha2.js";

import { bindingFor, encodeSharePlaintext, rewrap, seal } from "../src/sealed";
import { randomScalar, split as splitKey } from "../src/vss";
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
const sharing = splitKey(randomScalar(), 2, 2);
const split = {
  recipient: new Uint8Array(32).fill(9),
  k: 2,
  n: 2,
  holders: ["aa".repeat(32), "bb".repeat(32)],
  commitments: sharing.commitments,
};
const subject = { kind: "recording", id: VAULT } as const;
const binding = bindingFor(VAULT, subject, split, "bb".repeat(32));
if (!binding) throw new Error("no binding");
const plaintext = new Writer("quorate/share/v2")
  .fixed(uuidBytes(VAULT))
  .u8(1)
  .fixed(uuidBytes(VAULT))
  .fixed(split.recipient)
  .u8(2)
  .u8(2)
  .u8(2)
  .fixed(new Uint8Array(32).fill(0xbb))
  .bytes(sharing.commitments)
  .fixed(sharing.shares[1]!.value)
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
  language: null,
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

// Eight MiB of "audio" in MediaRecorder-sized pieces, and ten members' recipients.
const recording = crypto.getRandomValues(new Uint8Array(1 << 16));
const members = await Promise.all(
  Array.from({ length: 10 }, async () => {
    const text = await identityToRecipient(await generateIdentity());
    return Uint8Array.from(bech32.fromWords(bech32.decode(text as `${string}1${string}`).words));
  }),
);

describe("the Record page", () => {
  bench("encrypt and hash 8 MiB as a stream (typage STREAM, SHA-256)", async () => {
    let pieces = 128;
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pieces-- === 0) return controller.close();
        controller.enqueue(recording);
      },
    });
    const encrypter = new Encrypter();
    encrypter.addRecipient(await identityToRecipient(member));
    const hasher = sha256Stream.create();
    const reader = (await encrypter.encrypt(source)).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      hasher.update(value);
    }
    hasher.digest();
  });

  bench("split a secret 3-of-10 with its commitments, seal each share", async () => {
    const { shares, commitments } = splitKey(randomScalar(), 3, 10);
    for (const [position, share] of shares.entries()) {
      const shareBinding = {
        vaultId: VAULT,
        subject,
        recipient: split.recipient,
        k: 3,
        n: 10,
        index: share.index,
        member: "aa".repeat(32),
        commitments,
      };
      await seal(encodeSharePlaintext(shareBinding, share.value), members[position] as Uint8Array);
    }
  });
});
