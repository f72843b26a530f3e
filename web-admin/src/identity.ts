// A member's identity in the browser: the file `quorate keygen` writes (an armoured age file
// protected by a passphrase, opened with typage), kept as non-extractable WebCrypto keys.
// Nothing of it is ever sent anywhere; the page holds it in memory only.

import { Decrypter, Encrypter, armor, generateIdentity, identityToRecipient } from "age-encryption";

import { recipientBytes } from "./sealed";
import { fingerprintOf, shortFingerprint } from "./statements";
import { fromBase64, fromBase64Url, toBase64 } from "./wire";

/** An opened identity: its public keys, fingerprint, and the private keys in WebCrypto. */
export interface MemberIdentity {
  /** The age recipient, `age1…`. */
  recipient: string;
  /** The Ed25519 verifying key. */
  verifyingKey: Uint8Array;
  /** SHA-256 over the public keys, hex. */
  fingerprintHex: string;
  /** The form people compare: the first 15 bytes in base32, six groups of four. */
  fingerprintShort: string;
  /** The age secret key, for typage to open sealed shares and copies. */
  ageSecret: string;
  /** Signs sign-in challenges and statements (non-extractable). */
  signingKey: CryptoKey;
}

/** Why an identity file could not be opened, in words for the member. */
export class IdentityError extends Error {}

/** PKCS #8 wrapping of a raw Ed25519 seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/** The Ed25519 seed as a non-extractable signing key, with its public key. */
export async function signingKeys(seed: Uint8Array): Promise<[CryptoKey, Uint8Array]> {
  const pkcs8 = new Uint8Array(ED25519_PKCS8_PREFIX.length + seed.length);
  pkcs8.set(ED25519_PKCS8_PREFIX);
  pkcs8.set(seed, ED25519_PKCS8_PREFIX.length);
  // Imported once extractable only to read the public key out of its JWK, then again
  // non-extractable for use; the extractable copy is dropped at once.
  const readable = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, [
    "sign",
  ]);
  const jwk = await crypto.subtle.exportKey("jwk", readable);
  const signing = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, [
    "sign",
  ]);
  pkcs8.fill(0);
  if (!jwk.x) throw new IdentityError("the signing key has no public part");
  return [signing, fromBase64Url(jwk.x)];
}

/** scrypt's work factor (log2 N) for new identity files: `quorate keygen`'s default. */
export const IDENTITY_WORK_FACTOR = 18;

/**
 * A passphrase shorter than this is refused. The file may be downloaded to shared or synced
 * folders, where scrypt alone must hold off guessing.
 */
export const MIN_PASSPHRASE_LENGTH = 12;

/** A new identity: the member's keys, and the passphrase-protected file that holds them. */
export interface NewIdentity {
  identity: MemberIdentity;
  /** The armoured age file, byte for byte what `quorate keygen` would write for these keys. */
  file: string;
}

/** The identity file's plaintext, line for line as quorate-crypto's `IdentityFile` writes it. */
function identityText(ageSecret: string, seed: Uint8Array, fingerprintShort: string): string {
  return `# Quorate identity. Keep it secret. Fingerprint: ${fingerprintShort}\nquorate-identity-v1\nage: ${ageSecret}\ned25519: ${toBase64(seed)}\n`;
}

/**
 * Makes a member's identity in this page: a fresh age X25519 key and Ed25519 seed from the
 * browser's CSPRNG, written as the passphrase-protected file `quorate keygen` writes (age
 * scrypt, armoured), so the same file works in the CLI. Nothing of it is sent anywhere.
 * `workFactor` is lowered only by tests.
 */
export async function createIdentity(passphrase: string, workFactor = IDENTITY_WORK_FACTOR): Promise<NewIdentity> {
  if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
    throw new IdentityError(
      `choose a passphrase of at least ${MIN_PASSPHRASE_LENGTH} characters (a few unrelated words are easy to remember): it is all that protects your identity file`,
    );
  }
  const ageSecret = await generateIdentity();
  const seed = crypto.getRandomValues(new Uint8Array(32));
  const [signingKey, verifyingKey] = await signingKeys(seed);
  const recipient = await identityToRecipient(ageSecret);
  const fingerprintHex = await fingerprintOf({ recipient: recipientBytes(recipient), verifyingKey });
  const fingerprintShort = shortFingerprint(fingerprintHex);
  const encrypter = new Encrypter();
  encrypter.setPassphrase(passphrase);
  encrypter.setScryptWorkFactor(workFactor);
  const file = armor.encode(await encrypter.encrypt(identityText(ageSecret, seed, fingerprintShort)));
  seed.fill(0);
  return {
    identity: { recipient, verifyingKey, fingerprintHex, fingerprintShort, ageSecret, signingKey },
    file,
  };
}

/**
 * Opens the identity file `quorate keygen` wrote with its passphrase: checks its format,
 * imports the signing key non-extractable, and derives the fingerprint to show.
 */
export async function openIdentityFile(file: string, passphrase: string): Promise<MemberIdentity> {
  let text: string;
  try {
    const decrypter = new Decrypter();
    decrypter.addPassphrase(passphrase);
    text = await decrypter.decrypt(armor.decode(file), "text");
  } catch {
    throw new IdentityError(
      "this is not a Quorate identity file, or the passphrase is wrong: choose the identity.age that `quorate keygen` wrote and type its passphrase",
    );
  }
  const lines = text.split("\n").filter((line) => line && !line.startsWith("#"));
  const field = (name: string) =>
    lines.find((line) => line.startsWith(`${name}: `))?.slice(name.length + 2);
  const ageSecret = field("age");
  const seedText = field("ed25519");
  if (lines[0] !== "quorate-identity-v1" || !ageSecret || !seedText) {
    throw new IdentityError("the file opened but is not a quorate-identity-v1 identity");
  }
  const seed = fromBase64(seedText);
  if (seed.length !== 32) throw new IdentityError("the signing key is not 32 bytes");
  const [signingKey, verifyingKey] = await signingKeys(seed);
  seed.fill(0);
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
