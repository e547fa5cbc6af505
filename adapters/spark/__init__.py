"""Batch enrichment of ticket history on Apache Spark, and the same job in one process.

`records` turns one input record into one output row (enriched or rejected) with the core and
nothing else; `local` streams a file through it in this process; `job` runs it on Spark, each
executor loading the artifact once with `core.load_enricher`.
"""
