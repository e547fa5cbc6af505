"""Training on Apache Spark, for closed-ticket histories that do not fit one machine.

The same model as `training.train`, fitted where the data is, exported in the same artifact
format so that serving does not change:

- records are read and turned into training examples by Spark's Python workers, with the very
  analyzers serving runs (`core.text.BlockAnalyzer`), the same column spec and the same checks
  as `training.data.load_dataset` (the first bad record stops training, naming column and row);
- the time-ordered split is a distributed sort and a count per partition;
- vocabularies and document frequencies are a distributed count (`min_df`, then scikit-learn's
  smoothed IDF), the TF-IDF rows (sublinear term frequency, L2 norm per block) are built by the
  workers;
- each classifier is Spark MLlib's multinomial `LogisticRegression`, its penalty scaled so that
  it minimises scikit-learn's objective (``C * sum(loss) + ||w||² / 2``); regularisation and
  class weighting are chosen on the validation window by macro-F1 from a distributed confusion
  matrix, as the single-machine trainer chooses them;
- what is small is done on the driver with the single-machine code: temperature scaling,
  confidence bands, priority's decision weights (`training.decisions`, checked on an earlier
  window and held at the tuned references' validation macro-F1 as on one machine, the
  references fitted on the driver on bounded windows) and each class's trust band (priority's
  on out-of-fold predictions over the training window, as on one machine, the other targets'
  on the validation window's logits), and the report's metrics on the test window's
  predictions;
- the artifact ships the default priority rules (`training.default_rules`) and leaves a
  secondary target below the majority class out of the default fields, as on one machine;
- the resolution-time model is MLlib's ridge regression with the single-machine objective
  (`training.spark_resolution`), the similar-ticket index is built from postings joined on the
  term (`training.spark_similar`), and the drift reference is counted by the workers
  (`training.spark_reference`).
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.ml.classification import LogisticRegression, LogisticRegressionModel
from pyspark.ml.linalg import SparseVector, VectorUDT
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    LongType,
    StringType,
    StructField,
    StructType,
)
from sklearn.metrics import f1_score

from core.artifact import write_artifact
from core.drift import REFERENCE_FILE
from core.enricher import INDEX_FILE, INDEX_POSTINGS_FILE
from core.errors import TrainingDataError
from core.model import MODEL_FORMAT
from core.rules import RULES_FILE
from core.schema import Limits
from core.text import BlockAnalyzer, ticket_document
from training.baselines import tune_references
from training.data import MIN_ROWS, DataSpec, Example, Split
from training.decisions import DecisionObjective, class_bands, decide, decision_weights
from training.default_rules import default_rules_for
from training.metrics import classification_metrics
from training.model import (
    OTHER,
    LinearHead,
    ModelConfig,
    Progress,
    ResolutionRegression,
    band_thresholds,
    fit_temperature,
    pack_model,
    softmax,
)
from training.report import write_report
from training.spark_csv import read_csv
from training.spark_reference import build_reference_spark
from training.spark_resolution import SparkResolutionModel, fit_resolution, resolution_report
from training.spark_similar import INDEX_TICKETS, SparkIndex, build_index
from training.train import MODEL_NAME, SAMPLE_COUNT, metrics_summary, model_version

_POSITION_BITS = 33
# Grid points fitted at the same time (Spark runs their jobs side by side).
GRID_PARALLELISM = 4
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_SUFFIXES |= {".parquet": "parquet"}
# Tickets of each window the tuned references (single-machine scikit-learn models, whose best
# validation macro-F1 the decision weights must keep) are fitted and scored on, on the driver.
REFERENCE_TICKETS = 50_000


@dataclass
class SparkTrainingResult:
    """What Spark training produced: the artifact, its metadata and the test-window report."""

    artifact_dir: Path
    metadata: dict[str, Any]
    report: dict[str, Any]


@dataclass(frozen=True)
class _Vocabulary:
    """One window's feature blocks: terms and IDF per block, and where each block starts."""

    terms: list[list[str]]
    idf: list[np.ndarray]
    documents: int

    @property
    def offsets(self) -> list[int]:
        out, start = [], 0
        for terms in self.terms:
            out.append(start)
            start += len(terms)
        return out

    @property
    def size(self) -> int:
        return sum(len(t) for t in self.terms)


@dataclass
class _Chosen:
    labels: list[str]
    params: dict[str, Any]
    temperature: float
    bands: dict[str, float]
    validation_macro_f1: float
    model: LogisticRegressionModel
    # As `training.model.ChosenClassifier`: chosen on the validation window.
    class_bands: dict[str, dict[str, float]]
    decision: dict[str, Any] | None
    validation_majority_macro_f1: float

    @property
    def shipped(self) -> bool:
        """Priority always; another target when it beat the majority class on validation
        (`training.model.ChosenClassifier.shipped`)."""
        return self.decision is not None or self.validation_macro_f1 > (
            self.validation_majority_macro_f1
        )

    @property
    def weights(self) -> np.ndarray | None:
        """The decision weights in label order, None for the most probable label."""
        if self.decision is None:
            return None
        return np.array([self.decision["weights"][label] for label in self.labels])


# --- reading --------------------------------------------------------------------------------


def _format(location: str) -> str:
    suffix = Path(location.rstrip("/")).suffix.lower()
    if suffix not in _SUFFIXES:
        raise TrainingDataError(f"{location}: unknown file type; use .csv, .tsv, .jsonl, .parquet")
    return _SUFFIXES[suffix]


def _read(spark: SparkSession, location: str) -> DataFrame:
    """The export as one JSON text per record, with an id that follows the file's order."""
    fmt = _format(location)
    if fmt == "jsonl":
        df = spark.read.text(location).select(F.col("value").alias("text"))
    elif fmt in ("csv", "tsv"):
        raw, record = read_csv(spark, location, sep="\t" if fmt == "tsv" else ",")
        df = raw.select(F.to_json(record).alias("text"))
    else:
        raw = spark.read.parquet(location)
        record = F.struct(*[F.col(f"`{c}`") for c in raw.columns])
        df = raw.select(F.to_json(record).alias("text"))
    return df.withColumn("_id", F.monotonically_increasing_id())


