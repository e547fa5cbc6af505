"""Azure ML scoring script: the `init()` / `run(raw_data)` contract of online endpoints.

The inference server loads this file by path, so it stays thin: it finds the package it belongs
to, builds the scorer once in `init()`, and turns `adapters.azure.scoring.ScoreResult` into the
server's response type. The same contract runs under Azure ML v1 deployments.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Loaded as a file, not imported as a module: make the code root (two levels up) importable.
_CODE_ROOT = str(Path(__file__).resolve().parents[2])
if _CODE_ROOT not in sys.path:
    sys.path.insert(0, _CODE_ROOT)

if TYPE_CHECKING:
    from adapters.azure.scoring import Scorer


@functools.cache
def _scorer() -> Scorer:
    from adapters.azure.logs import install_json_logging
    from adapters.azure.scoring import build_scorer
    from adapters.azure.settings import AzureSettings

    install_json_logging()
    return build_scorer(AzureSettings())


def _response(body: Any, status: int, headers: dict[str, str]) -> Any:
    try:
        from azureml_inference_server_http.api.aml_response import AMLResponse
    except ImportError:  # older servers and v1 images ship it here
        from azureml.contrib.services.aml_response import AMLResponse
    return AMLResponse(body, status, headers, json_str=True)


def init() -> None:
    """Load and verify the model under AZUREML_MODEL_DIR, once per worker."""
    _scorer()


def run(raw_data: str, request_headers: dict[str, str] | None = None) -> Any:
    """One ticket or a list of tickets as JSON in; the enriched ticket(s), or a 4xx naming the
    field, out."""
    from adapters.azure.scoring import request_id_from

    request_id = request_id_from(request_headers) or _server_request_id()
    result = _scorer().score(raw_data, request_id)
    if result.status == 200:
        return result.body
    return _response(result.body, result.status, {"x-request-id": request_id or ""})


def _server_request_id() -> str | None:
    # The server makes up an id when the caller sent none, keeps it on flask.g and returns it in
    # the x-request-id response header: log under that same id.
    try:
        from flask import g

        value = getattr(g, "request_id", None)
    except (ImportError, RuntimeError):
        return None
    return value if isinstance(value, str) and value else None
