#!/usr/bin/env bash
# The whole test suite on a fresh machine: install (idempotent), lint, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
# The report's browser test drives Debian's Chromium (through Playwright, from the dev extra); install it
# where it is missing and apt-get may run. Without it that test skips and says why.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
.venv/bin/ruff check .
.venv/bin/lint-imports  # the dependency rules of ARCHITECTURE.md (.importlinter)
.venv/bin/python -m pytest tests "$@"
