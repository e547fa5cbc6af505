"""The similar-ticket index on Spark: `training.model`'s index, built where the data is.

Each closed ticket's text block is truncated to its heaviest terms by the workers (ties: lower
term first, weights rounded as the artifact stores them, exactly as `training.model.truncate_rows`
does); similarity scores are a join of the queries' and the tickets' postings on the term, so the
duplicate threshold is chosen from aggregates: the validation window's best-match scores are
counted per 1e-5-wide bucket, and only the buckets (at most 100,001) reach the driver. The
artifact's index holds the newest ``limit`` tickets of the training window: it is loaded whole
by serving, so its size is bounded whatever the history's, and only those tickets' postings are
collected, a partition at a time, into the files `training.model.index_files` writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark import StorageLevel
from pyspark.ml.linalg import SparseVector
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType, IntegerType, StructField, StructType

from training.model import ModelConfig, Progress, SimilarityIndex, index_files

# Tickets the artifact's index holds at most: the newest of the training window.
INDEX_TICKETS = 100_000
# Best-match scores are bucketed this finely to choose the duplicate threshold.
_BUCKETS_PER_UNIT = 100_000
_POSTING = ArrayType(StructType([StructField("t", IntegerType()), StructField("w", DoubleType())]))


@dataclass
class SparkIndex:
    """The index files as `core.similar` reads them, with the figures the report quotes."""

    header: dict[str, Any]
    postings: bytes
    threshold: float
    validation: dict[str, Any]
    test: dict[str, Any]


def _truncated(size: int, k: int, decimals: int | None) -> Callable[[Column], Column]:
    """A column function: a feature vector → its text block's ``k`` heaviest (term, weight)."""

    def truncate(vector: SparseVector) -> list[tuple[int, float]]:
        idx = np.asarray(vector.indices)
        val = np.asarray(vector.values)
        inside = idx < size
        idx, val = idx[inside], val[inside]
        keep = np.lexsort((idx, -val))[:k]
        weights = val[keep]
        if decimals is not None:
            weights = np.round(weights, decimals)
        return list(zip(idx[keep].tolist(), weights.tolist(), strict=True))

    udf = F.udf(truncate, _POSTING, useArrow=False)
    return lambda column: udf(column)


def _postings(df: DataFrame, doc: Column, truncate: Callable[[Column], Column]) -> DataFrame:
    return df.select(doc.alias("d"), F.explode(truncate(F.col("features"))).alias("p")).select(
        "d", F.col("p.t").alias("t"), F.col("p.w").alias("w")
    )


def _best(queries: DataFrame, index: DataFrame, rows: DataFrame) -> DataFrame:
    """``rows`` (``d``, ``is_duplicate``) with each one's best similarity to the index (0 with
    no term in common), from a join of the postings on the term."""
    scores = (
        queries.withColumnRenamed("d", "q")
        .withColumnRenamed("w", "qw")
        .join(index, "t")
        .groupBy("q", "d")
        .agg(F.sum(F.col("qw") * F.col("w")).alias("s"))
        .groupBy("q")
        .agg(F.max("s").alias("best"))
    )
    return rows.join(scores.withColumnRenamed("q", "d"), "d", "left").select(
        F.coalesce(F.col("best"), F.lit(0.0)).alias("best"), "is_duplicate"
    )


def duplicate_threshold_bucketed(scored: DataFrame) -> tuple[float, dict[str, Any]]:
    """`training.model.duplicate_threshold` over bucketed scores: the lowest best-match score
    that maximises F1 for "closed as duplicate", among the bucket minima."""
    buckets = (
        scored.groupBy(F.floor(F.col("best") * _BUCKETS_PER_UNIT).alias("b"))
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(F.col("is_duplicate").cast("long")).alias("dup"),
            F.min("best").alias("low"),
        )
        .collect()
    )
    positives = sum(int(r["dup"]) for r in buckets)
    if not positives:
        return 1.01, {"positives": 0, "precision": None, "recall": None, "f1": None}
    top: tuple[float, float, float, float] = (-1.0, 1.01, 0.0, 0.0)
    flagged = tp = 0
    # From the highest bucket down, so each bucket's counts include every score above it; a
    # tie in F1 goes to the lower threshold, as on one machine.
    for r in sorted(buckets, key=lambda r: -int(r["b"])):
        flagged += int(r["n"])
        tp += int(r["dup"])
        if tp == 0:
            continue
        precision, recall = tp / flagged, tp / positives
        f1 = 2 * precision * recall / (precision + recall)
        if f1 >= top[0]:
            top = (f1, float(r["low"]), precision, recall)
    f1, t, precision, recall = top
    return t, {"positives": positives, "precision": precision, "recall": recall, "f1": f1}


