#!/usr/bin/env bash
# The whole GPU latency check in one command (issue 5): install the wheels carried in
# bench/wheels (bench/fetch_gpu_wheels.sh), build the full-size XTTS v2 random-weight proxy,
# benchmark it through gunicorn at concurrency 1/4/8 in fp32, fp16 and DeepSpeed (when it
# imports and really runs), measure server overhead (tone engine and tiny XTTS) if time is left,
# and write a combined Markdown table, plots, a log and every run's raw JSON to $OUT.
# Everything stays inside a time budget (default 450 s, under the 8-minute limit).
#
# GPU machine (no network):  bench/gpu_check.sh
# CPU rehearsal:             OUT=/tmp/gc bench/gpu_check.sh --device cpu --size tiny \
#                              --requests 2 --concurrency 1,2 --workloads short --budget 240
#
# Options: --device cuda|cpu  --size full|tiny  --requests N  --concurrency LIST
#          --workloads LIST  --variants fp32,fp16,deepspeed  --budget S  --overhead N
#          --tokens N (forced GPT tokens of the scheduling variants, default 64; tiny: <= 40)
# Scheduling variants (issue 7; greedy, every request forced to 64 tokens):
#   serial (one request at a time, fixed 20-token chunks: how other XTTS servers run),
#   interleave (deadline-aware interleaving, 4,20 schedule, no batching), batch16 (the same
#   with continuous batching of up to 16 rows), e.g.
#   bench/gpu_check.sh --variants serial,interleave,batch16 --concurrency 1,4,8,16
# Continuous batching with XTTS's sampled defaults (issue 13; 64 tokens forced, up to 32 rows):
#   bench/gpu_check.sh --variants continuous --concurrency 1,4,8,16,32 --workloads short
#   reports streams per GPU with no underrun and TTFA p95 (bench/streams_report.py, also in
#   $OUT/streams.md); each cell sends at least as many requests as its concurrency.
# Environment: OUT (default out/gpu_check), WORK (default /tmp/voxline-gpu-check),
#              PYTHON (default .venv/bin/python if present, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$SECONDS

DEVICE=cuda SIZE=full REQUESTS=8 CONCURRENCY=1,4,8 WORKLOADS=short,medium
VARIANTS=fp32,fp16,deepspeed BUDGET=450 OVERHEAD=20 TOKENS=64
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2 ;;
    --size) SIZE=$2 ;;
    --requests) REQUESTS=$2 ;;
    --concurrency) CONCURRENCY=$2 ;;
    --workloads) WORKLOADS=$2 ;;
    --variants) VARIANTS=$2 ;;
    --budget) BUDGET=$2 ;;
    --overhead) OVERHEAD=$2 ;;
    --tokens) TOKENS=$2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done

OUT=${OUT:-out/gpu_check}
WORK=${WORK:-/tmp/voxline-gpu-check}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
mkdir -p "$OUT" "$WORK"
rm -rf "$WORK/runs"
mkdir -p "$WORK/runs"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1

say() { echo "[gpu_check +$((SECONDS - T0))s] $*"; }
left() { echo $((BUDGET - (SECONDS - T0))); }

say "device=$DEVICE size=$SIZE requests=$REQUESTS concurrency=$CONCURRENCY workloads=$WORKLOADS" \
  "variants=$VARIANTS budget=${BUDGET}s python=$PYTHON commit=$(git rev-parse --short HEAD 2>/dev/null || echo ?)"

