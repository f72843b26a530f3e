#!/usr/bin/env bash
# Builds the node with whisper.cpp's Vulkan backend and runs its GPU test
# (services/quorate-node/tests/gpu.rs). Without a GPU, Mesa's software Vulkan device
# (llvmpipe) stands in, so the Vulkan path is exercised on any machine; with one, the test
# runs on it. Not part of scripts/test.sh: the Vulkan build is a second whisper.cpp build
# (its shaders alone take minutes). The CUDA build needs NVIDIA's toolkit and is not tested.
set -euo pipefail
cd "$(dirname "$0")/.."

needed=(glslc libvulkan-dev mesa-vulkan-drivers)
missing=()
for package in "${needed[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bash scripts/install-test-deps.sh

# A target folder of its own, so the CPU build's cache is not rebuilt.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/vulkan}"
cargo test --locked --release -p quorate-node --features vulkan --test gpu -- --nocapture
