#!/bin/sh
# The browser tests (tests/integration/browser) drive Debian's Chromium through Playwright for
# Python (in the dev extra). Playwright's own browser download is not used: the tests launch
# /usr/bin/chromium. Idempotent: does nothing when Chromium is already installed.
set -eu

if [ -x /usr/bin/chromium ] && /usr/bin/chromium --headless --no-sandbox --version >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "50-browser.sh: Chromium is missing and installing it needs root (apt-get install chromium)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium fonts-dejavu-core
if ! /usr/bin/chromium --headless --no-sandbox --version >/dev/null 2>&1; then
    echo "50-browser.sh: /usr/bin/chromium was installed but does not run" >&2
    exit 1
fi
