#!/usr/bin/env bash
# One-time set-up on Debian/Ubuntu: the system packages hsmon builds against and its tests
# drive (real ptys via socat, python3 for the UART emulator behind the auto-baud tests, tmux for
# the end-to-end TUI test, pcscd and the virtual reader for smart-card tests, ser2net, tshark,
# systemd-analyze and strace for the unit in contrib/systemd and its system-call filter),
# then the Rust toolchain check.
set -euo pipefail

PKGS=(pkgconf libudev-dev libpcsclite-dev pcscd vsmartcard-vpcd socat tmux util-linux tshark ser2net python3 systemd strace)
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

# pcsc-tools: scriptor (the script-format test runs it) and smartcard_list.txt (card names
# from ATRs). Without its recommends, which pull GTK in for gscriptor.
if ! dpkg-query -W -f='${Status}' pcsc-tools 2>/dev/null | grep -q "install ok installed"; then
  echo "== installing: pcsc-tools"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends pcsc-tools >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust from your distribution (apt-get install cargo) or rustup" >&2
  exit 1
fi

# The smart-card tests talk to a running pcscd with the vpcd reader driver ("Virtual PCD"); the
# tests start one themselves when none runs, but CI starts it here so a broken install fails
# early with pcscd's own message.
pcscd_running() {
  [ -S /run/pcscd/pcscd.comm ] || return 1
  # Socket-activated by systemd: no pid file, the socket answers for it.
  [ -f /run/pcscd/pcscd.pid ] || return 0
  # pcscd 1.9.9 ends its pid file with a NUL byte.
  kill -0 "$(tr -d '\0' < /run/pcscd/pcscd.pid)" 2>/dev/null
}
if [ ! -f /etc/reader.conf.d/vpcd ]; then
  echo "vsmartcard-vpcd is installed but /etc/reader.conf.d/vpcd is missing: reinstall it (apt-get install --reinstall vsmartcard-vpcd)" >&2
  exit 1
fi
if pcscd_running; then
  echo "== pcscd is running"
else
  echo "== starting pcscd"
  $SUDO /usr/sbin/pcscd
fi
