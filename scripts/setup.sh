#!/usr/bin/env bash
# One-time set-up on Debian/Ubuntu: the system packages hsmon builds against and its tests
# drive (real ptys via socat, python3 for the UART emulator behind the auto-baud tests, tmux for
# the end-to-end TUI test, pcscd and the virtual reader for smart-card tests, ser2net, tshark,
# groff and man for the man-page test, systemd-analyze and strace for the unit in
# contrib/systemd and its system-call filter, stm32flash and curl as real programs under
# `hsmon trace`), then the Rust toolchain check.
set -euo pipefail

PKGS=(pkgconf libudev-dev libpcsclite-dev pcscd vsmartcard-vpcd socat tmux util-linux tshark ser2net python3 groff-base man-db systemd strace stm32flash curl)
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

# Rust: edition 2024 and the locked dependencies need Rust 1.89 or newer (Cargo.toml's
# rust-version; tests/packaging.rs keeps it honest). Debian's `cargo` package is older than
# that (1.63 in Debian 12, which cannot build edition 2024; 1.85 in Debian 13): use rustup.
RUST_MIN=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$(dirname "$0")/../Cargo.toml" 2>/dev/null || true)
RUST_MIN=${RUST_MIN:-1.89}
rustup_hint="install Rust $RUST_MIN or newer with rustup (https://rustup.rs):
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
  . \"\$HOME/.cargo/env\"
or, with rustup already installed: rustup update stable (Debian's apt-get install cargo is too old)"
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: $rustup_hint" >&2
  exit 1
fi
have=$(rustc --version 2>/dev/null | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$RUST_MIN" "${have%%-*}" | sort -V | head -1)" != "$RUST_MIN" ]; then
  echo "rustc ${have:-?} is older than hsmon's minimum $RUST_MIN: $rustup_hint" >&2
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
