// A recording made in the browser (issue 16, item 5): the split is quorate-crypto's (see
// vss.test.ts), so the node rebuilds the key; a recording streamed through a live upload comes out as a real age file
// that the members' shares open; and a lying server (a forged or rolled-back policy, an
// upload it did not open fresh, bytes it claims it never got, an answer that does not
// complete) is refused with nothing signed.
import { Decrypter, identityToRecipient } from "age-encryption";
import { afterEach, describe, expect, it, vi } from "vitest";

import { recordToVault } from "../src/recording";
import { openShare, recipientBytes, secretKeyText } from "../src/sealed";
import { ageKeyBytes, scalarFromBytes } from "../src/vss";
import {
  type RecordingMetadata,
  decodeRecordingMetadata,
  encodeVaultPolicy,
  sign,
  verify,
} from "../src/statements";
import { concat, fromBase64, hex, sha256, toBase64 } from "../src/wire";
import { LyingServer, Pins, adminDevice, adminIdentity, genesis, golden, signer } from "./fixtures";

afterEach(() => {
  vi.unstubAllGlobals();
});

/** A vault of one admin with a policy of k = 1, served honestly unless a test says otherwise. */
async function vault() {
  const vaultId = crypto.randomUUID();
  const admin = await adminIdentity();
  const server = new LyingServer();
  const chain = [await genesis(vaultId, admin)];
  server.on("GET", /\/roster$/, () => ({ entries: chain.map(toBase64) }));
  const policy = async (sequence: number, key = admin.signingKey, verifyingKey = admin.verifyingKey) => {
    const body = encodeVaultPolicy({ vaultId, sequence, minThreshold: 1, issuedAt: 1_750_000_000 });
    return { statement: toBase64(await sign("vault-policy", body, key, verifyingKey)) };
  };
  const served = await policy(0);
  server.on("GET", /\/policy$/, () => served);
  // The live upload: what it received, PATCH by PATCH.
  const received: Uint8Array[] = [];
  // The manifests the server completed recordings with.
  const completed = new Map<string, string>();
  const complete = async (body: unknown) => {
    const manifest = (body as { manifest: string }).manifest;
    const { statement } = await verify("recording-manifest", fromBase64(manifest));
    completed.set(statement.recordingId, manifest);
    return {
      recording_id: statement.recordingId,
      upload_url: "",
      upload_offset: stored().length,
      upload_length: stored().length,
      expires_at: 0,
    };
  };
  const stored = () => concat(...received);
  server
    .on("POST", /\/live-uploads$/, (body) => {
      const id = (body as { recording_id: string }).recording_id;
      return { recording_id: id, upload_url: `/api/v1/uploads/${id}`, upload_offset: 0, expires_at: 0 };
    })
    .on("PATCH", /^\/api\/v1\/uploads\//, (body, _path, headers) => {
      if (Number(headers.get("upload-offset")) !== stored().length) return new Response(null, { status: 409 });
      received.push(body as Uint8Array);
      return new Response(null, { status: 204, headers: { "upload-offset": String(stored().length) } });
    })
    .on("POST", /\/recordings$/, (body) => complete(body))
    .on("GET", /\/recordings\/[^/]+$/, (_body, path) => {
      const id = path.split("/").pop() as string;
      return { recording_id: id, status: "complete", manifest: completed.get(id) };
    });
  return { vaultId, admin, server, chain, policy, stored, complete, device: adminDevice(vaultId, admin) };
}

const MEETING: RecordingMetadata = {
  title: "Harbour committee",
  startedAt: 1_750_000_000,
  endedAt: 1_750_003_600,
  mediaType: "audio/webm;codecs=opus",
  attendees: ["Ada", "Bo"],
  language: null,
};

/** A "recording" arriving in pieces, as MediaRecorder hands them over. */
function pieces(plaintext: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= plaintext.length) return controller.close();
      controller.enqueue(plaintext.slice(at, (at += size)));
    },
  });
}

