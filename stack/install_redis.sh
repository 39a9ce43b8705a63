#!/usr/bin/env bash
# Install Debian's redis-server for the embedded stack's run queue, unless it is there.
# `make run` and the tests start their own redis-server on a free loopback port (nothing on
# disk); this only puts the program on the machine.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends redis-server
