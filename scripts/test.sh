#!/usr/bin/env bash
# Runs every test: the Rust unit and integration tests (client against the
# simulator, simulator invariants), then the Python tests (official hcloud
# client, ansible-playbook, ansible-inventory), then checks every JSON answer
# the simulator gave during all of them against the OpenAPI schemas.
set -euo pipefail
cd "$(dirname "$0")/.."

artifacts="$PWD/.test-artifacts"
rm -rf "$artifacts"
mkdir -p "$artifacts/responses"
export KBV3_RESPONSE_LOG_DIR="$artifacts/responses"

echo "== cargo test"
cargo test --release --target x86_64-unknown-linux-gnu

echo "== pytest"
.venv/bin/pytest -q tests/py

echo "== OpenAPI conformance"
.venv/bin/python tests/conformance/validate_responses.py "$artifacts/responses"
