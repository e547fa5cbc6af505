"""A CSV (or TSV) export read on Spark as Python's csv module reads it, which is how
`ticket-enrich train`, `ticket-enrich enrich` and the local batch engine read it: RFC 4180
quoting, fields that span lines kept as written, an empty field as "".

Records end in "\\n" or "\\r\\n". Spark is told the separator rather than left to detect it:
on a file whose first record ends in "\\r\\n", its detection turns every "\\r\\n" inside a quoted
field into "\\n" (a CRLF export would lose its descriptions' line breaks as written). With
"\\n", the "\\r" of a "\\r\\n" ending stays on the last field of each record and on the header's
last name; both are cut off here. (A quoted last field that itself ends in a lone "\\r" loses
it too: the one difference left from Python's csv module.)
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType


def read_csv(
    spark: SparkSession, location: str, *, sep: str = ",", corrupt_column: str | None = None
) -> tuple[DataFrame, Column]:
    """The file(s) at ``location`` and a struct column of each record's fields, named by the
    header. With ``corrupt_column``, a malformed record's raw text lands in that column
    (Spark's PERMISSIVE mode) instead of failing the read."""
    reader = spark.read.options(
        header="true",
        multiLine="true",
        quote='"',
        escape='"',
        sep=sep,
        mode="PERMISSIVE",
        lineSep="\n",
    )
    header = reader.csv(location).schema
    if corrupt_column is not None:
        schema = StructType([*header.fields, StructField(corrupt_column, StringType())])
        reader = reader.schema(schema).option("columnNameOfCorruptRecord", corrupt_column)
    else:
        reader = reader.schema(header)
    df = reader.csv(location)
    last = len(header.fields) - 1
    fields = []
    for i, column in enumerate(header.fields):
        field = F.coalesce(F.col(f"`{column.name}`"), F.lit(""))
        name = column.name
        if i == last:  # "\\z" is the very end: "$" also matches before a final "\n"
            field, name = F.regexp_replace(field, "\r\\z", ""), name.removesuffix("\r")
        fields.append(field.alias(name))
    return df, F.struct(*fields)