function audio(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31) % 251);
}

describe("recording in the page", () => {
  it("streams a real age file whose manifest, share and metadata the members open", async () => {
    const { server, admin, device, stored } = await vault();
    const plaintext = audio(300_000);
    const id = await recordToVault(device, pieces(plaintext, 7_000), () => MEETING, () => undefined);

    const completed = server.requests.find((request) => request.method === "POST" && request.path.endsWith("/recordings"));
    const body = completed?.body as { manifest: string; shares: { member: string; sealed: string }[] };
    const { statement: manifest } = await verify("recording-manifest", fromBase64(body.manifest));
    const ciphertext = stored();
    expect(manifest.recordingId).toBe(id);
    expect(manifest.uploader).toBe(admin.fingerprintHex);
    expect(manifest.ciphertextLen).toBe(ciphertext.length);
    expect(hex(manifest.ciphertextSha256)).toBe(hex(await sha256(ciphertext)));
    expect([manifest.split.k, manifest.split.n]).toEqual([1, 1]);
    expect(body.shares.map((share) => share.member)).toEqual([admin.fingerprintHex]);
    // More than one PATCH: the upload went on while the source was read.
    expect(server.requests.filter((request) => request.method === "PATCH").length).toBeGreaterThan(1);

    // The admin's sealed share opens with its binding, and (k = 1) is the secret itself,
    // from which the recording's key is derived.
    const subject = { kind: "recording", id } as const;
    const binding = {
      vaultId: manifest.vaultId,
      subject,
      recipient: manifest.split.recipient,
      k: 1,
      n: 1,
      index: 1,
      member: admin.fingerprintHex,
      commitments: manifest.split.commitments,
    };
    const share = await openShare(fromBase64(body.shares[0]!.sealed), admin.ageSecret, binding);
    const key = secretKeyText(await ageKeyBytes(scalarFromBytes(share), subject));
    expect(hex(recipientBytes(await identityToRecipient(key)))).toBe(hex(manifest.split.recipient));
    const decrypter = new Decrypter();
    decrypter.addIdentity(key);
    expect(hex(await decrypter.decrypt(ciphertext))).toBe(hex(plaintext));

    const metadata = new Decrypter();
    metadata.addIdentity(admin.ageSecret);
    expect(decodeRecordingMetadata(await metadata.decrypt(manifest.sealedMetadata))).toEqual(MEETING);
  });
});

describe("a server that cannot answer", () => {
  it("gets the same signed manifest again, not a second one", async () => {
    const { server, device, complete } = await vault();
    let refusals = 1;
    server.on("POST", /\/recordings$/, (body) =>
      refusals-- > 0 ? Response.json({ code: "internal", message: "down" }, { status: 503 }) : complete(body),
    );
    await recordToVault(device, pieces(audio(2_000), 1_000), () => MEETING, () => undefined);
    const manifests = server.requests
      .filter((request) => request.method === "POST" && request.path.endsWith("/recordings"))
      .map((request) => (request.body as { manifest: string }).manifest);
    expect(manifests).toHaveLength(2);
    expect(manifests[1]).toBe(manifests[0]);
  });
});

describe("discarding a recording", () => {
  it("abandons the upload and signs no manifest", async () => {
    const { server, device } = await vault();
    server.on("DELETE", /^\/api\/v1\/uploads\//, () => undefined);
    const discard = new AbortController();
    let sent = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        // The person presses Discard once the first pieces are on their way.
        if (++sent === 20) discard.abort();
        controller.enqueue(audio(10_000));
        if (sent === 40) controller.close();
      },
    });
    await expect(recordToVault(device, source, () => MEETING, () => undefined, discard.signal)).rejects.toThrow(
      /discarded/,
    );
    expect(server.requests.filter((request) => request.method === "DELETE")).toHaveLength(1);
    noManifest(server);
  });
});

