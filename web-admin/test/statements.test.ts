// The browser's statements, shares and roster against the bytes the Rust side pins in its
// golden wire-format file (services/quorate-crypto/tests/golden/wire-format.txt): every
// statement verifies here and a flipped bit anywhere is refused; the statements a browser
// signs re-encode and re-sign (Ed25519 is deterministic) to exactly the Rust bytes.
import { describe, expect, it } from "vitest";

import { Roster } from "../src/roster";
import {
  type ShareBinding,
  checkCurrentSharePlaintext,
  checkSharePlaintext,
  checkSubsharePlaintext,
  encodeNodeShare,
  encodeSharePlaintext,
  encodeSubsharePlaintext,
} from "../src/sealed";
import { scalarFromBytes, splitWith } from "../src/vss";
import {
  type Kind,
  encodeNodeApproval,
  encodeRosterEntry,
  encodeUnlockRequest,
  encodeVote,
  decodeRecordingMetadata,
  encodeRecordingMetadata,
  encodeRecordingManifest,
  encodeReshareDeal,
  encodeSearchKeyRotation,
  encodeVaultPolicy,
  fingerprintOf,
  parseSigned,
  sign,
  verify,
  verifyAny,
} from "../src/statements";
import { MalformedError, NewerFormatError, Reader, Writer, hex, uuidText } from "../src/wire";
import { golden as bytes, signer } from "./fixtures";

const STATEMENTS: [string, Kind][] = [
  ["roster-entry", "roster-entry"],
  ["roster-entry-recorder", "roster-entry"],
  ["node-approval", "node-approval"],
  ["recording-manifest", "recording-manifest"],
  ["unlock-request", "unlock-request"],
  ["unlock-request-with-language", "unlock-request"],
  ["vote-approve", "vote"],
  ["vote-deny", "vote"],
  ["transcript-manifest", "transcript-manifest"],
  ["vault-policy", "vault-policy"],
  ["retention-rule", "retention-rule"],
  ["legal-hold", "legal-hold"],
  ["reshare-deal", "reshare-deal"],
  ["search-key-rotation", "search-key-rotation"],
];

