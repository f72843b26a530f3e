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

// ---------------------------------------------------------------------------------------
// Redistribution (a re-share), equal to quorate-crypto's `vss::deal`, `check_dealt`,
// `redistributed_commitments` and `receive`: each of k current holders shares their own
// share afresh among the new holders; each new holder combines the k sub-shares they get
// with the Lagrange coefficients of the dealers' indices. Nobody ever holds the secret.

/** The public image s_i·G of share `index`, from the commitments (Σ C_l · index^l). */
function publicShare(points: GroupPoint[], index: number): GroupPoint {
  const x = BigInt(index);
  return points.reduceRight((sum: GroupPoint, point) => sum.multiplyUnsafe(x).add(point), Point.ZERO);
}

/** The Lagrange coefficient at 0 of index `i` among the distinct `indices`. */
function lagrangeAtZero(i: number, indices: number[]): bigint {
  const xi = BigInt(i);
  let numerator = 1n;
  let denominator = 1n;
  for (const j of indices) {
    if (j === i) continue;
    const xj = BigInt(j);
    numerator = (numerator * xj) % ORDER;
    denominator = (((denominator * (xj - xi)) % ORDER) + ORDER) % ORDER;
  }
  return (numerator * Point.Fn.inv(denominator)) % ORDER;
}

/** Refuses (naming the problem) fewer than `k` or repeated dealer indices. */
function distinctDealers(indices: number[], k: number): void {
  const repeated = indices.find((index, position) => indices.indexOf(index) !== position);
  if (repeated !== undefined) throw new RangeError(`dealer ${repeated} dealt twice`);
  if (indices.length < k) throw new RangeError(`${indices.length} dealers, and the current sharing needs ${k}`);
}

/** What one current holder deals: their index, their new commitments, one sub-share per new holder. */
export interface Deal {
  dealer: number;
  commitments: Uint8Array;
  subshares: ScalarShare[];
}

/**
 * Deals `share` (checked against the current `commitments` first, so that an honest page never
 * deals a corrupt share) to `newN` new holders, `newK` of whom will rebuild.
 */
export function dealShare(share: ScalarShare, commitments: Uint8Array, newK: number, newN: number): Deal {
  if (!verifyShare(commitments, share)) throw new RangeError("your share is not a point of its sharing's commitments");
  const { shares, commitments: dealt } = split(scalarFromBytes(share.value), newK, newN);
  return { dealer: share.index, commitments: dealt, subshares: shares };
}

/** A dealer's error: what a new holder's device names. */
export class BadDealer extends Error {
  constructor(readonly dealer: number, what: string) {
    super(`holder ${dealer} ${what}`);
  }
}

/**
 * The new sharing's commitments, from the current ones and each dealer's (index, commitments):
 * refused unless there are at least the current k distinct dealers, each of whom dealt their
 * own share (the constant term of their commitments is its public image) under `newK`.
 */
export function redistributedCommitments(current: Uint8Array, newK: number, dealt: [number, Uint8Array][]): Uint8Array {
  const currentPoints = parseCommitments(current);
  const dealers = dealt.map(([dealer]) => dealer);
  distinctDealers(dealers, currentPoints.length);
  const parsed = dealt.map(([dealer, commitments]): [number, GroupPoint[]] => {
    let points: GroupPoint[];
    try {
      points = parseCommitments(commitments);
    } catch {
      throw new BadDealer(dealer, "published commitments that do not parse");
    }
    if (dealer < 1 || points.length !== newK || !points[0]!.equals(publicShare(currentPoints, dealer))) {
      throw new BadDealer(dealer, "dealt something other than their own share under the new threshold");
    }
    return [dealer, points];
  });
  const combined = new Uint8Array(newK * 32);
  for (let l = 0; l < newK; l++) {
    const point = parsed.reduce(
      (sum: GroupPoint, [dealer, points]) => sum.add(points[l]!.multiplyUnsafe(lagrangeAtZero(dealer, dealers))),
      Point.ZERO,
    );
    combined.set(point.toBytes(), l * 32);
  }
  return combined;
}

/**
 * A new holder's share from what each dealer sent them (dealer index, the dealer's commitments,
 * the sub-share): every sub-share is checked against its dealer's commitments first (a bad one
 * names its dealer), then they are combined. Returns the share with the new commitments.
 */
export function receive(
  current: Uint8Array,
  newK: number,
  received: [number, Uint8Array, ScalarShare][],
): { share: ScalarShare; commitments: Uint8Array } {
  const commitments = redistributedCommitments(
    current,
    newK,
    received.map(([dealer, dealt]) => [dealer, dealt]),
  );
  const index = received[0]![2].index;
  for (const [dealer, dealt, subshare] of received) {
    if (subshare.index !== index || !verifyShare(dealt, subshare)) throw new BadDealer(dealer, "sent a sub-share off their commitments");
  }
  const dealers = received.map(([dealer]) => dealer);
  const value = received.reduce(
    (sum, [dealer, , subshare]) => (sum + lagrangeAtZero(dealer, dealers) * scalarFromBytes(subshare.value)) % ORDER,
    0n,
  );
  const share = { index, value: scalarToBytes(value) };
  if (!verifyShare(commitments, share)) throw new RangeError("the combined share does not verify against the new commitments");
  return { share, commitments };
}
