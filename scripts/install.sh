#!/usr/bin/env bash
# Install what StreetWatch needs on a fresh Debian/Ubuntu machine (idempotent; fast when all is there).
#   scripts/install.sh            runtime: Python package with all extras, Mosquitto
#   scripts/install.sh --dev      + test tools: PostgreSQL, Chromium, pytest, Playwright, ruff, mypy
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[[ "${1:-}" == "--dev" ]] && dev=1

apt_packages=(mosquitto)
# chromium: the console's browser tests drive Debian's build headless (never a downloaded one).
(( dev )) && apt_packages+=(postgresql chromium openssl)  # openssl: certificates for the broker tests
# systemd: systemd-analyze verifies deploy/jetson's unit (no running systemd needed)
(( dev )) && apt_packages+=(systemd)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
# torch first, pinned: ultralytics would otherwise pull a multi-GB build from the index.
if ! $PY -c "import torch, torchvision" 2>/dev/null; then
  $PY -m pip install -q torch==2.14.1 torchvision==0.29.1
fi
extras="all"
(( dev )) && extras="all,dev"
$PY -m pip install -q -e ".[${extras}]" 2>&1 | grep -v "Running pip as the 'root' user" || true
$PY -c "import streetwatch, edge" >/dev/null
