#!/usr/bin/env bash
# Prepare, once, a virtual environment holding pipecat-ai for the Pipecat integration test;
# print its path (stdout, last line).
#
# pipecat-ai pins soxr 1.0.x and soundfile 0.13.x, which clash with the server's soxr 1.1.0,
# so the Pipecat side of the test runs in this venv and talks to a real Voxline over loopback.
# It is cached outside the checkout in $VOXLINE_PIPECAT_CACHE (default /var/cache/voxline, else
# ~/.cache/voxline when that is not writable) under
# pipecat-venv-<hash>, the hash covering this script, requirements-pipecat.txt and the Python
# version. A build happens under a lock and is marked complete only at its end, so concurrent or
# interrupted runs never use a half-built venv. pip's cache is PIP_CACHE_DIR (CI sets it).
# Venvs of other hashes in the same folder are removed after a successful build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${PYTHON:-python3}
cache_root=${VOXLINE_PIPECAT_CACHE:-/var/cache/voxline}
# Not root and no writable /var/cache/voxline: the user's cache instead.
if ! mkdir -p "$cache_root" 2>/dev/null || [ ! -w "$cache_root" ]; then
    cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/voxline
fi
key=$( (cat "$here/pipecat_venv.sh" "$here/requirements-pipecat.txt"; "$python" --version) \
    | sha256sum | cut -c1-16)
venv="$cache_root/pipecat-venv-$key"

log() { echo "pipecat-venv: $*" >&2; }

if [ -f "$venv/.complete" ]; then
    log "cached at $venv"
    echo "$venv"
    exit 0
fi
mkdir -p "$cache_root"
exec 9>"$cache_root/.pipecat-venv-$key.lock"
flock 9
if [ -f "$venv/.complete" ]; then
    log "cached at $venv (built by a concurrent run)"
    echo "$venv"
    exit 0
fi
start=$(date +%s)
log "building $venv"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip >&2
"$venv/bin/pip" install -q -r "$here/requirements-pipecat.txt" >&2
"$venv/bin/pip" check >&2
touch "$venv/.complete"
log "built in $(( $(date +%s) - start )) s"
for old in "$cache_root"/pipecat-venv-*; do
    if [ -d "$old" ] && [ "$old" != "$venv" ]; then
        log "removing the venv of another version: $old"
        rm -rf --one-file-system "$old"
        rm -f "$cache_root/.$(basename "$old").lock"
    fi
done
echo "$venv"