describe("statements from the Rust side", () => {
  it.each(STATEMENTS)("%s verifies in the browser", async (name, kind) => {
    const verified = await verify(kind, bytes(name));
    expect((verified.statement as { vaultId: string }).vaultId).toBe(uuidText(new Uint8Array(16).fill(0x10)));
    expect(await verifyAny(bytes(name))).toBe(kind);
  });

  it.each(STATEMENTS)("%s with any one bit flipped is refused", async (name, kind) => {
    const original = bytes(name);
    for (let i = 0; i < original.length; i++) {
      const flipped = original.slice();
      flipped[i] = (flipped[i] ?? 0) ^ (1 << (i % 8));
      await expect(verify(kind, flipped), `bit flipped in byte ${i}`).rejects.toThrow();
    }
  });

  it("reads a retention rule and a hold vote as the Rust side wrote them", async () => {
    const rule = (await verify("retention-rule", bytes("retention-rule"))).statement;
    expect(rule.scope).toEqual({ recordingId: uuidText(new Uint8Array(16).fill(0x11)) });
    expect(rule.recordings).toEqual({ anchor: "released", seconds: 90 * 86_400 });
    expect(rule.minutes).toBeNull();
    const hold = (await verify("legal-hold", bytes("legal-hold"))).statement;
    expect([hold.action, hold.reason, hold.scope]).toEqual(["place", "Case 12-345", { vault: true }]);
  });

  it("reads a re-share deal as the Rust side wrote it", async () => {
    const deal = (await verify("reshare-deal", bytes("reshare-deal"))).statement;
    expect([deal.dealer, deal.newK, deal.reshareId]).toEqual([2, 2, "15".repeat(16)]);
    expect(deal.holders[1]).toBe(hex(bytes("fingerprint")));
    expect(hex(deal.sealedSubsharesSha256[1]!)).toBe("62".repeat(32));
  });

  it("reads a search key rotation as the Rust side wrote it", async () => {
    const rotation = (await verify("search-key-rotation", bytes("search-key-rotation"))).statement;
    expect([rotation.generation, rotation.rosterSequence]).toEqual([1, 3]);
    expect([hex(rotation.previousCheck), hex(rotation.keyCheck), hex(rotation.rosterHead)]).toEqual([
      "63".repeat(32),
      "64".repeat(32),
      "65".repeat(32),
    ]);
  });

  it("a statement of one kind is not accepted as another", async () => {
    await expect(verify("vote", bytes("roster-entry"))).rejects.toThrow(/expected a vote/);
  });

  it("the browser re-encodes and re-signs what it signs to the Rust bytes", async () => {
    const [admin, adminKey] = await signer(2);
    const [member, memberKey] = await signer(4);
    const cases: [string, Kind, (body: never) => Uint8Array, CryptoKey, Uint8Array][] = [
      ["roster-entry", "roster-entry", encodeRosterEntry, admin, adminKey],
      ["roster-entry-recorder", "roster-entry", encodeRosterEntry, admin, adminKey],
      ["node-approval", "node-approval", encodeNodeApproval, admin, adminKey],
      ["unlock-request", "unlock-request", encodeUnlockRequest, member, memberKey],
      ["unlock-request-with-language", "unlock-request", encodeUnlockRequest, member, memberKey],
      ["vote-approve", "vote", encodeVote, admin, adminKey],
      ["vote-deny", "vote", encodeVote, admin, adminKey],
      ["recording-manifest", "recording-manifest", encodeRecordingManifest, member, memberKey],
      ["vault-policy", "vault-policy", encodeVaultPolicy, admin, adminKey],
      ["reshare-deal", "reshare-deal", encodeReshareDeal, member, memberKey],
      ["search-key-rotation", "search-key-rotation", encodeSearchKeyRotation, admin, adminKey],
    ];
    for (const [name, kind, encode, key, verifyingKey] of cases) {
      const original = bytes(name);
      const verified = await verify(kind, original);
      const body = encode(verified.statement as never);
      expect(hex(body), name).toBe(hex(parseSigned(original).body));
      expect(hex(await sign(kind, body, key, verifyingKey)), name).toBe(hex(original));
    }
  });

  it("the member's fingerprint is the Rust one", async () => {
    const entry = await verify("roster-entry", bytes("roster-entry"));
    expect(await fingerprintOf(entry.statement.member)).toBe(hex(bytes("fingerprint")));
  });
});

/** ℓ, the order of ristretto255. */
const GROUP_ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;

