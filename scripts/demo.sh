#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job (apps/eccl-demo). Arguments are
# passed to eccl-demo; see `build/apps/eccl-demo/eccl-demo --help`. Without arguments, the fault
# scenario follows (a rank SIGKILLed while serving: the others recover and a replacement joins),
# then the same job from Python the way an engine integrates it (python/eccl's MoE serving example).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_packages
configure build -DCMAKE_BUILD_TYPE=RelWithDebInfo
build build eccl-demo
"$ROOT/build/apps/eccl-demo/eccl-demo" "$@"
if [ $# -eq 0 ]; then
  echo "== the fault scenario: eccl-demo --ranks 4 --kill-rank 2 --kill-at-step 40 --slots 12 --expert-bytes 262144"
  "$ROOT/build/apps/eccl-demo/eccl-demo" --ranks 4 --kill-rank 2 --kill-at-step 40 --slots 12 --expert-bytes 262144
  echo "== the Python package's MoE serving example (python3 -m eccl.examples.moe_serving)"
  # Debian's python3 has python3-torch; another python3 (pyenv, a venv) may come first on PATH.
  py=/usr/bin/python3
  [ -x "$py" ] || py=python3
  PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}" "$py" -m eccl.examples.moe_serving
fi
