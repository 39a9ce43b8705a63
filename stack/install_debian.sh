#!/usr/bin/env bash
# Install a Debian package unless its program is already on PATH:
#   install_debian.sh PROGRAM PACKAGE
# (redis-server for the embedded stack's run queue, chromium for the browser tests).
set -euo pipefail

program="$1"
package="$2"
if command -v "$program" >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "$package"
