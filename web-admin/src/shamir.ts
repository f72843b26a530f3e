// Shamir's secret sharing of a 32-byte key, byte by byte over GF(2^8) with the AES
// polynomial x^8 + x^4 + x^3 + x + 1: the field of vsss-rs's `Gf256`, with which the Rust
// side (the node) rebuilds the key. Share i is the polynomial's value at x = i (1…n); the
// constant term is the key. For k = 1 (which vsss-rs refuses) every share is the key itself,
// as quorate-crypto's `threshold::split` makes it.
//
// The multiplication has no branch or table lookup that depends on the bytes, the nearest a
// JavaScript engine allows to constant time.

/** a · b in GF(2^8). */
function multiply(a: number, b: number): number {
  let product = 0;
  for (let bit = 0; bit < 8; bit++) {
    product ^= a & -(b & 1);
    b >>= 1;
    a = ((a << 1) ^ (0x1b & -(a >> 7))) & 0xff;
  }
  return product;
}

/**
 * The n shares of `secret` for the polynomials whose coefficients (after the constant term,
 * the secret's byte) are `coefficients`: (k − 1) × 32 bytes, coefficient j of byte b at
 * (j − 1) × 32 + b. Exposed so that tests can compare with the Rust side's golden shares.
 */
export function splitWith(secret: Uint8Array, k: number, n: number, coefficients: Uint8Array): Uint8Array[] {
  if (!Number.isInteger(k) || !Number.isInteger(n) || k < 1 || k > n || n > 255) {
    throw new RangeError(`a key is split k-of-n with 1 ≤ k ≤ n ≤ 255, not ${k}-of-${n}`);
  }
  if (coefficients.length !== (k - 1) * secret.length) throw new RangeError("k − 1 coefficients per byte");
  const shares: Uint8Array[] = [];
  for (let x = 1; x <= n; x++) {
    const share = new Uint8Array(secret.length);
    for (let b = 0; b < secret.length; b++) {
      // Horner's rule from the highest coefficient down to the secret's byte.
      let value = 0;
      for (let j = k - 1; j >= 1; j--) value = multiply(value, x) ^ coefficients[(j - 1) * secret.length + b]!;
      share[b] = multiply(value, x) ^ secret[b]!;
    }
    shares.push(share);
  }
  return shares;
}

/** Splits `secret` k-of-n with fresh random coefficients (zeroed after use). */
export function split(secret: Uint8Array, k: number, n: number): Uint8Array[] {
  const coefficients = crypto.getRandomValues(new Uint8Array((k - 1) * secret.length));
  try {
    return splitWith(secret, k, n, coefficients);
  } finally {
    coefficients.fill(0);
  }
}
