#!/usr/bin/env bash
# Prepare, once, a Debian sid chroot holding Asterisk 22 for the telephony tests; print its path.
#
# Usage: asterisk_chroot.sh [--path]
#   (no option)  build the chroot if it is not cached yet, then print its path (stdout, last line)
#   --path       only print where the chroot lives for this script version (builds nothing)
#
# After a successful build, chroots of other versions of this script (other hashes) in the same
# cache folder are removed: each is about 0.5 GB.
#
# The chroot is cached outside the checkout in $VOXLINE_ASTERISK_CACHE (default
# /var/cache/voxline) under asterisk-<hash>, the hash covering this script (and so the package
# list below). A build goes to a temporary folder renamed into place when complete, under a lock,
# so concurrent or interrupted runs never leave a half-built chroot in use. Needs root and
# debootstrap (apt-get install debootstrap). Debian 12 has no asterisk package; sid has 22.x.
set -euo pipefail

# python3 (not python3-minimal): the AGI script needs http.client and the rest of the stdlib.
PACKAGES=(asterisk asterisk-modules asterisk-core-sounds-en python3)
SUITE=sid
CACHE_ROOT=${VOXLINE_ASTERISK_CACHE:-/var/cache/voxline}
MIRROR=${VOXLINE_DEBIAN_MIRROR:-}

self=$(readlink -f "${BASH_SOURCE[0]}")
key=$(sha256sum "$self" | cut -c1-16)
root="$CACHE_ROOT/asterisk-$key"

log() { echo "asterisk-chroot: $*" >&2; }

ready() { [ -f "$root/.voxline-ready" ] && [ -x "$root/usr/sbin/asterisk" ]; }

if [ "${1:-}" = "--path" ]; then
    echo "$root"
    exit 0
fi
if ready; then
    log "cached at $root"
    echo "$root"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    log "needs root to build the chroot"; exit 2
fi
command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 2; }

if [ -z "$MIRROR" ]; then
    # The Debian mirror apt already uses (deb822 or one-line sources).
    MIRROR=$(grep -rhoE '(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list \
        /etc/apt/sources.list.d/ 2>/dev/null | head -n1 | awk '{print $2}' || true)
    [ -n "$MIRROR" ] || { log "no Debian mirror in apt's sources: set VOXLINE_DEBIAN_MIRROR"; exit 2; }
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.asterisk-$key.lock"
flock 9
if ready; then
    log "cached at $root (built by a concurrent run)"
    echo "$root"
    exit 0
fi

start=$(date +%s)
tmp="$CACHE_ROOT/.build-asterisk-$key"
rm -rf "$tmp"
log "building $SUITE chroot from $MIRROR into $root (about 90 s)"
debootstrap --variant=minbase "$SUITE" "$tmp" "$MIRROR" >"$CACHE_ROOT/.build-asterisk-$key.log" 2>&1 \
    || { log "debootstrap failed; see $CACHE_ROOT/.build-asterisk-$key.log"; tail -n 20 \
        "$CACHE_ROOT/.build-asterisk-$key.log" >&2; exit 1; }
# The sid index on some mirrors is past its Valid-Until; no daemon may start inside the chroot.
echo 'Acquire::Check-Valid-Until "false";' >"$tmp/etc/apt/apt.conf.d/99voxline"
printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
chmod 755 "$tmp/usr/sbin/policy-rc.d"
chroot "$tmp" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C apt-get update -q \
    >>"$CACHE_ROOT/.build-asterisk-$key.log" 2>&1
chroot "$tmp" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C \
    apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" \
    >>"$CACHE_ROOT/.build-asterisk-$key.log" 2>&1 \
    || { log "apt-get install failed; see $CACHE_ROOT/.build-asterisk-$key.log"; tail -n 20 \
        "$CACHE_ROOT/.build-asterisk-$key.log" >&2; exit 1; }
chroot "$tmp" apt-get clean
chroot "$tmp" /usr/sbin/asterisk -V >&2
touch "$tmp/.voxline-ready"
rm -rf "$root"
mv "$tmp" "$root"
mv "$CACHE_ROOT/.build-asterisk-$key.log" "$root/.voxline-build.log"
log "built in $(( $(date +%s) - start )) s"
for old in "$CACHE_ROOT"/asterisk-*; do
    if [ -d "$old" ] && [ "$old" != "$root" ] && [ -f "$old/.voxline-ready" ]; then
        log "removing the chroot of another harness version: $old"
        rm -rf --one-file-system "$old"
        rm -f "$CACHE_ROOT/.$(basename "$old").lock"
    fi
done
echo "$root"
