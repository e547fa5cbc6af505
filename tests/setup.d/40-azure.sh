#!/bin/sh
# Tools the Azure adapter's tests start, installed idempotently (fast when present):
# - azure-ai-ml into $VENV: the tests load deploy/azure/*.yml with it offline. It is not in the
#   `azure` extra because only a machine that deploys needs it (it adds 33 MiB installed: the
#   SDK, PyYAML, storage file/data-lake clients, OpenTelemetry, that no Function or endpoint uses).
# - Microsoft's Azure ML inference server (azmlinfsrv) in its own virtualenv,
#   .tools/azmlinfsrv, with the project and its `azure` extra: the server pins its own pydantic
#   (and Flask, gunicorn), which would downgrade the project's in $VENV.
# - Azurite (Blob, Queue and Table Storage emulator) from npm into .tools/azurite.
set -eu

VENV=${VENV:-.venv}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS="$ROOT/.tools"
INFSRV_VERSION=1.5.1
AZURITE_VERSION=3.35.0
AZURE_AI_ML="azure-ai-ml>=1.20"

say() { echo "40-azure: $*"; }

# 1. azure-ai-ml in the project's virtualenv.
if ! "$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('azure.ai.ml') is None)" 2>/dev/null; then
    say "installing $AZURE_AI_ML into $VENV"
    "$VENV/bin/python" -m pip install --quiet "$AZURE_AI_ML"
fi

# 2. azmlinfsrv in its own virtualenv; reinstalled when pyproject.toml changes.
INFSRV="$TOOLS/azmlinfsrv"
STAMP="$INFSRV/.installed-for"
WANT="$INFSRV_VERSION $(cksum < "$ROOT/pyproject.toml") $ROOT"
if [ ! -x "$INFSRV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    say "installing azureml-inference-server-http $INFSRV_VERSION into $INFSRV"
    python3 -m venv "$INFSRV"
    "$INFSRV/bin/python" -m pip install --quiet --upgrade pip
    "$INFSRV/bin/python" -m pip install --quiet \
        "azureml-inference-server-http==$INFSRV_VERSION" -e "$ROOT[azure]"
    echo "$WANT" > "$STAMP"
fi
"$INFSRV/bin/python" -c "import azureml_inference_server_http, adapters.azure.scoring" \
    || { say "azmlinfsrv's virtualenv is broken: remove $INFSRV and run again" >&2; exit 1; }

# 3. Azurite from npm (Node.js from Debian when there is none).
if ! command -v npm >/dev/null 2>&1; then
    say "installing Node.js and npm from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
AZURITE="$TOOLS/azurite/node_modules/.bin/azurite"
azurite_version() {
    sed -n 's/^  "version": "\(.*\)",$/\1/p' "$TOOLS/azurite/node_modules/azurite/package.json" 2>/dev/null
}
if [ ! -x "$AZURITE" ] || [ "$(azurite_version)" != "$AZURITE_VERSION" ]; then
    say "installing azurite@$AZURITE_VERSION into $TOOLS/azurite"
    mkdir -p "$TOOLS/azurite"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS/azurite" "azurite@$AZURITE_VERSION"
fi
[ "$(azurite_version)" = "$AZURITE_VERSION" ] && [ -x "$AZURITE" ] \
    || { say "azurite $AZURITE_VERSION did not install" >&2; exit 1; }
say "ready (azure-ai-ml in $VENV, azmlinfsrv $INFSRV_VERSION, azurite $AZURITE_VERSION)"
