"""The Spark session: the cluster's under `spark-submit`, a loopback-only local one otherwise."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

# A local session listens on the loopback interface only and serves no web UI.
LOCAL_CONF = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
}


def spark_session(
    master: str | None = None,
    app_name: str = "ticket-enrich",
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """The active session when there is one (a job started by `spark-submit` creates it first),
    else a new session on ``master`` (default ``local[*]``): on one machine, bound to
    127.0.0.1, without UI, and with Python workers running this interpreter."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    master = master or "local[*]"
    builder = SparkSession.builder.appName(app_name).master(master)
    if master.startswith("local"):
        # Workers must import this project: run them with this interpreter, not `python3`.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        for key, value in LOCAL_CONF.items():
            builder = builder.config(key, value)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


@contextmanager
def session_for(master: str | None, app_name: str) -> Iterator[SparkSession]:
    """`spark_session`, stopped on exit when this call started it (under `spark-submit` the
    session belongs to the job and stays)."""
    started = SparkSession.getActiveSession() is None
    spark = spark_session(master, app_name)
    try:
        yield spark
    finally:
        if started:
            spark.stop()


def _hadoop_path(spark: SparkSession, url: str) -> tuple[Any, Any]:
    """The Hadoop file system holding ``url`` (a local path or any URL the cluster reaches),
    and the path on it."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(url)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def path_exists(spark: SparkSession, url: str) -> bool:
    """Whether anything is at ``url``."""
    fs, path = _hadoop_path(spark, url)
    return bool(fs.exists(path))


def delete_path(spark: SparkSession, url: str) -> None:
    """Remove ``url`` and all under it, if it is there."""
    fs, path = _hadoop_path(spark, url)
    if fs.exists(path):
        fs.delete(path, True)


def copy_to_url(spark: SparkSession, local_dir: Path, url: str) -> None:
    """Copy a local directory (a trained artifact) to any URL the cluster's Hadoop file
    systems reach (`s3://`, `gs://`, `abfss://`, `hdfs://`), replacing what is there."""
    delete_path(spark, url)
    fs, target = _hadoop_path(spark, url)
    fs.mkdirs(target)
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    for child in sorted(local_dir.iterdir()):
        fs.copyFromLocalFile(False, True, jvm.org.apache.hadoop.fs.Path(str(child)), target)
