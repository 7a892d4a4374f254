#!/usr/bin/env bash
# One-time set-up on Debian/Ubuntu: the system packages hsmon builds against and its tests
# drive (real ptys via socat, tmux for the end-to-end TUI test, pcscd and the virtual reader
# for smart-card tests, ser2net, tshark), then the Rust toolchain check.
set -euo pipefail

PKGS=(pkgconf libudev-dev libpcsclite-dev pcscd vsmartcard-vpcd socat tmux util-linux tshark)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust from your distribution (apt-get install cargo) or rustup" >&2
  exit 1
fi
