import pytest

from adapters.helpdesk.factory import helpdesk_from_settings
from core.errors import TicketEnrichError
from core.settings import Settings


@pytest.mark.parametrize(
    ("kind", "extra", "system"),
    [
        (
            "webhook",
            {"helpdesk_webhook_url": "http://127.0.0.1:9/h", "helpdesk_webhook_secret": "s"},
            "webhook",
        ),
        (
            "zendesk",
            {"helpdesk_url": "http://127.0.0.1:9", "helpdesk_user": "a@b.c", "helpdesk_token": "t"},
            "zendesk",
        ),
        ("freshdesk", {"helpdesk_url": "http://127.0.0.1:9", "helpdesk_token": "k"}, "freshdesk"),
        (
            "jira",
            {
                "helpdesk_url": "http://127.0.0.1:9",
                "helpdesk_user": "a@b.c",
                "helpdesk_token": "t",
                "helpdesk_project": "OPS",
            },
            "jira",
        ),
        (
            "rt",
            {
                "helpdesk_url": "http://127.0.0.1:9",
                "helpdesk_token": "t",
                "helpdesk_queue": "Support",
            },
            "rt",
        ),
    ],
)
def test_each_helpdesk_is_built_from_settings(
    kind: str, extra: dict[str, str], system: str
) -> None:
    client = helpdesk_from_settings(Settings(helpdesk=kind, **extra))  # type: ignore[arg-type]
    try:
        assert client.name == system
    finally:
        client.close()


def test_a_missing_credential_is_named() -> None:
    with pytest.raises(TicketEnrichError, match="TICKET_ENRICH_HELPDESK_TOKEN"):
        helpdesk_from_settings(
            Settings(helpdesk="zendesk", helpdesk_url="http://x", helpdesk_user="a@b.c")
        )
    with pytest.raises(TicketEnrichError, match="TICKET_ENRICH_HELPDESK_WEBHOOK_SECRET"):
        helpdesk_from_settings(Settings(helpdesk="webhook", helpdesk_webhook_url="http://x"))


def test_the_mapping_setting_overrides_the_defaults() -> None:
    client = helpdesk_from_settings(
        Settings(
            helpdesk="rt",
            helpdesk_url="http://127.0.0.1:9",
            helpdesk_token="t",
            helpdesk_mapping={"priorities": {"urgent": 99}},
        )
    )
    try:
        assert client.mapping.priorities["urgent"] == 99  # type: ignore[attr-defined]
    finally:
        client.close()
