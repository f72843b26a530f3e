// The browser's verifiable secret sharing against the Rust side's golden vectors: the same
// secret and coefficients give the same shares and commitments, the same age key for a
// subject, and any k shares (by the test's own interpolation) rebuild the secret while k − 1
// do not; a share off the polynomial fails its commitments.
import { describe, expect, it } from "vitest";

import { ageKeyBytes, randomScalar, scalarFromBytes, scalarToBytes, split, splitWith, verifyShare } from "../src/vss";
import { hex, uuidText } from "../src/wire";
import { golden } from "./fixtures";

/** ℓ, the order of ristretto255. */
const ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;

function power(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  for (base %= ORDER; exponent > 0n; exponent >>= 1n, base = (base * base) % ORDER) {
    if (exponent & 1n) result = (result * base) % ORDER;
  }
  return result;
}

/** The test's own Lagrange interpolation at 0 over the scalar field. */
function interpolate(points: [number, bigint][]): bigint {
  let sum = 0n;
  for (const [x, y] of points) {
    let numerator = 1n;
    let denominator = 1n;
    for (const [other] of points) {
      if (other === x) continue;
      numerator = (numerator * BigInt(other)) % ORDER;
      denominator = (((denominator * BigInt(other - x)) % ORDER) + ORDER) % ORDER;
    }
    sum = (sum + y * numerator * power(denominator, ORDER - 2n)) % ORDER;
  }
  return sum;
}

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
