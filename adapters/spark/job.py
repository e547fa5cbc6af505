"""The batch job on Spark: `ticket-enrich batch --engine spark INPUT OUTPUT`.

The driver reads the model artifact's files (a local directory or any URL Spark can read:
`s3a://`, `gs://`, `abfss://`) and broadcasts them, so each executor fetches them once. In each
Python worker the first batch writes them to a local directory and loads them with
`core.load_enricher`, as every adapter does; the enricher is kept for the worker's life.
Records reach the workers in Arrow batches (`mapInArrow`) as JSON text: a JSONL line as it is,
a CSV or Parquet row as Spark's `to_json` writes it. Rows are numbered as they are read, so a
rejected record can be found in its file. The enriched rows are written as Parquet partitioned
by creation date, the rejected ones with their reason beside them; the input never passes
through the driver.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyspark import Broadcast
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from adapters.spark.arrow import ROWS, rows_batch
from adapters.spark.records import (
    ENRICHED_COLUMNS,
    ERROR_COLUMNS,
    MALFORMED_CSV,
    BatchSummary,
    RecordMapper,
    error_row,
    errors_location,
    input_format,
)
from adapters.spark.session import delete_path, path_exists
from core.artifact import CHECKSUMS_FILE
from core.enricher import EnrichOptions, load_enricher
from core.errors import ArtifactError, TicketEnrichError
from core.schema import Limits
from training.spark_csv import read_csv

ArtifactFiles = dict[str, bytes]
_CORRUPT = "_corrupt_record"
# Spark's monotonically increasing id: the partition index above bit 33, the position below.
_POSITION_BITS = 33


def read_artifact_files(spark: SparkSession, model: str) -> ArtifactFiles:
    """The artifact's files (those its checksums name, and the checksums), read by the driver:
    directly from a local directory, through Spark's file sources from a URL."""
    if "://" not in model:
        root = Path(model)
        if not (root / CHECKSUMS_FILE).is_file():
            raise ArtifactError(f"no model artifact at {model}: it has no {CHECKSUMS_FILE}")
        files = {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()}
    else:
        rows = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "false")
            .load(model.rstrip("/") + "/*")
            .select("path", "content")
            .collect()
        )
        files = {r["path"].rstrip("/").rsplit("/", 1)[-1]: bytes(r["content"]) for r in rows}
    if CHECKSUMS_FILE not in files:
        raise ArtifactError(f"no model artifact at {model}: it has no {CHECKSUMS_FILE}")
    wanted = {CHECKSUMS_FILE, *json.loads(files[CHECKSUMS_FILE])}
    return {name: data for name, data in files.items() if name in wanted}


def artifact_key(files: ArtifactFiles) -> str:
    """A short name for one artifact's contents (its checksums file's hash)."""
    return hashlib.sha256(files[CHECKSUMS_FILE]).hexdigest()[:16]


def materialize(files: ArtifactFiles, root: Path | None = None) -> Path:
    """The artifact as a local directory, written once per machine (renamed into place, so
    concurrent workers never see it half-written)."""
    base = root or Path(tempfile.gettempdir())
    target = base / f"ticket-enrich-model-{artifact_key(files)}"
    if (target / CHECKSUMS_FILE).is_file():
        return target
    staging = Path(tempfile.mkdtemp(prefix=".ticket-enrich-model-", dir=base))
    for name, data in files.items():
        (staging / name).write_bytes(data)
    try:
        os.rename(staging, target)
    except OSError:  # another worker got there first
        for child in staging.iterdir():
            child.unlink()
        staging.rmdir()
    return target


# One mapper per Python worker process and artifact/settings, loaded on its first batch.
_MAPPERS: dict[tuple[str, Limits, EnrichOptions, date], RecordMapper] = {}


def _mapper(
    shipped: Broadcast[ArtifactFiles], key: str, limits: Limits, options: EnrichOptions, day: date
) -> RecordMapper:
    cache_key = (key, limits, options, day)
    mapper = _MAPPERS.get(cache_key)
    if mapper is None:
        directory = materialize(shipped.value)
        mapper = RecordMapper(load_enricher(directory, limits=limits, options=options), day)
        _MAPPERS[cache_key] = mapper
    return mapper


