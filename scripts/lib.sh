#!/usr/bin/env bash
# Shell helpers shared by services.sh and ui-browser.sh. Source it after setting
# SCRIPT_NAME (the prefix of every message).

log() { echo "${SCRIPT_NAME}: $*" >&2; }
die() { echo "${SCRIPT_NAME}: error: $*" >&2; exit 1; }

# Run as root: directly when we are root, through passwordless sudo otherwise.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "need root (or passwordless sudo) to run: $*"
  fi
}

# Install Debian packages; the package lists are updated once per script run.
apt_updated=false
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "$* is missing and apt-get is not available to install it"
  log "installing $* from Debian's packages"
  if ! $apt_updated; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=true
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
