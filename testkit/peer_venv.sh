#!/usr/bin/env bash
# Ensure a peer server's own virtual environment holds exactly PINS; print its path.
#
#   testkit/peer_venv.sh NAME VENV PYTHON PIN...
#
# testkit/constraints/NAME.txt (`pip freeze` of a good install) pins the rest, so
# installs repeat; refresh it after changing PINS. Idempotent and safe to run from parallel test sessions: a lock serialises them, a
# stamp of the pins skips the work. PyPI only. Used by mlserver_venv.sh, kserve_venv.sh.
set -euo pipefail

name="$1" venv="$2" python="$3"
shift 3
pins=("$@")
constraints="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/constraints/$name.txt"
stamp="$venv/.constellation-pins"

mkdir -p "$(dirname "$venv")"
lock="${TMPDIR:-/tmp}/constellation-$name-venv-$(printf '%s' "$venv" | md5sum | cut -c1-12).lock"
exec 9>"$lock"
flock 9
pins+=(-c "$constraints")
if [[ -f "$stamp" && "$(cat "$stamp")" == "${pins[*]} $(md5sum <"$constraints")" ]]; then
    echo "$venv"
    exit 0
fi
rm -rf "$venv"
"$python" -m venv "$venv"
echo "*" >"$venv/.gitignore"  # never committed
if ! "$venv/bin/pip" install --disable-pip-version-check "${pins[@]}" >"$venv/pip.log" 2>&1; then
    tail -n 40 "$venv/pip.log" >&2
    echo "$name venv: installing ${pins[*]} into $venv failed (log: $venv/pip.log)" >&2
    exit 1
fi
echo "${pins[*]} $(md5sum <"$constraints")" >"$stamp"
echo "$venv"
