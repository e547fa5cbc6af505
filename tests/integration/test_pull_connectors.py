"""Pulling closed tickets from Zendesk, Freshdesk and Jira (local servers that answer as their
bulk read APIs document, `pull_fakes`): every page, the final priority mapped onto the product's
labels, personal data redacted before it is written, Retry-After honoured, an outage resumed
where it stopped, an unreadable page and wrong credentials in one line, and `train --from`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.helpdesk.closed import PageUnreadable, ZendeskClosed, closed_reader
from adapters.helpdesk.freshdesk import FreshdeskClient
from adapters.helpdesk.jira import DATA_CENTER_SEARCH_PATH, JiraClient
from adapters.helpdesk.mapping import FieldMapping
from adapters.helpdesk.pull import PullInterrupted, pull_closed_tickets
from adapters.helpdesk.zendesk import ZendeskClient
from adapters.local.cli import main
from core.artifact import read_artifact
from core.errors import HelpdeskRejected
from tests.integration.helpdesk_fakes import serving
from tests.integration.pull_fakes import FreshdeskList, JiraSearch, ZendeskExport, seeded

SYSTEMS = ("zendesk", "freshdesk", "jira")
CLOSED, OPEN, UNSET = 26, 5, 3
PER_PAGE = 8
FAKES: dict[str, Any] = {"zendesk": ZendeskExport, "freshdesk": FreshdeskList, "jira": JiraSearch}
# The ids each helpdesk gives seeded ticket number n.
ID_OF = {
    "zendesk": lambda n: str(1000 + n),
    "freshdesk": lambda n: str(1 + n),
    "jira": lambda n: f"SUP-{1 + n}",
}
# The helpdesks' own words for the product's labels (as the connectors push them).
RAW = {
    "zendesk": {"urgent": "urgent", "high": "high", "normal": "normal", "low": "low"},
    "freshdesk": {"urgent": "4", "high": "3", "normal": "2", "low": "1"},
    "jira": {"urgent": "Highest", "high": "High", "normal": "Medium", "low": "Low"},
}


@dataclass
class Desk:
    system: str
    fake: Any
    rows: list[tuple[int, str | None, bool]]

    def client(self, **overrides: Any) -> Any:
        url = self.fake.base_url
        if self.system == "zendesk":
            return ZendeskClient(url, ZendeskExport.EMAIL, ZendeskExport.TOKEN, **overrides)
        if self.system == "freshdesk":
            return FreshdeskClient(url, FreshdeskList.API_KEY, **overrides)
        return JiraClient(url, JiraSearch.EMAIL, JiraSearch.TOKEN, JiraSearch.PROJECT, **overrides)

    def reader(self, **overrides: Any) -> Any:
        return closed_reader(self.client(**overrides), per_page=PER_PAGE)

    def expected(self) -> dict[str, str]:
        """Pulled id → label: the closed tickets with a priority."""
        return {ID_OF[self.system](n): label for n, label, closed in self.rows if closed and label}

    def pages(self) -> list[Any]:
        return [r for r in self.fake.requests if r.method == "GET"]

    def env(self) -> dict[str, str]:
        env = {"TICKET_ENRICH_HELPDESK_URL": self.fake.base_url}
        if self.system == "zendesk":
            env |= {
                "TICKET_ENRICH_HELPDESK_USER": ZendeskExport.EMAIL,
                "TICKET_ENRICH_HELPDESK_TOKEN": ZendeskExport.TOKEN,
            }
        elif self.system == "freshdesk":
            env["TICKET_ENRICH_HELPDESK_TOKEN"] = FreshdeskList.API_KEY
        else:
            env |= {
                "TICKET_ENRICH_HELPDESK_USER": JiraSearch.EMAIL,
                "TICKET_ENRICH_HELPDESK_TOKEN": JiraSearch.TOKEN,
                "TICKET_ENRICH_HELPDESK_PROJECT": JiraSearch.PROJECT,
            }
        return env


@pytest.fixture(params=SYSTEMS)
def desk(request: pytest.FixtureRequest) -> Iterator[Desk]:
    with serving(FAKES[request.param]()) as fake:
        rows = seeded(CLOSED, OPEN, UNSET)
        fake.seed(rows)
        yield Desk(request.param, fake, rows)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_page_of_closed_tickets_is_pulled_with_its_final_priority(
    desk: Desk, tmp_path: Path
) -> None:
    export = tmp_path / "pull.jsonl"
    result = pull_closed_tickets(desk.reader(), export, source="test")

    rows = _lines(export)
    assert {r["id"]: r["priority"] for r in rows} == desk.expected()
    assert result.pulled == len(rows) == CLOSED
    assert result.without_priority == UNSET and result.unmapped == 0
    assert all(r["helpdesk_priority"] == RAW[desk.system][r["priority"]] for r in rows)
    assert all(r["created_at"] and r["solved_at"] and r["helpdesk"] == desk.system for r in rows)
    assert result.pages == len(desk.pages()) > 2
    state = json.loads(export.with_name("pull.jsonl.state.json").read_text())
    assert state["done"] and state["cursor"] is None and state["bytes"] == export.stat().st_size


def test_the_documented_pagination_is_followed(desk: Desk, tmp_path: Path) -> None:
    pull_closed_tickets(desk.reader(), tmp_path / "pull.jsonl", source="test")
    queries = [r.query for r in desk.pages()]
    if desk.system == "zendesk":
        assert queries[0]["start_time"] == "0" and "cursor" not in queries[0]
        assert all("cursor" in q and q["include"] == "metric_sets" for q in queries[1:])
    elif desk.system == "freshdesk":
        assert [q["page"] for q in queries] == [str(n) for n in range(1, len(queries) + 1)]
        assert all(q["include"] == "description,stats" for q in queries)
    else:
        assert "nextPageToken" not in queries[0]
        assert [q["nextPageToken"] for q in queries[1:]] == [
            f"tok-{PER_PAGE * n}" for n in range(1, len(queries))
        ]
        assert all("statusCategory = Done" in q["jql"] for q in queries)


def test_personal_data_is_redacted_before_it_is_written(desk: Desk, tmp_path: Path) -> None:
    export = tmp_path / "pull.jsonl"
    pull_closed_tickets(desk.reader(), export, source="test")
    text = export.read_text()
    assert "@example.com" not in text and "7946" not in text and "sk-live" not in text
    placeholder = {"zendesk": "[EMAIL]", "freshdesk": "[PHONE]", "jira": "[SECRET]"}
    assert all(placeholder[desk.system] in r["description"] for r in _lines(export))


def test_a_rate_limit_is_waited_out_as_retry_after_asks(desk: Desk, tmp_path: Path) -> None:
    desk.fake.fail_next_read("pass", "429")
    waits: list[float] = []
    result = pull_closed_tickets(
        desk.reader(), tmp_path / "pull.jsonl", source="test", sleep=waits.append
    )
    assert waits == [7.0]
    assert result.pulled == CLOSED


def test_an_outage_mid_pull_stops_in_one_line_and_the_next_pull_resumes(
    desk: Desk, tmp_path: Path
) -> None:
    export = tmp_path / "pull.jsonl"
    desk.fake.fail_next_read("pass", "pass", "500", "503-date", "500")
    waits: list[float] = []
    with pytest.raises(PullInterrupted) as caught:
        pull_closed_tickets(desk.reader(), export, source="test", attempts=3, sleep=waits.append)
    message = str(caught.value)
    assert "\n" not in message and "HTTP 500" in message and "page 3" in message
    assert "run the same command again to resume" in message
    assert waits[0] == 1.0 and 55 <= waits[1] <= 60  # backoff, then the 503's HTTP date
    kept = len(_lines(export))
    assert 0 < kept < CLOSED
    asked_before = len(desk.pages())

    result = pull_closed_tickets(desk.reader(), export, source="test")

    assert result.resumed and result.pulled == CLOSED
    ids = [r["id"] for r in _lines(export)]
    assert len(ids) == len(set(ids)) == CLOSED
    # The resumed pull asked for the page that failed, not the first one again.
    assert desk.pages()[asked_before].query == desk.pages()[asked_before - 1].query


def test_a_page_that_cannot_be_read_stops_in_one_line(desk: Desk, tmp_path: Path) -> None:
    reader = desk.reader()
    first = reader.page(None)
    desk.fake.garble_next_read()
    with pytest.raises(PageUnreadable) as caught:
        reader.page(first.cursor)
    assert "\n" not in str(caught.value) and "maintenance" in str(caught.value).lower()
    desk.fake.garble_next_read()
    with pytest.raises(PullInterrupted, match=r"page 1 could not be read: .*resume"):
        pull_closed_tickets(desk.reader(), tmp_path / "pull.jsonl", source="test")


def test_wrong_credentials_name_the_settings_in_one_line(desk: Desk, tmp_path: Path) -> None:
    overrides = {"zendesk": ("x@example.com", "bad"), "freshdesk": ("bad",)}
    url = desk.fake.base_url
    if desk.system == "zendesk":
        client: Any = ZendeskClient(url, *overrides["zendesk"])
    elif desk.system == "freshdesk":
        client = FreshdeskClient(url, *overrides["freshdesk"])
    else:
        client = JiraClient(url, JiraSearch.EMAIL, "bad", JiraSearch.PROJECT)
    with pytest.raises(HelpdeskRejected) as caught:
        pull_closed_tickets(closed_reader(client), tmp_path / "pull.jsonl", source="test")
    message = str(caught.value)
    assert "HTTP 401" in message and "TICKET_ENRICH_HELPDESK_TOKEN" in message
    assert "\n" not in message


def test_a_priority_no_label_maps_to_is_skipped_and_counted(desk: Desk, tmp_path: Path) -> None:
    # A mapping that gives two labels the helpdesk's top priority cannot say which was meant.
    top = {"zendesk": "urgent", "freshdesk": 4, "jira": "Highest"}[desk.system]
    mapping = FieldMapping.from_dict(desk.system, {"priorities": {"high": top}})
    result = pull_closed_tickets(desk.reader(mapping=mapping), tmp_path / "p.jsonl", source="t")
    # Two labels share the top priority, and the helpdesk's own "high" is no label's any more.
    left_out = sum(1 for label in desk.expected().values() if label in ("urgent", "high"))
    assert result.unmapped == left_out and result.pulled == CLOSED - left_out


def test_train_from_the_helpdesk_pulls_then_trains(
    desk: Desk,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in desk.env().items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "model"
    code = main(["train", "--from", desk.system, "--pull-dir", str(tmp_path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"{desk.system}: page 1:" in err
    data = read_artifact(out).metadata["training_data"]
    assert data["file"] == f"{desk.system}.jsonl" and data["rows"] == CLOSED
    assert data["rows_by_label"] == {
        label: sum(1 for v in desk.expected().values() if v == label)
        for label in sorted(set(desk.expected().values()))
    }


def test_train_from_the_helpdesk_adds_the_services_corrections(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from adapters.local.sqlite_store import SQLiteTicketStore
    from core.ports import Correction, StoredTicket

    database = tmp_path / "service.sqlite3"
    with SQLiteTicketStore(database) as store:
        for n in range(3):
            ticket = StoredTicket(
                f"t-{n}",
                None,
                "2024-06-01T10:00:00Z",
                {"subject": f"Checkout fails for every customer ({n})", "description": "500s"},
                {"priority": {"label": "normal"}},
            )
            store.add(ticket)
            store.add_correction(
                Correction(ticket.id, "priority", "urgent", "normal", "ann", "v1", "2024-06-02")
            )
    with serving(JiraSearch()) as fake:
        fake.seed(seeded(CLOSED, OPEN, UNSET))
        desk = Desk("jira", fake, [])
        for name, value in desk.env().items():
            monkeypatch.setenv(name, value)
        out = tmp_path / "model"
        code = main(
            [
                "train",
                "--from",
                "jira",
                "--pull-dir",
                str(tmp_path),
                "--corrections-from",
                str(database),
                "--out",
                str(out),
            ]
        )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "3 agents' priority corrections" in err
    data = read_artifact(out).metadata["training_data"]
    # The pulled closed tickets, and the three corrected ones with the agents' label.
    assert data["rows"] == CLOSED + 3


def test_jira_data_center_pages_by_start_at(tmp_path: Path) -> None:
    with serving(JiraSearch()) as fake:
        rows = seeded(CLOSED, OPEN, UNSET)
        fake.seed(rows)
        client = JiraClient(
            fake.base_url,
            JiraSearch.EMAIL,
            JiraSearch.TOKEN,
            JiraSearch.PROJECT,
            search_path=DATA_CENTER_SEARCH_PATH,
        )
        result = pull_closed_tickets(
            closed_reader(client, per_page=PER_PAGE), tmp_path / "j.jsonl", source="dc"
        )
        starts = [r.query.get("startAt") for r in fake.requests]
    assert result.pulled == CLOSED
    assert starts == [None, *(str(PER_PAGE * n) for n in range(1, len(starts)))]


def test_a_body_that_is_not_json_is_an_unreadable_page() -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, text="<html>maintenance</html>")
    )
    client = ZendeskClient("https://example.zendesk.com", "a@example.com", "t", transport=transport)
    reader = closed_reader(client)
    assert isinstance(reader, ZendeskClosed)
    with pytest.raises(PageUnreadable, match="is not JSON"):
        reader.page(None)
