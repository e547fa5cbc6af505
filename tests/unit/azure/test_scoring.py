"""The scoring logic behind score.py, with an in-memory scoring log, and the Blob scoring log
with a container double (no network)."""

from __future__ import annotations

import importlib.util
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.azure.scoring import Scorer, request_id_from
from adapters.azure.scoring_log import BlobScoringLog, blob_name
from adapters.azure.settings import AzureSettings
from core import Enricher, load_enricher
from core.enricher import EnrichOptions
from tests.support import bad_ticket_bodies

TICKET = {
    "subject": "Production outage, cluster down",
    "description": "Crash on start; reach me at ann@example.com or +44 20 7946 0958",
    "requester": {"email": "ann@example.com", "name": "Ann", "tier": "gold"},
    "external_id": "AZ-1",
}


class MemoryScoringLog:
    def __init__(self) -> None:
        self.requests: list[tuple[str, list[dict[str, Any]]]] = []

    def record(self, request_id: str, lines: Any) -> None:
        self.requests.append((request_id, list(lines)))

    def flush(self, timeout_s: float) -> bool:
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        pass


@pytest.fixture(scope="module")
def enricher(small_model_dir: Path) -> Enricher:
    return load_enricher(small_model_dir)


def _scorer(enricher: Enricher, log: MemoryScoringLog, **limits: int) -> Scorer:
    return Scorer(
        enricher,
        log,
        max_body_bytes=limits.get("max_body_bytes", 64 * 1024),
        max_batch=limits.get("max_batch", 3),
    )


def test_one_ticket_is_enriched_and_logged_redacted(enricher: Enricher) -> None:
    log = MemoryScoringLog()
    result = _scorer(enricher, log).score(json.dumps(TICKET), "req-1")
    assert result.status == 200
    assert result.body["ticket"]["external_id"] == "AZ-1"
    ((request_id, (line,)),) = log.requests
    assert request_id == "req-1" and line["request_id"] == "req-1"
    assert line["model"]["version"] == enricher.model_version
    assert line["prediction"]["priority"] == result.body["enrichment"]["priority"]
    assert "ann@example.com" not in json.dumps(line) and "7946" not in json.dumps(line)
    assert line["ticket"]["requester"] == {"tier": "gold"}


def test_logs_are_redacted_even_when_responses_are_not(small_model_dir: Path) -> None:
    plain = load_enricher(small_model_dir, options=EnrichOptions(redact=False))
    log = MemoryScoringLog()
    result = _scorer(plain, log).score(json.dumps(TICKET), "req-2")
    assert "ann@example.com" in result.body["ticket"]["description"]
    ((_, (line,)),) = log.requests
    assert "ann@example.com" not in line["ticket"]["description"]


def test_a_list_returns_a_list_in_order(enricher: Enricher) -> None:
    log = MemoryScoringLog()
    tickets = [{"subject": "slow upgrade"}, {"subject": "data loss", "external_id": "B"}]
    result = _scorer(enricher, log).score(json.dumps(tickets))
    assert result.status == 200
    assert [r["ticket"]["subject"] for r in result.body] == ["slow upgrade", "data loss"]
    ((request_id, lines),) = log.requests
    assert request_id and len(lines) == 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ('{"subject": ', 400, "body"),
        ("42", 400, "body"),
        ("[]", 400, "body"),
        ('[{"subject": "a"}, 7]', 400, "[1]"),
        ('{"description": ""}', 400, "ticket"),
        ('{"subject": "a", "colour": "red"}', 400, "colour"),
        ('[{"subject": "a"}, {"subject": "b", "channel": 5}]', 400, "[1].channel"),
        (json.dumps([{"subject": "a"}] * 4), 413, "body"),
        (json.dumps({"subject": "a", "description": "x" * 70_000}), 413, "body"),
    ],
)
def test_invalid_input_is_4xx_naming_the_field_and_not_logged(
    enricher: Enricher, body: str, status: int, field: str
) -> None:
    log = MemoryScoringLog()
    result = _scorer(enricher, log).score(body, "req-bad")
    assert result.status == status
    assert field in [p["field"] for p in result.body["error"]["problems"]]
    assert log.requests == []


