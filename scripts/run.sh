#!/usr/bin/env bash
# Runs Quorate: builds the web UI when its sources changed (npm ci and vite, with the
# machine's Node.js), then the server in release mode, serving the UI at / and the API under
# /api/v1. Extra arguments go to the server (`scripts/run.sh --help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."

web=web-admin
stamp="$web/dist/.built-from"
# What the UI is built from: the package files, the sources, the page and the build scripts.
inputs=$(cat "$web/package.json" "$web/package-lock.json" "$web/index.html" "$web/vite.config.ts" "$web"/src/* "$web"/scripts/* | sha256sum | cut -d" " -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$inputs" ]; then
  command -v npm >/dev/null 2>&1 || { echo "error: the web UI is built with Node.js and npm; install them (Debian: apt-get install nodejs npm)" >&2; exit 1; }
  echo "==> building the web UI (web-admin/dist)"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
  echo "$inputs" > "$stamp"
fi
exec cargo run --release -p quorate-server -- --web-dir "$web/dist" "$@"
