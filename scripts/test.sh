#!/usr/bin/env bash
# Runs every check and test, on a fresh machine too: installs what the tests need when it
# is missing, then formatting, clippy (warnings denied), the no-I/O check of the protocol
# crate, the web UI's types, unit tests and build, and all tests (the browser ones too).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "system packages"
scripts/install-test-deps.sh

step "formatting"
cargo fmt --all --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "protocol crate has no I/O"
scripts/check-crypto-deps.sh

step "fuzz targets compile (stable toolchain, no nightly needed)"
(cd fuzz && cargo check --locked --bins -q)

step "web-admin: API types current with docs/openapi.json, type check, unit tests (Vitest), build"
(cd web-admin && npm ci --no-audit --no-fund --loglevel=error && npm run --silent check-api \
  && npm run --silent typecheck && npm test --silent && npm run --silent build)

step "tests (the browser tests drive Debian's Chromium with playwright-core; screenshots in target/tmp/web-screenshots)"
# --no-fail-fast: one failing test binary must not hide the results of the others.
cargo test --workspace --locked --no-fail-fast
