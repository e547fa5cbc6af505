"""The committed bad-input corpus against the real local service: every case is answered with a
4xx that says what is wrong (never a 5xx, never a traceback in the log), and the service goes on
answering valid tickets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ROOT, serving_every_route

CORPUS = ROOT / "tests" / "corpus" / "bad_inputs.jsonl"
API_KEY = "k" * 32


def _cases() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def service(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("bad-input")
    with serving_every_route(model_dir, root, API_KEY) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def ticket_id(service: str) -> str:
    response = httpx.post(
        f"{service}/tickets",
        json={"subject": "Disk full on node 7", "description": "writes fail"},
        headers={"X-API-Key": API_KEY},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _body(case: dict[str, Any]) -> bytes | Iterator[bytes] | None:
    if "raw_hex" in case:
        return bytes.fromhex(case["raw_hex"])
    if "body" in case:
        return str(case["body"]).encode("utf-8")
    if "repeat" in case:
        spec = case["repeat"]

        def chunks() -> Iterator[bytes]:
            yield spec["head"].encode()
            chunk = spec["chunk"].encode()
            for _ in range(spec["times"]):
                yield chunk
            yield spec["tail"].encode()

        return chunks()
    return None


def test_the_corpus_covers_every_case_the_outside_test_found() -> None:
    names = {case["name"] for case in _cases()}
    for needed in (
        "nested arrays 1000 deep on /tickets",
        "nested arrays 1000 deep on /customer/tickets",
        "nested arrays 1000 deep on /agent/login",
        "an integer of 5000 digits in custom_fields",
        "a lone surrogate as a custom_fields key",
        "a lone surrogate as the feedback's agent",
        "an offset past SQLite's integers",
        "a Last-Event-ID of 5000 digits",
        "a 100 MB login body",
        "a 20 MB agent name in feedback",
    ):
        assert needed in names


@pytest.mark.parametrize("case", _cases(), ids=lambda case: str(case["name"]))
def test_bad_input_is_a_clear_4xx(service: str, ticket_id: str, case: dict[str, Any]) -> None:
    headers: dict[str, bytes] = {
        name: value.encode("utf-8") for name, value in case.get("headers", {}).items()
    }
    if case["auth"] == "key":
        headers["X-API-Key"] = API_KEY.encode()
    if "content_type" in case:
        headers["Content-Type"] = case["content_type"].encode()
    url = service + case["path"].replace("{ticket}", ticket_id)
    with (
        httpx.Client(timeout=60) as client,
        client.stream(case["method"], url, headers=headers, content=_body(case)) as response,
    ):
        status = response.status_code
        if status == 200 and response.headers.get("content-type", "").startswith(
            "text/event-stream"
        ):
            return  # a bad Last-Event-ID falls back to the newest change: the stream opens
        text = response.read().decode("utf-8")
    if status in case.get("also_fine", ()):
        return
    assert 400 <= status < 500, (status, text[:500])
    error = json.loads(text)["error"]
    assert error["code"] and error["message"]


def test_the_service_still_takes_tickets_after_the_corpus(service: str) -> None:
    for case in _cases():
        assert case["name"]  # the corpus ran before this test in the same module
    response = httpx.post(
        f"{service}/tickets",
        json={"subject": "Cannot log in", "description": "password reset mail never arrives"},
        headers={"X-API-Key": API_KEY},
        timeout=30,
    )
    assert response.status_code == 201
    assert httpx.get(f"{service}/healthz", timeout=10).status_code == 200
