#!/usr/bin/env bash
# Install what the controller needs, on a Debian 12 machine, as root: Docker Engine and debootstrap from
# Debian's packages, a running dockerd, and the Python tools of requirements.txt in .venv.
# Safe to run again: each step is skipped when its result is already there.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
venv=$top/.venv

log() { printf '[bootstrap] %s\n' "$*" >&2; }

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v git >/dev/null || missing+=(git)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if [[ -d /run/systemd/system ]]; then
    log "starting docker.service"
    systemctl start docker.service
  else
    # No systemd on this machine (for example a CI container or VM without it): run the daemon directly.
    log "starting dockerd (log: /var/log/dockerd.log)"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/dockerd.log"; exit 1; }
fi

stamp=$venv/.requirements.sha256
wanted=$(sha256sum "$top/requirements.txt" | cut -d' ' -f1)
if [[ ! -x $venv/bin/ansible-playbook || $(cat "$stamp" 2>/dev/null) != "$wanted" ]]; then
  log "installing Python tools into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --requirement "$top/requirements.txt"
  echo "$wanted" >"$stamp"
fi
# Read the whole output: `| head -n 1` would close the pipe early and make ansible print a traceback.
ansible_version=$("$venv/bin/ansible" --version)
log "ready: docker $(docker version --format '{{.Server.Version}}'), ${ansible_version%%$'\n'*}"
