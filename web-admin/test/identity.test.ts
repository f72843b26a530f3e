// The identity file the Rust side writes opens in the browser to the same keys and
// fingerprint (services/quorate-crypto/testdata/identity-file-vector.json).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Decrypter, armor } from "age-encryption";
import { IdentityError, createIdentity, openIdentityFile } from "../src/identity";

const vector = JSON.parse(
  readFileSync(
    new URL("../../services/quorate-crypto/testdata/identity-file-vector.json", import.meta.url),
    "utf8",
  ),
);

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

describe("an identity file from quorate keygen", () => {
  it("opens with its passphrase to the same keys and fingerprint", async () => {
    const identity = await openIdentityFile(vector.file, vector.passphrase);
    expect(identity.recipient).toBe(vector.recipient);
    expect(hex(identity.verifyingKey)).toBe(vector.verifying_key_hex);
    expect(identity.fingerprintHex).toBe(vector.fingerprint_hex);
    expect(identity.fingerprintShort).toBe(vector.fingerprint_short);
    expect(identity.signingKey.extractable).toBe(false);
  });

  it("signs with a key that verifies against its verifying key", async () => {
    const identity = await openIdentityFile(vector.file, vector.passphrase);
    const message = new TextEncoder().encode("quorate/sign-in/v1\0challenge");
    const signature = await crypto.subtle.sign("Ed25519", identity.signingKey, message);
    const publicKey = await crypto.subtle.importKey(
      "raw",
      Uint8Array.from(identity.verifyingKey),
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    expect(await crypto.subtle.verify("Ed25519", publicKey, signature, message)).toBe(true);
  });

  it("refuses a wrong passphrase with a message that says what to do", async () => {
    await expect(openIdentityFile(vector.file, "wrong")).rejects.toThrow(IdentityError);
    await expect(openIdentityFile(vector.file, "wrong")).rejects.toThrow("passphrase");
  });
});

describe("an identity made in the browser", () => {
  it("is written as quorate keygen writes it, and opens with its passphrase to the same keys", async () => {
    const made = await createIdentity("a passphrase long enough", 10);
    expect(made.file.startsWith("-----BEGIN AGE ENCRYPTED FILE-----\n")).toBe(true);
    const plaintext = new Decrypter();
    plaintext.addPassphrase("a passphrase long enough");
    const text = await plaintext.decrypt(armor.decode(made.file), "text");
    const lines = text.split("\n");
    expect(lines[0]).toBe(`# Quorate identity. Keep it secret. Fingerprint: ${made.identity.fingerprintShort}`);
    expect(lines[1]).toBe("quorate-identity-v1");
    expect(lines[2]).toMatch(/^age: AGE-SECRET-KEY-1[0-9A-Z]+$/);
    expect(lines[3]).toMatch(/^ed25519: [A-Za-z0-9+/]{43}=$/);
    expect(lines[4]).toBe("");
    const opened = await openIdentityFile(made.file, "a passphrase long enough");
    expect(opened.fingerprintHex).toBe(made.identity.fingerprintHex);
    expect(opened.recipient).toBe(made.identity.recipient);
    expect(hex(opened.verifyingKey)).toBe(hex(made.identity.verifyingKey));
    expect(opened.signingKey.extractable).toBe(false);
    expect(made.identity.signingKey.extractable).toBe(false);
  });

  it("uses scrypt at keygen's work factor unless told otherwise", async () => {
    const made = await createIdentity("a passphrase long enough");
    const header = new TextDecoder().decode(armor.decode(made.file)).split("\n");
    expect(header[1]).toMatch(/^-> scrypt \S+ 18$/);
  });

  it("makes different keys each time", async () => {
    const [a, b] = await Promise.all([createIdentity("a passphrase long enough", 10), createIdentity("a passphrase long enough", 10)]);
    expect(a.identity.fingerprintHex).not.toBe(b.identity.fingerprintHex);
  });

  it("refuses a short passphrase and says what to choose", async () => {
    await expect(createIdentity("short", 10)).rejects.toThrow(IdentityError);
    await expect(createIdentity("short", 10)).rejects.toThrow("at least 12 characters");
  });
});
