#!/usr/bin/env bash
# Install everything the tests need (idempotent), then lint, type-check and run the whole suite.
# The suite starts its own OpenSearch/Elasticsearch, MIT KDC and audisp-remote: nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
.venv/bin/ruff check auditrecv tests bench scripts
.venv/bin/mypy auditrecv
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
