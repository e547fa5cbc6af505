#!/bin/sh
# Tools the AWS adapter's tests start, installed idempotently (fast when present):
# - moto's server (moto[server]) into $VENV: the tests run it on 127.0.0.1 in place of S3,
#   DynamoDB and Kinesis. It is not in the `aws` extra because nothing that serves needs it.
# - snapshot-restore-py into $VENV: the module Lambda's python runtime provides for SnapStart's
#   runtime hooks; the tests register the functions' hooks with it and run them as Lambda does.
# - the AWS SAM CLI and cfn-lint in their own virtualenv, .tools/sam: they pin many packages
#   (pydantic, boto3, jsonschema...) that would clash with the project's in $VENV. The tests run
#   `sam validate --lint`, `cfn-lint` and `sam build` (which pip-installs the functions'
#   requirements from PyPI into Linux arm64 wheels, no Docker) on deploy/aws/template.yaml.
# `sam build` needs the functions' runtime on PATH: python3.12 (with pip), which SnapStart needs
# for the serving functions and whose Amazon Linux 2023 the retrain function's scikit-learn
# wheels need; the SAM CLI itself runs on python3.11. A working python3.12 is linked into
# .tools/runtimes, which `ticket-enrich deploy aws` puts first on sam's PATH (a pyenv shim on
# PATH may not run 3.12 unless it is selected).
set -eu

VENV=${VENV:-.venv}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
SAM_VENV=.tools/sam
MOTO_SPEC='moto[server]>=5.0,<6'
SNAPSHOT_RESTORE_SPEC='snapshot-restore-py>=1.0,<2'
SAM_SPEC='aws-sam-cli>=1.120,<2'
CFN_LINT_SPEC='cfn-lint>=1.0,<2'

fail() {
    echo "20-aws.sh: $*" >&2
    exit 1
}

[ -x "$VENV/bin/python" ] || fail "$VENV/bin/python is missing: create the project's venv first"

if ! "$VENV/bin/python" -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip install --quiet "$MOTO_SPEC" || fail "could not install $MOTO_SPEC into $VENV"
fi
"$VENV/bin/python" -c 'from moto.server import ThreadedMotoServer' \
    || fail "moto's server does not import from $VENV"
if ! "$VENV/bin/python" -c 'import snapshot_restore_py' >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip install --quiet "$SNAPSHOT_RESTORE_SPEC" \
        || fail "could not install $SNAPSHOT_RESTORE_SPEC into $VENV"
fi

if ! { [ -x "$SAM_VENV/bin/sam" ] && [ -x "$SAM_VENV/bin/cfn-lint" ]; }; then
    command -v python3.11 >/dev/null 2>&1 || fail "python3.11 is not on PATH (sam build needs the functions' runtime)"
    python3.11 -m venv "$SAM_VENV" || fail "could not create $SAM_VENV"
    "$SAM_VENV/bin/python" -m pip install --quiet --upgrade pip || fail "could not upgrade pip in $SAM_VENV"
    "$SAM_VENV/bin/python" -m pip install --quiet "$SAM_SPEC" "$CFN_LINT_SPEC" \
        || fail "could not install $SAM_SPEC and $CFN_LINT_SPEC into $SAM_VENV"
fi
SAM_CLI_TELEMETRY=0 "$SAM_VENV/bin/sam" --version >/dev/null || fail "$SAM_VENV/bin/sam does not run"
"$SAM_VENV/bin/cfn-lint" --version >/dev/null || fail "$SAM_VENV/bin/cfn-lint does not run"
command -v python3.11 >/dev/null 2>&1 || fail "python3.11 is not on PATH (sam build needs the functions' runtime)"

python312_ok() {
    [ -n "$1" ] && [ -x "$1" ] && "$1" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 \
        && "$1" -m pip --version >/dev/null 2>&1
}
if ! python312_ok .tools/runtimes/python3.12; then
    found=""
    for candidate in "$(command -v python3.12 2>/dev/null || true)" \
        "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 \
        /usr/local/bin/python3.12 /usr/bin/python3.12; do
        if python312_ok "$candidate"; then
            found=$(readlink -f "$candidate")
            break
        fi
    done
    [ -n "$found" ] || fail "no python3.12 with pip found (the retrain function's runtime, for sam build): install one, e.g. pyenv install 3.12"
    mkdir -p .tools/runtimes
    ln -sf "$found" .tools/runtimes/python3.12
fi
python312_ok .tools/runtimes/python3.12 || fail ".tools/runtimes/python3.12 does not run with pip"
