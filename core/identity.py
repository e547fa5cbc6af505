"""How much of the requester's identity leaves the service with a ticket.

A ticket may name its requester (e-mail, name, tier). The service keeps what it was given, since
the customer page and an agent need it, but what it hands a helpdesk, a webhook or a log is
reduced according to one setting, ``requester_sharing``:

- ``full``: e-mail, name and tier as given.
- ``contact`` (the default): e-mail and tier; the name stays behind. A helpdesk answers the
  customer at the e-mail address, and every one the product talks to shows the address when
  it has no name.
- ``pseudonym``: a stable pseudonym instead of the e-mail (``req_`` and 20 hex digits of an
  HMAC-SHA256 of the lower-cased address under ``requester_pseudonym_key``), and the tier. The
  receiver can group a requester's tickets without learning who they are; it cannot reply to
  them, so a helpdesk that needs an address gets its configured default requester.
- ``none``: the tier alone.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from core.ports import HelpdeskClient, HelpdeskRef, StoredTicket

RequesterSharing = Literal["full", "contact", "pseudonym", "none"]
SHARING_LEVELS: tuple[str, ...] = get_args(RequesterSharing)
PSEUDONYM_PREFIX = "req_"
_PSEUDONYM_HEX = 20


def pseudonym(email: str, key: bytes) -> str:
    """The requester's stable pseudonym: the same address (in any case) gives the same one."""
    digest = hmac.new(key, email.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:_PSEUDONYM_HEX]


def minimise_requester(
    requester: Any, sharing: RequesterSharing, key: bytes | None = None
) -> dict[str, Any] | None:
    """What of ``requester`` (a ticket's ``requester`` object) may leave at this sharing level;
    None when nothing is left. ``key`` is needed for ``pseudonym`` only."""
    if not isinstance(requester, Mapping):
        return None
    if sharing == "full":
        return dict(requester)
    kept: dict[str, Any] = {}
    email = requester.get("email")
    if sharing == "contact" and email:
        kept["email"] = email
    elif sharing == "pseudonym" and isinstance(email, str) and email:
        if not key:
            raise ValueError("requester_sharing 'pseudonym' needs requester_pseudonym_key")
        kept["id"] = pseudonym(email, key)
    if requester.get("tier"):
        kept["tier"] = requester["tier"]
    return kept or None


def shared_ticket(
    ticket: StoredTicket, sharing: RequesterSharing, key: bytes | None = None
) -> StoredTicket:
    """The stored ticket as it may leave the service: its requester minimised."""
    if sharing == "full" or "requester" not in ticket.ticket:
        return ticket
    body = {k: v for k, v in ticket.ticket.items() if k != "requester"}
    requester = minimise_requester(ticket.ticket["requester"], sharing, key)
    if requester is not None:
        body["requester"] = requester
    return replace(ticket, ticket=body)


@dataclass
class RequesterMinimisingClient:
    """A `core.ports.HelpdeskClient` that hands the wrapped client each ticket with its
    requester minimised; every other attribute (the pull and outcome methods some connectors
    have) is the wrapped client's."""

    inner: HelpdeskClient
    sharing: RequesterSharing
    key: bytes | None = None
    name: str = field(init=False)

    def __post_init__(self) -> None:
        if self.sharing == "pseudonym" and not self.key:
            raise ValueError("requester_sharing 'pseudonym' needs requester_pseudonym_key")
        self.name = self.inner.name

    def create_ticket(self, ticket: StoredTicket, idempotency_key: str) -> HelpdeskRef:
        """Create the helpdesk ticket from the minimised ticket, once."""
        shared = shared_ticket(ticket, self.sharing, self.key)
        return self.inner.create_ticket(shared, idempotency_key)

    def close(self) -> None:
        """Release the wrapped client's connections."""
        self.inner.close()

    def __getattr__(self, attribute: str) -> Any:
        if attribute == "inner":  # not set yet (a copy being built): no recursion
            raise AttributeError(attribute)
        return getattr(self.inner, attribute)
