#!/usr/bin/env bash
# One command from a fresh clone to the full test suite (real models, real browser).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install_browser.sh
.venv/bin/python -m pytest "$@"
