#!/usr/bin/env bash
# The test command: install everything the tests need, start services, lint, type-check, run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --dev
PY=${PYTHON:-python3}

# Services the tests talk to: a private PostgreSQL cluster (Mosquitto brokers are started per test).
# A cluster that was already running (a developer's, started by hand) is left running.
if [[ -x scripts/postgres.sh ]]; then
  if scripts/postgres.sh url >/dev/null 2>&1; then
    eval "$(scripts/postgres.sh url)"
  else
    eval "$(scripts/postgres.sh start)"
    trap 'scripts/postgres.sh stop >/dev/null 2>&1 || true' EXIT
  fi
fi

$PY -m ruff check .
$PY -m ruff format --check .
$PY -m mypy streetwatch edge server training demo bench
$PY -m streetwatch.cli schema --check
$PY -m pytest "$@"
