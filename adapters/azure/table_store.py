"""Tickets and their helpdesk deliveries in Azure Table Storage (`TicketStore` and `Outbox`).

One partition per ticket, two rows in it: ``ticket`` (the stored ticket) and ``delivery`` (its
outbox row). Table Storage commits a batch within one partition atomically, so a new ticket and
its pending delivery are written together or not at all, as `core.ports.Outbox` asks; a second
writer of the same ticket id gets a conflict and reads the first version back.

A string property holds at most 64 KiB (32 K UTF-16 code units), so the ticket's JSON is split
over ``body_0``, ``body_1``… properties of at most `_CHUNK_CHARS` characters (an entity may hold
1 MiB in all, more than a ticket within the size limits needs).

Claims take a lease with an ETag-conditional update: of two workers that read the same due row,
only one update succeeds. Listing and claiming query across partitions (a scan of the table's
``delivery`` or ``ticket`` rows, filtered by the service): fine for the thousands of tickets a
day one helpdesk sees; a busier install would add index partitions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.errors import StoreError, TicketNotFound
from core.ports import (
    DELIVERY_STATUSES,
    Delivery,
    HelpdeskRef,
    StoredTicket,
    TicketPage,
    TicketQuery,
)

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity

TICKET_ROW = "ticket"
DELIVERY_ROW = "delivery"
# 16 K characters stay under the 64 KiB property limit even if every one is outside the BMP.
_CHUNK_CHARS = 16_000
_NO_LEASE = 0.0


def _strict_json(value: Any) -> str:
    text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    text.encode("utf-8")  # a lone surrogate fails here, before anything is written
    return text


def _ticket_entity(ticket: StoredTicket) -> dict[str, Any]:
    body = _strict_json({"ticket": ticket.ticket, "enrichment": ticket.enrichment})
    chunks = [body[i : i + _CHUNK_CHARS] for i in range(0, len(body), _CHUNK_CHARS)] or [""]
    entity: dict[str, Any] = {
        "PartitionKey": ticket.id,
        "RowKey": TICKET_ROW,
        "external_id": ticket.external_id or "",
        "received_at": ticket.received_at,
        "priority": str(ticket.enrichment.get("priority", {}).get("label", "")),
        "needs_review": bool(ticket.enrichment.get("needs_review", False)),
        "body_parts": len(chunks),
    }
    entity.update({f"body_{i}": chunk for i, chunk in enumerate(chunks)})
    return entity


def _entity_to_ticket(entity: Mapping[str, Any]) -> StoredTicket:
    body = json.loads("".join(entity[f"body_{i}"] for i in range(int(entity["body_parts"]))))
    return StoredTicket(
        id=entity["PartitionKey"],
        external_id=entity.get("external_id") or None,
        received_at=entity["received_at"],
        ticket=body["ticket"],
        enrichment=body["enrichment"],
    )


def _delivery_fields(delivery: Delivery) -> dict[str, Any]:
    ref = delivery.ref
    return {
        "PartitionKey": delivery.ticket_id,
        "RowKey": DELIVERY_ROW,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at.timestamp(),
        "last_error": delivery.last_error or "",
        "helpdesk_system": "" if ref is None else ref.system,
        "helpdesk_id": "" if ref is None else ref.id,
        "helpdesk_url": "" if ref is None or ref.url is None else ref.url,
    }


def _entity_to_delivery(entity: TableEntity) -> Delivery:
    ref = (
        HelpdeskRef(
            entity["helpdesk_system"], entity["helpdesk_id"], entity["helpdesk_url"] or None
        )
        if entity.get("helpdesk_id")
        else None
    )
    return Delivery(
        ticket_id=entity["PartitionKey"],
        status=entity["status"],
        attempts=int(entity["attempts"]),
        next_attempt_at=datetime.fromtimestamp(float(entity["next_attempt_at"]), UTC),
        last_error=entity.get("last_error") or None,
        ref=ref,
    )


class TableTicketStore:
    """A `core.ports.TicketStore` and `core.ports.Outbox` in one Azure Storage table."""

    def __init__(self, table: TableClient, *, page_size: int | None = None) -> None:
        """``page_size`` caps the entities one page of a cross-partition query returns (None:
        the service's 1,000)."""
        if page_size is not None and page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self._table = table
        self._page_size = page_size

    def create_table(self) -> None:
        """Create the table if it does not exist (once per deployment; cheap to repeat)."""
        from azure.core.exceptions import ResourceExistsError

        with self._errors("cannot create the tickets table"), suppress(ResourceExistsError):
            self._table.create_table()

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from azure.core.exceptions import AzureError

        try:
            yield
        except AzureError as exc:
            raise StoreError(f"{what}: {type(exc).__name__}: {exc}"[:1000]) from exc

    def add(self, ticket: StoredTicket) -> tuple[StoredTicket, bool]:
        """Store the ticket unless its id exists; return the stored one and whether it is new."""
        from azure.core.exceptions import ResourceExistsError

        entity = _ticket_entity(ticket)
        with self._errors(f"cannot store ticket {ticket.id}"):
            try:
                self._table.create_entity(entity)
            except ResourceExistsError:
                return self.get(ticket.id), False
        # Created: what is stored is exactly this entity, so it is not read back.
        return _entity_to_ticket(entity), True

    def add_with_delivery(self, ticket: StoredTicket, now: datetime) -> tuple[StoredTicket, bool]:
        """Like `add`, and in the same batch enqueue a delivery due at ``now`` when the ticket
        is new; a duplicate enqueues nothing."""
        from azure.data.tables import TableTransactionError

        delivery = {
            **_delivery_fields(Delivery(ticket.id, "pending", 0, now)),
            "lease_until": _NO_LEASE,
            "enqueued_at": now.timestamp(),
        }
        entity = _ticket_entity(ticket)
        batch = [("create", entity), ("create", delivery)]
        with self._errors(f"cannot store ticket {ticket.id}"):
            try:
                self._table.submit_transaction(batch)
            except TableTransactionError as exc:
                if getattr(exc, "error_code", None) != "EntityAlreadyExists":
                    raise
                return self.get(ticket.id), False
        # The batch committed: what is stored is exactly this entity, so it is not read back.
        return _entity_to_ticket(entity), True

    def get(self, ticket_id: str) -> StoredTicket:
        """The ticket with this id, or `core.errors.TicketNotFound`."""
        from azure.core.exceptions import ResourceNotFoundError

        with self._errors(f"cannot read ticket {ticket_id}"):
            try:
                entity = self._table.get_entity(ticket_id, TICKET_ROW)
            except ResourceNotFoundError:
                raise TicketNotFound(ticket_id) from None
        return _entity_to_ticket(entity)

    def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[tuple[Delivery, StoredTicket]]:
        """Lease up to ``limit`` pending or retrying deliveries due at ``now``, oldest first."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        at = now.timestamp()
        with self._errors("cannot claim deliveries"):
            due = sorted(
                self._table.query_entities(
                    "RowKey eq @row and (status eq 'pending' or status eq 'retrying')"
                    " and next_attempt_at le @now and lease_until le @now",
                    parameters={"row": DELIVERY_ROW, "now": at},
                    results_per_page=self._page_size,
                ),
                key=lambda e: (float(e["next_attempt_at"]), float(e.get("enqueued_at", 0.0))),
            )
            claimed: list[tuple[Delivery, StoredTicket]] = []
            for entity in due:
                if len(claimed) >= limit:
                    break
                lease = {
                    "PartitionKey": entity["PartitionKey"],
                    "RowKey": DELIVERY_ROW,
                    "lease_until": lease_until.timestamp(),
                }
                try:
                    self._table.update_entity(
                        lease,
                        mode=UpdateMode.MERGE,
                        etag=entity.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                except (ResourceModifiedError, ResourceNotFoundError):
                    continue  # another worker claimed (or purged) it first
                claimed.append((_entity_to_delivery(entity), self.get(entity["PartitionKey"])))
        return claimed

    def save(self, delivery: Delivery) -> None:
        """Record the outcome of an attempt and release the delivery's lease."""
        from azure.data.tables import UpdateMode

        if delivery.status not in DELIVERY_STATUSES:
            raise ValueError(f"unknown delivery status {delivery.status!r}")
        fields = {**_delivery_fields(delivery), "lease_until": _NO_LEASE}
        with self._errors(f"cannot save delivery of {delivery.ticket_id}"):
            self._table.update_entity(fields, mode=UpdateMode.MERGE)

    def delivery(self, ticket_id: str) -> Delivery | None:
        """The delivery of this ticket, if one was enqueued."""
        from azure.core.exceptions import ResourceNotFoundError

        with self._errors(f"cannot read delivery of {ticket_id}"):
            try:
                return _entity_to_delivery(self._table.get_entity(ticket_id, DELIVERY_ROW))
            except ResourceNotFoundError:
                return None

    def _delivery_entities(self, status: str | None) -> list[TableEntity]:
        clauses, params = ["RowKey eq @row"], {"row": DELIVERY_ROW}
        if status is not None:
            clauses.append("status eq @status")
            params["status"] = status
        entities = list(
            self._table.query_entities(
                " and ".join(clauses), parameters=params, results_per_page=self._page_size
            )
        )
        entities.sort(key=lambda e: float(e.get("enqueued_at", 0.0)))
        return entities

    def deliveries(self, status: str | None = None, limit: int = 100) -> list[Delivery]:
        """Deliveries, optionally of one status, in the order they were enqueued."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        with self._errors("cannot list deliveries"):
            return [_entity_to_delivery(e) for e in self._delivery_entities(status)[:limit]]

    def purge(self, status: str) -> int:
        """Forget every delivery of this status (the tickets stay); return how many."""
        if status not in ("delivered", "dead"):
            raise ValueError(f"only delivered or dead deliveries can be purged, not {status!r}")
        with self._errors("cannot purge deliveries"):
            entities = self._delivery_entities(status)
            for entity in entities:
                self._table.delete_entity(entity["PartitionKey"], DELIVERY_ROW)
        return len(entities)

    def count_by_status(self) -> dict[str, int]:
        """How many deliveries have each status (0 for none).

        Table Storage has no count, and a filter on ``status`` would scan the table anyway, so
        this is one query of the ``delivery`` rows selecting only their status, counted as its
        pages arrive: the service still scans the table, but the answer carries a few bytes per
        delivery rather than each delivery, and one scan serves all four statuses.
        """
        counts = dict.fromkeys(DELIVERY_STATUSES, 0)
        with self._errors("cannot count deliveries"):
            for entity in self._table.query_entities(
                "RowKey eq @row",
                parameters={"row": DELIVERY_ROW},
                select=["status"],
                results_per_page=self._page_size,
            ):
                status = entity["status"]
                counts[status] = counts.get(status, 0) + 1
        return counts

    def list(self, query: TicketQuery) -> TicketPage:
        """Tickets matching the query's filters, newest first, with the total that matched."""
        if query.limit < 0 or query.offset < 0:
            raise ValueError(f"limit and offset must be >= 0, got {query.limit}, {query.offset}")
        clauses = ["RowKey eq @row"]
        params: dict[str, Any] = {"row": TICKET_ROW}
        if query.priority is not None:
            clauses.append("priority eq @priority")
            params["priority"] = query.priority
        if query.needs_review is not None:
            clauses.append("needs_review eq @review")
            params["review"] = query.needs_review
        with self._errors("cannot list tickets"):
            keys = [
                (e["received_at"], e["PartitionKey"])
                for e in self._table.query_entities(
                    " and ".join(clauses),
                    parameters=params,
                    select=["PartitionKey", "received_at"],
                    results_per_page=self._page_size,
                )
            ]
        keys.sort(reverse=True)
        page = keys[query.offset : query.offset + query.limit]
        return TicketPage(items=[self.get(ticket_id) for _, ticket_id in page], total=len(keys))

    def close(self) -> None:
        """Close the table client's connections."""
        self._table.close()


def tickets_table_from_settings(settings: Any) -> TableTicketStore:
    """The store in the table `settings.azure_tickets_table`, by connection string or, with a
    managed identity, by account URL."""
    from azure.data.tables import TableClient

    options: dict[str, Any] = {
        "retry_total": settings.azure_storage_retries,
        "connection_timeout": settings.azure_storage_timeout_s,
        "read_timeout": settings.azure_storage_timeout_s,
    }
    conn = settings.azure_tables_connection_string
    if conn is not None:
        table = TableClient.from_connection_string(
            conn.get_secret_value(), settings.azure_tickets_table, **options
        )
    elif settings.azure_tables_account_url:
        from azure.identity import DefaultAzureCredential

        table = TableClient(
            settings.azure_tables_account_url,
            settings.azure_tickets_table,
            credential=DefaultAzureCredential(),
            **options,
        )
    else:
        raise StoreError(
            "the Functions app needs TICKET_ENRICH_AZURE_TABLES_CONNECTION_STRING or "
            "TICKET_ENRICH_AZURE_TABLES_ACCOUNT_URL"
        )
    return TableTicketStore(table)
