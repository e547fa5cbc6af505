"""Pulling a helpdesk's closed tickets into a training export, resumably.

`pull_closed_tickets` reads page after page from a `ClosedTicketReader` (adapters/helpdesk/
closed.py) and appends each ticket with a priority to a JSONL file in the columns of the
``helpdesk-pull`` preset (training/data.py): ``id``, ``subject``, ``description``, ``priority``
(the product's label), ``helpdesk_priority`` (the helpdesk's own value), ``status``,
``created_at``, ``solved_at``, ``helpdesk`` and the ticket's form fields as ``field:<name>``.
Subject, description and text fields are redacted (`core.redaction`) before they are written.

After every page the cursor of the next one, the size of the file and the counts are written to
a state file beside it (replaced atomically). A pull stopped by an outage, a rate limit that
does not lift, a page that cannot be read or Ctrl-C keeps what it has; the next pull with the
same state file cuts the export back to the last recorded page and goes on from its cursor. A
finished pull starts afresh the next time, since tickets change after they are pulled.

Rate limits and outages: a `HelpdeskUnavailable` is retried after its ``Retry-After`` (or an
exponential backoff), up to ``attempts`` times a page.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.helpdesk.closed import ClosedTicket, ClosedTicketReader, Page, PageUnreadable
from core.errors import HelpdeskError, HelpdeskRejected, HelpdeskUnavailable
from core.redaction import redact

DEFAULT_ATTEMPTS = 5
BACKOFF_CAP_S = 60.0
STATE_VERSION = 1


class PullInterrupted(HelpdeskError):
    """A pull of closed tickets stopped part-way; what it pulled is kept and it can resume."""


@dataclass(frozen=True)
class PullResult:
    """What a pull wrote: the export, how many tickets it holds and how many were left out."""

    export: Path
    pulled: int
    without_priority: int
    unmapped: int
    pages: int
    resumed: bool

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready mapping."""
        return {
            "export": str(self.export),
            "pulled": self.pulled,
            "without_priority": self.without_priority,
            "unmapped": self.unmapped,
            "pages": self.pages,
            "resumed": self.resumed,
        }


def _state_path(export: Path) -> Path:
    return export.with_name(export.name + ".state.json")


def _read_state(path: Path, source: str) -> dict[str, Any] | None:
    """The state of an unfinished pull of the same source, else None."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return None
    if state.get("source") != source or state.get("done"):
        return None
    return state


def _write_state(path: Path, state: dict[str, Any]) -> None:
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(json.dumps(state, indent=2))
    os.replace(scratch, path)


def _redacted(text: str) -> str:
    return redact(text)[0] if text else text


def _record(ticket: ClosedTicket, label: str, system: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": ticket.id,
        "subject": _redacted(ticket.subject),
        "description": _redacted(ticket.description),
        "priority": label,
        "helpdesk_priority": str(ticket.priority),
        "status": ticket.status,
        "created_at": ticket.created_at,
        "solved_at": ticket.solved_at,
        "helpdesk": system,
    }
    for name, value in ticket.fields.items():
        record[f"field:{name}"] = _redacted(value) if isinstance(value, str) else value
    return record


def pull_closed_tickets(
    reader: ClosedTicketReader,
    export: Path,
    *,
    source: str,
    progress: Callable[[str], None] = lambda _message: None,
    attempts: int = DEFAULT_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    resume_hint: str = "run the same command again to resume from there",
) -> PullResult:
    """Pull the reader's closed tickets into ``export`` (JSONL), resuming an unfinished pull of
    the same ``source`` (the helpdesk and its URL); raises `PullInterrupted` with a one-line
    reason when it stops part-way (ending with ``resume_hint``: how to resume, where the pull
    was started from), and `HelpdeskRejected` when the helpdesk refuses it."""
    export.parent.mkdir(parents=True, exist_ok=True)
    state_path = _state_path(export)
    state = _read_state(state_path, source) if export.exists() else None
    resumed = state is not None
    if state is None:
        state = {
            "version": STATE_VERSION,
            "source": source,
            "cursor": None,
            "bytes": 0,
            "pulled": 0,
            "without_priority": 0,
            "unmapped": 0,
            "pages": 0,
            "done": False,
        }
    with export.open("ab") as handle:
        # Lines after the last recorded page belong to a page that will be read again.
        handle.truncate(int(state["bytes"]))
    if resumed:
        progress(
            f"{reader.system}: resuming after page {state['pages']} "
            f"({state['pulled']} closed tickets pulled so far)"
        )
    _write_state(state_path, state)
    while True:
        page = _page(reader, state, attempts, sleep, export, resume_hint)
        lines = []
        for ticket in page.tickets:
            if ticket.priority in (None, ""):
                state["without_priority"] += 1
                continue
            label = reader.label(ticket.priority)
            if label is None:
                state["unmapped"] += 1
                continue
            lines.append(json.dumps(_record(ticket, label, reader.system), ensure_ascii=False))
        with export.open("a", encoding="utf-8") as handle:
            handle.writelines(line + "\n" for line in lines)
            handle.flush()
            os.fsync(handle.fileno())
        state.update(
            cursor=page.cursor,
            bytes=export.stat().st_size,
            pulled=state["pulled"] + len(lines),
            pages=state["pages"] + 1,
            done=page.cursor is None,
        )
        _write_state(state_path, state)
        progress(
            f"{reader.system}: page {state['pages']}: {state['pulled']} closed tickets pulled, "
            f"{state['without_priority']} without a priority and {state['unmapped']} with a "
            "priority no label maps to skipped"
        )
        if page.cursor is None:
            break
    return PullResult(
        export,
        state["pulled"],
        state["without_priority"],
        state["unmapped"],
        state["pages"],
        resumed,
    )


def _page(
    reader: ClosedTicketReader,
    state: dict[str, Any],
    attempts: int,
    sleep: Callable[[float], None],
    export: Path,
    resume: str,
) -> Page:
    """The next page, retried while the helpdesk is unavailable; stopping keeps the pull."""
    kept = f"{state['pulled']} closed tickets so far are kept in {export}"
    for attempt in range(1, attempts + 1):
        try:
            return reader.page(state["cursor"])
        except HelpdeskUnavailable as exc:
            if attempt == attempts:
                raise PullInterrupted(
                    f"{exc} (page {state['pages'] + 1}, {attempts} attempts); {kept}: {resume}"
                ) from exc
            wait = exc.retry_after
            if wait is None:
                wait = min(BACKOFF_CAP_S, 2.0 ** (attempt - 1))
            sleep(wait)
        except PageUnreadable as exc:
            raise PullInterrupted(
                f"page {state['pages'] + 1} could not be read: {exc}; {kept}: {resume}"
            ) from exc
        except HelpdeskRejected as exc:
            if any(f"HTTP {code}" in str(exc) for code in (401, 403)):
                raise HelpdeskRejected(
                    f"{exc}: check TICKET_ENRICH_HELPDESK_URL, TICKET_ENRICH_HELPDESK_USER and "
                    "TICKET_ENRICH_HELPDESK_TOKEN, and that the account may read tickets"
                ) from exc
            raise
        except KeyboardInterrupt:
            raise PullInterrupted(f"stopped; {kept}: {resume}") from None
    raise AssertionError("unreachable")  # pragma: no cover
