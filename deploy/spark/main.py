"""`spark-submit` entry point: the `ticket-enrich` command on the cluster's Spark session.

    spark-submit main.py batch --engine spark --model s3://…/models/v1 s3://…/in.jsonl s3://…/out
    spark-submit main.py train --engine spark --data s3://…/closed.csv --out /tmp/model

The session is created first, from what `spark-submit` (EMR, Dataproc, Databricks) configured;
the command then finds it active and uses it as it is.
"""

from __future__ import annotations

import sys

from pyspark.sql import SparkSession


def main() -> int:
    """Create the cluster's session, then run the `ticket-enrich` command line on it."""
    SparkSession.builder.appName("ticket-enrich").getOrCreate()
    from adapters.local.cli import main as cli

    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
