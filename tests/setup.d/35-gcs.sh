#!/bin/sh
# The Cloud Storage tests (tests/integration/gcp/test_registry.py) start gcp-storage-emulator
# (PyPI, pure Python), which speaks Cloud Storage's JSON API; the Google Cloud SDK has no
# Cloud Storage emulator. Its one dependency, google-crc32c, is already in $VENV (through
# google-cloud-storage), so it goes into $VENV rather than a venv of its own.
# Idempotent: only checks when the pinned version is in place.
set -eu

VENV=${VENV:-.venv}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
EMULATOR_VERSION=2026.7.19

fail() {
    echo "35-gcs.sh: $*" >&2
    exit 1
}

[ -x "$VENV/bin/python" ] || fail "$VENV/bin/python is missing: create the project's venv first"

installed=$("$VENV/bin/python" -c \
    "import importlib.metadata as m; print(m.version('gcp-storage-emulator'))" 2>/dev/null || true)
if [ "$installed" != "$EMULATOR_VERSION" ]; then
    "$VENV/bin/python" -m pip install --quiet "gcp-storage-emulator==$EMULATOR_VERSION" \
        || fail "could not install gcp-storage-emulator==$EMULATOR_VERSION into $VENV"
fi
"$VENV/bin/python" -c 'from gcp_storage_emulator.server import create_server' \
    || fail "gcp-storage-emulator does not import from $VENV"
