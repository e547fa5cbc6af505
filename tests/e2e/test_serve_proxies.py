"""`ticket-enrich serve` believes X-Forwarded-For only from the trusted proxies its settings
name: left to its defaults, uvicorn would let any client on the same machine pick the address
the customer form's rate limit counts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import serving


def _statuses(base_url: str, forwarded_for: list[str]) -> list[int]:
    statuses = []
    with httpx.Client(base_url=base_url, timeout=30.0) as customer:
        for address in forwarded_for:
            answer = customer.post(
                "/customer/tickets",
                json={"subject": "Printer on fire"},
                headers={"X-Forwarded-For": address},
            )
            statuses.append(answer.status_code)
    return statuses


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        # No proxy named: the header is ignored, both posts come from 127.0.0.1, one burst.
        (None, [201, 429]),
        # The local proxy named: each forwarded address has its own bucket.
        ('["127.0.0.1"]', [201, 201]),
    ],
)
def test_serve_counts_the_forwarded_address_only_behind_a_trusted_proxy(
    small_model_dir: Path, tmp_path: Path, trusted: str | None, expected: list[int]
) -> None:
    settings = {
        "database": str(tmp_path / "tickets.sqlite3"),
        "model_dir": str(small_model_dir),
        "models_dir": str(tmp_path / "models"),
        "customer_rate_burst": "1",
        "customer_rate_per_hour": "1",
    }
    if trusted is not None:
        settings["trusted_proxies"] = trusted
    with serving(settings, tmp_path / "serve.log") as base_url:
        assert _statuses(base_url, ["198.51.100.1", "198.51.100.2"]) == expected
