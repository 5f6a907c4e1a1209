#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job (apps/eccl-demo). Arguments are
# passed to eccl-demo; see `build/apps/eccl-demo/eccl-demo --help`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_packages
configure build -DCMAKE_BUILD_TYPE=RelWithDebInfo
build build eccl-demo
exec "$ROOT/build/apps/eccl-demo/eccl-demo" "$@"
