#!/usr/bin/env bash
# One command from a fresh clone to the running web chat on the bundled corpus:
# set up .venv, build (or update) the index, start the app on http://127.0.0.1:7860
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m rag.index
exec .venv/bin/python app.py "$@"
