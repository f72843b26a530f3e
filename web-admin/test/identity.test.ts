// The identity file the Rust side writes opens in the browser to the same keys and
// fingerprint (services/quorate-crypto/testdata/identity-file-vector.json).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { IdentityError, openIdentityFile } from "../src/identity";

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
