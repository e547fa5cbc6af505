"""One local Spark session (two cores, loopback only, no UI) for every Spark test."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from adapters.spark.session import spark_session


def _java_works() -> str | None:
    java = shutil.which("java")
    if java is None:
        return "java is not on PATH: Spark needs Java 17 (tests/setup.d/60-spark.sh checks it)"
    done = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"`java -version` failed: {done.stderr.strip()}"
    return None


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    problem = _java_works()
    if problem:
        pytest.fail(problem)
    session = spark_session(
        "local[2]",
        "ticket-enrich-tests",
        {"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2"},
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