def _window_docs(df: DataFrame, first_rank: int) -> DataFrame:
    return df.filter(F.col("rank") >= first_rank)


def build_index(
    x_fit: DataFrame,
    x_val: DataFrame,
    x_all: DataFrame,
    x_test: DataFrame,
    sizes: tuple[int, int],
    counts: tuple[int, int],
    doc_id: Callable[[Any], str],
    config: ModelConfig,
    say: Progress,
    limit: int = INDEX_TICKETS,
) -> SparkIndex:
    """The duplicate threshold chosen on the validation window against the fit window's index,
    the index of the training window (its newest ``limit`` tickets) and its test-window
    figures (`training.model._fit_index`, `training.train._duplicate_report`).

    ``sizes`` are the text block's vocabulary sizes (fit window, fit + validation), ``counts``
    the windows' rows (fit, fit + validation); ``doc_id`` names an indexed ticket from its row.
    """
    (fit_size, all_size), (n_fit, n_train) = sizes, counts
    rank = F.col("rank")
    fit_index = _postings(
        _window_docs(x_fit, n_fit - limit), rank, _truncated(fit_size, config.index_terms, 5)
    )
    queries = _postings(x_val, rank, _truncated(fit_size, config.query_terms, None))
    rows = x_val.select(rank.alias("d"), "is_duplicate")
    threshold, stats = duplicate_threshold_bucketed(_best(queries, fit_index, rows))
    say(f"similar tickets: duplicate threshold {threshold:.3f} on validation {stats}")

    first = max(n_train - limit, 0)
    indexed = _window_docs(x_all, first)
    index = _postings(
        indexed, rank - F.lit(first), _truncated(all_size, config.index_terms, 5)
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        test_rows = x_test.select(rank.alias("d"), "is_duplicate")
        test_queries = _postings(x_test, rank, _truncated(all_size, config.query_terms, None))
        flagged = F.col("best") >= F.lit(threshold)
        test = (
            _best(test_queries, index, test_rows)
            .agg(
                F.sum(F.col("is_duplicate").cast("long")).alias("positives"),
                F.sum(flagged.cast("long")).alias("flagged"),
                F.sum((flagged & F.col("is_duplicate")).cast("long")).alias("tp"),
            )
            .collect()[0]
        )
        positives, n_flagged, tp = (int(test[k] or 0) for k in ("positives", "flagged", "tp"))
        docs, cells = _collect(indexed, index, doc_id)
    finally:
        index.unpersist()
    from scipy import sparse

    matrix = sparse.csr_matrix(cells, shape=(len(docs), all_size))
    header, postings = index_files(
        SimilarityIndex(docs, matrix, threshold, stats, config.query_terms),
        "text",
        config.similar_count,
    )
    say(f"similar tickets: {len(docs)} tickets indexed, {matrix.nnz} postings")
    return SparkIndex(
        header,
        postings,
        threshold,
        stats,
        {
            "positives": positives,
            "flagged": n_flagged,
            "precision": tp / n_flagged if n_flagged else None,
            "recall": tp / positives if positives else None,
        },
    )


def _collect(
    indexed: DataFrame, index: DataFrame, doc_id: Callable[[Any], str]
) -> tuple[list[dict[str, Any]], tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]]:
    """The indexed tickets, in rank order, as `training.model._index_docs` describes them, and
    their postings as (weights, (ticket, term)); streamed a partition at a time."""
    docs = [
        {
            "id": doc_id(r),
            "subject": r["subject"][:200],
            "priority": r["label"],
            "resolution": r["resolution"],
            "created": r["created_date"],
        }
        for r in indexed.select(
            "rank",
            "_id",
            "source_id",
            "subject",
            "label",
            "resolution",
            "created_date",
        )
        .orderBy("rank")
        .toLocalIterator(prefetchPartitions=True)
    ]
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for r in index.toLocalIterator(prefetchPartitions=True):
        rows.append(int(r["d"]))
        cols.append(int(r["t"]))
        vals.append(float(r["w"]))
    return docs, (
        np.asarray(vals, dtype=np.float64),
        (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)),
    )
