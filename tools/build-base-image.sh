#!/usr/bin/env bash
# Build a Debian image that boots systemd as PID 1, for molecule scenarios and the local demo host.
#
# Usage: tools/build-base-image.sh [SUITE] [IMAGE]
#   SUITE  Debian suite to bootstrap (default: bookworm; trixie works too)
#   IMAGE  docker image name (default: operativos-systemd:SUITE)
#
# No registry is needed: debootstrap fetches Debian packages and `docker import` turns the tree into an
# image. CA certificates in /usr/local/share/ca-certificates on the build machine are trusted inside the
# image too, so pip and npm work behind an intercepting proxy. An existing image is kept unless
# REBUILD=1 is set.
set -euo pipefail

suite=${1:-bookworm}
image=${2:-operativos-systemd:${suite}}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf '[build-base-image] %s\n' "$*" >&2; }

if [[ ${REBUILD:-0} != 1 ]] && docker image inspect "$image" >/dev/null 2>&1; then
  log "image $image exists; set REBUILD=1 to build it again"
  exit 0
fi

command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install debootstrap"; exit 1; }

rootfs=$(mktemp -d /var/tmp/operativos-rootfs.XXXXXX)
trap 'rm -rf --one-file-system "$rootfs"' EXIT

log "bootstrapping $suite into $rootfs"
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,python3,sudo,dbus,ca-certificates,iproute2 \
  "$suite" "$rootfs" "$mirror" >/dev/null

# Trust the build machine's extra CA certificates.
shopt -s nullglob
extra_cas=(/usr/local/share/ca-certificates/*.crt)
if ((${#extra_cas[@]})); then
  log "trusting ${#extra_cas[@]} extra CA certificate(s)"
  install -m 0644 "${extra_cas[@]}" "$rootfs/usr/local/share/ca-certificates/"
  if ! output=$(chroot "$rootfs" update-ca-certificates 2>&1); then
    printf '%s\n' "$output" >&2
    log "update-ca-certificates failed in the image"
    exit 1
  fi
fi

# Units that fail or make no sense in a container. Masking them keeps `systemctl is-system-running`
# at "running", so a failed unit in a test means the stack failed.
for unit in systemd-remount-fs.service systemd-firstboot.service getty@tty1.service console-getty.service \
  systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service sys-kernel-config.mount \
  sys-kernel-debug.mount sys-kernel-tracing.mount systemd-journald-audit.socket; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done

# systemd stops on SIGRTMIN+3, docker sends SIGTERM: callers pass --stop-signal SIGRTMIN+3
# (docker 20.10 does not accept STOPSIGNAL as an import change).
# A container has no /etc/machine-id until systemd writes one at boot; an empty file lets it do so.
: >"$rootfs/etc/machine-id"
echo "$suite" >"$rootfs/etc/hostname"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb

log "importing $image"
tar -C "$rootfs" -c . | docker import \
  -c 'CMD ["/lib/systemd/systemd"]' \
  -c 'ENV container=docker' \
  - "$image" >/dev/null
log "built $image"
