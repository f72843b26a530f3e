// The canonical byte encoding of everything Quorate signs, hashes or seals, equal to
// quorate-crypto's `wire` module: integers big-endian and fixed-width; byte strings and
// UTF-8 strings as a u32 length then the bytes (at most 1 MiB); lists as a u16 count;
// optional integers as 0, or 1 then the value; fixed-size values without a length. Every
// structure starts with a domain string. The reader is strict: no trailing bytes, no
// non-canonical flags, valid UTF-8, bounded lengths.

const MAX_FIELD_LEN = 1 << 20;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A structure that does not parse: names what it is. */
export class MalformedError extends Error {
  constructor(what: string) {
    super(`the ${what} is malformed`);
  }
}

/** A structure whose domain names a later version: made by a newer Quorate, or altered. */
export class NewerFormatError extends MalformedError {
  constructor(what: string, version: number) {
    super(what);
    this.message = `the ${what} names format v${version}, newer than this device reads: upgrade Quorate if a newer version exists; otherwise it was altered on its way here`;
  }
}

/**
 * The version of `found` when it is `expected`'s domain at a later version ("…/v3" where
 * "…/v1" was expected), as quorate-crypto's `wire::newer_version`.
 */
export function newerVersion(found: string, expected: string): number | undefined {
  const at = expected.lastIndexOf("/v");
  if (at < 0) return undefined;
  const family = expected.slice(0, at + 2);
  const expectedVersion = Number(expected.slice(at + 2));
  const version = found.startsWith(family) ? found.slice(family.length) : "";
  if (!/^[0-9]{1,9}$/.test(version) || !Number.isInteger(expectedVersion)) return undefined;
  return Number(version) > expectedVersion ? Number(version) : undefined;
}

export class Writer {
  private parts: number[] = [];

  constructor(domain: string) {
    this.str(domain);
  }

  u8(value: number): this {
    this.parts.push(value & 0xff);
    return this;
  }

  u16(value: number): this {
    return this.u8(value >> 8).u8(value);
  }

  u32(value: number): this {
    return this.u8(value >>> 24)
      .u8(value >>> 16)
      .u8(value >>> 8)
      .u8(value);
  }

  /** A 64-bit integer, signed or not (two's complement, big-endian). */
  i64(value: bigint | number): this {
    const view = new DataView(new ArrayBuffer(8));
    view.setBigInt64(0, BigInt.asIntN(64, BigInt(value)));
    return this.fixed(new Uint8Array(view.buffer));
  }

  u64(value: bigint | number): this {
    return this.i64(BigInt.asIntN(64, BigInt(value)));
  }

  fixed(value: Uint8Array): this {
    for (const byte of value) this.parts.push(byte);
    return this;
  }

  bytes(value: Uint8Array): this {
    return this.u32(value.length).fixed(value);
  }

  str(value: string): this {
    return this.bytes(encoder.encode(value));
  }

  optionI64(value: number | null | undefined): this {
    return value === null || value === undefined ? this.u8(0) : this.u8(1).i64(value);
  }

  list<T>(items: readonly T[], each: (writer: this, item: T) => void): this {
    this.u16(items.length);
    for (const item of items) each(this, item);
    return this;
  }

  /** The encoding; the writer's own copy is zeroed (it may hold a share or a key). */
  finish(): Uint8Array<ArrayBuffer> {
    const encoded = Uint8Array.from(this.parts);
    this.parts.fill(0);
    return encoded;
  }
}

export class Reader {
  private offset = 0;

  /** A reader over `input` that first expects `domain`; `what` names it in errors. */
  constructor(
    private readonly input: Uint8Array,
    domain: string,
    private readonly what: string,
  ) {
    const found = this.str();
    if (found !== domain) {
      const version = newerVersion(found, domain);
      throw version === undefined ? this.malformed() : new NewerFormatError(what, version);
    }
  }

  malformed(): MalformedError {
    return new MalformedError(this.what);
  }

  private take(len: number): Uint8Array {
    if (this.input.length - this.offset < len) throw this.malformed();
    const out = this.input.subarray(this.offset, this.offset + len);
    this.offset += len;
    return out;
  }

  u8(): number {
    return this.take(1)[0] ?? 0;
  }

  u16(): number {
    const bytes = this.take(2);
    return ((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0);
  }

  private u32(): number {
    const bytes = this.take(4);
    return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
  }

  /** A signed 64-bit integer as a number (Unix times and lengths fit exactly). */
  i64(): number {
    const bytes = this.take(8);
    return Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigInt64(0));
  }

  u64(): number {
    const bytes = this.take(8);
    return Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0));
  }

  fixed(len: number): Uint8Array {
    return this.take(len).slice();
  }

  bytes(): Uint8Array {
    const len = this.u32();
    if (len > MAX_FIELD_LEN) throw this.malformed();
    return this.take(len).slice();
  }

  str(): string {
    try {
      return decoder.decode(this.bytes());
    } catch (error) {
      if (error instanceof MalformedError) throw error;
      throw this.malformed();
    }
  }

  optionI64(): number | null {
    switch (this.u8()) {
      case 0:
        return null;
      case 1:
        return this.i64();
      default:
        throw this.malformed();
    }
  }

  list<T>(each: (reader: this) => T): T[] {
    const count = this.u16();
    // Every item takes at least one byte, so the count cannot outrun the input.
    if (count > this.input.length - this.offset) throw this.malformed();
    return Array.from({ length: count }, () => each(this));
  }

  /** Ends the parse: trailing bytes would make a second encoding of the same value. */
  finish(): void {
    if (this.offset !== this.input.length) throw this.malformed();
  }
}

/** Whether `body` is encoded under `domain` (its first field). */
export function hasDomain(body: Uint8Array, domain: string): boolean {
  const prefix = new Writer(domain).finish();
  return body.length >= prefix.length && equalBytes(body.subarray(0, prefix.length), prefix);
}

export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text: string): Uint8Array<ArrayBuffer> {
  if (!/^([0-9a-f]{2})*$/i.test(text)) throw new Error("not hex");
  return Uint8Array.from(text.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

export function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}

/** Unpadded base64url (the API's form of a verifying key). */
export function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/");
  return fromBase64(padded + "=".repeat((4 - (padded.length % 4)) % 4));
}

export function toBase64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A UUID's 16 bytes. */
export function uuidBytes(uuid: string): Uint8Array<ArrayBuffer> {
  const digits = uuid.replace(/-/g, "");
  if (digits.length !== 32) throw new Error(`${uuid} is not a UUID`);
  return fromHex(digits);
}

/** 16 bytes as a UUID, lower-case and hyphenated. */
export function uuidText(bytes: Uint8Array): string {
  const digits = hex(bytes);
  return `${digits.slice(0, 8)}-${digits.slice(8, 12)}-${digits.slice(12, 16)}-${digits.slice(16, 20)}-${digits.slice(20)}`;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

export function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export async function sha256(bytes: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}
