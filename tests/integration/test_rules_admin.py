"""The priority rules edited through the API of the real local service (`ticket-enrich serve` in
its own process): in force at once and after a restart, an invalid document refused naming the
rule with the previous rules kept, an invalid file on disk refused while the service serves on,
a file written by another process picked up, the history and a restore, and admins only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.local.auth import CSRF_COOKIE, hash_password
from core.rules import RULES_FORMAT
from tests.support import serving, wait_until

API_KEY = "r" * 32
ADMIN, AGENT, PASSWORD = "boss", "ann", "correct horse"
ZEBRA_TICKET = {"subject": "zebra stampede in the data centre", "description": "please help"}
ZEBRA = {"name": "zebra", "minimum": "urgent", "phrases": ["zebra stampede"]}
LLAMA = {"name": "llama", "minimum": "urgent", "phrases": ["llama parade"]}


def _spec(*rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": RULES_FORMAT,
        "version": "mine",
        "order": ["normal", "urgent"],
        "rules": list(rules),
    }


@pytest.fixture
def settings(small_model_dir: Path, tmp_path: Path) -> dict[str, str]:
    password = hash_password(PASSWORD)
    return {
        "model_dir": str(small_model_dir),
        "models_dir": str(tmp_path / "models"),
        "database": str(tmp_path / "tickets.sqlite3"),
        "agents": json.dumps({AGENT: password, ADMIN: password}),
        "admins": json.dumps([ADMIN]),
        "api_key": API_KEY,
    }


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return tmp_path / "models" / "registry" / "rules"


@pytest.fixture
def api(settings: dict[str, str], tmp_path: Path) -> Iterator[httpx.Client]:
    with (
        serving(settings, tmp_path / "service.log") as url,
        httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": API_KEY}) as client,
    ):
        yield client


def _priority(api: httpx.Client, ticket: dict[str, Any] = ZEBRA_TICKET) -> dict[str, Any]:
    answer = api.post("/tickets", json=ticket)
    assert answer.status_code == 201, answer.text
    priority: dict[str, Any] = answer.json()["enrichment"]["priority"]
    return priority


def test_rules_put_by_an_admin_apply_at_once_and_survive_a_restart(
    settings: dict[str, str], tmp_path: Path, rules_dir: Path
) -> None:
    with (
        serving(settings, tmp_path / "first.log") as url,
        httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": API_KEY}) as api,
    ):
        before = api.get("/rules").json()
        assert (before["version"], before["source"], before["rules"]) == (0, "model", None)
        assert "rules" not in _priority(api)

        put = api.put("/rules", json=_spec(ZEBRA))
        assert put.status_code == 200, put.text
        assert (put.json()["version"], put.json()["source"]) == (1, "edited")
        priority = _priority(api)
        assert priority["label"] == "urgent"
        assert priority["rules"] == ["zebra"]
    assert (rules_dir / "rules-000001.json").is_file()

    with (
        serving(settings, tmp_path / "second.log") as url,
        httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": API_KEY}) as api,
    ):
        after = api.get("/rules").json()
        assert after["version"] == 1
        assert [r["name"] for r in after["rules"]["rules"]] == ["zebra"]
        assert _priority(api)["rules"] == ["zebra"]


@pytest.mark.parametrize(
    ("bad", "rule", "says"),
    [
        ({"name": "broken", "minimum": "urgent", "patterns": ["(unclosed"]}, "broken", "regular"),
        ({"name": "strange", "minimum": "critical", "phrases": ["x"]}, "strange", "unknown label"),
        (ZEBRA, "zebra", "used twice"),
    ],
)
def test_an_invalid_put_is_422_naming_the_rule_and_the_previous_rules_stay(
    api: httpx.Client, rules_dir: Path, bad: dict[str, Any], rule: str, says: str
) -> None:
    assert api.put("/rules", json=_spec(ZEBRA)).status_code == 200
    refused = api.put("/rules", json=_spec(ZEBRA, bad))
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "invalid_rules"
    assert rule in error["message"] and says in error["message"]
    assert error["problems"][0]["field"] == f"rules.{rule}"
    assert api.get("/rules").json()["version"] == 1
    assert sorted(p.name for p in rules_dir.glob("rules-*.json")) == ["rules-000001.json"]
    assert _priority(api)["rules"] == ["zebra"]


def test_a_helpdesks_long_rule_set_is_taken_and_one_past_the_limit_is_413(
    api: httpx.Client,
) -> None:
    # Far past the 16 KiB other forms may send: a rule set with long phrase lists.
    phrases = [f"zebra stampede number {i} in hall {i % 7}" for i in range(2000)]
    long = _spec({"name": "zebra", "minimum": "urgent", "phrases": ["zebra stampede", *phrases]})
    assert len(json.dumps(long)) > 64 * 1024
    assert api.put("/rules", json=long).status_code == 200
    assert _priority(api)["rules"] == ["zebra"]

    huge = _spec({"name": "llama", "minimum": "urgent", "phrases": ["x" * 1000] * 300})
    refused = api.put("/rules", json=huge)
    assert refused.status_code == 413
    error = refused.json()["error"]
    assert error["code"] == "ticket_too_large"
    assert error["problems"] == [{"field": "rules", "message": "is over the 262144-byte limit"}]
    assert api.get("/rules").json()["version"] == 1


def test_an_invalid_file_on_disk_is_refused_and_the_service_keeps_its_rules(
    api: httpx.Client, rules_dir: Path, tmp_path: Path
) -> None:
    assert api.put("/rules", json=_spec(ZEBRA)).status_code == 200
    # Another process (an operator, a second worker) writes a version that does not validate.
    (rules_dir / "rules-000002.json").write_text(
        json.dumps(_spec(ZEBRA, {"name": "typo", "minimum": "urgent", "patterns": ["[a-"]}))
    )

    def refused() -> dict[str, Any] | None:
        found: dict[str, Any] | None = api.get("/rules").json()["refused"]
        return found

    refusal = wait_until(refused, "the invalid rules file to be refused")
    assert (refusal["version"], refusal["rule"]) == (2, "typo")
    assert api.get("/rules").json()["version"] == 1
    assert _priority(api)["rules"] == ["zebra"]
    log = (tmp_path / "service.log").read_text()
    assert "rules file rules-000002.json refused" in log and "rule 'typo'" in log

    # A valid version written on disk is in force without a restart.
    (rules_dir / "rules-000003.json").write_text(json.dumps(_spec(LLAMA)))
    wait_until(lambda: api.get("/rules").json()["version"] == 3, "version 3 to be in force")
    llama = {"subject": "a llama parade blocks the office", "description": "help"}
    assert _priority(api, llama)["rules"] == ["llama"]
    assert "rules" not in _priority(api)


def test_the_history_says_who_changed_what_and_an_earlier_version_is_restored(
    api: httpx.Client,
) -> None:
    assert api.put("/rules", json=_spec(ZEBRA)).status_code == 200
    assert api.put("/rules", json=_spec(LLAMA, {**ZEBRA, "phrases": ["zebras"]})).status_code == 200
    history = api.get("/rules/history").json()
    assert history["in_force"] == 2
    newest, first, model = history["versions"]
    assert (newest["version"], newest["by"], newest["by_kind"], newest["previous"]) == (
        2,
        "api",
        "api",
        1,
    )
    assert newest["changes"]["added"] == ["llama"]
    assert newest["changes"]["changed"] == ["zebra"]
    assert first["changes"]["added"] == ["zebra"] and first["previous"] == 0
    assert model["version"] == 0 and model["action"] == "model"
    assert newest["at"] and newest["in_force"] and not first["in_force"]

    restored = api.post("/rules/restore/1")
    assert restored.status_code == 200, restored.text
    assert restored.json()["version"] == 3
    assert _priority(api)["rules"] == ["zebra"]
    entry = api.get("/rules/history").json()["versions"][0]
    assert (entry["action"], entry["restored_from"], entry["previous"]) == ("restore", 1, 2)
    assert entry["changes"]["removed"] == ["llama"]
    assert api.post("/rules/restore/99").status_code == 404
    # The small model ships no rules of its own to go back to.
    assert api.post("/rules/restore/0").status_code == 422


def _signed_in(base_url: str, name: str) -> httpx.Client:
    answer = httpx.post(
        f"{base_url}/agent/login", json={"name": name, "password": PASSWORD}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return httpx.Client(
        base_url=base_url,
        cookies=answer.cookies,
        timeout=30,
        headers={"x-csrf-token": answer.cookies[CSRF_COOKIE], "origin": base_url},
    )


def test_only_admins_see_or_change_the_rules(api: httpx.Client) -> None:
    base_url = str(api.base_url).rstrip("/")
    with httpx.Client(base_url=base_url, timeout=30) as anonymous:
        assert anonymous.get("/rules").status_code == 401
        assert anonymous.put("/rules", json=_spec(ZEBRA)).status_code == 401
    with _signed_in(base_url, AGENT) as agent:
        assert agent.get("/agent/queue").status_code == 200
        for answer in (
            agent.get("/rules"),
            agent.put("/rules", json=_spec(ZEBRA)),
            agent.get("/rules/history"),
            agent.post("/rules/restore/0"),
        ):
            assert answer.status_code == 403
            assert answer.json()["error"]["code"] == "not_admin"
    assert api.get("/rules").json()["version"] == 0
    with _signed_in(base_url, ADMIN) as admin:
        put = admin.put("/rules", json=_spec(ZEBRA))
        assert put.status_code == 200, put.text
        assert admin.get("/rules/history").json()["versions"][0]["by"] == ADMIN
