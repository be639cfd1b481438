#!/usr/bin/env bash
# Set up visbpp on a fresh machine: a virtual environment in .venv with torch==2.13.0
# (installed first: a bare `torch` requirement would pull a multi-GB CUDA build where a local
# CPU build is available), then the project itself (editable) with its dev extra.
# Quiet: pip's and the build backend's output goes to .venv/bootstrap.log, shown only on failure.
# A no-op when nothing changed: the editable install follows the sources by itself, so it is
# redone only when pyproject.toml (dependencies, package list) or the Python has changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
LOG=.venv/bootstrap.log
STAMP=.venv/bootstrap.stamp
want="$(.venv/bin/python -c 'import sys; print(sys.version)' | head -1) $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && .venv/bin/python -c "import importlib.util as u, visbpp.tui.cli; assert u.find_spec('torch')" >/dev/null 2>&1; then
  echo "visbpp: .venv is up to date (.venv/bin/visbpp, .venv/bin/visbpp-tui)"
  exit 0
fi
quiet() {  # run "$@" with its output in the log; on failure show the log and stop
  if ! "$@" >>"$LOG" 2>&1; then
    cat "$LOG" >&2
    echo "bootstrap: '$*' failed (log above, also in $LOG)" >&2
    exit 1
  fi
}
: >"$LOG"
quiet .venv/bin/python -m pip install -q --upgrade pip || true
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  echo "visbpp: installing torch==2.13.0 (CPU) ..."
  quiet .venv/bin/python -m pip install -q "torch==2.13.0"
fi
echo "visbpp: installing visbpp (editable) with its dev extra ..."
quiet .venv/bin/python -m pip install -q -e ".[dev]"
echo "$want" >"$STAMP"
echo "visbpp: ready: .venv/bin/visbpp, .venv/bin/visbpp-tui (or 'source .venv/bin/activate')"
