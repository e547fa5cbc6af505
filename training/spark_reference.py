"""The drift reference on Spark: `training.reference.build_reference`, computed where the data is.

The vocabulary (the most common words) and each form field's most common values are a
distributed count; the profiles are counted by the workers, one partition at a time, with the
single-machine code (`training.reference.add_profiles`, the enricher serving runs), and only the
partitions' counts, bounded by the vocabularies, are merged on the driver.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from core.drift import Profile, Reference, words
from training.data import Example
from training.reference import (
    FIELD_VALUES,
    VOCABULARY_SIZE,
    add_profiles,
    reference_enricher,
)

_EPOCH = datetime.fromtimestamp(0, UTC)
_VALUES = StructType([StructField("kind", StringType()), StructField("value", StringType())])
_PROFILES = StructType(
    [StructField("inputs", StringType()), StructField("predictions", StringType())]
)


def _doc(subject: str, description: str, fields: str) -> dict[str, Any]:
    return {"subject": subject, "description": description, "custom_fields": json.loads(fields)}


def _example(doc: dict[str, Any], label: str) -> Example:
    # The profiles read the ticket's document only.
    return Example(row=0, doc=doc, label=label, created=_EPOCH, resolved=None, source_id=None)


def _most_common(examples: DataFrame, fields: Sequence[str]) -> dict[str, list[str]]:
    """Each kind's most common values: ``words`` by document frequency, ``field:NAME`` by
    tickets (ties: alphabetical)."""

    def values(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            kinds: list[str] = []
            found: list[str] = []
            for subject, description, raw in zip(
                *(batch.column(c).to_pylist() for c in ("subject", "description", "fields")),
                strict=True,
            ):
                doc = _doc(subject, description, raw)
                for word in words(doc):
                    kinds.append("words")
                    found.append(word)
                for name in fields:
                    value = doc["custom_fields"].get(name)
                    if value is not None and value != "":
                        kinds.append(f"field:{name}")
                        found.append(str(value).strip().lower())
            yield pa.RecordBatch.from_arrays(
                [pa.array(kinds, pa.string()), pa.array(found, pa.string())], ["kind", "value"]
            )

    order = Window.partitionBy("kind").orderBy(F.desc("count"), F.asc("value"))
    limit = F.when(F.col("kind") == "words", VOCABULARY_SIZE).otherwise(FIELD_VALUES)
    top = (
        examples.select("subject", "description", "fields")
        .mapInArrow(values, _VALUES)
        .groupBy("kind", "value")
        .count()
        .withColumn("n", F.row_number().over(order))
        .filter(F.col("n") <= limit)
        .collect()
    )
    out: dict[str, list[str]] = {}
    for r in top:
        out.setdefault(r["kind"], []).append(r["value"])
    return out


def _merge(into: Profile, data: Mapping[str, Any]) -> None:
    part = Profile.from_dict(data)
    into.tickets += part.tickets
    for name, counts in part.counts.items():
        into.counts.setdefault(name, Counter()).update(counts)


def build_reference_spark(
    spark: SparkSession,
    model_spec: Mapping[str, Any],
    weights: bytes,
    metadata: Mapping[str, Any],
    examples: DataFrame,
    fields: Sequence[str],
) -> Reference:
    """The reference of `training.reference.build_reference` over ``examples`` (every window,
    a ``window`` column naming each row's): inputs over all of them, the model's answers over
    the validation and test windows."""
    common = _most_common(examples, fields)
    skeleton = Reference(
        inputs=Profile(),
        predictions=Profile(),
        vocabulary=frozenset(common.get("words", ())),
        fields=tuple(fields),
        field_values={n: frozenset(common.get(f"field:{n}", ())) for n in fields},
    )
    shipped = spark.sparkContext.broadcast(
        (dict(model_spec), weights, dict(metadata), skeleton.to_dict())
    )

    def profile(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        spec, floats, meta, empty = shipped.value
        reference = Reference.from_dict(empty)
        enricher = reference_enricher(spec, floats, meta)
        for batch in batches:
            columns = ("subject", "description", "fields", "label", "window")
            rows = zip(*(batch.column(c).to_pylist() for c in columns), strict=True)
            trained_on, held_out = [], []
            for subject, description, raw, label, window in rows:
                example = _example(_doc(subject, description, raw), label)
                trained_on.append(example)
                if window != "fit":
                    held_out.append(example)
            add_profiles(reference, enricher, trained_on, held_out)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array([json.dumps(reference.inputs.to_dict())], pa.string()),
                pa.array([json.dumps(reference.predictions.to_dict())], pa.string()),
            ],
            ["inputs", "predictions"],
        )

    parts = (
        examples.select("subject", "description", "fields", "label", "window")
        .mapInArrow(profile, _PROFILES)
        .collect()
    )
    for part in parts:
        _merge(skeleton.inputs, json.loads(part["inputs"]))
        _merge(skeleton.predictions, json.loads(part["predictions"]))
    return skeleton