def test_request_id_from_headers() -> None:
    assert request_id_from({"X-Request-Id": "a", "x-ms-client-request-id": "b"}) == "a"
    assert request_id_from({"x-ms-client-request-id": "b"}) == "b"
    assert request_id_from({"x-request-id": "  "}) is None
    assert request_id_from(None) is None


def test_model_dir_is_found_below_azureml_model_dir(small_model_dir: Path, tmp_path: Path) -> None:
    mounted = tmp_path / "ticket-priority" / "3"
    (mounted / "artifact").mkdir(parents=True)
    (mounted / "artifact" / "checksums.json").write_text("{}")
    assert AzureSettings(azureml_model_dir=mounted).scoring_model_dir == mounted / "artifact"
    assert AzureSettings(azureml_model_dir=small_model_dir).scoring_model_dir == small_model_dir


def test_score_py_keeps_the_init_run_contract(
    small_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(small_model_dir))
    path = Path(__file__).resolve().parents[3] / "adapters" / "azure" / "score.py"
    spec = importlib.util.spec_from_file_location("entry_module", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # as the inference server loads it: a file, not a module
    module.init()
    out = module.run(json.dumps(TICKET), {"x-request-id": "r-9"})
    assert out["enrichment"]["model"]["version"]
    module._scorer.cache_clear()


class FakeBlob:
    def __init__(self, container: FakeContainer, name: str) -> None:
        self.container, self.name = container, name

    def create_append_blob(self, **kwargs: Any) -> None:
        self.container.blobs.setdefault(self.name, b"")

    def append_block(self, data: bytes) -> None:
        if self.container.fail:
            raise ConnectionError("storage is down")
        self.container.blobs[self.name] += data


class FakeContainer:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.fail = False

    def create_container(self) -> None:
        pass

    def get_blob_client(self, name: str) -> FakeBlob:
        return FakeBlob(self, name)


def test_blob_log_appends_hourly_jsonl_and_counts_failures() -> None:
    container = FakeContainer()
    at = datetime(2026, 11, 23, 14, 5, tzinfo=UTC)
    log = BlobScoringLog(container, instance="host-1", clock=lambda: at)  # type: ignore[arg-type]
    log.record("r1", [{"n": 1}, {"n": 2}])
    assert log.flush(10)
    name = "enrichments/date=2026-11-23/hour=14/host-1.jsonl"
    assert [json.loads(x) for x in container.blobs[name].splitlines()] == [{"n": 1}, {"n": 2}]

    container.fail = True
    log.record("r2", [{"n": 3}])  # never raises
    assert log.flush(10)
    assert log.stats.as_dict() == {"written": 2, "failed": 1, "dropped": 0}
    log.close()


def test_blob_log_drops_and_counts_when_the_queue_is_full() -> None:
    container = FakeContainer()
    gate = threading.Event()
    original = FakeBlob.append_block

    def slow(self: FakeBlob, data: bytes) -> None:
        gate.wait(10)
        original(self, data)

    log = BlobScoringLog(container, instance="h", queue_max=1)  # type: ignore[arg-type]
    FakeBlob.append_block = slow  # type: ignore[method-assign]
    try:
        for i in range(4):
            log.record(f"r{i}", [{"n": i}])
        assert log.stats.dropped >= 2
        gate.set()
        assert log.flush(10)
    finally:
        FakeBlob.append_block = original  # type: ignore[method-assign]
    assert log.stats.written + log.stats.dropped == 4
    log.close()


def test_blob_name_is_utc_hourly() -> None:
    from datetime import timedelta, timezone

    at = datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert blob_name("p/", at, "i") == "p/date=2025-12-31/hour=22/i.jsonl"


@pytest.mark.parametrize(
    ("name", "body"), bad_ticket_bodies(), ids=[n for n, _ in bad_ticket_bodies()]
)
def test_the_bad_input_corpus_is_refused_never_a_fault(
    enricher: Enricher, name: str, body: bytes
) -> None:
    log = MemoryScoringLog()
    result = _scorer(enricher, log).score(body, "req-corpus")
    assert 400 <= result.status < 500, (name, result.status, result.body)
    assert result.body["error"]["problems"]
    json.dumps(result.body).encode("utf-8")  # the answer itself can be sent
    assert log.requests == []
