#!/usr/bin/env bash
# Ensure the virtual environment KServe's Python model server runs in for tests; print its path.
#
#   testkit/kserve_venv.sh [DIR]     DIR: $KSERVE_VENV, else .venv-kserve
#
# KServe is a second, independent Open Inference Protocol (V2) implementation beside
# MLServer; its pins (fastapi, pydantic, grpcio) differ from both the project's and
# MLServer's, hence its own environment. PyPI only. Idempotent and safe to run from
# parallel test sessions: a lock serialises them, a stamp of the pins skips the work.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${KSERVE_VENV:-$root/.venv-kserve}}"
python="${KSERVE_PYTHON:-python3}"
pins=(
    "kserve==0.21.0"
    "pillow==13.0.0"
)
stamp="$venv/.constellation-pins"

mkdir -p "$(dirname "$venv")"
lock="${TMPDIR:-/tmp}/constellation-kserve-venv-$(printf '%s' "$venv" | md5sum | cut -c1-12).lock"
exec 9>"$lock"
flock 9
if [[ -f "$stamp" && "$(cat "$stamp")" == "${pins[*]}" ]]; then
    echo "$venv"
    exit 0
fi
rm -rf "$venv"
"$python" -m venv "$venv"
echo "*" >"$venv/.gitignore"  # never committed
if ! "$venv/bin/pip" install --disable-pip-version-check "${pins[@]}" >"$venv/pip.log" 2>&1; then
    tail -n 40 "$venv/pip.log" >&2
    echo "kserve_venv.sh: installing ${pins[*]} into $venv failed (log: $venv/pip.log)" >&2
    exit 1
fi
echo "${pins[*]}" >"$stamp"
echo "$venv"
