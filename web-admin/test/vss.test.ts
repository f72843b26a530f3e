// The browser's verifiable secret sharing against the Rust side's golden vectors: the same
// secret and coefficients give the same shares and commitments, the same age key for a
// subject, and any k shares (by the test's own interpolation) rebuild the secret while k − 1
// do not; a share off the polynomial fails its commitments.
import { describe, expect, it } from "vitest";

import {
  BadDealer,
  ageKeyBytes,
  dealShare,
  randomScalar,
  receive,
  redistributedCommitments,
  scalarFromBytes,
  scalarToBytes,
  split,
  splitWith,
  verifyShare,
} from "../src/vss";
import { hex, uuidText } from "../src/wire";
import { golden, interpolate } from "./fixtures";

function chunks(bytes: Uint8Array): Uint8Array[] {
  return Array.from({ length: bytes.length / 32 }, (_, i) => bytes.subarray(i * 32, (i + 1) * 32));
}

describe("the browser's verifiable split", () => {
  const secret = scalarFromBytes(golden("vss-secret"));
  const coefficients = chunks(golden("vss-coefficients")).map(scalarFromBytes);

  it("makes quorate-crypto's shares and commitments from the same coefficients", () => {
    const { shares, commitments } = splitWith(secret, coefficients, 4);
    expect(shares.map((share) => share.index)).toEqual([1, 2, 3, 4]);
    expect(shares.map((share) => hex(share.value))).toEqual(chunks(golden("vss-shares-3-of-4")).map(hex));
    expect(hex(commitments)).toBe(hex(golden("vss-commitments-3-of-4")));
  });

  it("derives quorate-crypto's age key for a subject", async () => {
    const subject = { kind: "recording", id: uuidText(new Uint8Array(16).fill(0x11)) } as const;
    expect(hex(await ageKeyBytes(secret, subject))).toBe(hex(golden("vss-age-key")));
    const other = { kind: "transcript", id: subject.id } as const;
    expect(hex(await ageKeyBytes(secret, other))).not.toBe(hex(golden("vss-age-key")));
  });

  it("any k shares rebuild the secret, k − 1 do not, and each share checks out", () => {
    const value = randomScalar();
    const { shares, commitments } = split(value, 3, 5);
    for (const chosen of [[1, 2, 3], [1, 3, 5], [2, 4, 5]]) {
      const points = chosen.map((x): [number, bigint] => [x, scalarFromBytes(shares[x - 1]!.value)]);
      expect(interpolate(points)).toBe(value);
    }
    expect(interpolate([[1, scalarFromBytes(shares[0]!.value)], [2, scalarFromBytes(shares[1]!.value)]])).not.toBe(value);
    for (const share of shares) expect(verifyShare(commitments, share)).toBe(true);
    expect(verifyShare(commitments, { index: 2, value: shares[0]!.value })).toBe(false);
    expect(verifyShare(commitments.subarray(0, 64), shares[0]!)).toBe(false);
    expect(verifyShare(new Uint8Array(96).fill(0xff), shares[0]!)).toBe(false);
    expect(() => split(value, 4, 3)).toThrow(/1 ≤ k ≤ n/);
  });

  it("k = 1 hands every holder the secret", () => {
    const value = randomScalar();
    const { shares } = split(value, 1, 3);
    expect(shares.map((share) => hex(share.value))).toEqual(Array(3).fill(hex(scalarToBytes(value))));
  });

  it("refuses commitments holding the identity, which would commit to a public secret", () => {
    // A "sharing" of the secret 0 with a zero coefficient: every share is 0 and checks out
    // against all-identity commitments, which a device must refuse as malformed.
    const zero = { index: 1, value: new Uint8Array(32) };
    expect(verifyShare(new Uint8Array(64), zero)).toBe(false);
    const { shares, commitments } = split(randomScalar(), 2, 3);
    const withIdentity = new Uint8Array(commitments);
    withIdentity.fill(0, 32, 64);
    expect(verifyShare(withIdentity, shares[0]!)).toBe(false);
  });

  it("refuses a non-canonical scalar", () => {
    expect(() => scalarFromBytes(new Uint8Array(32).fill(0xff))).toThrow(/canonical/);
  });
});

describe("the browser's re-share of a golden sharing", () => {
  const secret = scalarFromBytes(golden("vss-secret"));
  const current = golden("vss-commitments-3-of-4");
  const shares = chunks(golden("vss-shares-3-of-4")).map((value, i) => ({ index: i + 1, value }));

  /** Holders 1, 2 and 4 deal to a 2-of-3 board; each new holder receives. */
  function redistribute(): { deals: ReturnType<typeof dealShare>[]; received: ReturnType<typeof receive>[] } {
    const deals = [0, 1, 3].map((position) => dealShare(shares[position]!, current, 2, 3));
    const received = [1, 2, 3].map((index) =>
      receive(
        current,
        2,
        deals.map((deal): [number, Uint8Array, (typeof deal.subshares)[number]] => [deal.dealer, deal.commitments, deal.subshares[index - 1]!]),
      ),
    );
    return { deals, received };
  }

  it("moves the golden secret to new shares that any 2 of 3 rebuild, under commitments to the same secret", () => {
    const { received } = redistribute();
    const commitments = received[0]!.commitments;
    for (const { commitments: theirs } of received) expect(hex(theirs)).toBe(hex(commitments));
    // The constant term still commits to the golden secret: the manifest's commitment holds.
    expect(hex(commitments.subarray(0, 32))).toBe(hex(current.subarray(0, 32)));
    for (const pair of [[0, 1], [0, 2], [1, 2]]) {
      const points = pair.map((position): [number, bigint] => {
        const share = received[position]!.share;
        return [share.index, scalarFromBytes(share.value)];
      });
      expect(interpolate(points)).toBe(secret);
    }
    // An old share with a new one rebuilds nothing.
    const mixed: [number, bigint][] = [
      [1, scalarFromBytes(shares[0]!.value)],
      [2, scalarFromBytes(received[1]!.share.value)],
    ];
    expect(interpolate(mixed)).not.toBe(secret);
  });

  it("names a dealer whose sub-share is off their commitments, and one who dealt another share", () => {
    const { deals } = redistribute();
    const crooked = deals.map((deal): [number, Uint8Array, (typeof deal.subshares)[number]] => [deal.dealer, deal.commitments, deal.subshares[0]!]);
    crooked[1] = [crooked[1]![0], crooked[1]![1], { index: 1, value: scalarToBytes(12345n) }];
    expect(() => receive(current, 2, crooked)).toThrow(BadDealer);
    expect(() => receive(current, 2, crooked)).toThrow(/holder 2/);
    // Holder 4 publishes a dealing of some other value: caught from public data alone.
    const other = split(randomScalar(), 2, 3).commitments;
    expect(() =>
      redistributedCommitments(current, 2, [
        [1, deals[0]!.commitments],
        [2, deals[1]!.commitments],
        [4, other],
      ]),
    ).toThrow(/holder 4/);
  });

  it("refuses too few or repeated dealers, and a share off its sharing", () => {
    const { deals } = redistribute();
    expect(() => redistributedCommitments(current, 2, [[1, deals[0]!.commitments], [2, deals[1]!.commitments]])).toThrow(/needs 3/);
    expect(() =>
      redistributedCommitments(current, 2, [
        [1, deals[0]!.commitments],
        [1, deals[0]!.commitments],
        [2, deals[1]!.commitments],
      ]),
    ).toThrow(/twice/);
    expect(() => dealShare({ index: 1, value: shares[1]!.value }, current, 2, 3)).toThrow(/not a point/);
  });
});
