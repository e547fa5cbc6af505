"""What of the requester leaves with a ticket, at each sharing level."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from adapters.helpdesk.closed import RTClosed, closed_reader
from adapters.helpdesk.factory import helpdesk_from_settings
from core.errors import TicketEnrichError
from core.identity import (
    RequesterMinimisingClient,
    minimise_requester,
    pseudonym,
    shared_ticket,
)
from core.ports import HelpdeskRef, StoredTicket
from core.settings import Settings

ANN = {"email": "Ann.Lee@Example.com", "name": "Ann Lee", "tier": "gold"}
KEY = b"pseudonym-key-for-tests"


def _stored(requester: object = ANN) -> StoredTicket:
    body = {"subject": "Printer on fire", "description": "Smoke everywhere"}
    if requester is not None:
        body["requester"] = requester  # type: ignore[assignment]
    return StoredTicket("t-1", None, "2026-12-04T00:00:00Z", body, {"priority": {"label": "low"}})


@dataclass
class RecordingHelpdesk:
    name: str = "recording"
    received: list[StoredTicket] = field(default_factory=list)
    closed: bool = False
    mapping: str = "the inner client's mapping"

    def create_ticket(self, ticket: StoredTicket, idempotency_key: str) -> HelpdeskRef:
        self.received.append(ticket)
        return HelpdeskRef(self.name, idempotency_key, None)

    def close(self) -> None:
        self.closed = True


def test_full_keeps_everything_and_contact_drops_the_name() -> None:
    assert minimise_requester(ANN, "full") == ANN
    assert minimise_requester(ANN, "contact") == {"email": ANN["email"], "tier": "gold"}


def test_pseudonym_is_stable_keyed_and_reveals_no_address() -> None:
    shared = minimise_requester(ANN, "pseudonym", KEY)
    assert shared is not None and set(shared) == {"id", "tier"}
    assert shared["id"].startswith("req_") and len(shared["id"]) == 24
    assert "ann" not in shared["id"].lower()
    # The same address in another case and with spaces is the same requester ...
    assert pseudonym(" ann.lee@example.COM ", KEY) == shared["id"]
    # ... another address or another key is not.
    assert pseudonym("bob@example.com", KEY) != shared["id"]
    assert pseudonym(ANN["email"], b"another key") != shared["id"]


def test_none_keeps_the_tier_alone_and_nothing_when_there_is_no_tier() -> None:
    assert minimise_requester(ANN, "none") == {"tier": "gold"}
    assert minimise_requester({"email": "a@b.co", "name": "A"}, "none") is None
    assert minimise_requester("not an object", "contact") is None


def test_pseudonym_without_a_key_is_refused() -> None:
    with pytest.raises(ValueError, match="requester_pseudonym_key"):
        minimise_requester(ANN, "pseudonym")
    with pytest.raises(ValueError, match="requester_pseudonym_key"):
        RequesterMinimisingClient(RecordingHelpdesk(), "pseudonym")


def test_the_stored_ticket_is_not_changed_only_what_leaves() -> None:
    stored = _stored()
    shared = shared_ticket(stored, "none")
    assert shared.ticket == {
        "subject": "Printer on fire",
        "description": "Smoke everywhere",
        "requester": {"tier": "gold"},
    }
    assert stored.ticket["requester"] == ANN
    assert "requester" not in shared_ticket(_stored({"name": "Ann"}), "none").ticket
    assert shared_ticket(_stored(None), "none").ticket == _stored(None).ticket


@pytest.mark.parametrize(
    ("sharing", "expected"),
    [
        ("full", ANN),
        ("contact", {"email": ANN["email"], "tier": "gold"}),
        ("none", {"tier": "gold"}),
    ],
)
def test_the_helpdesk_receives_the_minimised_requester(
    sharing: str, expected: dict[str, str]
) -> None:
    inner = RecordingHelpdesk()
    client = RequesterMinimisingClient(inner, sharing)  # type: ignore[arg-type]
    ref = client.create_ticket(_stored(), "key-1")
    assert ref.id == "key-1" and client.name == "recording"
    assert [t.ticket["requester"] for t in inner.received] == [expected]
    # What the connector has beyond the port (mapping, pull readers) is the connector's.
    assert client.mapping == "the inner client's mapping"  # type: ignore[attr-defined]
    client.close()
    assert inner.closed


def test_the_factory_wraps_every_connector_and_pulling_looks_through() -> None:
    settings = Settings(
        helpdesk="rt",
        helpdesk_url="http://127.0.0.1:9",
        helpdesk_token="t",
        requester_sharing="none",
    )
    client = helpdesk_from_settings(settings)
    try:
        assert isinstance(client, RequesterMinimisingClient)
        assert client.sharing == "none"
        assert isinstance(closed_reader(client), RTClosed)
    finally:
        client.close()
    with pytest.raises(TicketEnrichError, match="TICKET_ENRICH_REQUESTER_PSEUDONYM_KEY"):
        helpdesk_from_settings(settings.model_copy(update={"requester_sharing": "pseudonym"}))


def test_contact_is_the_default() -> None:
    assert Settings().requester_sharing == "contact"
