#!/usr/bin/env bash
# The whole test suite on a fresh machine: install (idempotent), lint, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
.venv/bin/ruff check .
.venv/bin/lint-imports  # the dependency rules of ARCHITECTURE.md (.importlinter)
.venv/bin/python -m pytest tests "$@"
