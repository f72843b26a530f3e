// Verifiable secret sharing over ristretto255, equal to quorate-crypto's `vss` module: a
// secret scalar shared k-of-n with Shamir's scheme over the group's scalar field, with
// Feldman commitments C_l = a_l·G to the polynomial's coefficients so that each holder checks
// their share against the signed manifest. The age key a split opens is derived from the
// secret by a hash (the secret itself is fixed by its public commitment C_0 = s·G).
//
// Scalars are JavaScript bigints while they are computed on, which cannot be wiped; the bytes
// they came from and go to are zeroed by the callers, the nearest a page allows.

import { ristretto255 } from "@noble/curves/ed25519.js";

import type { Subject } from "./statements";
import { encodeSubject } from "./statements";
import { Writer, sha256 } from "./wire";

const Point = ristretto255.Point;
type GroupPoint = InstanceType<typeof Point>;
const ORDER = Point.Fn.ORDER;
const SCALAR_BYTES = 32;

/** The scalar a canonical 32-byte little-endian encoding stands for; refuses any other. */
export function scalarFromBytes(bytes: Uint8Array): bigint {
  if (bytes.length !== SCALAR_BYTES) throw new RangeError("a scalar is 32 bytes");
  let value = 0n;
  for (let i = SCALAR_BYTES - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  if (value >= ORDER) throw new RangeError("not a canonical scalar");
  return value;
}

/** The canonical 32-byte little-endian encoding of a scalar. */
export function scalarToBytes(value: bigint): Uint8Array {
  const bytes = new Uint8Array(SCALAR_BYTES);
  for (let i = 0; i < SCALAR_BYTES; i++) {
    bytes[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return bytes;
}

/** A uniformly random scalar: 64 random bytes reduced modulo the group order. */
export function randomScalar(): bigint {
  const wide = crypto.getRandomValues(new Uint8Array(64));
  let value = 0n;
  for (let i = wide.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(wide[i]!);
  wide.fill(0);
  return value % ORDER;
}

/** `scalar`·G, in constant time for a secret scalar (zero, never drawn in practice, too). */
function timesBase(scalar: bigint): GroupPoint {
  return scalar === 0n ? Point.ZERO : Point.BASE.multiply(scalar);
}

/** One holder's share: its 1-based index and its value's canonical encoding. */
export interface ScalarShare {
  index: number;
  value: Uint8Array;
}

/**
 * The shares (indices 1..n) of the polynomial whose constant term is `secret` and whose
 * other coefficients, lowest first, are `coefficients`, with its commitments (32 bytes per
 * coefficient, lowest first). Exposed so that tests compare with the Rust side's golden vectors.
 */
export function splitWith(
  secret: bigint,
  coefficients: bigint[],
  n: number,
): { shares: ScalarShare[]; commitments: Uint8Array } {
  const k = coefficients.length + 1;
  if (!Number.isInteger(n) || k > n || n > 255) {
    throw new RangeError(`a key is split k-of-n with 1 ≤ k ≤ n ≤ 255, not ${k}-of-${n}`);
  }
  const all = [secret, ...coefficients];
  const shares: ScalarShare[] = [];
  for (let index = 1; index <= n; index++) {
    // Horner's rule from the highest coefficient down to the secret.
    const x = BigInt(index);
    const value = all.reduceRight((sum, coefficient) => (sum * x + coefficient) % ORDER, 0n);
    shares.push({ index, value: scalarToBytes(value) });
  }
  const commitments = new Uint8Array(k * 32);
  all.forEach((coefficient, l) => commitments.set(timesBase(coefficient).toBytes(), l * 32));
  return { shares, commitments };
}

/** Splits `secret` k-of-n with fresh random coefficients. */
export function split(secret: bigint, k: number, n: number): { shares: ScalarShare[]; commitments: Uint8Array } {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`a key is split k-of-n with 1 ≤ k ≤ n ≤ 255, not ${k}-of-${n}`);
  const coefficients = Array.from({ length: k - 1 }, randomScalar);
  return splitWith(secret, coefficients, n);
}

/** Parses commitments (32 bytes per valid point, 1 to 255 of them); throws on anything else. */
export function parseCommitments(bytes: Uint8Array): GroupPoint[] {
  if (bytes.length === 0 || bytes.length % 32 !== 0 || bytes.length / 32 > 255) {
    throw new RangeError("malformed share commitments");
  }
  const points: GroupPoint[] = [];
  for (let offset = 0; offset < bytes.length; offset += 32) {
    const point = Point.fromBytes(bytes.subarray(offset, offset + 32));
    // The identity commits to zero: as the secret it would make the key public.
    if (point.equals(Point.ZERO)) throw new RangeError("malformed share commitments");
    points.push(point);
  }
  return points;
}

/** Whether `share` is the point at its index of the polynomial `commitments` commit to. */
export function verifyShare(commitments: Uint8Array, share: ScalarShare): boolean {
  let points: GroupPoint[];
  try {
    points = parseCommitments(commitments);
  } catch {
    return false;
  }
  const x = BigInt(share.index);
  // Σ C_l · x^l by Horner's rule; the index and commitments are public.
  const expected = points.reduceRight(
    (sum: GroupPoint, point) => sum.multiplyUnsafe(x).add(point),
    Point.ZERO,
  );
  let value: bigint;
  try {
    value = scalarFromBytes(share.value);
  } catch {
    return false;
  }
  return timesBase(value).equals(expected);
}

/**
 * The age key (clamped X25519 secret) that the secret shared for `subject` opens: SHA-256 of
 * the domain "quorate/vss-key/v1" with the subject, then the secret's bytes; zero it after use.
 */
export async function ageKeyBytes(secret: bigint, subject: Subject): Promise<Uint8Array> {
  const context = new Writer("quorate/vss-key/v1");
  encodeSubject(context, subject);
  const prefix = context.finish();
  const input = new Uint8Array(prefix.length + SCALAR_BYTES);
  input.set(prefix);
  input.set(scalarToBytes(secret), prefix.length);
  const key = await sha256(input);
  input.fill(0);
  key[0] = key[0]! & 248;
  key[31] = (key[31]! & 127) | 64;
  return key;
}
