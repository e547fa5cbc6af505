"""`collect_outcomes`: the priority a delivered ticket closed with in the helpdesk as its label."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.helpdesk.mapping import FieldMapping
from adapters.local.sqlite_store import SQLiteTicketStore
from core.errors import HelpdeskRejected, HelpdeskUnavailable, TicketEnrichError
from core.outcomes import collect_outcomes, helpdesk_agent
from core.ports import (
    Agreement,
    Correction,
    HelpdeskOutcome,
    HelpdeskRef,
    OutcomeSource,
    OutcomeStore,
    StoredTicket,
)
from tests.unit.fakes import FakeHelpdeskClient, FakeOutbox
from training.retrain import corrections_as_examples

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LABELS = ("low", "normal", "urgent")


class FakeOutcomeHelpdesk(FakeHelpdeskClient):
    """A `FakeHelpdeskClient` that can also be asked how its tickets stand.

    ``states`` maps a helpdesk id to its outcome, or to an exception to raise when asked;
    ``on_ask`` runs before answering, to let a test change the world mid-run.
    """

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[str, HelpdeskOutcome | Exception] = {}
        self.asked: list[str] = []
        self.on_ask: Callable[[HelpdeskRef], None] = lambda _ref: None

    def set(
        self,
        helpdesk_id: str,
        status: str,
        closed: bool,
        priority: str | None = None,
        labels: tuple[str, ...] | None = None,
    ) -> None:
        ref = HelpdeskRef(self.name, helpdesk_id)
        found = labels if labels is not None else ((priority,) if priority else ())
        self.states[helpdesk_id] = HelpdeskOutcome(ref, status, closed, priority, found)

    def ticket_outcome(self, ref: HelpdeskRef) -> HelpdeskOutcome:
        self.asked.append(ref.id)
        self.on_ask(ref)
        state = self.states.get(ref.id, HelpdeskOutcome(ref, "new", False, "normal", ("normal",)))
        if isinstance(state, Exception):
            raise state
        return state


class FakeFeedbackStore:
    """An in-memory `OutcomeStore`: every correction kept, the latest per ticket and target wins."""

    def __init__(self) -> None:
        self.log: list[Correction] = []

    def add_correction(self, correction: Correction) -> Correction:
        self.log.append(correction)
        return correction

    def add_correction_once(self, correction: Correction) -> bool:
        if any(
            (c.ticket_id, c.target) == (correction.ticket_id, correction.target) for c in self.log
        ):
            return False
        self.log.append(correction)
        return True

    def corrections(self, ticket_id: str | None = None, limit: int = 100) -> list[Correction]:
        latest: dict[tuple[str, str], Correction] = {}
        for c in self.log:
            latest[(c.ticket_id, c.target)] = c
        found = [c for c in reversed(latest.values()) if ticket_id in (None, c.ticket_id)]
        return found[:limit]

    def agreement(self, target: str, window: int) -> Agreement:
        items = [c for c in self.corrections(limit=window) if c.target == target]
        return Agreement(target, window, len(items), sum(c.agrees for c in items))


class World:
    """An outbox whose tickets were delivered to the fake helpdesk as ``h-<ticket id>``."""

    def __init__(self) -> None:
        self.outbox = FakeOutbox()
        self.helpdesk = FakeOutcomeHelpdesk()
        self.feedback = FakeFeedbackStore()

    def deliver(self, ticket_id: str, predicted: str = "normal", status: str = "delivered") -> str:
        ticket = StoredTicket(
            ticket_id,
            None,
            "2026-11-23T10:00:00Z",
            {"subject": f"ticket {ticket_id}"},
            {"priority": {"label": predicted}, "model": {"version": "v1"}},
        )
        self.outbox.add_with_delivery(ticket, NOW)
        delivery = self.outbox.rows[ticket_id]
        ref = HelpdeskRef(self.helpdesk.name, f"h-{ticket_id}") if status == "delivered" else None
        self.outbox.save(replace(delivery, status=status, ref=ref))
        return f"h-{ticket_id}"

    def collect(self, labels: tuple[str, ...] | None = LABELS) -> dict[str, object]:
        report = collect_outcomes(
            self.outbox,
            self.outbox.store,
            self.helpdesk,
            self.feedback,
            labels=labels,
            now=lambda: NOW,
        )
        return report.as_dict()

    def labels(self) -> dict[str, tuple[str, str]]:
        return {c.ticket_id: (c.label, c.agent) for c in self.feedback.corrections()}


@pytest.fixture
def world() -> World:
    return World()


def test_the_fakes_implement_the_ports(world: World) -> None:
    assert isinstance(world.helpdesk, OutcomeSource)
    assert isinstance(world.feedback, OutcomeStore)


def test_a_closed_tickets_final_priority_is_recorded_as_the_helpdesks_correction(
    world: World,
) -> None:
    world.helpdesk.set(world.deliver("a", predicted="normal"), "solved", True, "urgent")
    world.helpdesk.set(world.deliver("b", predicted="low"), "open", False, "low")

    report = world.collect()

    assert report["recorded"] == ["a"] and report["open"] == ["b"] and report["asked"] == 2
    [correction] = world.feedback.corrections()
    assert correction == Correction(
        ticket_id="a",
        target="priority",
        label="urgent",
        predicted="normal",
        agent="helpdesk:fake",
        model_version="v1",
        corrected_at="2026-11-23T12:00:00.000+00:00",
    )
    assert not correction.agrees
    assert helpdesk_agent("zendesk") == "helpdesk:zendesk"


def test_running_twice_records_once_and_does_not_ask_again(world: World) -> None:
    world.helpdesk.set(world.deliver("a"), "closed", True, "low")
    assert world.collect()["recorded"] == ["a"]

    again = world.collect()

    assert again["recorded"] == [] and again["asked"] == 0 and again["already_labelled"] == 1
    assert world.helpdesk.asked == ["h-a"]
    assert len(world.feedback.log) == 1


def test_an_open_ticket_is_asked_again_and_recorded_once_it_closes(world: World) -> None:
    helpdesk_id = world.deliver("a")
    world.helpdesk.set(helpdesk_id, "pending", False, "normal")
    assert world.collect()["open"] == ["a"]
    assert world.feedback.log == []

    world.helpdesk.set(helpdesk_id, "solved", True, "urgent")
    report = world.collect()

    assert report["recorded"] == ["a"]
    assert world.helpdesk.asked == [helpdesk_id, helpdesk_id]
    assert world.labels() == {"a": ("urgent", "helpdesk:fake")}


def test_a_ticket_an_agent_labelled_is_not_asked_and_keeps_the_agents_label(world: World) -> None:
    world.helpdesk.set(world.deliver("a"), "solved", True, "urgent")
    world.feedback.add_correction(
        Correction("a", "priority", "low", "normal", "ann", "v1", "2026-11-23T11:00:00Z")
    )

    report = world.collect()

    assert report["already_labelled"] == 1 and report["recorded"] == []
    assert world.helpdesk.asked == []
    assert world.labels() == {"a": ("low", "ann")}


def test_an_agent_who_labels_while_the_helpdesk_is_asked_keeps_the_label(world: World) -> None:
    world.helpdesk.set(world.deliver("a"), "solved", True, "urgent")
    world.helpdesk.on_ask = lambda _ref: world.feedback.add_correction(
        Correction("a", "priority", "low", "normal", "ann", "v1", "2026-11-23T11:59:00Z")
    )

    report = world.collect()

    assert report["recorded"] == [] and report["already_labelled"] == 1
    assert world.labels() == {"a": ("low", "ann")}


def test_a_category_correction_does_not_count_as_a_priority_label(world: World) -> None:
    world.helpdesk.set(world.deliver("a"), "solved", True, "urgent")
    world.feedback.add_correction(
        Correction("a", "component", "hdfs", "yarn", "ann", "v1", "2026-11-23T11:00:00Z")
    )
    assert world.collect()["recorded"] == ["a"]


def test_a_rate_limit_stops_the_run_and_the_next_run_finishes_it(world: World) -> None:
    for name in ("a", "b", "c"):
        world.helpdesk.set(world.deliver(name), "solved", True, "urgent")
    world.helpdesk.states["h-b"] = HelpdeskUnavailable("fake: HTTP 429: slow down", retry_after=7)

    report = world.collect()

    assert report["recorded"] == ["a"]
    assert report["stopped"] == "fake: HTTP 429: slow down" and report["retry_after"] == 7
    assert world.helpdesk.asked == ["h-a", "h-b"]  # c was not asked during the outage

    world.helpdesk.set("h-b", "solved", True, "low")
    after = world.collect()

    assert after["recorded"] == ["b", "c"] and after["stopped"] is None
    assert world.labels() == {
        "a": ("urgent", "helpdesk:fake"),
        "b": ("low", "helpdesk:fake"),
        "c": ("urgent", "helpdesk:fake"),
    }


def test_a_ticket_the_helpdesk_refuses_to_show_is_reported_and_the_run_goes_on(
    world: World,
) -> None:
    world.deliver("a")
    world.helpdesk.states["h-a"] = HelpdeskRejected("fake: HTTP 404: not found")
    world.helpdesk.set(world.deliver("b"), "solved", True, "normal")

    report = world.collect()

    assert report["failed"] == [{"ticket_id": "a", "error": "fake: HTTP 404: not found"}]
    assert report["recorded"] == ["b"] and report["stopped"] is None


@pytest.mark.parametrize(
    ("priority", "labels", "model_labels"),
    [
        ("Lowest", (), LABELS),  # no label maps to the helpdesk's priority
        ("urgent", ("high", "urgent"), (*LABELS, "high")),  # two labels map to it
        ("high", ("high",), LABELS),  # a label the served model does not predict
    ],
)
def test_a_priority_without_a_single_inverse_is_reported_not_guessed(
    world: World, priority: str, labels: tuple[str, ...], model_labels: tuple[str, ...]
) -> None:
    world.helpdesk.set(world.deliver("a"), "solved", True, priority, labels)

    report = world.collect(model_labels)

    assert report["recorded"] == []
    assert report["unmapped"] == [
        {
            "ticket_id": "a",
            "status": "solved",
            "helpdesk_priority": priority,
            "labels": list(labels),
        }
    ]
    assert world.feedback.log == []


def test_without_the_models_labels_any_single_inverse_is_recorded(world: World) -> None:
    world.helpdesk.set(world.deliver("a"), "solved", True, "high")
    assert world.collect(labels=None)["recorded"] == ["a"]
    assert world.labels() == {"a": ("high", "helpdesk:fake")}


def test_only_delivered_tickets_of_this_helpdesk_are_asked(world: World) -> None:
    world.deliver("pending", status="pending")
    world.deliver("dead", status="dead")
    world.helpdesk.set(world.deliver("mine"), "solved", True, "low")
    world.deliver("theirs")
    theirs = world.outbox.rows["theirs"]
    world.outbox.save(replace(theirs, ref=HelpdeskRef("zendesk", "99")))

    report = world.collect()

    assert world.helpdesk.asked == ["h-mine"]
    assert report["recorded"] == ["mine"] and report["other_helpdesk"] == 1


def test_a_helpdesk_that_cannot_be_read_back_is_refused(world: World) -> None:
    with pytest.raises(TicketEnrichError, match="the fake helpdesk cannot be asked"):
        collect_outcomes(world.outbox, world.outbox.store, FakeHelpdeskClient(), world.feedback)


def test_the_mapping_inverts_each_helpdesks_priority_scale() -> None:
    assert FieldMapping.for_system("zendesk").labels_for("urgent") == ("urgent",)
    assert FieldMapping.for_system("freshdesk").labels_for(1) == ("low",)
    assert FieldMapping.for_system("jira").labels_for("Medium") == ("normal",)
    assert FieldMapping.for_system("jira").labels_for("medium") == ("normal",)
    assert FieldMapping.for_system("rt").labels_for("90") == ("urgent",)
    assert FieldMapping.for_system("rt").labels_for(60) == ()
    assert FieldMapping.for_system("jira").labels_for("Lowest") == ()
    assert FieldMapping.for_system("zendesk").labels_for(None) == ()
    merged = FieldMapping.from_dict("zendesk", {"priorities": {"high": "urgent"}})
    assert merged.labels_for("urgent") == ("urgent", "high")
    assert merged.labels_for("high") == ()


def _stored(ticket_id: str) -> StoredTicket:
    return StoredTicket(ticket_id, None, "2026-11-23T10:00:00Z", {}, {"priority": {"label": "low"}})


def test_the_sqlite_store_records_a_label_once_and_never_over_an_agents(tmp_path: Path) -> None:
    with SQLiteTicketStore(tmp_path / "t.sqlite3") as store:
        assert isinstance(store, OutcomeStore)
        store.add(_stored("a"))
        store.add(_stored("b"))
        helpdesk = Correction("a", "priority", "urgent", "low", "helpdesk:rt", None, "t1")
        assert store.add_correction_once(helpdesk) is True
        assert store.add_correction_once(replace(helpdesk, label="normal")) is False
        agent = Correction("b", "priority", "normal", "low", "ann", None, "t0")
        store.add_correction(agent)
        assert store.add_correction_once(replace(helpdesk, ticket_id="b")) is False
        category = Correction("b", "component", "hdfs", None, "helpdesk:rt", None, "t1")
        assert store.add_correction_once(category) is True
        latest = {(c.ticket_id, c.target): (c.label, c.agent) for c in store.corrections()}
        assert latest == {
            ("a", "priority"): ("urgent", "helpdesk:rt"),
            ("b", "priority"): ("normal", "ann"),
            ("b", "component"): ("hdfs", "helpdesk:rt"),
        }
        with pytest.raises(TicketEnrichError, match="no ticket with id 'zz'"):
            store.add_correction_once(replace(helpdesk, ticket_id="zz"))


def test_labels_from_the_helpdesk_are_training_examples_for_retrain(world: World) -> None:
    world.helpdesk.set(world.deliver("a", predicted="normal"), "solved", True, "urgent")
    world.collect()

    # As `ticket-enrich retrain --corrections-from` reads the store.
    pairs = [
        (world.outbox.store.get(c.ticket_id), c)
        for c in world.feedback.corrections(limit=1_000_000)
        if c.target == "priority"
    ]
    [example] = corrections_as_examples(pairs)

    assert example.label == "urgent" and example.doc["subject"] == "ticket a"