describe("shares", () => {
  /** The Rust side's `scalar(first)`: the bytes first, first + 1, … reduced modulo ℓ. */
  function scalar(first: number): bigint {
    const counted = Uint8Array.from({ length: 32 }, (_, i) => (first + i) & 0xff);
    let value = 0n;
    for (let i = 31; i >= 0; i--) value = (value << 8n) | BigInt(counted[i]!);
    return value % GROUP_ORDER;
  }

  /** The golden sharing, 2-of-2, whose second share the golden member holds. */
  const sharing = splitWith(scalar(0x50), [scalar(0x51)], 2);

  async function binding(): Promise<ShareBinding> {
    const manifest = await verify("transcript-manifest", bytes("transcript-manifest"));
    return {
      vaultId: uuidText(new Uint8Array(16).fill(0x10)),
      subject: { kind: "recording", id: uuidText(new Uint8Array(16).fill(0x11)) },
      recipient: manifest.statement.split.recipient,
      k: 2,
      n: 2,
      index: 2,
      member: hex(bytes("fingerprint")),
      commitments: manifest.statement.split.commitments,
    };
  }

  it("a sealed share's plaintext opens to its share when its binding matches", async () => {
    const share = checkSharePlaintext(bytes("share-plaintext"), await binding());
    expect(hex(share)).toBe(hex(sharing.shares[1]!.value));
    expect(scalarFromBytes(share)).toBeTypeOf("bigint");
  });

  it("a binding that differs is named", async () => {
    const expected = await binding();
    expect(() => checkSharePlaintext(bytes("share-plaintext"), { ...expected, index: 1 })).toThrow(/share index/);
    expect(() => checkSharePlaintext(bytes("share-plaintext"), { ...expected, subject: { kind: "transcript", id: expected.subject.id } })).toThrow(/subject/);
    expect(() => checkSharePlaintext(bytes("share-plaintext"), { ...expected, member: "00".repeat(32) })).toThrow(/member/);
    const other = splitWith(scalar(0x50), [scalar(0x52)], 2).commitments;
    expect(() => checkSharePlaintext(bytes("share-plaintext"), { ...expected, commitments: other })).toThrow(/commitments/);
  });

  it("a share off the polynomial its binding commits to is refused", async () => {
    const expected = await binding();
    const forged = encodeSharePlaintext(expected, sharing.shares[0]!.value);
    expect(() => checkSharePlaintext(forged, expected)).toThrow(/not a point of the sharing/);
  });

  it("the browser seals a share as the Rust side does", async () => {
    expect(hex(sharing.commitments)).toBe(hex((await binding()).commitments));
    expect(hex(encodeSharePlaintext(await binding(), sharing.shares[1]!.value))).toBe(hex(bytes("share-plaintext")));
  });

  it("recording metadata encodes to the Rust bytes", () => {
    const metadata = decodeRecordingMetadata(bytes("recording-metadata"));
    expect(hex(encodeRecordingMetadata(metadata))).toBe(hex(bytes("recording-metadata")));
    expect(() => encodeRecordingMetadata({ ...metadata, title: " " })).toThrow(/title/);
    const inFrench = decodeRecordingMetadata(bytes("recording-metadata-with-language"));
    expect(inFrench.language).toBe("fr");
    expect(metadata.language).toBeNull();
    expect(hex(encodeRecordingMetadata(inFrench))).toBe(hex(bytes("recording-metadata-with-language")));
    expect(() => encodeRecordingMetadata({ ...metadata, language: "fr-CA" })).toThrow(/lowercase letters/);
  });

  it("a request names a language only for a transcription, and only as a language code", async () => {
    const request = (await verify("unlock-request", bytes("unlock-request-with-language"))).statement;
    expect(request.language).toBe("fr");
    expect((await verify("unlock-request", bytes("unlock-request"))).statement.language).toBeNull();
    expect(() => encodeUnlockRequest({ ...request, language: "French" })).toThrow(/two or three lowercase letters/);
    const release = { ...request, purpose: "release-transcript" as const, subject: { kind: "transcript" as const, id: request.subject.id } };
    expect(() => encodeUnlockRequest(release)).toThrow(/only a transcription names a language/);
  });

  it("the share re-sealed to a node carries the Rust plaintext", async () => {
    const request = await verify("unlock-request", bytes("unlock-request"));
    const plaintext = encodeNodeShare(request.statement, await binding(), sharing.shares[1]!.value);
    expect(hex(plaintext)).toBe(hex(bytes("node-share-plaintext")));
  });

  it("a re-share's sealed sub-share carries the Rust plaintext, and opens only where it belongs", async () => {
    const deal = (await verify("reshare-deal", bytes("reshare-deal"))).statement;
    const expected = {
      vaultId: deal.vaultId,
      subject: deal.subject,
      reshareId: deal.reshareId,
      rosterHead: deal.rosterHead,
      dealer: deal.dealer,
      dealtCommitmentsSha256: deal.currentCommitmentsSha256,
      index: 1,
      holder: deal.holders[0]!,
    };
    const subshare = sharing.shares[0]!.value;
    expect(hex(encodeSubsharePlaintext(expected, subshare))).toBe(hex(bytes("reshare-subshare-plaintext")));
    expect(hex(checkSubsharePlaintext(bytes("reshare-subshare-plaintext"), expected))).toBe(hex(subshare));
    expect(() => checkSubsharePlaintext(bytes("reshare-subshare-plaintext"), { ...expected, dealer: 1 })).toThrow(/dealer differs/);
    expect(() => checkSubsharePlaintext(bytes("reshare-subshare-plaintext"), { ...expected, holder: deal.holders[1]! })).toThrow(/holder differs/);
    expect(() => checkSubsharePlaintext(bytes("reshare-subshare-plaintext"), { ...expected, rosterHead: new Uint8Array(32) })).toThrow(/roster head/);
  });
});

