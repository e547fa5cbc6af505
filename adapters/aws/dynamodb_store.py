"""Tickets and their helpdesk deliveries in one DynamoDB table, behind the core's ports.

One table, key ``pk`` (string): ``ticket#<id>`` items hold a stored ticket (its ticket and
enrichment as JSON strings, so floats stay floats rather than Decimals), ``delivery#<id>`` items
its delivery. A new ticket and its delivery are written by one ``TransactWriteItems`` whose puts
are conditional on the key not existing, so a retried or duplicated event has one effect.
Pending and retrying deliveries carry ``due = "due"``, which puts them in the sparse index
``due`` sorted by ``next_attempt_at``; a worker leases one with a conditional update, so two
workers never send the same delivery at once. Delivered and dead ones drop out of the index.

Listing tickets and deliveries scans the table: they are operator tools, not on the hot path
(the AWS API serves `GET /tickets/{id}`, a consistent `GetItem`).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core.errors import StoreError, TicketNotFound
from core.ports import (
    DELIVERY_STATUSES,
    Delivery,
    HelpdeskRef,
    StoredTicket,
    TicketPage,
    TicketQuery,
)

DUE_INDEX = "due"
_DUE = "due"
_ACTIVE = ("pending", "retrying")

# The table as the SAM template declares it (tests create it from the template itself).
TABLE_DEFINITION: dict[str, Any] = {
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "due", "AttributeType": "S"},
        {"AttributeName": "next_attempt_at", "AttributeType": "N"},
    ],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": DUE_INDEX,
            "KeySchema": [
                {"AttributeName": "due", "KeyType": "HASH"},
                {"AttributeName": "next_attempt_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ],
    "BillingMode": "PAY_PER_REQUEST",
}


def _strict_json(value: Any) -> str:
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")  # a lone surrogate fails here, as a ValueError, before any write
    return text


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": repr(float(value))}


def _ticket_key(ticket_id: str) -> dict[str, dict[str, str]]:
    return {"pk": _s(f"ticket#{ticket_id}")}


def _delivery_key(ticket_id: str) -> dict[str, dict[str, str]]:
    return {"pk": _s(f"delivery#{ticket_id}")}


def _ticket_item(ticket: StoredTicket) -> dict[str, Any]:
    item: dict[str, Any] = {
        **_ticket_key(ticket.id),
        "kind": _s("ticket"),
        "id": _s(ticket.id),
        "received_at": _s(ticket.received_at),
        "needs_review": {"BOOL": bool(ticket.enrichment.get("needs_review", False))},
        "ticket": _s(_strict_json(ticket.ticket)),
        "enrichment": _s(_strict_json(ticket.enrichment)),
    }
    if ticket.external_id is not None:
        item["external_id"] = _s(ticket.external_id)
    priority = ticket.enrichment.get("priority", {}).get("label")
    if priority is not None:
        item["priority"] = _s(str(priority))
    return item


def _item_to_ticket(item: dict[str, Any]) -> StoredTicket:
    return StoredTicket(
        id=item["id"]["S"],
        external_id=item["external_id"]["S"] if "external_id" in item else None,
        received_at=item["received_at"]["S"],
        ticket=json.loads(item["ticket"]["S"]),
        enrichment=json.loads(item["enrichment"]["S"]),
    )


def _item_to_delivery(item: dict[str, Any]) -> Delivery:
    ref = None
    if "helpdesk_id" in item:
        ref = HelpdeskRef(
            system=item["helpdesk_system"]["S"],
            id=item["helpdesk_id"]["S"],
            url=item["helpdesk_url"]["S"] if "helpdesk_url" in item else None,
        )
    return Delivery(
        ticket_id=item["ticket_id"]["S"],
        status=item["status"]["S"],
        attempts=int(item["attempts"]["N"]),
        next_attempt_at=datetime.fromtimestamp(float(item["next_attempt_at"]["N"]), UTC),
        last_error=item["last_error"]["S"] if "last_error" in item else None,
        ref=ref,
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class DynamoDBTicketStore:
    """A `core.ports.TicketStore` and `core.ports.Outbox` on one DynamoDB table, through a
    boto3 DynamoDB client (low level, so numbers stay strings on the wire and floats never
    become Decimals)."""

    def __init__(self, client: Any, table: str, *, page_size: int | None = None) -> None:
        """``page_size`` caps the items one Scan request reads (None: DynamoDB's 1 MB pages)."""
        if page_size is not None and page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self._client = client
        self.table = table
        self._page_size = page_size

    # -- TicketStore ---------------------------------------------------------------------------

    def add(self, ticket: StoredTicket) -> tuple[StoredTicket, bool]:
        """Store the ticket unless its id exists; return the stored one and whether it is new.

        Raises ValueError, storing nothing, for content that is not strict JSON.
        """
        return self._add(ticket, None)

    def add_with_delivery(self, ticket: StoredTicket, now: datetime) -> tuple[StoredTicket, bool]:
        """Like `add`, and in the same transaction enqueue a delivery due at ``now`` when the
        ticket is new; a duplicate enqueues nothing."""
        return self._add(ticket, now)

    def _add(self, ticket: StoredTicket, deliver_at: datetime | None) -> tuple[StoredTicket, bool]:
        item = _ticket_item(ticket)
        new = "attribute_not_exists(pk)"
        try:
            if deliver_at is None:
                self._client.put_item(TableName=self.table, Item=item, ConditionExpression=new)
            else:
                at = deliver_at.timestamp()
                delivery = {
                    **_delivery_key(ticket.id),
                    "kind": _s("delivery"),
                    "ticket_id": _s(ticket.id),
                    "status": _s("pending"),
                    "attempts": {"N": "0"},
                    "next_attempt_at": _n(at),
                    "enqueued_at": _n(at),
                    "due": _s(_DUE),
                }
                self._client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self.table,
                                "Item": item,
                                "ConditionExpression": new,
                            }
                        },
                        {
                            "Put": {
                                "TableName": self.table,
                                "Item": delivery,
                                "ConditionExpression": new,
                            }
                        },
                    ]
                )
        except ClientError as exc:
            if not self._is_duplicate(exc):
                raise StoreError(f"cannot store ticket {ticket.id}: {exc}") from exc
            # On a conflict the first version wins: read it back rather than echo the argument.
            return self.get(ticket.id), False
        except BotoCoreError as exc:
            raise StoreError(f"cannot store ticket {ticket.id}: {exc}") from exc
        # The conditional put succeeded, so what is stored is exactly this item: reading it
        # back would cost a round trip (on every new ticket, the first one included) for the
        # same answer.
        return _item_to_ticket(item), True

    @staticmethod
    def _is_duplicate(exc: ClientError) -> bool:
        code = _error_code(exc)
        if code == "ConditionalCheckFailedException":
            return True
        if code == "TransactionCanceledException":
            reasons = exc.response.get("CancellationReasons", [])
            codes = {r.get("Code") for r in reasons} - {"None", None}
            return codes == {"ConditionalCheckFailed"}
        return False

    def get(self, ticket_id: str) -> StoredTicket:
        """The ticket with this id (a strongly consistent read), or `TicketNotFound`."""
        item = self._get_item(_ticket_key(ticket_id), f"ticket {ticket_id}")
        if item is None:
            raise TicketNotFound(ticket_id)
        return _item_to_ticket(item)

    def list(self, query: TicketQuery) -> TicketPage:
        """Tickets matching the query, newest first (a scan: for operators, not the hot path)."""
        if query.limit < 0 or query.offset < 0:
            raise ValueError(f"limit and offset must be >= 0, got {query.limit}, {query.offset}")
        condition = "kind = :kind"
        values: dict[str, Any] = {":kind": _s("ticket")}
        if query.priority is not None:
            condition += " AND priority = :priority"
            values[":priority"] = _s(query.priority)
        if query.needs_review is not None:
            condition += " AND needs_review = :review"
            values[":review"] = {"BOOL": query.needs_review}
        items = self._scan(condition, values, "tickets")
        items.sort(key=lambda i: i["received_at"]["S"], reverse=True)
        page = items[query.offset : query.offset + query.limit]
        return TicketPage(items=[_item_to_ticket(i) for i in page], total=len(items))

    # -- Outbox --------------------------------------------------------------------------------

    def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> builtins.list[tuple[Delivery, StoredTicket]]:
        """Lease up to ``limit`` pending or retrying deliveries due at ``now``, oldest first.

        The index is eventually consistent; the conditional update that takes the lease is not,
        so a delivery another worker holds, or one already finished, is skipped.
        """
        at = now.timestamp()
        claimed: builtins.list[tuple[Delivery, StoredTicket]] = []
        start: dict[str, Any] | None = None
        try:
            while len(claimed) < limit:
                page = self._client.query(
                    TableName=self.table,
                    IndexName=DUE_INDEX,
                    KeyConditionExpression="#due = :due AND next_attempt_at <= :now",
                    ExpressionAttributeNames={"#due": "due"},
                    ExpressionAttributeValues={":due": _s(_DUE), ":now": _n(at)},
                    Limit=max(limit * 2, 10),
                    **({"ExclusiveStartKey": start} if start else {}),
                )
                for key in page.get("Items", []):
                    if len(claimed) >= limit:
                        break
                    pair = self._lease(key["pk"], at, lease_until.timestamp())
                    if pair is not None:
                        claimed.append(pair)
                start = page.get("LastEvaluatedKey")
                if not start:
                    break
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot claim deliveries: {exc}") from exc
        return claimed

    def _lease(
        self, pk: dict[str, str], at: float, until: float
    ) -> tuple[Delivery, StoredTicket] | None:
        try:
            updated = self._client.update_item(
                TableName=self.table,
                Key={"pk": pk},
                UpdateExpression="SET lease_until = :until",
                ConditionExpression=(
                    "#due = :due AND next_attempt_at <= :now"
                    " AND (attribute_not_exists(lease_until) OR lease_until <= :now)"
                ),
                ExpressionAttributeNames={"#due": "due"},
                ExpressionAttributeValues={":due": _s(_DUE), ":now": _n(at), ":until": _n(until)},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        delivery = _item_to_delivery(updated["Attributes"])
        return delivery, self.get(delivery.ticket_id)

    def save(self, delivery: Delivery) -> None:
        """Record the outcome of an attempt and release the delivery's lease."""
        if delivery.status not in DELIVERY_STATUSES:
            raise ValueError(f"unknown delivery status {delivery.status!r}")
        sets = ["#status = :status", "attempts = :attempts", "next_attempt_at = :next"]
        removes = ["lease_until"]
        values: dict[str, Any] = {
            ":status": _s(delivery.status),
            ":attempts": {"N": str(delivery.attempts)},
            ":next": _n(delivery.next_attempt_at.timestamp()),
        }
        if delivery.status in _ACTIVE:
            sets.append("#due = :due")
            values[":due"] = _s(_DUE)
        else:
            removes.append("#due")
        optional = {
            "last_error": delivery.last_error,
            "helpdesk_system": None if delivery.ref is None else delivery.ref.system,
            "helpdesk_id": None if delivery.ref is None else delivery.ref.id,
            "helpdesk_url": None if delivery.ref is None else delivery.ref.url,
        }
        for name, value in optional.items():
            if value is None:
                removes.append(name)
            else:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = _s(value)
        try:
            self._client.update_item(
                TableName=self.table,
                Key=_delivery_key(delivery.ticket_id),
                UpdateExpression=f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#status": "status", "#due": "due"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return  # no such delivery (purged meanwhile): nothing to record, as in SQLite
            raise StoreError(f"cannot save delivery of {delivery.ticket_id}: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot save delivery of {delivery.ticket_id}: {exc}") from exc

    def delivery(self, ticket_id: str) -> Delivery | None:
        """The delivery of this ticket, if one was enqueued."""
        item = self._get_item(_delivery_key(ticket_id), f"delivery of {ticket_id}")
        return None if item is None else _item_to_delivery(item)

    def deliveries(self, status: str | None = None, limit: int = 100) -> builtins.list[Delivery]:
        """Deliveries, optionally of one status, in the order they were enqueued (a scan)."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        items = self._deliveries(status)
        items.sort(key=lambda i: float(i["enqueued_at"]["N"]))
        return [_item_to_delivery(i) for i in items[:limit]]

    def purge(self, status: str) -> int:
        """Forget every delivery of this status (the tickets stay); return how many."""
        if status not in ("delivered", "dead"):
            raise ValueError(f"only delivered or dead deliveries can be purged, not {status!r}")
        purged = 0
        for item in self._deliveries(status):
            try:
                self._client.delete_item(
                    TableName=self.table,
                    Key={"pk": item["pk"]},
                    ConditionExpression="#status = :status",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={":status": _s(status)},
                )
                purged += 1
            except ClientError as exc:
                if _error_code(exc) != "ConditionalCheckFailedException":
                    raise StoreError(f"cannot purge deliveries: {exc}") from exc
            except BotoCoreError as exc:
                raise StoreError(f"cannot purge deliveries: {exc}") from exc
        return purged

    def count_by_status(self) -> dict[str, int]:
        """How many deliveries have each status (0 for none).

        The table has no index by status (``due`` holds pending and retrying alike, without
        the status), so this is one paginated Scan that returns only each delivery's status:
        DynamoDB still reads, and bills, the whole table, but the answer carries a few bytes
        per delivery rather than each delivery, and one Scan serves all four statuses.
        """
        counts = dict.fromkeys(DELIVERY_STATUSES, 0)
        for item in self._scan_pages(
            "kind = :kind",
            {":kind": _s("delivery")},
            "deliveries",
            {"#status": "status"},
            projection="#status",
        ):
            status = item["status"]["S"]
            counts[status] = counts.get(status, 0) + 1
        return counts

    # -- helpers -------------------------------------------------------------------------------

    def _deliveries(self, status: str | None) -> builtins.list[dict[str, Any]]:
        condition = "kind = :kind"
        values: dict[str, Any] = {":kind": _s("delivery")}
        if status is not None:
            condition += " AND #status = :status"
            values[":status"] = _s(status)
        return self._scan(
            condition, values, "deliveries", {"#status": "status"} if status else None
        )

    def _get_item(self, key: dict[str, Any], what: str) -> dict[str, Any] | None:
        try:
            found = self._client.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot read {what}: {exc}") from exc
        item: dict[str, Any] | None = found.get("Item")
        return item

    def _scan(
        self,
        condition: str,
        values: dict[str, Any],
        what: str,
        names: dict[str, str] | None = None,
    ) -> builtins.list[dict[str, Any]]:
        return builtins.list(self._scan_pages(condition, values, what, names))

    def _scan_pages(
        self,
        condition: str,
        values: dict[str, Any],
        what: str,
        names: dict[str, str] | None = None,
        *,
        projection: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        options: dict[str, Any] = {}
        if names:
            options["ExpressionAttributeNames"] = names
        if projection is not None:
            options["ProjectionExpression"] = projection
        if self._page_size is not None:
            options["Limit"] = self._page_size
        start: dict[str, Any] | None = None
        try:
            while True:
                page = self._client.scan(
                    TableName=self.table,
                    FilterExpression=condition,
                    ExpressionAttributeValues=values,
                    ConsistentRead=True,
                    **options,
                    **({"ExclusiveStartKey": start} if start else {}),
                )
                yield from page.get("Items", [])
                start = page.get("LastEvaluatedKey")
                if not start:
                    return
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot list {what}: {exc}") from exc


def _attribute_bytes(value: dict[str, Any]) -> int:
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(str(data).encode("utf-8"))
    if kind == "N":
        return len(str(data)) // 2 + 1
    return 1  # BOOL


def ticket_item_bytes(ticket: StoredTicket) -> int:
    """The size DynamoDB bills for a ticket's item (names plus values, as its docs count them):
    each write costs one request unit per started KiB, a transactional write twice that."""
    return sum(len(name) + _attribute_bytes(value) for name, value in _ticket_item(ticket).items())
