"""Nothing is lost: eight concurrent clients send the bad-input corpus mixed with valid tickets
(each retried once with its Idempotency-Key) to the real local service while the helpdesk fails
its first answers; every valid ticket is stored once and delivered once, the service stays up."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.integration.azure.webhook_receiver import SECRET, receiving
from tests.support import ROOT, serving, wait_until

API_KEY = "k" * 32
CLIENTS = 8
TICKETS_PER_CLIENT = 12


def _small_bad_inputs() -> list[dict[str, Any]]:
    corpus = ROOT / "tests" / "corpus" / "bad_inputs.jsonl"
    cases = [json.loads(line) for line in corpus.read_text().splitlines() if line.strip()]
    # The multi-megabyte bodies and the event stream are covered by the corpus test itself.
    return [c for c in cases if "repeat" not in c and c["path"] != "/agent/events"]


def _headers(case: dict[str, Any]) -> dict[str, bytes]:
    headers = {k: v.encode("utf-8") for k, v in case.get("headers", {}).items()}
    if case["auth"] == "key":
        headers["X-API-Key"] = API_KEY.encode()
    if "content_type" in case:
        headers["Content-Type"] = case["content_type"].encode()
    return headers


def test_valid_tickets_survive_bad_input_retries_and_a_helpdesk_outage(
    small_model_dir: Path, tmp_path: Path
) -> None:
    bad_inputs = _small_bad_inputs()
    statuses: list[int] = []
    stored: dict[str, str] = {}
    lock = threading.Lock()

    with receiving() as helpdesk:
        helpdesk.fail_next.extend([503] * 6)
        settings = {
            "model_dir": str(small_model_dir),
            "database": str(tmp_path / "tickets.sqlite3"),
            "api_key": API_KEY,
            "deliver": "true",
            "helpdesk_webhook_url": helpdesk.url,
            "helpdesk_webhook_secret": SECRET,
            "delivery_poll_interval_s": "0.1",
            "delivery_retry_base_s": "0.1",
            "delivery_retry_cap_s": "0.5",
            "customer_rate_per_hour": "0",
            "login_rate_per_hour": "0",
        }
        with serving(settings, tmp_path / "service.log") as base_url:

            def client(number: int) -> None:
                with httpx.Client(base_url=base_url, timeout=60) as http:
                    for i in range(TICKETS_PER_CLIENT):
                        key = str(uuid.uuid4())
                        ticket = {
                            "subject": f"Client {number} ticket {i}: export fails",
                            "description": "the nightly export stops with an error",
                        }
                        headers = {"X-API-Key": API_KEY, "Idempotency-Key": key}
                        bad = bad_inputs[(number * TICKETS_PER_CLIENT + i) % len(bad_inputs)]
                        answers = [http.post("/tickets", json=ticket, headers=headers)]
                        answers.append(
                            http.request(
                                bad["method"],
                                bad["path"].replace("{ticket}", "missing"),
                                content=bad.get("body", "").encode()
                                if "raw_hex" not in bad
                                else bytes.fromhex(bad["raw_hex"]),
                                headers=_headers(bad),
                            )
                        )
                        # The client did not see the first answer: it retries with the key.
                        answers.append(http.post("/tickets", json=ticket, headers=headers))
                        with lock:
                            statuses.extend(a.status_code for a in answers)
                            first, retry = answers[0], answers[2]
                            assert first.status_code == retry.status_code == 201
                            assert first.json()["id"] == retry.json()["id"]
                            stored[key] = first.json()["id"]

            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(client, range(CLIENTS)))

            expected = CLIENTS * TICKETS_PER_CLIENT
            assert len(set(stored.values())) == expected
            assert max(statuses) < 500, sorted(set(statuses))
            wait_until(lambda: len(helpdesk.created) >= expected, "every ticket delivered")
            with httpx.Client(base_url=base_url, headers={"X-API-Key": API_KEY}) as api:
                assert api.get("/tickets", params={"limit": 1}).json()["total"] == expected
                assert api.get("/healthz").status_code == 200
        delivered = [entry["ticket"]["id"] for entry in helpdesk.created.values()]
    # Exactly once: one helpdesk ticket per stored ticket, none twice, none missing.
    assert sorted(delivered) == sorted(stored.values())
    assert helpdesk.bad_signatures == 0