def _analyzers(spec: DataSpec, config: ModelConfig) -> list[BlockAnalyzer]:
    """The feature blocks, exactly as `training.model.build_features` defines them."""
    analyzers = [BlockAnalyzer("text", "text", config.ngram_max, config.description_max_chars)]
    if spec.field_columns:
        analyzers.append(BlockAnalyzer("fields", "fields", 1, None, tuple(spec.field_columns)))
    return analyzers


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _parse_time(value: Any, time_format: str | None) -> datetime:
    """The time as training reads it (UTC when it has no zone)."""
    text = _text(value).strip()
    parsed = (
        datetime.strptime(text, time_format)
        if time_format
        else datetime.fromisoformat(text.replace("Z", "+00:00"))
    )
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _microseconds(time: datetime) -> int:
    return round(time.timestamp() * 1_000_000)


def _example(
    text: str, spec: DataSpec, targets: Sequence[str], analyzers: Sequence[BlockAnalyzer]
) -> dict[str, Any] | None:
    """One closed ticket as training reads it (`training.data.load_dataset`), None when the
    ``where`` filter leaves it out; a problem is returned in ``error``."""
    try:
        record = json.loads(text)
    except ValueError as exc:
        return {"error": f"is not valid JSON: {exc}"}
    if not isinstance(record, dict):
        return {"error": "is not a JSON object"}
    required = [spec.subject_column, spec.label_column, *spec.field_columns]
    required += [c for c in (spec.time_column, spec.description_column, spec.resolved_column) if c]
    required += list(spec.where) + list(spec.duplicate_where) + list(spec.where_in)
    missing = [c for c in dict.fromkeys(required) if c not in record]
    if missing:
        return {"error": "is missing", "column": missing[0]}
    if any(_text(record[c]).strip() != v for c, v in spec.where.items()):
        return None
    if any(_text(record[c]).strip() not in v for c, v in spec.where_in.items()):
        return None
    label = _text(record[spec.label_column]).strip()
    if not label:
        if spec.skip_unlabelled:
            return None
        return {"error": "has no label", "column": spec.label_column}
    if spec.label_map is not None:
        if label not in spec.label_map:
            known = ", ".join(sorted(spec.label_map))
            return {
                "error": f"label {label!r} is not in the label mapping ({known})",
                "column": spec.label_column,
            }
        label = spec.label_map[label]
        if not label and spec.skip_unlabelled:
            return None
    times: dict[str, datetime | None] = {}
    for name, column in (("created", spec.time_column), ("resolved", spec.resolved_column)):
        if column is None or (name == "resolved" and not _text(record[column]).strip()):
            times[name] = None
            continue
        try:
            times[name] = _parse_time(record[column], spec.time_format)
        except ValueError:
            expected = f"format {spec.time_format!r}" if spec.time_format else "ISO 8601"
            value = _text(record[column]).strip()
            return {"error": f"cannot read {value!r} as a time in {expected}", "column": column}
    fields = {c: _text(record[c]).strip() or None for c in spec.field_columns}
    description = _text(record[spec.description_column]) if spec.description_column else ""
    doc = ticket_document(_text(record[spec.subject_column]), description, fields)
    created, resolved = times["created"], times["resolved"]
    assert created is not None
    out: dict[str, Any] = {
        "error": None,
        "column": None,
        "created_us": _microseconds(created),
        "resolved_us": None if resolved is None else _microseconds(resolved),
        # The similar-ticket index names the date as written (in the time's own zone).
        "created_date": created.date().isoformat(),
        "source_id": (
            _text(record[spec.id_column]) if spec.id_column and spec.id_column in record else None
        ),
        "label": label,
        "subject": doc["subject"],
        "description": doc["description"],
        "fields": json.dumps(fields),
        "is_duplicate": bool(spec.duplicate_where)
        and all(_text(record[c]).strip() == v for c, v in spec.duplicate_where.items()),
    }
    for name in targets:
        column = spec.target_columns[name]
        # As `training.data`: a blank or absent target is no example of that target.
        out[f"target_{name}"] = _text(record.get(column)).strip() or None
    for i, analyzer in enumerate(analyzers):
        out[f"tokens_{i}"] = analyzer(doc)
    return out


def _example_schema(targets: Sequence[str], blocks: int) -> StructType:
    fields = [
        StructField("_id", LongType()),
        StructField("error", StringType()),
        StructField("column", StringType()),
        StructField("created_us", LongType()),
        StructField("resolved_us", LongType()),
        StructField("created_date", StringType()),
        StructField("source_id", StringType()),
        StructField("label", StringType()),
        StructField("subject", StringType()),
        StructField("description", StringType()),
        StructField("fields", StringType()),
        StructField("is_duplicate", BooleanType()),
    ]
    fields += [StructField(f"target_{t}", StringType()) for t in targets]
    fields += [StructField(f"tokens_{i}", ArrayType(StringType())) for i in range(blocks)]
    return StructType(fields)


def _examples(
    spark: SparkSession,
    location: str,
    spec: DataSpec,
    targets: Sequence[str],
    analyzers: Sequence[BlockAnalyzer],
) -> DataFrame:
    schema = _example_schema(targets, len(analyzers))
    names = schema.fieldNames()

    def convert(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            columns = batch.to_pydict()
            rows = []
            for text, ident in zip(columns["text"], columns["_id"], strict=True):
                example = _example(text, spec, targets, analyzers)
                if example is not None:
                    rows.append({**dict.fromkeys(names), **example, "_id": ident})
            yield pa.RecordBatch.from_pylist(rows, schema=_arrow(schema))

    return _read(spark, location).mapInArrow(convert, schema)


def _arrow(schema: StructType) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema)


