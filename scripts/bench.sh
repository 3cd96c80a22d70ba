#!/usr/bin/env bash
# Timings kept out of `make test`: see scripts/bench.py.
# Parts and options: scripts/bench.sh --help (e.g. scripts/bench.sh slices --servers 100).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/bench.py "$@"
