#!/usr/bin/env bash
# Timings kept out of `make test`: see scripts/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/bench.py "$@"
