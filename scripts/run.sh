#!/usr/bin/env bash
# Install (idempotent) and run the receiver. With no config it uses the built-in defaults:
# listeners on 16162 (illumos) and 16060 (Linux), records spooled durably, no search engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/auditrecv serve "$@"
