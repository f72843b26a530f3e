#!/usr/bin/env bash
# The protocol crate does no I/O: no async runtime, database, object store or HTTP client in
# its dependency tree, and no std::fs or std::net in its source.
set -euo pipefail
cd "$(dirname "$0")/.."

forbidden='^(tokio|sqlx|sqlx-core|object_store|reqwest|hyper|axum|mio|async-std) '
tree=$(cargo tree --locked -p quorate-crypto -e normal --prefix none --no-dedupe)
if offenders=$(grep -E "$forbidden" <<<"$tree" | sort -u) && [ -n "$offenders" ]; then
  echo "error: quorate-crypto must not depend on I/O crates, found:" >&2
  echo "$offenders" >&2
  exit 1
fi
if grep -rnE 'std::(fs|net)\b|tokio::' services/quorate-crypto/src; then
  echo "error: quorate-crypto/src must not use std::fs, std::net or tokio" >&2
  exit 1
fi
echo "quorate-crypto: no I/O dependencies ($(wc -l <<<"$tree") crates checked)"
