"""The Spark trainer's distributed aggregates against the single-machine code they replace."""

from __future__ import annotations

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from training.model import QUANTILES, duplicate_threshold
from training.spark_resolution import quantiles
from training.spark_similar import duplicate_threshold_bucketed


def test_quantiles_are_numpys_up_to_the_accuracy(spark: SparkSession) -> None:
    rng = np.random.default_rng(3)
    rows = []
    for n in (1, 2, 3, 4, 7, 278):
        rows += [(n, float(v)) for v in rng.normal(size=n)]
    df = spark.createDataFrame(rows, "n int, v double").cache()
    for n in (1, 2, 3, 4, 7, 278):
        values = np.array([v for k, v in rows if k == n])
        got = quantiles(
            df.filter(F.col("n") == n),
            {"v": F.col("v"), "twice": F.col("v") * 2, "none": F.lit(None).cast("double")},
            (*QUANTILES, 0.0, 1.0),
        )
        want = np.quantile(values, [*QUANTILES, 0.0, 1.0])
        assert np.allclose(got["v"], want, rtol=0, atol=1e-12), n
        assert np.allclose(got["twice"], 2 * want, rtol=0, atol=1e-12), n
        assert all(np.isnan(got["none"]))
    df.unpersist()


def test_bucketed_threshold_is_the_single_machine_threshold(spark: SparkSession) -> None:
    # Scores 1e-4 apart or more: no two distinct scores share a 1e-5 bucket, and then the
    # bucketed choice is the exact one.
    rng = np.random.default_rng(5)
    best = np.round(rng.uniform(0, 1, size=400), 4)
    is_dup = rng.uniform(size=400) < best**3
    want = duplicate_threshold(best, is_dup)
    df = spark.createDataFrame(
        [(float(b), bool(d)) for b, d in zip(best, is_dup, strict=True)],
        "best double, is_duplicate boolean",
    )
    threshold, stats = duplicate_threshold_bucketed(df)
    assert threshold == want[0]
    assert stats == want[1]

    none = spark.createDataFrame([(0.5, False), (0.2, False)], "best double, is_duplicate boolean")
    assert duplicate_threshold_bucketed(none) == duplicate_threshold(
        np.array([0.5, 0.2]), np.array([False, False])
    )
