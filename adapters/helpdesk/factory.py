"""The configured helpdesk client, built from settings in one place."""

from __future__ import annotations

from core.errors import TicketEnrichError
from core.ports import HelpdeskClient
from core.settings import Settings


def _required(settings: Settings, *names: str) -> list[str]:
    values = [getattr(settings, name) for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if value in (None, "")]
    if missing:
        needed = " and ".join(f"TICKET_ENRICH_{name.upper()}" for name in missing)
        raise TicketEnrichError(f"delivery to {settings.helpdesk} needs {needed}")
    return [v.get_secret_value() if hasattr(v, "get_secret_value") else v for v in values]


def helpdesk_from_settings(settings: Settings) -> HelpdeskClient:
    """The client for `settings.helpdesk`, with its credentials and field mapping, handing the
    helpdesk each ticket with its requester minimised as `settings.requester_sharing` says (see
    `core.identity`); a missing setting is named in the error rather than discovered at the
    first delivery."""
    from core.identity import RequesterMinimisingClient

    key = settings.requester_pseudonym_key
    if settings.requester_sharing == "pseudonym" and key is None:
        raise TicketEnrichError(
            "requester_sharing 'pseudonym' needs TICKET_ENRICH_REQUESTER_PSEUDONYM_KEY"
        )
    return RequesterMinimisingClient(
        _connector(settings),
        settings.requester_sharing,
        key.get_secret_value().encode() if key is not None else None,
    )


def _connector(settings: Settings) -> HelpdeskClient:
    from adapters.helpdesk.mapping import FieldMapping

    kind = settings.helpdesk
    timeout = settings.helpdesk_timeout_s
    if kind == "webhook":
        from adapters.helpdesk.webhook import WebhookClient

        url, secret = _required(settings, "helpdesk_webhook_url", "helpdesk_webhook_secret")
        return WebhookClient(url, secret, timeout)
    mapping = FieldMapping.from_dict(kind, settings.helpdesk_mapping)
    if kind == "zendesk":
        from adapters.helpdesk.zendesk import ZendeskClient

        url, user, token = _required(settings, "helpdesk_url", "helpdesk_user", "helpdesk_token")
        return ZendeskClient(url, user, token, mapping=mapping, timeout=timeout)
    if kind == "freshdesk":
        from adapters.helpdesk.freshdesk import FreshdeskClient

        url, token = _required(settings, "helpdesk_url", "helpdesk_token")
        return FreshdeskClient(
            url,
            token,
            mapping=mapping,
            timeout=timeout,
            default_requester_email=settings.helpdesk_default_requester,
        )
    if kind == "jira":
        from adapters.helpdesk.jira import JiraClient

        url, user, token, project = _required(
            settings, "helpdesk_url", "helpdesk_user", "helpdesk_token", "helpdesk_project"
        )
        return JiraClient(url, user, token, project, mapping=mapping, timeout=timeout)
    from adapters.helpdesk.rt import RTClient

    url, token = _required(settings, "helpdesk_url", "helpdesk_token")
    return RTClient(url, token, queue=settings.helpdesk_queue, mapping=mapping, timeout=timeout)
