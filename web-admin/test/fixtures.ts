// What the Vitest tests share: the Rust side's golden bytes, fixed signing keys, and a lying
// server the browser's device talks to (a stand-in for `fetch` that answers what a test
// programs and records every request, so a test can say that nothing was signed).
import { readFileSync } from "node:fs";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { vi } from "vitest";

import { Client } from "../src/client";
import { Device, type PinStore } from "../src/device";
import { type MemberIdentity, signingKeys } from "../src/identity";
import { Roster } from "../src/roster";
import { recipientBytes, recipientText } from "../src/sealed";
import { type PublicKeys, type Role, encodeRosterEntry, fingerprintOf, shortFingerprint, sign } from "../src/statements";
import { fromBase64, fromHex, toBase64, toBase64Url, uuidText } from "../src/wire";

const goldenFile = new Map(
  readFileSync(new URL("../../services/quorate-crypto/tests/golden/wire-format.txt", import.meta.url), "utf8")
    .trim()
    .split("\n")
    .map((line) => line.split(" ") as [string, string]),
);

/** One value of services/quorate-crypto/tests/golden/wire-format.txt. */
export function golden(name: string): Uint8Array {
  const text = goldenFile.get(name);
  if (!text) throw new Error(`the golden file has no ${name}`);
  return fromHex(text);
}

/** The golden file's vault (16 bytes of 0x10) and node (0x13). */
export const GOLDEN_VAULT = uuidText(new Uint8Array(16).fill(0x10));
export const GOLDEN_NODE = uuidText(new Uint8Array(16).fill(0x13));

/** A fixed Ed25519 key from a seed of one repeated byte (the golden file's admin is 2s). */
export async function signer(seedByte: number): Promise<[CryptoKey, Uint8Array]> {
  return signingKeys(new Uint8Array(32).fill(seedByte));
}

/** Fresh public keys, as someone who is not who they claim would have. */
export async function strangerKeys(): Promise<PublicKeys> {
  const [, verifyingKey] = await signingKeys(crypto.getRandomValues(new Uint8Array(32)));
  return { recipient: recipientBytes(await identityToRecipient(await generateIdentity())), verifyingKey };
}

/** Public keys as the API sends them. */
export function apiKeys(keys: PublicKeys): { recipient: string; verifying_key: string } {
  return { recipient: recipientText(keys.recipient), verifying_key: toBase64Url(keys.verifyingKey) };
}

/** A member identity with the golden admin's signing key (seed 2) and a fresh age key. */
export async function adminIdentity(): Promise<MemberIdentity> {
  return identityWith(...(await signer(2)));
}

/** A member identity with fresh keys. */
export async function memberIdentity(): Promise<MemberIdentity> {
  return identityWith(...(await signingKeys(crypto.getRandomValues(new Uint8Array(32)))));
}

async function identityWith(signingKey: CryptoKey, verifyingKey: Uint8Array): Promise<MemberIdentity> {
  const ageSecret = await generateIdentity();
  const recipient = await identityToRecipient(ageSecret);
  const fingerprintHex = await fingerprintOf({ recipient: recipientBytes(recipient), verifyingKey });
  return {
    recipient,
    verifyingKey,
    fingerprintHex,
    fingerprintShort: shortFingerprint(fingerprintHex),
    ageSecret,
    signingKey,
  };
}

/** The genesis of `vault`'s roster: `admin` adding themself. */
export async function genesis(vault: string, admin: MemberIdentity): Promise<Uint8Array> {
  const body = encodeRosterEntry({
    vaultId: vault,
    sequence: 0,
    previous: new Uint8Array(32),
    change: "add",
    role: "admin",
    member: { recipient: recipientBytes(admin.recipient), verifyingKey: admin.verifyingKey },
    name: "Ada",
    issuedAt: 1_700_000_000,
  });
  return sign("roster-entry", body, admin.signingKey, admin.verifyingKey);
}

/** `admin`'s signed roster change adding or removing `who` (a member unless `role` says), next after `chain`. */
export async function rosterChange(
  vault: string,
  chain: Uint8Array[],
  admin: MemberIdentity,
  who: MemberIdentity,
  add: boolean,
  name: string,
  role: Role = "member",
): Promise<Uint8Array> {
  const roster = await Roster.verify(vault, chain);
  const body = encodeRosterEntry({
    vaultId: vault,
    sequence: chain.length,
    previous: roster.head(),
    change: add ? "add" : "remove",
    role,
    member: { recipient: recipientBytes(who.recipient), verifyingKey: who.verifyingKey },
    name,
    issuedAt: 1_700_000_000 + chain.length,
  });
  return sign("roster-entry", body, admin.signingKey, admin.verifyingKey);
}

/** A pin store in memory (the browser's is localStorage). */
export class Pins implements PinStore {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
}

/** What a route answers (or a promise of it): JSON, nothing (204), or a whole `Response`. */
type Answer = (body: unknown, path: string, headers: Headers) => unknown;

/**
 * A server that answers what a test programs: per method and path pattern, the JSON it
 * sends. Every request is recorded. Unprogrammed requests answer 404, as the API does.
 */
export class LyingServer {
  readonly requests: { method: string; path: string; body: unknown }[] = [];
  private readonly routes: { method: string; pattern: RegExp; answer: Answer }[] = [];

  constructor() {
    vi.stubGlobal("fetch", (url: string, init?: RequestInit) => this.fetch(url, init));
  }

  /** Answers `method` on paths matching `pattern` (without the query) with `answer`. */
  on(method: string, pattern: RegExp, answer: Answer): this {
    this.routes.unshift({ method, pattern, answer });
    return this;
  }

  /** The requests that would have changed something (anything but GET). */
  writes(): { method: string; path: string; body: unknown }[] {
    return this.requests.filter((request) => request.method !== "GET");
  }

  private async fetch(url: string, init?: RequestInit): Promise<Response> {
    const path = new URL(url, "http://server.test").pathname;
    const method = init?.method ?? "GET";
    const body =
      typeof init?.body === "string" ? JSON.parse(init.body) : init?.body instanceof Uint8Array ? init.body : undefined;
    this.requests.push({ method, path, body });
    const route = this.routes.find((candidate) => candidate.method === method && candidate.pattern.test(path));
    if (!route) {
      return Response.json({ code: "not_found", message: `nothing at ${method} ${path}` }, { status: 404 });
    }
    const answer = await route.answer(body, path, new Headers(init?.headers));
    if (answer instanceof Response) return answer;
    return answer === undefined ? new Response(null, { status: 204 }) : Response.json(answer);
  }
}

/** An admin's device in `vault`, signed in (as `signIn` leaves it) to `server`. */
export function adminDevice(vault: string, admin: MemberIdentity, pins: PinStore = new Pins()): Device {
  return new Device(
    new Client(""),
    admin,
    vault,
    { fingerprint: admin.fingerprintHex, name: "Ada", role: "admin", vault_id: vault, node_id: null },
    pins,
  );
}

/** Serves `vault`'s roster as a chain that grows by what admins post to it. */
export function serveRoster(server: LyingServer, vault: string, chain: Uint8Array[]): void {
  server
    .on("GET", new RegExp(`^/api/v1/vaults/${vault}/roster$`), () => ({ entries: chain.map(toBase64) }))
    .on("POST", new RegExp(`^/api/v1/vaults/${vault}/roster$`), (body) => {
      chain.push(fromBase64((body as { entry: string }).entry));
      return undefined;
    });
}

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
export function interpolate(points: [number, bigint][]): bigint {
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
