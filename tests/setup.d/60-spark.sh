#!/bin/sh
# The Spark tests (tests/integration/spark) run PySpark from PyPI (the spark extra) on a local
# JVM: Spark 4 needs Java 17 or newer. Idempotent: does nothing when such a `java` runs.
# Otherwise installs Debian's OpenJDK 17 (needs root) and fails loudly if it still does not run.
set -eu

java_major() {
    java -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n 1
}

java_ok() {
    command -v java >/dev/null 2>&1 || return 1
    major="$(java_major)"
    [ -n "$major" ] && [ "$major" -ge 17 ]
}

if java_ok; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "60-spark.sh: Spark needs Java 17+ and \`java -version\` does not report one; install openjdk-17-jre-headless (needs root)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends openjdk-17-jre-headless
if ! java_ok; then
    echo "60-spark.sh: OpenJDK 17 was installed but \`java -version\` does not report Java 17+:" >&2
    java -version >&2 || true
    exit 1
fi
