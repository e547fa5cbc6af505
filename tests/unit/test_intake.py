from pathlib import Path

import pytest

from core import load_enricher
from core.errors import InvalidTicket
from core.intake import submit_ticket
from core.ports import TicketQuery
from tests.unit.fakes import FakeOutbox, FakeTicketStore


@pytest.fixture(scope="module")
def enricher(small_model_dir: Path):  # type: ignore[no-untyped-def]
    return load_enricher(small_model_dir)


def test_a_new_ticket_is_enriched_and_stored(enricher) -> None:  # type: ignore[no-untyped-def]
    store = FakeTicketStore()
    stored, created = submit_ticket({"subject": "disk full on node"}, enricher, store)
    assert created
    assert store.get(stored.id) == stored
    assert stored.enrichment["priority"]["label"] in enricher.metadata["labels"]
    assert stored.ticket["subject"] == "disk full on node"


def test_the_same_external_id_twice_has_one_effect(enricher) -> None:  # type: ignore[no-untyped-def]
    store = FakeTicketStore()
    first, created_first = submit_ticket({"subject": "a", "external_id": "ZD-7"}, enricher, store)
    again, created_again = submit_ticket(
        {"subject": "a, resent", "external_id": "ZD-7"}, enricher, store
    )
    assert (created_first, created_again) == (True, False)
    assert again == first
    assert store.list(TicketQuery()).total == 1


def test_tickets_without_external_id_are_distinct(enricher) -> None:  # type: ignore[no-untyped-def]
    store = FakeTicketStore()
    submit_ticket({"subject": "a"}, enricher, store)
    submit_ticket({"subject": "a"}, enricher, store)
    assert store.list(TicketQuery()).total == 2


def test_an_invalid_ticket_stores_nothing(enricher) -> None:  # type: ignore[no-untyped-def]
    store = FakeTicketStore()
    with pytest.raises(InvalidTicket):
        submit_ticket({"subject": ""}, enricher, store)
    assert store.tickets == {}


def test_with_an_outbox_a_new_ticket_is_enqueued_once(enricher) -> None:  # type: ignore[no-untyped-def]
    outbox = FakeOutbox()
    store = outbox.store
    first, _ = submit_ticket(
        {"subject": "a", "external_id": "ZD-9"}, enricher, store, outbox=outbox
    )
    submit_ticket({"subject": "a", "external_id": "ZD-9"}, enricher, store, outbox=outbox)
    assert list(outbox.rows) == [first.id]
    assert outbox.rows[first.id].status == "pending"


def test_without_an_outbox_nothing_is_enqueued(enricher) -> None:  # type: ignore[no-untyped-def]
    outbox = FakeOutbox()
    submit_ticket({"subject": "a"}, enricher, outbox.store)
    assert outbox.rows == {}
