#!/usr/bin/env bash
# The main job on a fresh machine: install, then run the whole data path on the shipped samples
# (local Mosquitto, the server on SQLite, an edge box replaying sample images along a GPX track).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec "${PYTHON:-python3}" -m streetwatch.cli demo "$@"
