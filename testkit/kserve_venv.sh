#!/usr/bin/env bash
# Ensure the virtual environment KServe's Python model server runs in for tests; print its path.
#
#   testkit/kserve_venv.sh [DIR]     DIR: $KSERVE_VENV, else .venv-kserve
#
# KServe is a second, independent Open Inference Protocol (V2) implementation beside
# MLServer; its pins (fastapi, pydantic, grpcio) differ from both the project's and
# MLServer's, hence its own environment. PyPI only.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pins=(
    "kserve==0.21.0"
    "pillow==13.0.0"
)
exec bash "$root/testkit/peer_venv.sh" kserve "${1:-${KSERVE_VENV:-$root/.venv-kserve}}" \
    "${KSERVE_PYTHON:-python3}" "${pins[@]}"
