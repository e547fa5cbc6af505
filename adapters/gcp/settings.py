"""Google Cloud settings: the core's settings plus where the tickets and the outbox live."""

from __future__ import annotations

from pydantic import Field

from core.settings import Settings


class GcpSettings(Settings):
    """`core.settings.Settings` (same ``TICKET_ENRICH_`` prefix) with the Google Cloud names.

    The Google client libraries find the project and credentials themselves (the function's
    service account); ``FIRESTORE_EMULATOR_HOST`` is read by google-cloud-firestore, not here.
    """

    gcp_project: str | None = Field(
        None, description="Project id; default: the one the client libraries detect."
    )
    gcp_region: str = Field("europe-west1", description="Where the functions are deployed.")
    firestore_database: str = Field("(default)", description="The Firestore database id.")
    tickets_collection: str = Field("tickets", description="Firestore collection of tickets.")
    outbox_collection: str = Field(
        "ticket_outbox", description="Firestore collection of helpdesk deliveries."
    )
    rtdb_url: str | None = Field(
        None,
        description="Realtime Database URL (https://<instance>.firebaseio.com, or an emulator's "
        "http://host:port?ns=<namespace>); needed by the Realtime Database trigger only.",
    )
    rtdb_tickets_path: str = Field("tickets", description="Realtime Database path of tickets.")
    dead_letter_topic: str | None = Field(
        None,
        description="Pub/Sub topic (an id in the project, or projects/<p>/topics/<t>) that "
        "tickets which can never be enriched are published to with the reason; `ticket-enrich "
        "deploy gcp` creates it and sets it. Unset: they are only marked in their document.",
    )
    drain_budget_s: float = Field(
        45.0, gt=0, description="How long one run of the outbox drain may keep delivering."
    )
