# Voxline image, CPU or CUDA. Its steps are the README's own commands (scripts/setup, then
# scripts/serve), which CI runs on a fresh Debian machine; no container runtime works on the
# CI machines, so the image itself is not built there (README "Production").
#
#   CPU:  docker build -t voxline:cpu .
#   CUDA: docker build -t voxline:cuda --build-arg VARIANT=cuda .
#         (the host needs the NVIDIA driver and container toolkit; torch 2.11 from PyPI
#          carries its own CUDA 13 libraries, so the base stays plain Debian)
ARG BASE=debian:bookworm-slim
FROM ${BASE}
ARG VARIANT=cpu

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/voxline
COPY . .
# The README's setup: .venv with the pinned stack, and Debian's ffmpeg (run as root here).
RUN scripts/setup && rm -rf /var/lib/apt/lists/* /root/.cache/pip
# CUDA hosts add DeepSpeed, as the README says (requirements-gpu.txt).
RUN if [ "$VARIANT" = cuda ]; then .venv/bin/pip install --no-cache-dir -r requirements-gpu.txt; fi

ENV VOXLINE_BIND=0.0.0.0:8020 \
    VOXLINE_CACHE_DIR=/cache
EXPOSE 8020
# gunicorn becomes PID 1 (scripts/serve execs it) and drains on SIGTERM.
STOPSIGNAL SIGTERM
CMD ["scripts/serve"]
