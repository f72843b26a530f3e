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
# whisper.cpp 1.8.3's Vulkan backend asks for VK_EXT_layer_settings, which Debian 12's
# headers (1.3.239) do not declare: the build would fail deep inside CMake.
if ! grep -q "VK_EXT_layer_settings" /usr/include/vulkan/vulkan_core.h; then
  echo "error: these Vulkan headers ($(grep -m1 -o 'VK_HEADER_VERSION [0-9]*' /usr/include/vulkan/vulkan_core.h)) lack VK_EXT_layer_settings, which whisper.cpp's Vulkan backend needs: install newer ones (Debian 13's libvulkan-dev, or the LunarG SDK) and run again" >&2
  exit 1
fi
bash scripts/install-test-deps.sh

# A target folder of its own, so the CPU build's cache is not rebuilt.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/vulkan}"
cargo test --locked --release -p quorate-node --features vulkan --test gpu -- --nocapture
