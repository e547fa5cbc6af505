"""Azure's settings: the core's, plus what the scoring script and the Functions app need."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from core.settings import Settings


class AzureSettings(Settings):
    """`core.settings.Settings` (prefix `TICKET_ENRICH_`) with the Azure adapter's fields.

    Build one per process where it starts (`init()` of the scoring script, the Functions app's
    first call) and pass it down; it is the only reader of the environment there too. The
    inference server's own `AZUREML_MODEL_DIR` is read here, under its own name.
    """

    model_config = SettingsConfigDict(
        env_prefix="TICKET_ENRICH_", extra="ignore", populate_by_name=True
    )

    azureml_model_dir: Path | None = Field(
        None,
        validation_alias=AliasChoices("AZUREML_MODEL_DIR", "azureml_model_dir"),
        description="Where Azure ML mounted the registered model (set by the inference server).",
    )
    azure_request_max_bytes: int = Field(
        1024 * 1024, gt=0, description="Largest scoring request body (one ticket or a list)."
    )
    azure_batch_max: int = Field(100, ge=1, description="Most tickets in one scoring request.")
    # Scoring logs: every request's redacted tickets and predictions, for retraining.
    azure_scoring_log_connection_string: SecretStr | None = Field(
        None, description="Blob Storage connection string for the scoring logs."
    )
    azure_scoring_log_account_url: str | None = Field(
        None,
        description="Blob Storage account URL for the scoring logs, with a managed identity "
        "(used when no connection string is set).",
    )
    azure_scoring_log_container: str = Field("scoring-logs", min_length=3, max_length=63)
    azure_scoring_log_prefix: str = Field("enrichments", description="Blob name prefix.")
    azure_scoring_log_queue_max: int = Field(
        1000, ge=1, description="Requests waiting to be logged; beyond this they are dropped."
    )
    azure_storage_timeout_s: float = Field(5.0, gt=0)
    azure_storage_retries: int = Field(2, ge=0)
    # The Functions front.
    azure_enrich_via: Literal["core", "endpoint"] = Field(
        "core", description="Enrich in the Function (core) or call the online endpoint."
    )
    azure_endpoint_url: str | None = Field(None, description="The online endpoint's scoring URI.")
    azure_endpoint_key: SecretStr | None = Field(None, description="The endpoint's key.")
    azure_endpoint_timeout_s: float = Field(10.0, gt=0)
    azure_tables_connection_string: SecretStr | None = Field(
        None, description="Storage connection string for the tickets and the outbox."
    )
    azure_tables_account_url: str | None = Field(
        None, description="Table Storage account URL, with a managed identity."
    )
    azure_drain_budget_s: float = Field(
        240.0, gt=0, description="How long one timer run keeps draining (under functionTimeout)."
    )
    azure_tickets_table: str = Field("tickets", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$")

    # The Blob Storage model registry (the retraining job, `rollout azure start --version`).
    azure_registry_connection_string: SecretStr | None = Field(
        None, description="Blob Storage connection string for the model registry."
    )
    azure_registry_account_url: str | None = Field(
        None, description="Blob Storage account URL of the registry, with a managed identity."
    )
    azure_registry_container: str = Field("models", min_length=3, max_length=63)
    # Where closed-ticket exports land; a new one starts a retraining job.
    azure_closed_tickets_container: str = Field("closed-tickets", min_length=3, max_length=63)

    # Where `ticket-enrich deploy azure` deploys the online endpoint.
    azure_subscription_id: str | None = None
    azure_resource_group: str | None = None
    azure_ml_workspace: str | None = None

    @property
    def scoring_model_dir(self) -> Path:
        """The artifact the scoring script serves: under `AZUREML_MODEL_DIR` when the server set
        it (the registered folder is one level down), else `serving_model_dir`."""
        if self.azureml_model_dir is None:
            return self.serving_model_dir
        root = self.azureml_model_dir
        if (root / "checksums.json").is_file():
            return root
        found = sorted(p.parent for p in root.glob("*/checksums.json"))
        # Zero or several candidates: hand back the root and let the artifact reader say why.
        return found[0] if len(found) == 1 else root
