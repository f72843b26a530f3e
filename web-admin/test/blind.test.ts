// The browser's tokenisation against the vectors the Rust side publishes.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { importSearchKey, normalise, postings, tokens } from "../src/blind";

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
  it("packs postings per segment as the Rust side counts them: a record per distinct word", async () => {
    const vector = vectors[0]!;
    const key = await importSearchKey(bytes(vector.key));
    const packed = await postings(key, [vector.text, "", "budget"]);
    const records = Array.from({ length: packed.length / 24 }, (_, i) => {
      const record = packed.subarray(i * 24, i * 24 + 24);
      const view = new DataView(record.buffer, record.byteOffset, 24);
      return [Array.from(record.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join(""), view.getUint32(16), view.getUint32(20)];
    });
    const tokenOf = (word: string) => vector.tokens[vector.words.indexOf(word)]!;
    expect(records).toEqual([
      [tokenOf("the"), 0, 3],
      [tokenOf("budget"), 0, 3],
      [tokenOf("and"), 0, 1],
      [tokenOf("budget"), 2, 1],
    ]);
  });

  it("refuses a key of the wrong length", async () => {
    await expect(importSearchKey(new Uint8Array(16))).rejects.toThrow("32 bytes");
  });
});
