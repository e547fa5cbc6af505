"""The requester's identity leaves the real local service minimised: a ticket naming its
requester is stored whole, while the helpdesk (a Freshdesk on loopback) and the service's log see
only what `requester_sharing` allows."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from core.identity import pseudonym
from tests.integration.helpdesk_fakes import FakeFreshdesk
from tests.integration.helpdesk_fakes import serving as serving_fake
from tests.support import serving, wait_until

API_KEY = "r" * 32
PSEUDONYM_KEY = "pseudonym-key-for-tests"
DEFAULT_REQUESTER = "support-inbox@example.org"
REQUESTER = {"email": "Ann.Lee@example.com", "name": "Ann Lee", "tier": "gold"}


def _settings(model_dir: Path, root: Path, fake: FakeFreshdesk, sharing: str) -> dict[str, str]:
    return {
        "model_dir": str(model_dir),
        "database": str(root / f"{sharing}.sqlite3"),
        "api_key": API_KEY,
        "deliver": "true",
        "helpdesk": "freshdesk",
        "helpdesk_url": fake.base_url,
        "helpdesk_token": FakeFreshdesk.API_KEY,
        "helpdesk_default_requester": DEFAULT_REQUESTER,
        "requester_sharing": sharing,
        "requester_pseudonym_key": PSEUDONYM_KEY,
        "delivery_poll_interval_s": "0.1",
        "customer_rate_per_hour": "0",
    }


@pytest.mark.parametrize(
    ("sharing", "email", "name"),
    [
        ("full", REQUESTER["email"], REQUESTER["name"]),
        ("contact", REQUESTER["email"], None),
        ("pseudonym", DEFAULT_REQUESTER, None),
        ("none", DEFAULT_REQUESTER, None),
    ],
)
def test_the_helpdesk_sees_what_the_setting_allows(
    small_model_dir: Path,
    tmp_path: Path,
    sharing: str,
    email: str,
    name: str | None,
) -> None:
    ticket = {
        "subject": "Cannot print invoices",
        "description": "The printer on floor 2 jams on every invoice.",
        "requester": REQUESTER,
    }
    with serving_fake(FakeFreshdesk()) as fake:
        settings = _settings(small_model_dir, tmp_path, fake, sharing)
        log = tmp_path / "service.log"
        with serving(settings, log) as base_url:
            api = httpx.Client(base_url=base_url, headers={"X-API-Key": API_KEY}, timeout=30)
            created = api.post("/tickets", json=ticket)
            assert created.status_code == 201, created.text
            # What the service keeps is what it was given: an agent still sees who wrote.
            stored = api.get(f"/tickets/{created.json()['id']}").json()
            assert stored["ticket"]["requester"] == REQUESTER
            sent = wait_until(fake.creates, "the delivery to Freshdesk")[0].body
            api.close()
        text = log.read_text(errors="replace")
    assert sent.get("email") == email
    assert sent.get("name") == name
    if sharing != "full":
        # Neither the name nor (unless it is the contact) the address is anywhere in the body.
        assert REQUESTER["name"] not in str(sent)
    if sharing in ("pseudonym", "none"):
        assert REQUESTER["email"].lower() not in str(sent).lower()
        assert pseudonym(REQUESTER["email"], PSEUDONYM_KEY.encode()) not in str(sent)
    assert REQUESTER["email"] not in text and REQUESTER["name"] not in text
