#!/usr/bin/env bash
# Issue 7's comparison, side by side in one run on the same machine: the scheduler configured
# as today's XTTS servers behave (one request at a time, coqui-tts's fixed 20-token chunks)
# vs deadline-aware interleaving with a small first chunk, vs the same plus lockstep batching.
# All at top_k=1 (batching needs greedy sampling) with every output forced to the same length
# (TOKENS, default 64: about 3 s of speech), so each configuration does exactly the same work
# and the batch key (which includes forced lengths) lets the batched configuration batch.
#
#   bench/scheduling.sh /tmp/xtts-full [OUT] [extra bench/latency.py options...]
set -euo pipefail
cd "$(dirname "$0")/.."
ckpt=${1:?checkpoint folder (bench/make_xtts_checkpoint.py --size full DIR)}
out=${2:-/tmp/voxline-scheduling}
shift $(( $# >= 2 ? 2 : 1 ))
py=${PYTHON:-.venv/bin/python}
mkdir -p "$out"

run() {  # label, max_active, schedule, max_batch, extra options...
    local label=$1 active=$2 schedule=$3 batch=$4
    shift 4
    "$py" bench/latency.py --spawn --engine xtts --xtts-dir "$ckpt" --device "${DEVICE:-cpu}" \
        --server-env VOXLINE_MAX_ACTIVE="$active" --server-env VOXLINE_CHUNK_SCHEDULE="$schedule" \
        --server-env VOXLINE_MAX_BATCH="$batch" --server-env VOXLINE_QUEUE_TIMEOUT_S=1800 \
        --top-k 1 --force-length off --param min_new_tokens="${TOKENS:-64}" \
        --param max_new_tokens="${TOKENS:-64}" --workloads short --languages en --concurrency "${CONCURRENCY:-1,4}" \
        --requests "${REQUESTS:-4}" --warmup 1 --timeout 1800 --no-progress \
        --label "$label" --out "$out/$label" "$@"
}

run serial-fixed20 1 20 1 "$@"
run interleave-4-20 8 4,20 1 "$@"
run batch4-4-20 8 4,20 4 "$@"
"$py" bench/latency.py --combine "$out"/*/latency.json --out "$out/combined"