describe("the roster chain", () => {
  const vault = "11111111-2222-3333-4444-555555555555";

  async function genesis(): Promise<[Roster, CryptoKey, Uint8Array, Uint8Array]> {
    const [key, verifyingKey] = await signer(9);
    const recipient = new Uint8Array(32).fill(9);
    const entry = encodeRosterEntry({
      vaultId: vault,
      sequence: 0,
      previous: new Uint8Array(32),
      change: "add",
      role: "admin",
      member: { recipient, verifyingKey },
      name: "Ada",
      issuedAt: 1_700_000_000,
    });
    const signed = await sign("roster-entry", entry, key, verifyingKey);
    return [await Roster.verify(vault, [signed]), key, verifyingKey, signed];
  }

  it("replays a genesis and an admin's addition", async () => {
    const [roster, key, verifyingKey, first] = await genesis();
    const [, memberKey] = await signer(10);
    const next = await roster.signChange(key, verifyingKey, "add", { recipient: new Uint8Array(32).fill(10), verifyingKey: memberKey }, "Bo", "member", 1_700_000_001);
    const replayed = await Roster.verify(vault, [first, next]);
    expect(replayed.active.map((member) => member.name)).toEqual(["Ada", "Bo"]);
    expect(replayed.contains(0, roster.genesis())).toBe(true);
  });

  it("refuses an entry signed by a non-admin, a break in the chain, and removing the last admin", async () => {
    const [roster, key, verifyingKey, first] = await genesis();
    const [mallory, malloryKey] = await signer(11);
    const member = { recipient: new Uint8Array(32).fill(11), verifyingKey: malloryKey };
    const body = (previous: Uint8Array) =>
      encodeRosterEntry({ vaultId: vault, sequence: 1, previous, change: "add", role: "admin", member, name: "Mallory", issuedAt: 1 });
    const selfSigned = await sign("roster-entry", body(roster.head()), mallory, malloryKey);
    await expect(Roster.verify(vault, [first, selfSigned])).rejects.toThrow(/not signed by an admin/);
    const broken = await sign("roster-entry", body(new Uint8Array(32)), key, verifyingKey);
    await expect(Roster.verify(vault, [first, broken])).rejects.toThrow(/does not follow/);
    await expect(
      roster.signChange(key, verifyingKey, "remove", roster.active[0]!.keys, "Ada", "admin", 2),
    ).rejects.toThrow(/last admin/);
    await expect(Roster.verify("00000000-0000-0000-0000-000000000000", [first])).rejects.toThrow(/another vault/);
  });

  it("keeps a recorder apart from the members, and removes it like one", async () => {
    const [roster, key, verifyingKey, first] = await genesis();
    const [, recorderKey] = await signer(12);
    const keys = { recipient: new Uint8Array(32).fill(12), verifyingKey: recorderKey };
    const added = await roster.signChange(key, verifyingKey, "add", keys, "Jibri", "recorder", 1_700_000_001);
    const withRecorder = await Roster.verify(vault, [first, added]);
    expect(withRecorder.active.map((member) => member.name)).toEqual(["Ada"]);
    expect(withRecorder.recorders.map((recorder) => recorder.name)).toEqual(["Jibri"]);
    expect(withRecorder.memberByKey(recorderKey)).toBeUndefined();
    expect(withRecorder.everHeldBy(recorderKey)?.role).toBe("recorder");
    await expect(
      withRecorder.signChange(key, verifyingKey, "add", keys, "Jibri again", "member", 1_700_000_002),
    ).rejects.toThrow(/already on the roster/);
    const removed = await withRecorder.signChange(key, verifyingKey, "remove", keys, "Jibri", "recorder", 1_700_000_002);
    const after = await Roster.verify(vault, [first, added, removed]);
    expect(after.recorders).toEqual([]);
    expect(after.removed.map((member) => member.role)).toEqual(["recorder"]);
  });
});

