#!/usr/bin/env python3
"""Writes seed corpora for the fuzz targets from the crate's golden valid encodings
(services/quorate-crypto/tests/golden/wire-format.txt), so the fuzzer starts past the
domain strings it could not guess. Run from fuzz/: python3 make-seeds.py"""
import os, struct, subprocess

golden = {}
with open("../services/quorate-crypto/tests/golden/wire-format.txt") as f:
    for line in f:
        name, hexed = line.split()
        golden[name] = bytes.fromhex(hexed)

def body_of(signed):
    # domain str (u32 len + bytes), kind u8, signer 32, signature 64, body (u32 len + bytes)
    (domain_len,) = struct.unpack(">I", signed[:4])
    at = 4 + domain_len
    kind = signed[at]
    at += 1 + 32 + 64
    (body_len,) = struct.unpack(">I", signed[at:at + 4])
    return kind, signed[at + 4:at + 4 + body_len]

def write(target, name, data):
    folder = os.path.join("seeds", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)

statements = ["roster-entry", "node-approval", "recording-manifest", "unlock-request",
              "vote-approve", "vote-deny", "transcript-manifest"]
for name in statements:
    write("signed_statement", name, golden[name])
    kind, body = body_of(golden[name])
    write("statement_bodies", name, bytes([kind - 1]) + body)
write("share_plaintext", "share", golden["share-plaintext"])
write("node_share_plaintext", "node-share", golden["node-share-plaintext"])
write("recording_metadata", "metadata", golden["recording-metadata"])
entry = golden["roster-entry"]
write("roster_chain", "one-entry", struct.pack(">I", len(entry)) + entry)

key = subprocess.run(["age-keygen"], capture_output=True, text=True, check=True).stdout
age_line = [l for l in key.splitlines() if l.startswith("AGE-SECRET-KEY-")][0]
identity = "# Quorate identity\nquorate-identity-v1\nage: %s\ned25519: %s\n" % (
    age_line, "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=")
write("identity_file", "plaintext", identity.encode())
write("identity_file", "protected-header", b"-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCg==\n-----END AGE ENCRYPTED FILE-----\n")
