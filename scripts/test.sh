#!/usr/bin/env bash
# Install everything the tests need (idempotent), then lint, type-check and run the whole suite
# (the Rust crate's checks and tests first, then pytest).
# The suite starts its own OpenSearch/Elasticsearch, MIT KDC and audisp-remote: nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
export PATH="$PATH:$HOME/.cargo/bin"  # as install.sh: rustup's cargo may not be on a non-login PATH
# The native crate: formatting, lints (the PyO3 boundary included) and its own unit tests.
(cd native && cargo fmt --check && cargo clippy --locked --all-targets --all-features -- -D warnings \
   && cargo test --locked)
# The fuzz crate (native/fuzz, its own workspace) still compiles against the decoders: a check only, on stable
# (fuzzing itself is scripts/fuzz_native.py, never part of the suite; its regressions ran in cargo test above).
(cd native/fuzz && cargo fmt --check && cargo clippy --locked --all-targets -- -D warnings)
.venv/bin/ruff check auditrecv tests bench scripts
.venv/bin/mypy auditrecv
# The stage seams are fully typed (issue 15): the receivers, the sink, the pipeline, the wiring.
.venv/bin/mypy --strict auditrecv/receive auditrecv/sink auditrecv/pipeline.py auditrecv/app.py
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
