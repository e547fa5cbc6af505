"""Who may read and change what, over HTTP: the API key, agents' sessions and the CSRF check,
customers' status tokens."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.browser.conftest import AGENT, AGENT_PASSWORD, Service


def _signed_in(url: str) -> tuple[httpx.Client, str]:
    """A browser-like client signed in as the agent, and its CSRF token."""
    client = httpx.Client(base_url=url, timeout=30.0)
    client.get("/agent")
    anonymous_token = client.cookies["te_csrf"]
    response = client.post(
        "/agent/login",
        json={"name": AGENT, "password": AGENT_PASSWORD},
        headers={"X-CSRF-Token": anonymous_token},
    )
    assert response.status_code == 200, response.text
    token = client.cookies["te_csrf"]
    assert token != anonymous_token
    return client, token


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/tickets"),
        ("GET", "/tickets/some-id"),
        ("POST", "/tickets"),
        ("GET", "/tickets/some-id/feedback"),
        ("POST", "/tickets/some-id/feedback"),
        ("GET", "/feedback"),
        ("GET", "/outbox"),
        ("POST", "/outbox/some-id/retry"),
        ("GET", "/agent/queue"),
        ("GET", "/agent/tickets/some-id"),
        ("GET", "/agent/events"),
        ("GET", "/agent/config"),
    ],
)
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_the_api_needs_the_key_or_an_agent(
    service: Service, method: str, path: str, key: str | None
) -> None:
    headers = {} if key is None else {"X-API-Key": key}
    with httpx.Client(base_url=service.url, timeout=30.0, headers=headers) as client:
        response = client.request(method, path, json={"subject": "x", "label": "urgent"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_pages_model_and_health_are_open(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=30.0) as client:
        for path in ("/", "/agent", "/agent/model", "/status/x", "/model", "/healthz"):
            assert client.get(path).status_code == 200, path
        page = client.get("/agent")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_a_customer_sees_only_their_own_ticket(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=30.0) as customer:
        mine = customer.post("/customer/tickets", json={"subject": "Mine"}).json()
        theirs = customer.post("/customer/tickets", json={"subject": "Theirs"}).json()
        token = mine["status_token"]
        assert mine["status_url"] == f"/status/{mine['id']}#{token}"

        def read(ticket_id: str, token: str | None) -> httpx.Response:
            headers = {} if token is None else {"X-Status-Token": token}
            return customer.get(f"/customer/tickets/{ticket_id}", headers=headers)

        own = read(mine["id"], token)
        assert own.status_code == 200
        assert own.json()["subject"] == "Mine"
        assert set(own.json()) == {"id", "received_at", "subject", "description", "status"}
        assert read(theirs["id"], token).status_code == 404
        assert read(mine["id"], None).status_code == 404
        assert read(mine["id"], token[:-1]).status_code == 404
        assert read(mine["id"], theirs["status_token"]).status_code == 404
        assert customer.get(f"/tickets/{mine['id']}").status_code == 401
        # The store keeps a digest of the token, never the token.
        digest = service.store.status_digest(mine["id"])
        assert digest is not None and token not in digest


def test_the_customer_form_cannot_reach_a_ticket_by_its_external_id(service: Service) -> None:
    stored = service.api.post("/tickets", json={"subject": "Secret", "external_id": "ZD-1"})
    assert stored.status_code == 201
    with httpx.Client(base_url=service.url, timeout=30.0) as customer:
        response = customer.post(
            "/customer/tickets", json={"subject": "Secret", "external_id": "ZD-1"}
        )
    assert response.status_code == 422
    assert [p["field"] for p in response.json()["error"]["problems"]] == ["external_id"]
    assert "Secret" not in response.text.replace('"Secret"', "")
    assert service.api.get("/tickets").json()["total"] == 1


def test_state_changes_from_a_browser_need_the_csrf_token_of_the_session(
    service: Service,
) -> None:
    ticket_id = service.api.post("/tickets", json={"subject": "Disk full"}).json()["id"]
    client, token = _signed_in(service.url)
    path = f"/tickets/{ticket_id}/feedback"
    body = {"label": "urgent"}
    own_origin = service.url
    try:
        refused = [
            client.post(path, json=body),
            client.post(path, json=body, headers={"X-CSRF-Token": "guess"}),
            client.post(
                path, json=body, headers={"X-CSRF-Token": token, "Origin": "http://evil.test"}
            ),
            client.post(
                path, json=body, headers={"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"}
            ),
        ]
        assert [r.status_code for r in refused] == [403] * len(refused)
        assert {r.json()["error"]["code"] for r in refused} == {"csrf_refused"}
        assert service.api.get(path).json()["items"] == []

        accepted = client.post(
            path, json=body, headers={"X-CSRF-Token": token, "Origin": own_origin}
        )
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["agent"] == AGENT
        # A signed-in agent cannot record a correction in someone else's name.
        other = client.post(path, json={**body, "agent": "bob"}, headers={"X-CSRF-Token": token})
        assert other.status_code == 422

        # An anonymous double-submit token does not unlock a session.
        client.cookies.set("te_csrf", "chosen-by-attacker")
        forged = client.post(path, json=body, headers={"X-CSRF-Token": "chosen-by-attacker"})
        assert forged.status_code == 403
    finally:
        client.close()


def test_sign_in_refuses_wrong_passwords_and_unknown_agents_alike(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=30.0) as client:
        client.get("/agent")
        token = client.cookies["te_csrf"]
        answers = [
            client.post(
                "/agent/login",
                json={"name": name, "password": password},
                headers={"X-CSRF-Token": token},
            )
            for name, password in ((AGENT, "wrong"), ("mallory", AGENT_PASSWORD))
        ]
        without_token = client.post(
            "/agent/login", json={"name": AGENT, "password": AGENT_PASSWORD}
        )
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].json() == answers[1].json()
    assert "te_session" not in client.cookies
    assert without_token.status_code == 403


def test_feedback_through_the_api_key_names_the_agent_and_checks_labels(service: Service) -> None:
    created = service.api.post("/tickets", json={"subject": "Cluster down, data loss"}).json()
    predicted = created["enrichment"]["priority"]["label"]
    path = f"/tickets/{created['id']}/feedback"

    agreed = service.api.post(path, json={"label": predicted, "agent": "helpdesk-sync"})
    bad_label = service.api.post(path, json={"label": "whenever"})
    bad_target = service.api.post(path, json={"label": predicted, "target": "colour"})
    unknown = service.api.post("/tickets/nope/feedback", json={"label": predicted})
    resolution = created["enrichment"]["categories"]["resolution"]["label"]
    category = service.api.post(path, json={"label": resolution, "target": "resolution"})

    assert agreed.status_code == 201
    assert agreed.json()["agent"] == "helpdesk-sync"
    assert agreed.json()["agrees"] is True
    assert agreed.json()["agreement"]["rate"] == 1.0
    assert bad_label.status_code == 422
    assert [p["field"] for p in bad_label.json()["error"]["problems"]] == ["label"]
    assert bad_target.status_code == 422
    assert unknown.status_code == 404
    assert category.status_code == 201
    listed = service.api.get(path).json()["items"]
    assert {(c["target"], c["label"]) for c in listed} == {
        ("priority", predicted),
        ("resolution", resolution),
    }
