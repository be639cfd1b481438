#!/usr/bin/env bash
# Set up visbpp on a fresh machine: a virtual environment in .venv with torch==2.13.0
# (installed first: a bare `torch` requirement would pull a multi-GB CUDA build where a local
# CPU build is available), then the project itself (editable) with its dev extra.
# Idempotent: rerunning only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q "torch==2.13.0"
fi
.venv/bin/python -m pip install -q -e ".[dev]"