describe("a share after a re-share", () => {
  /** ℓ, the order of ristretto255. */
  const ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;

  async function manifestBinding(): Promise<ShareBinding> {
    const manifest = await verify("transcript-manifest", bytes("transcript-manifest"));
    return {
      vaultId: uuidText(new Uint8Array(16).fill(0x10)),
      subject: { kind: "recording", id: uuidText(new Uint8Array(16).fill(0x11)) },
      recipient: manifest.statement.split.recipient,
      k: 2,
      n: 2,
      index: 2,
      member: hex(bytes("fingerprint")),
      commitments: manifest.statement.split.commitments,
    };
  }

  it("opens in the sharing it names if that commits to the manifest's secret, and not otherwise", async () => {
    const manifest = await manifestBinding();
    // The manifest's secret (the Rust side's scalar(0x50)), shared again 2-of-3 with another
    // polynomial, as a re-share leaves it.
    const counted = (first: number) => {
      let value = 0n;
      for (let i = 31; i >= 0; i--) value = (value << 8n) | BigInt((first + i) & 0xff);
      return value % ORDER;
    };
    const original = counted(0x50);
    const again = splitWith(original, [12345n], 3);
    const binding = { ...manifest, k: 2, n: 3, index: 3, commitments: again.commitments };
    const plaintext = encodeSharePlaintext(binding, again.shares[2]!.value);
    const opened = checkCurrentSharePlaintext(plaintext, manifest);
    expect([opened.binding.index, opened.binding.n]).toEqual([3, 3]);
    expect(hex(opened.share)).toBe(hex(again.shares[2]!.value));
    // The strict check against the manifest's sharing refuses it, naming what differs.
    expect(() => checkSharePlaintext(plaintext, manifest)).toThrow(/threshold/);

    // A sharing of another secret is refused, and so is a share off its sharing.
    const other = splitWith(original + 1n, [7n], 3);
    const forged = encodeSharePlaintext({ ...binding, commitments: other.commitments }, other.shares[2]!.value);
    expect(() => checkCurrentSharePlaintext(forged, manifest)).toThrow(/commitment to the secret/);
    const off = encodeSharePlaintext(binding, again.shares[0]!.value);
    expect(() => checkCurrentSharePlaintext(off, manifest)).toThrow(/not a point of the sharing/);
    // Another member's or subject's share is refused.
    const theirs = encodeSharePlaintext({ ...binding, member: "00".repeat(32) }, again.shares[2]!.value);
    expect(() => checkCurrentSharePlaintext(theirs, manifest)).toThrow(/member/);
  });
});

describe("formats", () => {
  it("a later version of a domain is told apart from damage, as on the Rust side", () => {
    const read = (domain: string) => () =>
      new Reader(new Writer(domain).finish(), "quorate/thing/v2", "thing");
    expect(read("quorate/thing/v2")).not.toThrow();
    expect(read("quorate/thing/v3")).toThrow(NewerFormatError);
    expect(read("quorate/thing/v3")).toThrow(
      "the thing names format v3, newer than this device reads: upgrade Quorate if a newer version exists; otherwise it was altered on its way here",
    );
    for (const damaged of [
      "quorate/thing/v1",
      "quorate/thing/v+3",
      "quorate/thing/v3x",
      "quorate/things/v3",
      "quorate/thing/v99999999999",
      "",
    ]) {
      expect(read(damaged)).toThrow(MalformedError);
      expect(read(damaged)).not.toThrow(NewerFormatError);
    }
  });
});