def _ranked(spark: SparkSession, df: DataFrame, order: Sequence[str]) -> DataFrame:
    """``df`` with ``rank``: 0, 1, … in ``order``, by a distributed sort and one count per
    partition (no window over the whole data in one task); persisted, for the caller to
    unpersist."""
    # Persisted, so that the counts and the ranks see the same partitions (a recomputed sort
    # may split its range differently). As many partitions as the input or the cores: every
    # later pass (each L-BFGS iteration among them) pays per task.
    parts = max(df.rdd.getNumPartitions(), spark.sparkContext.defaultParallelism)
    df = (
        df.repartitionByRange(parts, *order)
        .sortWithinPartitions(*order)
        .withColumn("_pos", F.monotonically_increasing_id())
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    part = F.shiftright(F.col("_pos"), _POSITION_BITS)
    counts = sorted(
        (int(r["p"]), int(r["n"]))
        for r in df.groupBy(part.alias("p")).agg(F.count(F.lit(1)).alias("n")).collect()
    )
    offsets, total = [], 0
    for p, n in counts:
        offsets.append((p, total))
        total += n
    table = spark.createDataFrame(offsets or [(0, 0)], "p long, offset long")
    within = F.col("_pos").bitwiseAND((1 << _POSITION_BITS) - 1)
    ranked = (
        df.withColumn("p", part)
        .join(F.broadcast(table), "p")
        .withColumn("rank", F.col("offset") + within)
        .drop("p", "offset", "_pos")
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    ranked.count()
    df.unpersist()
    return ranked


# --- features -------------------------------------------------------------------------------


def _vocabulary(
    window: DataFrame, analyzers: Sequence[BlockAnalyzer], config: ModelConfig
) -> _Vocabulary:
    """Terms kept (document frequency at least ``min_df``; 1 for form fields, as the
    single-machine trainer) and scikit-learn's smoothed IDF, ``ln((1 + n) / (1 + df)) + 1``."""
    n = window.count()
    terms, idf = [], []
    for i, analyzer in enumerate(analyzers):
        min_df = 1 if analyzer.source == "fields" else config.min_df
        counts = (
            window.select(F.explode(F.array_distinct(F.col(f"tokens_{i}"))).alias("term"))
            .groupBy("term")
            .count()
            .filter(F.col("count") >= min_df)
            .collect()
        )
        frequencies = dict(sorted((r["term"], int(r["count"])) for r in counts))
        terms.append(list(frequencies))
        df = np.array(list(frequencies.values()), dtype=np.float64)
        idf.append(np.log((1.0 + n) / (1.0 + df)) + 1.0)
    return _Vocabulary(terms, idf, n)


def _vectorizer(spark: SparkSession, vocabulary: _Vocabulary) -> Callable[..., Any]:
    """A column function: the blocks' tokens → one TF-IDF row, each block L2-normalised."""
    shipped = spark.sparkContext.broadcast(
        (
            [{t: j for j, t in enumerate(terms)} for terms in vocabulary.terms],
            [idf.tolist() for idf in vocabulary.idf],
            vocabulary.offsets,
            vocabulary.size,
        )
    )

    def vectorize(*blocks: list[str]) -> SparseVector:
        indexes, idfs, offsets, size = shipped.value
        entries: dict[int, float] = {}
        for tokens, index, idf, offset in zip(blocks, indexes, idfs, offsets, strict=True):
            counts: Counter[int] = Counter()
            for token in tokens or ():
                j = index.get(token)
                if j is not None:
                    counts[j] += 1
            raw = {j: (1.0 + math.log(c)) * idf[j] for j, c in counts.items()}
            norm = math.sqrt(sum(v * v for v in raw.values()))
            entries.update({offset + j: v / norm for j, v in raw.items()})
        return SparseVector(size, entries)

    return F.udf(vectorize, VectorUDT())


def _features(df: DataFrame, vectorize: Callable[..., Any], blocks: int) -> DataFrame:
    return df.withColumn("features", vectorize(*[F.col(f"tokens_{i}") for i in range(blocks)]))


# --- classifiers ----------------------------------------------------------------------------


def _weighted(
    df: DataFrame, column: str, labels: list[str], balanced: bool
) -> tuple[DataFrame, float]:
    """``df`` with the label's index and each row's weight (scikit-learn's "balanced":
    ``n / (k * count(label))``), and the sum of the weights."""
    index = F.create_map(
        *[x for i, label in enumerate(labels) for x in (F.lit(label), F.lit(float(i)))]
    )
    df = df.withColumn("y", index[F.col(column)])
    if not balanced:
        return df.withColumn("w", F.lit(1.0)), float(df.count())
    counts = {r[column]: int(r["count"]) for r in df.groupBy(column).count().collect()}
    n, k = sum(counts.values()), len(labels)
    weight = F.create_map(
        *[x for label, c in counts.items() for x in (F.lit(label), F.lit(n / (k * c)))]
    )
    return df.withColumn("w", weight[F.col(column)]), float(n)


def _fit_lr(
    df: DataFrame, c: float, weight_sum: float, k: int, config: ModelConfig
) -> LogisticRegressionModel:
    lr = LogisticRegression(
        featuresCol="features",
        labelCol="y",
        weightCol="w",
        family="binomial" if k == 2 else "multinomial",
        # MLlib minimises mean(w * loss) + regParam * ||w||² / 2; scikit-learn
        # C * sum(w * loss) + ||w||² / 2: the same minimum when regParam = 1 / (C * sum(w)).
        regParam=1.0 / (c * weight_sum),
        elasticNetParam=0.0,
        standardization=False,
        fitIntercept=True,
        maxIter=config.max_iter,
        tol=1e-6,
    )
    model: LogisticRegressionModel = lr.fit(df)
    return model


def _confusion(model: LogisticRegressionModel, df: DataFrame, k: int) -> np.ndarray:
    matrix = np.zeros((k, k), dtype=np.int64)
    rows = model.transform(df).groupBy("y", "prediction").count().collect()
    for r in rows:
        matrix[int(r["y"]), int(r["prediction"])] = int(r["count"])
    return matrix


def _macro_f1(matrix: np.ndarray) -> float:
    """scikit-learn's macro-F1 (zero_division=0) over the labels, from a confusion matrix."""
    tp = np.diag(matrix).astype(np.float64)
    denominator = (matrix.sum(axis=0) + matrix.sum(axis=1)).astype(np.float64)
    # Like `f1_score` without `labels`: the labels seen in the truth or the predictions.
    seen = denominator > 0
    return float((2 * tp[seen] / denominator[seen]).mean()) if seen.any() else 0.0


def _logits(model: LogisticRegressionModel, df: DataFrame, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's logits, in the convention of the artifact (binary: ``(-m, m)``), and its
    label index; collected to the driver (a validation or test window)."""
    rows = model.transform(df).select("rawPrediction", "y").collect()
    # MLlib's binomial raw prediction is (-m, m): the artifact's binary convention already.
    raw = np.array([r["rawPrediction"].toArray() for r in rows], dtype=np.float64).reshape(-1, k)
    return raw, np.array([int(r["y"]) for r in rows], dtype=np.int64)


def _check_window(
    column: str,
    labels: list[str],
    x_fit: DataFrame,
    n_fit: int,
    params: dict[str, Any],
    temperature: float,
    config: ModelConfig,
) -> tuple[np.ndarray, np.ndarray] | None:
    """`training.model.check_window` on Spark: the last third of the fit window, predicted with
    the chosen hyper-parameters and temperature by a model fitted on its first two thirds
    (probabilities in ``labels`` order, and the truth); None when too small to say."""
    cut = (2 * n_fit) // 3
    if cut < 2 or n_fit - cut < config.min_band_support:
        return None
    early = x_fit.filter(F.col("rank") < cut)
    present = {r[column] for r in early.select(column).distinct().collect()}
    if len(present) < 2:
        return None
    df, weight_sum = _weighted(early, column, labels, params["class_weight"] == "balanced")
    model = _fit_lr(df, params["C"], weight_sum, len(labels), config)
    late = _weighted(x_fit.filter(F.col("rank") >= cut), column, labels, False)[0]
    # A label the first two thirds lack past the last one they have gives MLlib fewer classes;
    # such a class is never predicted, as scikit-learn leaves its column at 0.
    m = model.numClasses
    logits, y = _logits(model, late, m)
    proba = np.zeros((len(y), len(labels)))
    proba[:, :m] = softmax(logits / temperature)
    return proba, np.asarray(labels)[y]


def _out_of_fold(
    column: str,
    labels: list[str],
    x_all: DataFrame,
    n_train: int,
    params: dict[str, Any],
    temperature: float,
    config: ModelConfig,
) -> tuple[np.ndarray, np.ndarray] | None:
    """`training.model.out_of_fold` on Spark: each fold of `ModelConfig.band_folds` over the
    training window (``x_all``, ranks below ``n_train``) predicted, with the chosen
    hyper-parameters and temperature, by a model fitted on every ticket before it; the
    probabilities in ``labels`` order and the truth, or None when no fold can be fitted. The
    folds share the training window's vocabulary where the single-machine trainer builds one
    per fold: the labels of a fold's tickets still never reach the model that predicts them."""
    starts = [int(n_train * f) for f in config.band_folds] + [n_train]
    folds = [
        (a, b)
        for a, b in pairwise(starts)
        if a >= 2
        and b > a
        and x_all.filter(F.col("rank") < a).select(column).distinct().limit(2).count() == 2
    ]
    if not folds:
        return None

    def predict(fold: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        a, b = fold
        before = x_all.filter(F.col("rank") < a)
        df, weight_sum = _weighted(before, column, labels, params["class_weight"] == "balanced")
        model = _fit_lr(df, params["C"], weight_sum, len(labels), config)
        rows = x_all.filter((F.col("rank") >= a) & (F.col("rank") < b))
        # As in `_check_window`: a label the earlier tickets lack past the last one they have
        # gives MLlib fewer classes, and such a class is never predicted.
        m = model.numClasses
        logits, y = _logits(model, _weighted(rows, column, labels, False)[0], m)
        proba = np.zeros((len(y), len(labels)))
        proba[:, :m] = softmax(logits / temperature)
        return proba, np.asarray(labels)[y]

    with ThreadPoolExecutor(max_workers=GRID_PARALLELISM) as pool:
        predicted = list(pool.map(predict, folds))
    return np.vstack([p for p, _ in predicted]), np.concatenate([t for _, t in predicted])


def _reference_floor(
    fit: DataFrame, validation: DataFrame, n_fit: int, n_val: int, limit: int, say: Progress
) -> float | None:
    """The best validation macro-F1 of the tuned references (`training.baselines`), the floor
    of priority's decision objective, fitted on the driver on the newest ``limit`` tickets of
    the fit window and scored on the validation window (a seeded sample of about ``limit``
    tickets of it when larger): on a history of that size or less, the single-machine floor."""

    def examples(df: DataFrame) -> list[Example]:
        rows = df.select("rank", "subject", "description", "label").orderBy("rank").collect()
        return [
            Example(
                int(r["rank"]),
                {"subject": r["subject"], "description": r["description"]},
                r["label"],
                None,
                None,
                None,
            )
            for r in rows
        ]

    later = validation if n_val <= limit else validation.sample(fraction=limit / n_val, seed=0)
    split = Split(examples(fit.filter(F.col("rank") >= n_fit - limit)), examples(later), [])
    references = tune_references(split, lambda e: e.label)
    floor = max((p["validation_macro_f1"] for p in references.values()), default=None)
    if floor is not None:
        say(f"tuned references: best validation macro-F1 {floor:.3f}")
    return floor


def _trust(
    name: str,
    labels: list[str],
    val_proba: np.ndarray,
    y_val: np.ndarray,
    majority: str,
    urgent: Sequence[str],
    config: ModelConfig,
    say: Progress,
    check: tuple[np.ndarray, np.ndarray] | None,
    macro_f1_floor: float | None = None,
    band_window: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict[str, Any] | None, dict[str, dict[str, float]], float]:
    """Decision weights, per-class bands and the majority class's validation macro-F1, as
    `training.model.choose_decisions` chooses them, with the same `training.decisions` code
    (``majority``: the fit window's most frequent label; ``band_window``: probabilities and
    truth where the bands are set instead of the validation window, as `_out_of_fold`'s)."""
    decision: dict[str, Any] | None = None
    weights: np.ndarray | None = None
    if urgent and config.urgent_recall is not None and any(u in labels for u in urgent):
        objective = DecisionObjective(config.urgent_recall, macro_f1_floor=macro_f1_floor)
        chosen, report = decision_weights(val_proba, y_val, labels, urgent, objective, check)
        decision = {"weights": chosen, **report}
        weights = np.array([chosen[label] for label in labels])
        say(f"{name}: decision weights {chosen} ({report['validation']})")
    band_proba, band_truth = band_window if band_window is not None else (val_proba, y_val)
    bands = class_bands(
        band_proba,
        band_truth,
        labels,
        weights,
        config.high_precision,
        config.medium_precision,
        config.min_band_support,
    )
    say(f"{name}: per-class bands {bands}")
    majority_f1 = float(
        f1_score(y_val, np.full(len(y_val), majority), average="macro", zero_division=0)
    )
    return decision, bands, majority_f1


def _calibrate(
    logits: np.ndarray, y: np.ndarray, labels: list[str], config: ModelConfig
) -> tuple[float, dict[str, float]]:
    temperature = fit_temperature(logits, y)
    proba = softmax(logits / temperature)
    correct = proba.argmax(axis=1) == y
    return temperature, band_thresholds(proba.max(axis=1), correct, config)


def _rare_merged(train: DataFrame, column: str, min_count: int) -> tuple[Any, list[str]]:
    """The target's labels over the training window with the rare ones as "Other" (as
    `training.model.merge_rare`), as a column expression, and the labels in class order."""
    counts = {r[column]: int(r["count"]) for r in train.groupBy(column).count().collect()}
    keep = sorted(label for label, c in counts.items() if c >= min_count)
    rare = any(c < min_count for c in counts.values())
    merged = F.when(F.col(column).isin(keep), F.col(column)).otherwise(F.lit(OTHER))
    return merged, sorted({*keep, *([OTHER] if rare else [])})


# --- the use case ---------------------------------------------------------------------------


def _choose(
    name: str,
    column: str,
    labels: list[str],
    x_fit: DataFrame,
    x_val: DataFrame,
    x_all: DataFrame,
    config: ModelConfig,
    say: Progress,
    urgent: Sequence[str] = (),
    n_fit: int = 0,
    macro_f1_floor: float | None = None,
    n_train: int = 0,
) -> _Chosen:
    """Grid on the fit window scored on the validation window; temperature, bands and decision
    weights (with ``urgent``, checked on the end of the ``n_fit`` fit rows, validation macro-F1
    kept at ``macro_f1_floor``) on the validation window; per-class bands there too, or, given
    the training window's size ``n_train`` (priority), on its out-of-fold predictions
    (`_out_of_fold`); then the refit on fit + validation (`training.model.fit_model`)."""
    k = len(labels)
    y_val = _weighted(x_val, column, labels, False)[0]
    best: tuple[float, float, str | None, LogisticRegressionModel] | None = None
    grid = [(c, w) for w in config.class_weights for c in config.c_grid]
    weighted = {w: _weighted(x_fit, column, labels, w == "balanced") for w in config.class_weights}

    def evaluate(point: tuple[float, str | None]) -> tuple[float, LogisticRegressionModel]:
        c, weight = point
        fit_df, weight_sum = weighted[weight]
        model = _fit_lr(fit_df, c, weight_sum, k, config)
        return _macro_f1(_confusion(model, y_val, k)), model

    # Each fit is a chain of small Spark jobs: a few at once keep the executors busy.
    with ThreadPoolExecutor(max_workers=GRID_PARALLELISM) as pool:
        results = list(pool.map(evaluate, grid))
    for step, ((c, weight), (f1, model)) in enumerate(zip(grid, results, strict=True), start=1):
        say(
            f"{name}: grid {step}/{len(grid)}: C={c:g} class_weight={weight}: "
            f"validation macro-F1 {f1:.3f}"
        )
        if best is None or f1 > best[0]:
            best = (f1, c, weight, model)
    assert best is not None
    score, c, weight, model = best
    logits, y = _logits(model, y_val, k)
    temperature, bands = _calibrate(logits, y, labels, config)
    say(
        f"{name}: chosen C={c:g} class_weight={weight} (validation macro-F1 {score:.3f}), "
        f"temperature {temperature:.3f}, bands {bands}"
    )
    params = {"C": c, "class_weight": weight}
    fit_counts = {r[column]: int(r["count"]) for r in x_fit.groupBy(column).count().collect()}
    # np.unique's order, then the first of the most frequent, as `choose_decisions` picks it.
    majority = max(sorted(fit_counts), key=lambda label: fit_counts[label])
    check = (
        _check_window(column, labels, x_fit, n_fit, params, temperature, config) if urgent else None
    )
    band_window = (
        _out_of_fold(column, labels, x_all, n_train, params, temperature, config)
        if n_train and config.band_folds
        else None
    )
    if band_window is not None:
        say(f"{name}: per-class bands from {len(band_window[1])} out-of-fold tickets")
    decision, per_class, majority_f1 = _trust(
        name,
        labels,
        softmax(logits / temperature),
        np.asarray(labels)[y],
        majority,
        urgent,
        config,
        say,
        check,
        macro_f1_floor,
        band_window,
    )
    all_df, weight_sum = _weighted(x_all, column, labels, weight == "balanced")
    final = _fit_lr(all_df, c, weight_sum, k, config)
    return _Chosen(
        labels, params, temperature, bands, score, final, per_class, decision, majority_f1
    )


def _head(name: str, chosen: _Chosen) -> LinearHead:
    model = chosen.model
    coef: Any
    intercept: Any
    if len(chosen.labels) == 2:  # MLlib's binary model: one decision value, as scikit-learn's
        coef, intercept = model.coefficients.toArray(), [model.intercept]
    else:
        coef, intercept = model.coefficientMatrix.toArray(), model.interceptVector.toArray()
    return LinearHead(
        chosen.labels,
        coef,
        intercept,
        chosen.temperature,
        chosen.bands,
        chosen.class_bands,
        chosen.decision,
        name == "priority" or chosen.shipped,
    )


def _export(
    analyzers: Sequence[BlockAnalyzer],
    vocabulary: _Vocabulary,
    chosen: dict[str, _Chosen],
    resolution: SparkResolutionModel | None,
) -> tuple[dict[str, Any], bytes]:
    """The model as `core.model.LinearTextModel` reads it, written as `FittedModel.export`
    writes it."""
    regression = None
    if resolution is not None:
        weights, bias = resolution.coefficients()
        regression = ResolutionRegression(weights, bias, resolution.residual_quantiles)
    return pack_model(
        list(zip(analyzers, vocabulary.terms, vocabulary.idf, strict=True)),
        {name: _head(name, c) for name, c in chosen.items()},
        regression,
    )


def _probabilities(chosen: _Chosen, df: DataFrame) -> tuple[np.ndarray, list[Any]]:
    """Calibrated probabilities of the rows of a (small) window, and the rows themselves."""
    rows = chosen.model.transform(df).collect()
    raw = np.array([r["rawPrediction"].toArray() for r in rows], dtype=np.float64)
    return softmax(raw.reshape(len(rows), -1) / chosen.temperature), rows


def _samples(
    chosen: dict[str, _Chosen],
    resolution: SparkResolutionModel | None,
    test: DataFrame,
    limits: Limits,
) -> list[dict[str, Any]]:
    """A few test tickets with the outputs the MLlib models give them; serving must reproduce
    these to load the artifact (as `training.train` records them)."""
    usable = (
        test.filter(
            (F.length(F.encode("description", "UTF-8").cast("binary")) <= limits.description_bytes)
            & (F.length(F.encode("subject", "UTF-8").cast("binary")) <= limits.subject_bytes)
            & ((F.length(F.trim("subject")) > 0) | (F.length(F.trim("description")) > 0))
        )
        .orderBy("rank")
        .limit(200)
    )
    proba = {}
    rows: list[Any] = []
    for name, c in chosen.items():
        proba[name], rows = _probabilities(c, usable)
    if not rows:
        return []
    log_hours = (
        [float(r["prediction"]) for r in resolution.model.transform(usable).collect()]
        if resolution is not None
        else []
    )
    columns = {name: decide(proba[name], c.weights) for name, c in chosen.items()}
    labels = chosen["priority"].labels
    predicted = np.asarray(labels)[columns["priority"]]
    picked: list[int] = []
    for label in labels:
        picked += [int(i) for i in np.flatnonzero(predicted == label)[:1]]
    picked += [i for i in range(len(rows)) if i not in picked][: SAMPLE_COUNT - len(picked)]
    samples = []
    for i in sorted(picked)[:SAMPLE_COUNT]:
        row = rows[i]
        fields = {k: v for k, v in json.loads(row["fields"]).items() if v is not None}
        expected: dict[str, Any] = {
            name: {
                "label": c.labels[int(columns[name][i])],
                "probabilities": dict(zip(c.labels, map(float, proba[name][i]), strict=True)),
            }
            for name, c in chosen.items()
        }
        if resolution is not None and log_hours:
            expected["resolution_hours"] = resolution.hours(log_hours[i])
        ticket = {
            "subject": row["subject"],
            "description": row["description"],
            "custom_fields": fields,
        }
        samples.append({"ticket": ticket, "expected": expected})
    return samples


def _test_metrics(
    chosen: _Chosen, column: str, x_test: DataFrame, urgent: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The test window's metrics of the label as served (decision weights, each class's own
    auto-apply band), and with decision weights, of the most probable label beside them (as
    `training.train` reports both)."""
    df = x_test.select("features", F.col(column).alias("truth"))
    rows = chosen.model.transform(df).select("rawPrediction", "truth").collect()
    labels = chosen.labels
    raw = np.array([r["rawPrediction"].toArray() for r in rows], dtype=np.float64)
    proba = softmax(raw.reshape(-1, len(labels)) / chosen.temperature)
    columns = decide(proba, chosen.weights)
    truth = [r["truth"] for r in rows]
    urgent_columns = [i for i, label in enumerate(labels) if label in urgent]
    high = {label: chosen.class_bands.get(label, chosen.bands)["high"] for label in labels}
    metrics = classification_metrics(
        truth,
        [labels[i] for i in columns],
        labels,
        list(urgent),
        proba[np.arange(len(columns)), columns],
        high,
        proba[:, urgent_columns].sum(axis=1) if urgent_columns else None,
    )
    most_probable = (
        None
        if chosen.weights is None
        else classification_metrics(
            truth, [labels[i] for i in proba.argmax(axis=1)], labels, list(urgent)
        )
    )
    return metrics, most_probable


def _target_report(
    chosen: _Chosen, metrics: dict[str, Any], most_probable: dict[str, Any] | None
) -> dict[str, Any]:
    """One target's part of the report, as `training.train` writes it (no baselines: they are
    further models on one machine)."""
    return {
        "model": metrics,
        "most_probable": most_probable,
        "baselines": {},
        "decision": chosen.decision,
        "class_bands": chosen.class_bands,
        "validation": {
            "macro_f1": chosen.validation_macro_f1,
            "majority_macro_f1": chosen.validation_majority_macro_f1,
        },
    }


def _fingerprint(spark: SparkSession, location: str) -> str:
    """SHA-256 of a local file; of the records' hashes for data behind a URL."""
    path = Path(location)
    if "://" not in location and path.is_file():
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    total = _read(spark, location).agg(F.sum(F.xxhash64("text")).alias("h")).collect()[0]["h"]
    return hashlib.sha256(str(total).encode()).hexdigest()


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("ticket-enrich", "pyspark", "scikit-learn", "numpy"):
        try:
            versions[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    return versions


def _first_problem(spark: SparkSession, location: str, examples: DataFrame) -> None:
    bad = examples.filter(F.col("error").isNotNull()).orderBy("_id").limit(1).collect()
    if bad:
        row = _read(spark, location).filter(F.col("_id") <= bad[0]["_id"]).count()
        raise TrainingDataError(bad[0]["error"], column=bad[0]["column"], row=row)


def _row_numbers(spark: SparkSession, location: str) -> Callable[[int], int]:
    """Each record's number in the export, from its ``_id``, as `training.data` counts them
    (a JSONL line, a CSV record after the header): one count per input partition."""
    part = F.shiftright(F.col("_id"), _POSITION_BITS)
    counts = sorted(
        (int(r["p"]), int(r["n"]))
        for r in _read(spark, location)
        .groupBy(part.alias("p"))
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    )
    offsets, total = {}, 0
    for p, n in counts:
        offsets[p] = total
        total += n
    mask = (1 << _POSITION_BITS) - 1
    return lambda ident: offsets[ident >> _POSITION_BITS] + (ident & mask) + 1


def _index(
    spark: SparkSession,
    data: str,
    targets: Sequence[str],
    frames: tuple[DataFrame, DataFrame, DataFrame, DataFrame],
    vocab_fit: _Vocabulary,
    vocab_all: _Vocabulary,
    config: ModelConfig,
    say: Progress,
    limit: int,
) -> SparkIndex:
    """The similar-ticket index, its tickets named by their id, else by their row."""
    x_fit, x_val, x_all, x_test = frames
    rows: list[Callable[[int], int]] = []

    def doc_id(r: Any) -> str:
        if r["source_id"]:
            return str(r["source_id"])
        if not rows:
            rows.append(_row_numbers(spark, data))
        return str(rows[0](int(r["_id"])))

    resolution = F.col("target_resolution") if "resolution" in targets else F.lit(None)
    say("similar tickets: postings of the training window, duplicate threshold on validation")
    return build_index(
        x_fit,
        x_val,
        x_all.withColumn("resolution", resolution.cast("string")),
        x_test,
        (len(vocab_fit.terms[0]), len(vocab_all.terms[0])),
        (vocab_fit.documents, vocab_all.documents),
        doc_id,
        config,
        say,
        limit,
    )


def train_model_spark(
    spark: SparkSession,
    data: str,
    spec: DataSpec,
    *,
    out_dir: Path | None = None,
    models_dir: Path = Path("models"),
    config: ModelConfig | None = None,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    name: str = MODEL_NAME,
    progress: Progress | None = None,
    index_tickets: int = INDEX_TICKETS,
    reference_tickets: int = REFERENCE_TICKETS,
) -> SparkTrainingResult:
    """Train on Spark what `training.train.train_model` trains on one machine (priority, the
    categorical targets, the resolution time, the similar-ticket index and the drift
    reference), report on the newest tickets, write the same artifact format.

    ``data`` is a CSV, TSV, JSONL or Parquet file, directory or URL Spark can read. Without
    ``out_dir`` the artifact goes to ``models_dir/<version>``. The similar-ticket index holds
    the newest ``index_tickets`` tickets of the training window. The tuned references, whose
    validation macro-F1 priority's decision weights must keep, see at most
    ``reference_tickets`` tickets of the fit and of the validation window.
    """
    if spec.time_column is None:
        raise TrainingDataError(
            "the Spark trainer orders tickets by their creation time: name the export's time "
            "column with --time-column (the single-machine trainer can split by row order)"
        )
    config = config or ModelConfig()
    say = progress or (lambda _msg: None)
    analyzers = _analyzers(spec, config)
    targets = list(spec.target_columns)
    examples = _examples(spark, data, spec, targets, analyzers).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    try:
        return _train(
            spark,
            data,
            spec,
            examples,
            analyzers,
            targets,
            out_dir,
            models_dir,
            config,
            test_fraction,
            validation_fraction,
            name,
            say,
            index_tickets,
            reference_tickets,
        )
    finally:
        examples.unpersist()


def _train(
    spark: SparkSession,
    data: str,
    spec: DataSpec,
    examples: DataFrame,
    analyzers: list[BlockAnalyzer],
    targets: list[str],
    out_dir: Path | None,
    models_dir: Path,
    config: ModelConfig,
    test_fraction: float,
    validation_fraction: float,
    name: str,
    say: Progress,
    index_tickets: int,
    reference_tickets: int,
) -> SparkTrainingResult:
    _first_problem(spark, data, examples)
    n = examples.count()
    if n < MIN_ROWS:
        where = f" matching {dict(spec.where)}" if spec.where else ""
        raise TrainingDataError(
            f"{data}: {n} rows{where}; at least {MIN_ROWS} closed tickets are needed"
        )
    by_label = {r["label"]: int(r["count"]) for r in examples.groupBy("label").count().collect()}
    if len(by_label) < 2:
        raise TrainingDataError(
            f"has only one class ({next(iter(by_label))!r}); at least two are needed",
            column=spec.label_column,
        )
    present = [
        t for t in targets if examples.filter(F.col(f"target_{t}").isNotNull()).limit(1).count()
    ]
    skipped = sorted(set(targets) - set(present))
    for t in skipped:
        say(f"target {t!r}: the export has no such column; not trained")

    n_train = int(n * (1 - test_fraction))
    n_fit = int(n_train * (1 - validation_fraction))
    if not 0 < n_fit < n_train < n:
        raise ValueError("the split left a window empty; use more data or other fractions")
    say(
        f"{n} closed tickets: fit {n_fit}, validation {n_train - n_fit}, test {n - n_train} "
        "(time-ordered, on Spark)"
    )
    base = _ranked(spark, examples, ["created_us", "_id"])
    window = (
        F.when(F.col("rank") < n_fit, "fit")
        .when(F.col("rank") < n_train, "validation")
        .otherwise("test")
    )
    ranked = base.withColumn("window", window)
    # As the single-machine trainer reports: priority classes the validation window lacks.
    seen = {
        (r["window"], r["label"]) for r in ranked.select("window", "label").distinct().collect()
    }
    unvalidated_labels = sorted(
        {lab for w, lab in seen if w == "fit"} - {lab for w, lab in seen if w == "validation"}
    )
    unvalidated = {"priority": unvalidated_labels} if unvalidated_labels else {}
    for label in unvalidated_labels:
        say(f"priority: no validation rows for {label!r}: calibrated on the other classes only")
    fit = ranked.filter(F.col("window") == "fit")
    validation = ranked.filter(F.col("window") == "validation")
    train = ranked.filter(F.col("window") != "test")
    test = ranked.filter(F.col("window") == "test")

    say("vocabularies and document frequencies (fit window, then fit + validation)")
    vocab_fit = _vocabulary(fit, analyzers, config)
    vocab_all = _vocabulary(train, analyzers, config)
    say(f"{vocab_all.size} terms in {len(analyzers)} block(s) over {vocab_all.documents} tickets")
    blocks = len(analyzers)
    vec_fit, vec_all = _vectorizer(spark, vocab_fit), _vectorizer(spark, vocab_all)
    persisted: list[DataFrame] = []

    def keep(df: DataFrame) -> DataFrame:
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        persisted.append(df)
        return df

    x_fit = keep(_features(fit, vec_fit, blocks))
    x_val = keep(_features(validation, vec_fit, blocks))
    x_all = keep(_features(train, vec_all, blocks))
    x_test = keep(_features(test, vec_all, blocks))
    urgent = [u for u in spec.urgent_labels if u in by_label]
    # As on one machine, the references are tuned first: the priority decision must keep
    # validation macro-F1 at or above theirs. Spark reports no baselines, so they are tuned
    # only for a decision to keep.
    floor = (
        _reference_floor(fit, validation, n_fit, n_train - n_fit, reference_tickets, say)
        if urgent and config.urgent_recall is not None
        else None
    )
    try:
        chosen: dict[str, _Chosen] = {}
        columns: dict[str, str] = {}
        for target in ("priority", *present):
            column = "label" if target == "priority" else f"target_{target}"
            if target == "priority":
                labels = sorted(by_label)
                frames = (x_fit, x_val, x_all)
            else:
                # Each secondary target learns from the tickets that have it.
                has = F.col(column).isNotNull()
                merged, labels = _rare_merged(train.filter(has), column, config.min_label_count)
                frames = (
                    x_fit.filter(has).withColumn(column, merged),
                    x_val.filter(has).withColumn(column, merged),
                    x_all.filter(has).withColumn(column, merged),
                )
            fit_labels = {r[column] for r in frames[0].select(column).distinct().collect()}
            if len(fit_labels) < 2 or len(labels) < 2:
                say(f"{target}: fewer than two labels in the training window; not trained")
                continue
            chosen[target] = _choose(
                target,
                column,
                labels,
                *frames,
                config,
                say,
                urgent if target == "priority" else (),
                n_fit,
                floor if target == "priority" else None,
                n_train if target == "priority" else 0,
            )
            columns[target] = column

        say("evaluating on the test window")
        evaluated = {
            t: _test_metrics(
                c,
                columns[t],
                x_test
                if t == "priority"
                else x_test.filter(F.col(columns[t]).isNotNull()).withColumn(
                    columns[t],
                    _rare_merged(
                        train.filter(F.col(columns[t]).isNotNull()),
                        columns[t],
                        config.min_label_count,
                    )[0],
                ),
                urgent if t == "priority" else [],
            )
            for t, c in chosen.items()
        }
        test_metrics = {t: m for t, (m, _) in evaluated.items()}
        resolution = fit_resolution(x_fit, x_val, x_all, config, say, GRID_PARALLELISM)
        resolution_metrics = (
            resolution_report(resolution, x_all, x_test) if resolution is not None else None
        )
        index = _index(
            spark,
            data,
            present,
            (x_fit, x_val, x_all, x_test),
            vocab_fit,
            vocab_all,
            config,
            say,
            index_tickets,
        )
        samples = _samples(chosen, resolution, x_test, Limits())
    finally:
        for df in persisted:
            df.unpersist()
    times = ranked.agg(F.min("created_us").alias("a"), F.max("created_us").alias("b")).collect()[0]

    duplicates = {"threshold": index.threshold, "validation": index.validation, "test": index.test}
    data_sha256 = _fingerprint(spark, data)
    created = datetime.now(UTC)
    version = model_version(created, data_sha256)
    if out_dir is None:
        out_dir = models_dir / version
    priority = chosen["priority"]
    most_probable = evaluated["priority"][1]
    rules = default_rules_for(priority.labels)
    say(
        f"priority rules: the default set {rules['version']} ({len(rules['rules'])} rules)"
        if rules is not None
        else "priority rules: none (the default set names labels this model does not have)"
    )
    params: dict[str, Any] = {
        "ngram_max": config.ngram_max,
        "description_max_chars": config.description_max_chars,
        "min_df": config.min_df,
        "similar_count": config.similar_count,
        "index_terms": config.index_terms,
        "query_terms": config.query_terms,
        "index_tickets": index_tickets,
        **{f"{t}_{k}": v for t, c in chosen.items() for k, v in c.params.items()},
        **{f"{t}_temperature": c.temperature for t, c in chosen.items()},
        "engine": "spark",
    }

    metadata: dict[str, Any] = {
        "name": name,
        "version": version,
        "created_at": created.isoformat(timespec="seconds"),
        "format": MODEL_FORMAT,
        "target": "priority",
        "labels": priority.labels,
        "urgent_labels": urgent,
        "custom_fields": list(spec.field_columns),
        "targets": {
            t: {
                "labels": c.labels,
                "bands": c.bands,
                "class_bands": c.class_bands,
                "decision": c.decision,
            }
            for t, c in chosen.items()
        },
        "training_data": {
            "file": data.rstrip("/").rsplit("/", 1)[-1],
            "sha256": data_sha256,
            "rows": n,
            "rows_by_label": dict(sorted(by_label.items())),
            "first_created": datetime.fromtimestamp(times["a"] / 1e6, UTC).isoformat(),
            "last_created": datetime.fromtimestamp(times["b"] / 1e6, UTC).isoformat(),
            "spec": {
                **spec.as_dict(),
                "target_columns": {t: spec.target_columns[t] for t in present},
            },
            "skipped_targets": skipped,
            "split": {
                "method": "time-ordered",
                "classes_without_validation": unvalidated,
                "test_fraction": test_fraction,
                "validation_fraction": validation_fraction,
                "fit": n_fit,
                "validation": n_train - n_fit,
                "test": n - n_train,
            },
        },
        "features": params,
        "bands": priority.bands,
        "rules": None
        if rules is None
        else {
            "file": RULES_FILE,
            "version": rules["version"],
            "names": [r["name"] for r in rules["rules"]],
        },
        "withheld_targets": {
            t: {
                "validation_macro_f1": c.validation_macro_f1,
                "validation_majority_macro_f1": c.validation_majority_macro_f1,
            }
            for t, c in chosen.items()
            if not c.shipped
        },
        "metrics": {
            "test": metrics_summary(test_metrics["priority"]),
            "test_most_probable": None
            if most_probable is None
            else {k: most_probable[k] for k in ("macro_f1", "urgent_recall")},
            "validation": {"macro_f1": priority.validation_macro_f1},
            "targets": {t: metrics_summary(m) for t, m in test_metrics.items() if t != "priority"},
            "resolution_time": resolution_metrics,
            "duplicates": duplicates,
        },
        "libraries": _library_versions(),
    }
    report = {
        "title": f"{name} {version}: test window (trained on Spark)",
        "context": {
            "data": f"{metadata['training_data']['file']} (sha256 {data_sha256[:12]}…), {n} rows",
            "split": f"time-ordered: fit {n_fit}, validation {n_train - n_fit}, test {n - n_train}",
            "chosen": ", ".join(f"{k}={v}" for k, v in params.items()),
            "bands": f"high ≥ {priority.bands['high']:.3f}, "
            f"medium ≥ {priority.bands['medium']:.3f}",
        },
        **_target_report(priority, *evaluated["priority"]),
        "targets": {t: _target_report(chosen[t], *evaluated[t]) for t in chosen if t != "priority"},
        "resolution_time": resolution_metrics,
        "duplicates": duplicates,
    }
    model_spec, weights = _export(analyzers, vocab_all, chosen, resolution)
    say("profiling the training data and the model's answers for drift monitoring")
    try:
        reference = build_reference_spark(
            spark, model_spec, weights, metadata, ranked, spec.field_columns
        )
    finally:
        base.unpersist()
    say(f"writing the artifact to {out_dir}")
    extra: dict[str, Any] = {
        REFERENCE_FILE: reference.to_dict(),
        INDEX_FILE: index.header,
        INDEX_POSTINGS_FILE: index.postings,
    }
    if rules is not None:
        extra[RULES_FILE] = rules
    write_artifact(out_dir, model_spec, weights, metadata, samples, extra)
    write_report(out_dir / "report", report)
    if out_dir.parent.resolve() == models_dir.resolve():
        from training.train import _point_latest

        _point_latest(models_dir, out_dir)
    say(f"test macro-F1 {test_metrics['priority']['macro_f1']:.3f}")
    return SparkTrainingResult(out_dir, metadata, report)
