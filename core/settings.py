"""The one settings object: the only reader of the environment (prefix `TICKET_ENRICH_`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, IPvAnyNetwork, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.enricher import EnrichOptions
from core.schema import Limits

if TYPE_CHECKING:
    from core.delivery import RetryPolicy


class Settings(BaseSettings):
    """Everything configurable, with defaults that run the local service on one machine.

    Build it where the process starts (`Settings()`), pass it down, and let explicit arguments
    (command-line options, test fixtures) override it; nothing reads the environment at import.
    """

    # Built on first instantiation rather than at import: the AWS and Azure adapters only ever
    # instantiate their subclasses, whose validators cover these fields too, so building this
    # class's own would be paid for nothing on their cold starts.
    model_config = SettingsConfigDict(env_prefix="TICKET_ENRICH_", extra="ignore", defer_build=True)

    models_dir: Path = Field(Path("models"), description="Where trained artifacts are written.")
    model_dir: Path | None = Field(
        None, description="The artifact to serve; default: the newest under models_dir."
    )
    database: Path = Field(Path("var/tickets.sqlite3"), description="The local SQLite store.")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # The local service's capacity: processes, and what each admits before it answers 503.
    workers: int = Field(
        0,
        ge=0,
        description="Worker processes of the local service; 0: one per usable CPU core "
        "(one where processes cannot fork).",
    )
    pin_workers: bool = Field(
        True,
        description="With one worker process per usable CPU core (as workers 0 gives), keep "
        "each on a core of its own (Linux): a worker's caches stay warm and the kernel does not "
        "move it between cores under load. False leaves placing them to the kernel.",
    )
    max_in_flight: int = Field(
        64,
        ge=1,
        description="Requests one worker holds at once (queued or running); past it the "
        "answer is 503 with Retry-After at once, so an overload never waits into a timeout.",
    )
    subject_max_bytes: int = Field(1024, gt=0)
    description_max_bytes: int = Field(64 * 1024, gt=0)
    ticket_max_bytes: int = Field(256 * 1024, gt=0)
    page_size_max: int = Field(200, gt=0)
    # Each enrichment field can be switched off; priority is always on.
    enrich_categories: bool = True
    enrich_resolution_time: bool = True
    enrich_similar: bool = True
    enrich_sentiment: bool = True
    enrich_language: bool = True
    enrich_tags: bool = True
    enrich_explanation: bool = True
    redact_pii: bool = Field(True, description="Store and push redacted subject and description.")
    enrich_rules: bool = Field(True, description="Apply the model's priority rules (rules.json).")
    # Delivery to a helpdesk stays off until one is configured; the secret has no default.
    deliver: bool = Field(False, description="Enqueue every new ticket for the helpdesk.")
    helpdesk_webhook_url: str | None = Field(None, description="Where the webhook POSTs tickets.")
    helpdesk_webhook_secret: SecretStr | None = Field(
        None, description="The HMAC-SHA256 key that signs each webhook request."
    )
    helpdesk: Literal["webhook", "zendesk", "freshdesk", "jira", "rt"] = Field(
        "webhook", description="Which helpdesk receives enriched tickets."
    )
    helpdesk_url: str | None = Field(
        None, description="The helpdesk's base URL (Zendesk, Freshdesk, Jira, RT)."
    )
    helpdesk_user: str | None = Field(None, description="Agent e-mail for Zendesk and Jira.")
    helpdesk_token: SecretStr | None = Field(
        None, description="API token (Zendesk, Jira, RT) or API key (Freshdesk)."
    )
    helpdesk_project: str | None = Field(None, description="Jira project key.")
    helpdesk_queue: str = Field("General", description="Request Tracker queue.")
    helpdesk_mapping: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the enrichment → helpdesk field mapping, as JSON.",
    )
    helpdesk_timeout_s: float = Field(10.0, gt=0)
    # What of the requester leaves with a ticket (helpdesk, webhook, logs): see core/identity.py.
    requester_sharing: Literal["full", "contact", "pseudonym", "none"] = Field(
        "contact",
        description="What of the requester leaves for the helpdesk: full (e-mail, name, tier), "
        "contact (e-mail and tier), pseudonym (a keyed pseudonym and tier) or none (tier).",
    )
    requester_pseudonym_key: SecretStr | None = Field(
        None, description="The HMAC key of requester pseudonyms (requester_sharing=pseudonym)."
    )
    helpdesk_default_requester: str | None = Field(
        None,
        description="The e-mail a Freshdesk ticket is created under when the ticket leaves "
        "without one (no requester, or requester_sharing pseudonym or none).",
    )
    delivery_retry_base_s: float = Field(1.0, ge=0)
    delivery_retry_cap_s: float = Field(300.0, ge=0)
    delivery_max_attempts: int = Field(12, ge=1)
    delivery_lease_s: float = Field(60.0, gt=0, description="Longer than helpdesk_timeout_s.")
    delivery_poll_interval_s: float = Field(1.0, gt=0)
    delivery_batch_size: int = Field(20, ge=1)
    # The pages (adapters/local): agents sign in with a name and a password whose scrypt hash
    # is configured here; machine clients of the JSON API send `X-API-Key`. Neither has a default.
    agents: dict[str, str] = Field(
        default_factory=dict,
        description="Agents who may sign in, as JSON: name → password hash "
        "(`python -m adapters.local.auth hash-password`).",
    )
    api_key: SecretStr | None = Field(
        None, description="The key machine clients send in X-API-Key to use the JSON API."
    )
    admins: list[str] = Field(
        default_factory=lambda: ["admin"],
        description="Agents who may also administer the service (edit the priority rules), as "
        "a JSON list of names; the API key may too. Default: the agent `ticket-enrich init` "
        "creates.",
    )
    session_secret: SecretStr | None = Field(
        None,
        description="Signs agents' session cookies; when unset a random one is drawn at start, "
        "so sessions end when the service restarts.",
    )
    session_max_age_s: int = Field(8 * 3600, gt=0, description="How long a sign-in lasts.")
    cookie_secure: bool = Field(
        False, description="Mark cookies Secure; turn on when the service is behind HTTPS."
    )
    agreement_window: int = Field(
        50, ge=1, description="The last N corrected tickets the agreement figure covers."
    )
    similar_url_template: str | None = Field(
        None,
        description="Link to a similar closed ticket, with {id} for its id, e.g. "
        "https://issues.apache.org/jira/secure/ViewIssue.jspa?id={id}",
    )
    events_poll_interval_s: float = Field(
        0.5, gt=0, description="How often the live queue looks for changes in the store."
    )
    # The anonymous customer form is limited per client address by a token bucket: a burst,
    # refilled at a sustained rate. Either one at 0 turns the limit off.
    customer_rate_burst: int = Field(
        5, ge=0, description="Tickets one address may send from the customer form at once."
    )
    customer_rate_per_hour: float = Field(
        30.0, ge=0, description="Tickets per hour one address may send from the customer form."
    )
    login_rate_burst: int = Field(
        10,
        ge=0,
        description="Agent sign-in attempts at once, per client address and per agent name "
        "(0: no limit).",
    )
    login_rate_per_hour: float = Field(
        60,
        ge=0,
        description="Sign-in attempts an hour past the burst, per address and per agent name.",
    )
    customer_rate_clients_max: int = Field(
        100_000,
        ge=1,
        description="Addresses whose buckets are remembered; beyond it the least recently "
        "seen are forgotten, so many addresses cannot grow memory without limit.",
    )
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Reverse proxies whose X-Forwarded-For is believed, as a JSON list of "
        'addresses or networks, e.g. ["127.0.0.1", "10.0.0.0/8"]; empty: the socket peer '
        "is the client.",
    )

    # The learning loop: drift monitoring, the model registry and promotion.
    registry_dir: Path | None = Field(
        None, description="The local model registry; default: models_dir/registry."
    )
    drift_psi_threshold: float = Field(
        0.25, gt=0, description="PSI at or above which a feature's drift alerts."
    )
    drift_window: int = Field(500, ge=1, description="Recent tickets the monitor profiles.")
    drift_min_tickets: int = Field(
        50, ge=1, description="Fewer recent tickets than this: too few to judge drift."
    )
    promotion_tolerance: float = Field(
        0.01,
        ge=0,
        description="How much worse (macro-F1, urgent recall) a challenger may be and still "
        "replace the production model.",
    )

    @property
    def limits(self) -> Limits:
        """The size limits every entry point enforces."""
        return Limits(self.subject_max_bytes, self.description_max_bytes, self.ticket_max_bytes)

    @property
    def enrich_options(self) -> EnrichOptions:
        """Which enrichment fields are on."""
        return EnrichOptions(
            categories=self.enrich_categories,
            resolution_time=self.enrich_resolution_time,
            similar=self.enrich_similar,
            sentiment=self.enrich_sentiment,
            language=self.enrich_language,
            tags=self.enrich_tags,
            explanation=self.enrich_explanation,
            redact=self.redact_pii,
            rules=self.enrich_rules,
        )

    @property
    def retry_policy(self) -> RetryPolicy:
        """How failed deliveries are retried."""
        # Imported here: only delivery needs it, and the scoring script never delivers.
        from core.delivery import RetryPolicy

        return RetryPolicy(
            base_s=self.delivery_retry_base_s,
            cap_s=self.delivery_retry_cap_s,
            max_attempts=self.delivery_max_attempts,
            lease_s=self.delivery_lease_s,
        )

    @property
    def model_registry_dir(self) -> Path:
        """The local model registry: `registry_dir` if set, else `models_dir/registry`."""
        return self.registry_dir if self.registry_dir is not None else self.models_dir / "registry"

    @property
    def serving_model_dir(self) -> Path:
        """The artifact to serve: `model_dir` if set, else `models_dir/latest`."""
        return self.model_dir if self.model_dir is not None else self.models_dir / "latest"

    @property
    def worker_processes(self) -> int:
        """How many worker processes serve: `workers`, or when it is 0 one per usable core
        (one where the workers could not be forked, as on Windows)."""
        if self.workers:
            return self.workers
        if not hasattr(os, "fork"):
            return 1
        usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        return max(1, len(usable) if usable is not None else os.cpu_count() or 1)
