"""The expected resolution time on Spark: `training.model`'s ridge regression of log(1 + hours),
fitted with MLlib where the data is.

As on one machine, the penalty is chosen on the validation window (fitting on the window before
it) by the median absolute error in log hours, the validation residuals' quantiles turn one
prediction into a median and 50 % and 90 % intervals, and the model is refitted on fit +
validation. Medians and quantiles are Spark's `percentile_approx`, so nothing but a handful of
numbers reaches the driver.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.ml.regression import LinearRegression, LinearRegressionModel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from training.model import QUANTILES, ModelConfig, Progress

# percentile_approx's accuracy: its rank error is at most rows / ACCURACY, so up to this many
# rows the order statistics it returns are exact.
ACCURACY = 1_000_000
_HOURS = "_hours"
_LOG = "_log_hours"
_US_PER_HOUR = 3_600_000_000.0


@dataclass
class SparkResolutionModel:
    """The fitted MLlib regression of log(1 + hours) and the residual quantiles of the
    validation window, as `training.model.ResolutionTimeModel` holds them."""

    model: LinearRegressionModel
    alpha: float
    residual_quantiles: dict[str, float]
    validation: dict[str, Any]

    def coefficients(self) -> tuple[np.ndarray, float]:
        """Coefficients over the whole feature vector, and the intercept."""
        return (
            np.asarray(self.model.coefficients.toArray(), dtype=np.float64),
            float(self.model.intercept),
        )

    def hours(self, log_prediction: float) -> dict[str, float]:
        """Hours at each quantile for one predicted log(1 + hours), as serving computes them."""
        return {
            q: max(math.expm1(log_prediction + r), 0.0) for q, r in self.residual_quantiles.items()
        }


def hours_column() -> Column:
    """Hours from creation to resolution (null when the ticket records no resolution)."""
    return (F.col("resolved_us") - F.col("created_us")) / F.lit(_US_PER_HOUR)


def _labelled(df: DataFrame) -> DataFrame:
    return df.withColumn(_HOURS, hours_column()).withColumn(_LOG, F.log1p(F.col(_HOURS)))


def quantiles(
    df: DataFrame, columns: Mapping[str, Column], qs: tuple[float, ...]
) -> dict[str, list[float]]:
    """Each column's quantiles (nulls left out) as `numpy.quantile` computes them: linear
    interpolation between the order statistics around rank ``(n - 1) * q``, which
    `percentile_approx` returns exactly up to `ACCURACY` rows (within a rank error of
    rows / `ACCURACY` beyond)."""
    counts = df.agg(*[F.count(c).alias(name) for name, c in columns.items()]).collect()[0]
    spots: dict[str, list[tuple[int, int, float]]] = {}
    ranks: dict[str, list[int]] = {}
    for name in columns:
        n = int(counts[name])
        spots[name] = []
        for q in qs:
            h = (n - 1) * q
            low = math.floor(h)
            spots[name].append((low, min(low + 1, n - 1), h - low))
        ranks[name] = sorted({r for low, high, _ in spots[name] for r in (low, high)})
    # percentile_approx(p) is the order statistic of 0-based rank ceil(p * n) - 1: each p aims
    # at the middle of its rank's interval.
    aggregates = [
        F.percentile_approx(
            column, [(r + 0.5) / int(counts[name]) for r in ranks[name]], ACCURACY
        ).alias(name)
        for name, column in columns.items()
        if int(counts[name])
    ]
    row: Any = df.agg(*aggregates).collect()[0] if aggregates else {}
    out: dict[str, list[float]] = {}
    for name in columns:
        if not int(counts[name]):
            out[name] = [math.nan] * len(qs)
            continue
        value = dict(zip(ranks[name], (float(v) for v in row[name]), strict=True))
        out[name] = [value[lo] + t * (value[hi] - value[lo]) for lo, hi, t in spots[name]]
    return out


def _fit(df: DataFrame, alpha: float, config: ModelConfig) -> LinearRegressionModel:
    stats = df.agg(F.count(F.lit(1)).alias("n"), F.stddev_samp(_LOG).alias("sd")).collect()[0]
    n, sd = int(stats["n"]), float(stats["sd"] or 0.0)
    regression = LinearRegression(
        featuresCol="features",
        labelCol=_LOG,
        # scikit-learn's Ridge minimises ||y - Xw - b||² + alpha ||w||². MLlib minimises
        # ||y - Xw - b||² / 2n + regParam ||w||² / 2 with y divided by its standard deviation
        # (regParam divided by it too), so the same minimum needs regParam = alpha * sd / n.
        regParam=alpha * sd / n if n else 0.0,
        elasticNetParam=0.0,
        standardization=False,
        fitIntercept=True,
        # One solver whatever the vocabulary's size (the normal equations stop at 4,096 terms).
        solver="l-bfgs",
        maxIter=config.max_iter,
        tol=1e-6,
    )
    model: LinearRegressionModel = regression.fit(df)
    return model


def _residuals(model: LinearRegressionModel, df: DataFrame) -> DataFrame:
    return model.transform(df).select((F.col(_LOG) - F.col("prediction")).alias("r"))


def fit_resolution(
    x_fit: DataFrame,
    x_val: DataFrame,
    x_all: DataFrame,
    config: ModelConfig,
    say: Progress,
    parallelism: int = 4,
) -> SparkResolutionModel | None:
    """The ridge penalty chosen on the validation window, the residual quantiles there, and
    the refit on fit + validation (`training.model._fit_resolution`); None when a training
    ticket lacks a resolved time or was resolved before it was created."""
    fit, val, train = _labelled(x_fit), _labelled(x_val), _labelled(x_all)
    unusable = train.filter(F.col(_HOURS).isNull() | (F.col(_HOURS) < 0)).limit(1).count()
    if unusable:
        say("resolution time: some tickets lack a resolved time; not trained")
        return None

    def evaluate(alpha: float) -> tuple[float, LinearRegressionModel]:
        model = _fit(fit, alpha, config)
        error = quantiles(_residuals(model, val), {"e": F.abs(F.col("r"))}, (0.5,))["e"][0]
        return error, model

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        results = list(pool.map(evaluate, config.ridge_alphas))
    best: tuple[float, float, LinearRegressionModel] | None = None
    for alpha, (error, model) in zip(config.ridge_alphas, results, strict=True):
        if best is None or error < best[0]:
            best = (error, alpha, model)
    assert best is not None
    error, alpha, model = best
    residuals = quantiles(_residuals(model, val), {"r": F.col("r")}, QUANTILES)["r"]
    at = {f"{q:g}": r for q, r in zip(QUANTILES, residuals, strict=True)}
    say(f"resolution time: ridge alpha={alpha:g} (validation median |log error| {error:.3f})")
    final = _fit(train, alpha, config)
    return SparkResolutionModel(final, alpha, at, {"median_abs_log_error": error})


def resolution_report(
    resolution: SparkResolutionModel, x_all: DataFrame, x_test: DataFrame
) -> dict[str, Any]:
    """The test window's errors in hours beside the training window's median, with the
    intervals' coverage (`training.train._resolution_report`), as distributed aggregates."""
    train_median = quantiles(_labelled(x_all), {"h": F.col(_HOURS)}, (0.5,))["h"][0]
    r = resolution.residual_quantiles
    predicted = resolution.model.transform(_labelled(x_test).filter(F.col(_HOURS).isNotNull()))

    def at(q: str) -> Column:
        return F.greatest(F.expm1(F.col("prediction") + F.lit(r[q])), F.lit(0.0))

    hours = F.col(_HOURS)
    scored = predicted.select(
        hours.alias("h"),
        at("0.5").alias("p50"),
        ((hours >= at("0.25")) & (hours <= at("0.75"))).cast("double").alias("in50"),
        ((hours >= at("0.05")) & (hours <= at("0.95"))).cast("double").alias("in90"),
    )

    guesses = {"model": F.col("p50"), "baseline": F.lit(train_median)}
    medians = quantiles(
        scored,
        {
            **{f"{w}_hours": F.abs(p50 - F.col("h")) for w, p50 in guesses.items()},
            **{f"{w}_log": F.abs(F.log1p(p50) - F.log1p(F.col("h"))) for w, p50 in guesses.items()},
        },
        (0.5,),
    )
    row = scored.agg(
        F.count(F.lit(1)).alias("rows"),
        *[F.avg(F.abs(p50 - F.col("h"))).alias(w) for w, p50 in guesses.items()],
        F.avg("in50").alias("in50"),
        F.avg("in90").alias("in90"),
    ).collect()[0]

    def number(value: Any) -> float | None:
        return None if value is None else float(value)

    def figures(who: str) -> dict[str, Any]:
        return {
            "median_abs_error_hours": medians[f"{who}_hours"][0],
            "mean_abs_error_hours": number(row[who]),
            "median_abs_log_error": medians[f"{who}_log"][0],
        }

    return {
        "rows": int(row["rows"]),
        "model": {
            **figures("model"),
            "interval_50_coverage": number(row["in50"]),
            "interval_90_coverage": number(row["in90"]),
        },
        "baseline_training_median": {"hours": train_median, **figures("baseline")},
    }