/** No manifest was sent (nothing signed reached the server). */
function noManifest(server: LyingServer): void {
  expect(server.requests.filter((request) => request.method === "POST" && request.path.endsWith("/recordings"))).toEqual([]);
}

describe("recording against a lying server", () => {
  it("refuses a policy that is not an admin's, before anything is opened", async () => {
    const { server, policy, device } = await vault();
    const [memberKey, memberVerifying] = await signer(7);
    const forged = await policy(5, memberKey, memberVerifying);
    server.on("GET", /\/policy$/, () => forged);
    await expect(recordToVault(device, pieces(audio(10), 10), () => MEETING, () => undefined)).rejects.toThrow(
      /vault-policy is not signed by an admin/,
    );
    expect(server.writes()).toEqual([]);
  });

  it("refuses a policy older than one this browser verified (a rollback)", async () => {
    const { server, policy, vaultId, admin } = await vault();
    const pins = new Pins();
    pins.setItem(`quorate:policy:${vaultId}`, "3");
    const older = await policy(1);
    server.on("GET", /\/policy$/, () => older);
    const device = adminDevice(vaultId, admin, pins);
    await expect(recordToVault(device, pieces(audio(10), 10), () => MEETING, () => undefined)).rejects.toThrow(
      /rollback/,
    );
    expect(server.writes()).toEqual([]);
  });

  it("refuses an upload the server did not open fresh, and sends it nothing", async () => {
    const { server, device } = await vault();
    server.on("POST", /\/live-uploads$/, (body) => ({
      recording_id: (body as { recording_id: string }).recording_id,
      upload_url: "/api/v1/uploads/x",
      upload_offset: 4096,
      expires_at: 0,
    }));
    await expect(recordToVault(device, pieces(audio(10), 10), () => MEETING, () => undefined)).rejects.toThrow(
      /fresh live upload/,
    );
    expect(server.requests.filter((request) => request.method === "PATCH")).toEqual([]);
  });

  it("refuses a server that claims bytes it was never sent, and signs no manifest", async () => {
    const { server, device } = await vault();
    server.on("PATCH", /^\/api\/v1\/uploads\//, (body) =>
      new Response(null, { status: 204, headers: { "upload-offset": String((body as Uint8Array).length + 100) } }),
    );
    await expect(recordToVault(device, pieces(audio(50_000), 5_000), () => MEETING, () => undefined)).rejects.toThrow(
      /was sent/,
    );
    noManifest(server);
  });

  it("refuses an answer that does not complete the recording", async () => {
    const { server, device } = await vault();
    server.on("POST", /\/recordings$/, () => ({ recording_id: "x", upload_url: "", upload_offset: 0, expires_at: 0 }));
    await expect(recordToVault(device, pieces(audio(1_000), 500), () => MEETING, () => undefined)).rejects.toThrow(
      /does not say that this recording is complete/,
    );
  });

  it("refuses a recording the server does not list as complete with the manifest signed here", async () => {
    const { server, device } = await vault();
    server.on("GET", /\/recordings\/[^/]+$/, (_body, path) => ({ recording_id: path.split("/").pop(), status: "uploading" }));
    await expect(recordToVault(device, pieces(audio(1_000), 500), () => MEETING, () => undefined)).rejects.toThrow(
      /does not list this recording as complete/,
    );
  });

  it("refuses a roster with an entry no admin signed, before anything is opened", async () => {
    const { server, chain, device } = await vault();
    const [strangerKey, strangerVerifying] = await signer(8);
    const planted = await sign("roster-entry", new Uint8Array(40), strangerKey, strangerVerifying);
    server.on("GET", /\/roster$/, () => ({ entries: [...chain, planted].map(toBase64) }));
    await expect(recordToVault(device, pieces(audio(10), 10), () => MEETING, () => undefined)).rejects.toThrow();
    expect(server.writes()).toEqual([]);
  });
});
