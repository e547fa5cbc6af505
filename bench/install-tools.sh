#!/bin/sh
# Installs the load generator `python -m bench --only http` drives: wrk, from Debian's (or
# Ubuntu's) packages, which needs root. The test suite does not need it.
set -eu
if command -v wrk >/dev/null 2>&1; then
    echo "wrk is installed: $(command -v wrk)"
    exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq wrk
elif command -v brew >/dev/null 2>&1; then
    brew install wrk
else
    echo "install wrk (https://github.com/wg/wrk) with your system's package manager" >&2
    exit 1
fi
command -v wrk
