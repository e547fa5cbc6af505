#!/bin/sh
# The Google Cloud tests (tests/integration/gcp) start:
# - Google's Cloud Firestore and Pub/Sub emulators from the Google Cloud SDK (preinstalled on development and
#   CI machines; Google's package repository is not reachable from here, so this script checks
#   for it and says what is missing rather than installing it), which needs Java;
# - firebase-server from npm, which speaks the Realtime Database's REST protocol, installed
#   under .tools/firebase-server (firebase pinned to 7.x: firebase-server 1.1.0 accepts any
#   firebase >= 5 and the newest do not install here);
# - the Functions Framework, from the gcp extra in $VENV.
# Idempotent: only checks when everything is in place.
set -eu

cd "$(dirname "$0")/../.."
VENV="${VENV:-.venv}"
TOOLS=.tools/firebase-server
FIREBASE_SERVER_VERSION=1.1.0
FIREBASE_VERSION=7.24.0

fail() {
    echo "30-gcp.sh: $*" >&2
    exit 1
}

command -v gcloud >/dev/null 2>&1 \
    || fail "gcloud (the Google Cloud SDK) is not on PATH; install the google-cloud-cli and google-cloud-cli-firestore-emulator packages"
sdk_root=$(gcloud info --format='value(installation.sdk_root)' 2>/dev/null) \
    || fail "gcloud is on PATH but 'gcloud info' fails"
[ -f "$sdk_root/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar" ] \
    || fail "the Firestore emulator component is not installed in $sdk_root (package google-cloud-cli-firestore-emulator, or 'gcloud components install cloud-firestore-emulator')"
[ -d "$sdk_root/platform/pubsub-emulator" ] \
    || fail "the Pub/Sub emulator component is not installed in $sdk_root (package google-cloud-cli-pubsub-emulator, or 'gcloud components install pubsub-emulator'); the dead-letter tests publish to it"
command -v java >/dev/null 2>&1 \
    || fail "java is not on PATH; the Firestore emulator needs a Java 11+ runtime (apt-get install openjdk-17-jre-headless)"

[ -x "$VENV/bin/functions-framework" ] \
    || fail "$VENV/bin/functions-framework is missing: install the project with its gcp extra (pip install -e '.[dev]')"

installed=$(node -p "require('./$TOOLS/node_modules/firebase-server/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$FIREBASE_SERVER_VERSION" ]; then
    command -v npm >/dev/null 2>&1 || fail "npm is not on PATH; it installs firebase-server (apt-get install nodejs npm)"
    mkdir -p "$TOOLS"
    cat > "$TOOLS/package.json" <<JSON
{"private": true, "dependencies": {"firebase-server": "$FIREBASE_SERVER_VERSION", "firebase": "$FIREBASE_VERSION"}}
JSON
    (cd "$TOOLS" && npm install --no-audit --no-fund --loglevel=error) \
        || fail "npm could not install firebase-server $FIREBASE_SERVER_VERSION"
fi
# (firebase-server has no option that prints and exits: --version starts a server too.)
node -e "require('./$TOOLS/node_modules/firebase-server')" >/dev/null 2>&1 \
    || fail "$TOOLS/node_modules/firebase-server was installed but does not load"