# 1. Packages: install the carried wheels unless this Python already has the stack.
if ! $PYTHON -c "import TTS, flask, gunicorn, soxr, pysbd" 2>/dev/null; then
  if ! ls bench/wheels/*.whl >/dev/null 2>&1; then
    say "coqui-tts/flask/gunicorn missing and no bench/wheels/*.whl: run bench/fetch_gpu_wheels.sh and carry bench/wheels"
    exit 1
  fi
  say "installing $(ls bench/wheels/*.whl | wc -l) carried wheels into $WORK/site"
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$WORK/site" bench/wheels/*.whl
  export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ "$DEVICE" = cuda ]; then nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true; fi
$PYTHON - <<'EOF'
import importlib.metadata as m, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
for name in ("coqui-tts", "transformers", "deepspeed", "flask", "gunicorn"):
    try:
        print(name, m.version(name))
    except m.PackageNotFoundError:
        print(name, "not installed")
EOF
DS_OK=0
if [ "$DEVICE" = cuda ] && $PYTHON -c "import deepspeed" >/dev/null 2>&1; then DS_OK=1; fi
say "deepspeed importable: $DS_OK"

# 2. The checkpoint (random weights; full = the published v2 architecture, 467 M parameters).
CKPT="$WORK/xtts-$SIZE"
if [ ! -f "$CKPT/model.pth" ]; then
  say "building the $SIZE XTTS checkpoint in $CKPT"
  $PYTHON bench/make_xtts_checkpoint.py --size "$SIZE" "$CKPT"
fi

# 3. One benchmark run per variant, each given an equal share of the time that is left.
run_latency() {  # NAME SECONDS ARGS...: run bench/latency.py, never failing the script
  local name=$1 secs=$2
  shift 2
  say "$name: up to ${secs}s"
  timeout --signal=TERM --kill-after=20 "$secs" $PYTHON bench/latency.py --no-progress \
    --budget $((secs - 10)) --ready-timeout $((secs - 15)) --label "$name" \
    --out "$WORK/runs/$name" "$@" || say "$name: exit status $?"
}
IFS=, read -r -a VARS <<<"$VARIANTS"
OVERHEAD_RESERVE=0
if [ "$OVERHEAD" -gt 0 ]; then OVERHEAD_RESERVE=70; fi
for i in "${!VARS[@]}"; do
  v=${VARS[$i]}
  flags=()
  case "$v" in
    fp32) flags=(--deepspeed off) ;;
    fp16) flags=(--fp16 --deepspeed off --expect fp16=true) ;;
    deepspeed) flags=(--deepspeed on --expect deepspeed=true) ;;
    serial|interleave|batch16)
      flags=(--deepspeed off --top-k 1 --force-length off --param min_new_tokens=$TOKENS
             --param max_new_tokens=$TOKENS --server-env VOXLINE_QUEUE_TIMEOUT_S=600)
      case "$v" in
        serial) flags+=(--server-env VOXLINE_MAX_ACTIVE=1 --server-env VOXLINE_CHUNK_SCHEDULE=20
                        --server-env VOXLINE_MAX_BATCH=1) ;;
        interleave) flags+=(--server-env VOXLINE_MAX_ACTIVE=16 --server-env VOXLINE_MAX_BATCH=1) ;;
        batch16) flags+=(--server-env VOXLINE_MAX_ACTIVE=16 --server-env VOXLINE_MAX_BATCH=16) ;;
      esac ;;
    continuous)
      flags=(--deepspeed off --force-length off --param min_new_tokens=$TOKENS
             --param max_new_tokens=$TOKENS --server-env VOXLINE_QUEUE_TIMEOUT_S=600
             --server-env VOXLINE_MAX_ACTIVE=32 --server-env VOXLINE_MAX_BATCH=32
             --server-env VOXLINE_MAX_QUEUE=64) ;;
    *) say "unknown variant $v"; continue ;;
  esac
  case "$v" in fp16|deepspeed) if [ "$DEVICE" != cuda ]; then say "$v: skipped (needs CUDA)"; continue; fi ;; esac
  if [ "$v" = deepspeed ] && [ "$DS_OK" != 1 ]; then say "deepspeed: skipped (does not import)"; continue; fi
  share=$(( ($(left) - OVERHEAD_RESERVE - 15) / (${#VARS[@]} - i) ))
  if [ "$share" -lt 45 ]; then say "$v: skipped (only ${share}s left)"; continue; fi
  req=$REQUESTS
  if [ "$v" = continuous ]; then  # at least one request per stream at the highest concurrency
    maxc=$(tr , '\n' <<<"$CONCURRENCY" | sort -n | tail -n1)
    if [ "$maxc" -gt "$req" ]; then req=$maxc; fi
  fi
  run_latency "$v" "$share" --spawn --engine xtts --xtts-dir "$CKPT" --device "$DEVICE" \
    "${flags[@]}" --concurrency "$CONCURRENCY" --requests "$req" --workloads "$WORKLOADS" \
    --languages en --warmup 2
done

# Streams per GPU for the continuous-batching run (no underrun; TTFA p95 within 150 ms).
if [ -f "$WORK/runs/continuous/latency.json" ]; then
  $PYTHON bench/streams_report.py "$WORK/runs/continuous/latency.json" | tee "$OUT/streams.md"
fi

# 4. Server overhead at concurrency 1: a fixed-timing fake engine, then the tiny XTTS.
if [ "$OVERHEAD" -gt 0 ] && [ "$(left)" -gt 40 ]; then
  run_latency overhead-tone 30 --spawn --engine tone --only-overhead --overhead "$OVERHEAD" \
    --warmup 0 --param speed=4
fi
if [ "$OVERHEAD" -gt 0 ] && [ "$(left)" -gt 50 ]; then
  TINY="$WORK/xtts-tiny"
  [ -f "$TINY/model.pth" ] || $PYTHON bench/make_xtts_checkpoint.py --size tiny "$TINY"
  secs=$(( $(left) - 15 ))
  if [ "$secs" -gt 120 ]; then secs=120; fi
  run_latency overhead-tiny-xtts "$secs" --spawn --engine xtts --xtts-dir "$TINY" \
    --device "$DEVICE" --only-overhead --overhead "$OVERHEAD" --warmup 0 --top-k 1
fi

# 5. One table and two plots over all runs; every run's JSON, Markdown, plots and server log.
shopt -s nullglob
runs=("$WORK"/runs/*/latency.json)
if [ ${#runs[@]} -gt 0 ]; then
  $PYTHON bench/latency.py --combine "${runs[@]}" --out "$OUT" >/dev/null
  cp "$OUT/combined.md" "$OUT/gpu_check.md"
  rm "$OUT/combined.md"
  cat "$OUT/gpu_check.md"
fi
tar -czf "$OUT/runs.tar.gz" -C "$WORK" runs
say "done in $((SECONDS - T0))s; results in $OUT (gpu_check.md, combined_*.png, runs.tar.gz, gpu_check.log)"
