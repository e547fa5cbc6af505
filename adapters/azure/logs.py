"""Structured JSON logs for the Azure adapter (the inference server and Functions collect
stdout/stderr line by line)."""

from __future__ import annotations

import logging

from core.logs import JsonFormatter


def install_json_logging() -> None:
    """Log the `adapters.azure` loggers as JSON lines at INFO, unless the process (or pytest)
    configured handlers for them already."""
    logger = logging.getLogger("adapters.azure")
    if logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
