// Blind-index tokens in the browser, equal to the Rust side's (quorate-crypto `blind`):
// token = HMAC-SHA256(Ks, word)[0..16] for every word of normalise(text). The search key
// lives in a non-extractable WebCrypto key; only tokens leave the device.

/** Anything that is not a word character: Alphabetic, a number (N) or a mark (M). */
const NOT_WORD = /[^\p{Alphabetic}\p{N}\p{M}]+/u;

/** NFKC, full lower-casing, then split on everything that is not a word character. */
export function normalise(text: string): string[] {
  return text
    .normalize("NFKC")
    .toLowerCase()
    .split(NOT_WORD)
    .filter((word) => word.length > 0);
}

/** The vault's search key (32 bytes) as a non-extractable HMAC-SHA256 key. */
export async function importSearchKey(secret: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  if (secret.length !== 32) {
    throw new Error("a search key is 32 bytes");
  }
  return crypto.subtle.importKey(
    "raw",
    secret,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The token of one already-normalised word, in hex (16 bytes). */
export async function token(key: CryptoKey, word: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(word));
  return hex(new Uint8Array(mac).slice(0, 16));
}

/** The tokens of every word of `text`, in order, repeats kept. */
export async function tokens(key: CryptoKey, text: string): Promise<string[]> {
  return Promise.all(normalise(text).map((word) => token(key, word)));
}

/**
 * The blind-index postings of a transcript's segments, packed as the API takes them: for
 * segment i and each distinct word w in it, 24 bytes: token(w) (16), i and w's count there
 * (big-endian u32 each). Equal to quorate-crypto's `release::postings`, up to order.
 */
export async function postings(key: CryptoKey, segments: string[]): Promise<Uint8Array<ArrayBuffer>> {
  const records: Uint8Array[] = [];
  for (const [segment, text] of segments.entries()) {
    const counts = new Map<string, number>();
    for (const word of normalise(text)) counts.set(word, (counts.get(word) ?? 0) + 1);
    for (const [word, tf] of counts) {
      const record = new Uint8Array(24);
      const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(word));
      record.set(new Uint8Array(mac).slice(0, 16));
      const view = new DataView(record.buffer);
      view.setUint32(16, segment);
      view.setUint32(20, tf);
      records.push(record);
    }
  }
  const packed = new Uint8Array(records.length * 24);
  records.forEach((record, i) => packed.set(record, i * 24));
  return packed;
}
