"""Benchmarks of the ticket-enrichment service: run them all with ``python -m bench``.

Each benchmark is a function taking the shared `bench.context.Context` and returning a JSON-ready
dict; `bench.runner` runs the selected ones and writes `results.json` and `results.md`. Nothing
here asserts on a number: these are measurements, not tests.
"""
