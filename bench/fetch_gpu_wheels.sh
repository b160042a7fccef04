#!/usr/bin/env bash
# Download the wheels that bench/gpu_check.sh installs on a GPU machine without network.
#
# The GPU machines (see /work/shared/ENVIRONMENT.md "GPU machines") run Python 3.12 with torch and
# torchaudio 2.11 (cu130), numba, scipy, matplotlib, einops, huggingface-hub already installed.
# This fetches cp312 manylinux wheels of the rest, pinned to the versions of the CPU venv, plus
# wheels built here for the two sdist-only packages (docopt, deepspeed).
#
# Usage: bench/fetch_gpu_wheels.sh [DEST]     (DEST defaults to bench/wheels, which git ignores)
# Then carry DEST to the GPU machine with the working tree (device tool: carry ["bench/wheels"]).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-bench/wheels}
PIP=${PIP:-python3 -m pip}
mkdir -p "$DEST"

# What coqui-tts (XTTS), the server and the benchmark import that the GPU image lacks.
BINARY=(
  coqui-tts==0.28.0 coqui-tts-trainer==0.4.0 coqpit-config==0.2.5 anyascii==0.3.3
  inflect==7.6.0 typeguard==4.6.1 jaraco.functools==4.6.0 more-itertools==11.2.1
  ko-speech-tools==0.1.0 librosa==0.11.0 audioread==3.1.0 pooch==1.9.0 platformdirs==4.14.8
  decorator==5.3.1 soxr==1.1.0 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12
  monotonic-alignment-search==0.2.1 num2words==0.5.14 pysbd==0.3.4 torchcodec==0.11.1
  flask==3.1.3 blinker==1.9.0 itsdangerous==2.2.0 werkzeug==3.1.9 gunicorn==23.0.0
  # The image has transformers 5.17.0; the CPU stack is verified with 5.23.0 (5.24.0 breaks XTTS).
  transformers==5.23.0
  # DeepSpeed's own requirements missing from the image.
  hjson==3.1.0 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0
  typing-inspection==0.4.5 typing-extensions==4.16.0
)
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
  manylinux1_x86_64; do
  PLATFORMS+=(--platform "$p")
done

$PIP download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d "$DEST" "${BINARY[@]}"

# No wheels on PyPI: build pure-Python ones here. DeepSpeed compiles its CUDA ops just in time
# on the GPU machine (DS_BUILD_OPS=0 builds none now).
$PIP wheel --quiet --no-deps -w "$DEST" docopt==0.6.2
DS_BUILD_OPS=0 $PIP wheel --quiet --no-deps -w "$DEST" deepspeed==0.19.8

ls -1 "$DEST"/*.whl | wc -l | xargs echo "wheels:"
du -sh "$DEST"
