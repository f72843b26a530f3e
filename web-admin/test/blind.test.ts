// The browser's tokenisation against the vectors the Rust side publishes.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { importSearchKey, normalise, tokens } from "../src/blind";

interface Vector {
  comment: string;
  key: string;
  text: string;
  words: string[];
  tokens: string[];
}

const vectors: Vector[] = JSON.parse(
  readFileSync(
    new URL("../../services/quorate-crypto/testdata/blind-index-vectors.json", import.meta.url),
    "utf8",
  ),
).vectors;

function bytes(hex: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(hex.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

describe("blind-index vectors published by quorate-crypto", () => {
  it("has vectors to check", () => {
    expect(vectors.length).toBeGreaterThan(5);
  });
  for (const vector of vectors) {
    it(`${vector.comment}: the same words and tokens`, async () => {
      expect(normalise(vector.text)).toEqual(vector.words);
      const key = await importSearchKey(bytes(vector.key));
      expect(await tokens(key, vector.text)).toEqual(vector.tokens);
    });
  }
  it("refuses a key of the wrong length", async () => {
    await expect(importSearchKey(new Uint8Array(16))).rejects.toThrow("32 bytes");
  });
});
