#!/bin/sh
# Jibri's finalize script for Quorate (jibri.conf: recording.finalize-script = this file).
# Jibri runs it with the recording's folder once the MP4 and metadata.json are written; it
# marks the folder finished, and `quorate watch --folder jibri=RECORDINGS_DIRECTORY` takes it
# from there (encrypts, uploads, and with --remove-plaintext removes the folder).
# It returns at once, so Jibri is free for the next meeting while the upload runs.
set -eu
folder="${1:?usage: jibri-finalize.sh RECORDING_FOLDER}"
[ -d "$folder" ] || { echo "jibri-finalize: $folder is not a folder" >&2; exit 1; }
# The marker is written whole or not at all: a temporary name, then a rename.
: > "$folder/.quorate-ready.partial"
mv "$folder/.quorate-ready.partial" "$folder/.quorate-ready"
echo "jibri-finalize: $folder handed to quorate watch"