def _enrich_batches(
    shipped: Broadcast[ArtifactFiles], key: str, limits: Limits, options: EnrichOptions, day: date
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def enrich(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        mapper = _mapper(shipped, key, limits, options, day)
        for batch in batches:
            columns = batch.to_pydict()
            rows: list[dict[str, Any]] = []
            for row, source, text, malformed in zip(
                columns["row"],
                columns["source"],
                columns["text"],
                columns["malformed"],
                strict=True,
            ):
                if malformed is not None:
                    rows.append(error_row(row, source, MALFORMED_CSV, malformed))
                elif text is not None and text.strip():
                    rows.append(mapper.map_text(row, source, text))
            yield rows_batch(rows)

    return enrich


def _read(spark: SparkSession, location: str, fmt: str) -> DataFrame:
    """The input as (text, malformed, source): one JSON text per record."""
    # Hadoop writes `file:/x`; the local engine, like any URI, `file:///x`.
    source = F.regexp_replace(F.col("_metadata.file_path"), "^file:/(?!/)", "file:///").alias(
        "file_path"
    )
    if fmt == "jsonl":
        df = spark.read.text(location)
        return df.select(
            F.col("value").alias("text"), F.lit(None).cast("string").alias("malformed"), source
        )
    if fmt == "csv":
        df, record = read_csv(spark, location, corrupt_column=_CORRUPT)
        return df.select(
            F.to_json(record).alias("text"),
            F.col(_CORRUPT).alias("malformed"),
            source,
        )
    df = spark.read.parquet(location)
    record = F.struct(*[F.col(f"`{c}`") for c in df.columns])
    return df.select(
        F.to_json(record, {"timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"}).alias("text"),
        F.lit(None).cast("string").alias("malformed"),
        source,
    )


def _numbered(spark: SparkSession, df: DataFrame) -> DataFrame:
    """Each record's position in the input as read, from 1: per partition, its position there
    plus the sizes of the partitions before it (one counting pass over the input). For one
    file, that is its line (JSONL) or record (CSV) number."""
    df = df.withColumn("_id", F.monotonically_increasing_id())
    part = F.shiftright(F.col("_id"), _POSITION_BITS)
    counts = sorted(
        (int(r["part"]), int(r["n"]))
        for r in df.groupBy(part.alias("part")).agg(F.count(F.lit(1)).alias("n")).collect()
    )
    offsets, total = [], 0
    for p, n in counts:
        offsets.append((p, total))
        total += n
    table = spark.createDataFrame(offsets or [(0, 0)], "part long, offset long")
    position = F.col("_id").bitwiseAND((1 << _POSITION_BITS) - 1)
    return (
        df.withColumn("part", part)
        .join(F.broadcast(table), "part")
        .select(
            (F.col("offset") + position + 1).alias("row"),
            F.col("file_path").alias("source"),
            "text",
            "malformed",
        )
    )


def run_spark_batch(
    spark: SparkSession,
    model: str,
    input_location: str,
    output: str,
    *,
    fmt: str | None = None,
    errors: str | None = None,
    load_date: date,
    limits: Limits | None = None,
    options: EnrichOptions | None = None,
    partitions: int | None = None,
    overwrite: bool = False,
) -> BatchSummary:
    """Enrich INPUT into a Parquet dataset at OUTPUT partitioned by `created_date`, rejected
    records into their own Parquet dataset; one bad record never fails the job."""
    fmt = input_format(input_location, fmt)
    errors = errors_location(output, errors)
    out = output.rstrip("/")
    targets = [out] if errors.startswith(out + "/") else [out, errors]
    existing = [t for t in targets if path_exists(spark, t)]
    if existing and not overwrite:
        raise TicketEnrichError(f"{existing[0]} exists; pass --overwrite to replace it")
    limits, options = limits or Limits(), options or EnrichOptions()
    files = read_artifact_files(spark, model)
    # Fail here, once, on a bad artifact, rather than in every task.
    load_enricher(materialize(files), limits=limits, options=options)
    key = artifact_key(files)
    for target in existing:  # replaced only once the artifact is known to load
        delete_path(spark, target)
    shipped = spark.sparkContext.broadcast(files)

    records = _numbered(spark, _read(spark, input_location, fmt))
    parallelism = spark.sparkContext.defaultParallelism
    wanted = partitions or max(records.rdd.getNumPartitions(), 2 * parallelism)
    if wanted != records.rdd.getNumPartitions():
        records = records.repartition(wanted)
    # INT96, Spark's default, reads back as a time without zone elsewhere; this is UTC.
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    mapped = records.mapInArrow(
        _enrich_batches(shipped, key, limits, options, load_date), from_arrow_schema(ROWS)
    )
    # Enrichment runs once: its rows are staged as Parquet inside OUTPUT (a name starting with
    # "_", which readers skip), and both outputs and the counts read from there. A disk-persisted
    # cache ran a 1 GB local[2] driver out of heap on a million tickets: Spark serializes cached
    # column batches with Java serialization, whose stream keeps the last 100 objects reachable,
    # so a task held most of its partition's batches on the heap while writing them to disk.
    staging = f"{out}/_staging-{uuid.uuid4().hex[:12]}"
    try:
        mapped.write.parquet(staging)
        staged = spark.read.parquet(staging)
        enriched = staged.filter(F.col("reason").isNull()).select(
            *[
                F.timestamp_micros("created_at_us").alias("created_at")
                if c == "created_at_us"
                else F.col(c)
                for c in ENRICHED_COLUMNS
            ]
        )
        # The output directory holds only the staging directory so far: append beside it.
        enriched.repartition("created_date").write.mode("append").partitionBy(
            "created_date"
        ).parquet(out)
        rejected = staged.filter(F.col("reason").isNotNull()).select(*ERROR_COLUMNS)
        rejected.repartition(1).write.parquet(errors)
        counts = {
            bool(r["ok"]): int(r["n"])
            for r in staged.groupBy(F.col("reason").isNull().alias("ok"))
            .agg(F.count(F.lit(1)).alias("n"))
            .collect()
        }
    except AnalysisException as exc:
        if "PATH_ALREADY_EXISTS" in str(exc) or "already exists" in str(exc):
            raise TicketEnrichError(
                f"{output} was created while the job ran; pass --overwrite to replace it"
            ) from None
        raise
    finally:
        delete_path(spark, staging)
        shipped.unpersist()
    return BatchSummary(counts.get(True, 0), counts.get(False, 0), output, errors)
