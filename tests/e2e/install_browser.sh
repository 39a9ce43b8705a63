#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the browser tests, unless it is there.
# Playwright drives this system browser; it never downloads a browser of its own.
set -euo pipefail
exec bash "$(dirname "$0")/../../stack/install_debian.sh" chromium chromium
