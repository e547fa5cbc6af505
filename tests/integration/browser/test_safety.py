"""Untrusted ticket text renders as text and runs nothing; the browser's checks and the
server's give the same messages; a page on another site cannot act for a signed-in agent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from core.ports import Delivery, HelpdeskRef
from tests.integration.browser.conftest import Service, sign_in

HOSTILE_SUBJECTS = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>"]
HOSTILE_DESCRIPTION = '<img src=y onerror=alert(3)><b>bold</b><a href="javascript:alert(4)">x</a>'
HOSTILE_NAME = "<svg/onload=alert(5)>"


@contextmanager
def _serving_page(html: str) -> Iterator[str]:
    body = html.encode()

    class _Page(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _watch_dialogs(page: Page) -> list[str]:
    seen: list[str] = []

    def record(dialog: Dialog) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    # The watch works: a real alert is caught (and then forgotten).
    page.evaluate("alert('probe')")
    assert seen == ["probe"]
    seen.clear()
    return seen


def _no_markup_from_tickets(page: Page, scope: str) -> None:
    for selector in ("img", "script", "svg", "b", "a[href^='javascript']", "iframe"):
        expect(page.locator(f"{scope} {selector}")).to_have_count(0)


def test_hostile_ticket_text_shows_as_text_and_runs_nothing(
    browser: Browser, service: Service
) -> None:
    ids = []
    for subject in HOSTILE_SUBJECTS:
        response = service.api.post(
            "/tickets",
            json={
                "subject": subject,
                "description": HOSTILE_DESCRIPTION,
                "requester": {"name": HOSTILE_NAME},
            },
        )
        assert response.status_code == 201
        ids.append(response.json()["id"])
    context = browser.new_context()
    try:
        agent = context.new_page()
        dialogs = _watch_dialogs(agent)
        sign_in(agent, service.url)
        for ticket_id, subject in zip(ids, HOSTILE_SUBJECTS, strict=True):
            row = agent.locator(f"tr[data-ticket-id='{ticket_id}']")
            expect(row.locator(".subject-text")).to_have_text(subject)
        _no_markup_from_tickets(agent, "#queue-body")

        for ticket_id, subject in zip(ids, HOSTILE_SUBJECTS, strict=True):
            agent.locator(f"tr[data-ticket-id='{ticket_id}']").click()
            view = agent.locator("#ticket-view")
            expect(view.locator(".ticket-subject")).to_have_text(subject)
            expect(view.locator("pre.ticket-text")).to_have_text(HOSTILE_DESCRIPTION)
            expect(view).to_contain_text(HOSTILE_NAME)
            _no_markup_from_tickets(agent, "#ticket-view")

        # A helpdesk that answers with a javascript: URL gets no link.
        delivery = service.store.delivery(ids[0])
        assert delivery is not None
        service.store.save(
            Delivery(
                ticket_id=ids[0],
                status="delivered",
                attempts=delivery.attempts + 1,
                next_attempt_at=delivery.next_attempt_at,
                ref=HelpdeskRef("webhook", "EVIL-1", "javascript:alert(6)"),
            )
        )
        agent.locator(f"tr[data-ticket-id='{ids[0]}']").click()
        expect(agent.locator("#ticket-view")).to_contain_text("EVIL-1")
        expect(agent.locator("#ticket-view a", has_text="EVIL-1")).to_have_count(0)

        # The customer's side: the form and the status page.
        customer = context.new_page()
        customer_dialogs = _watch_dialogs(customer)
        customer.goto(service.url + "/")
        customer.wait_for_selector("body[data-ready=true]")
        customer.fill("#subject", HOSTILE_SUBJECTS[1])
        customer.fill("#description", HOSTILE_DESCRIPTION)
        customer.click("#submit")
        link = customer.locator("#status-link")
        expect(link).to_be_visible()
        customer.goto(link.get_attribute("href") or "")
        expect(customer.locator("#status-subject")).to_have_text(HOSTILE_SUBJECTS[1])
        expect(customer.locator("#status-description")).to_have_text(HOSTILE_DESCRIPTION)
        _no_markup_from_tickets(customer, "#ticket")

        # Everything above had its chance to run: nothing did.
        agent.wait_for_timeout(300)
        assert dialogs == []
        assert customer_dialogs == []
    finally:
        context.close()


# Bad tickets as the customer form would send them, and the field the server blames.
BAD_TICKETS: list[tuple[dict[str, Any], list[str]]] = [
    ({}, ["ticket"]),
    ({"subject": "   ", "description": "\n"}, ["ticket"]),
    ({"subject": "Help", "requester": {"email": "not-an-address"}}, ["requester.email"]),
    ({"subject": "Help", "requester": {"email": "a" * 250 + "@b.co"}}, ["requester.email"]),
    ({"subject": "Help", "requester": {"name": "n" * 257}}, ["requester.name"]),
    (
        {"subject": "Help", "requester": {"email": "bad", "name": "n" * 300}},
        ["requester.email", "requester.name"],
    ),
    ({"subject": "é" * 600}, ["subject"]),
    ({"subject": "Help", "description": "x" * (64 * 1024 + 1)}, ["description"]),
    ({"subject": "x" * 2000, "description": "y" * 70_000}, ["subject", "description"]),
    ({"subject": "x", "custom_fields": {"product": "z" * 270_000}}, ["ticket"]),
    ({"requester": {"email": "bad"}}, ["requester.email"]),
]


def test_the_browser_and_the_server_find_the_same_problems_with_the_same_messages(
    browser: Browser, small_service: Service
) -> None:
    context = browser.new_context()
    anonymous = httpx.Client(base_url=small_service.url, timeout=30.0)
    try:
        page = context.new_page()
        page.goto(small_service.url + "/")
        page.wait_for_selector("body[data-ready=true]")
        for ticket, fields in BAD_TICKETS:
            in_browser = page.evaluate("ticket => TicketForm.validate(ticket)", ticket)
            response = anonymous.post("/customer/tickets", json=ticket)
            assert response.status_code in (413, 422), response.text
            on_server = response.json()["error"]["problems"]
            assert [p["field"] for p in on_server] == fields
            assert in_browser == on_server, ticket

        # On the page: the browser's verdict and the server's (sent past the browser's checks)
        # read the same.
        page.fill("#subject", "Help")
        page.fill("#email", "not-an-address")
        page.click("#submit")
        problem = page.locator("#email-problem")
        expect(problem).to_have_text("E-mail is not an e-mail address.")
        expect(page.locator("#email")).to_have_attribute("aria-invalid", "true")
        page.evaluate("() => document.getElementById('email-problem').textContent = ''")
        page.evaluate(
            "ticket => TicketForm.send(ticket)",
            {"subject": "Help", "requester": {"email": "not-an-address"}},
        )
        expect(problem).to_have_text("E-mail is not an e-mail address.")
        page.fill("#email", "")
        page.fill("#subject", "")
        page.click("#submit")
        expect(page.locator("#form-problem")).to_have_text(
            "A ticket needs a non-empty subject or description."
        )
        assert small_service.api.get("/tickets").json()["total"] == 0
    finally:
        anonymous.close()
        context.close()


@pytest.mark.parametrize("how", ["form", "fetch"])
def test_a_page_on_another_site_cannot_act_for_a_signed_in_agent(
    browser: Browser, service: Service, how: str
) -> None:
    ticket_id = service.api.post("/tickets", json={"subject": "Disk full"}).json()["id"]
    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in(page, service.url)
        target = f"{service.url}/tickets/{ticket_id}/feedback"
        body = '{"label": "urgent", "target": "priority"}'
        if how == "form":
            attack = (
                f'<form method="POST" action="{target}" enctype="text/plain">'
                f"<input name='{body[:-1]}, \"x\": \"' value='\"}}'></form>"
                "<script>document.forms[0].submit()</script>"
            )
        else:
            attack = (
                "<script>fetch(" + repr(target) + ", {method: 'POST', credentials: 'include',"
                " mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: "
                + repr(body)
                + "}).finally(() => document.title = 'sent')</script>"
            )
        # Another site on this machine, served from a real loopback server (a page with no
        # address, or a public one, would be stopped by the browser's local-network rules before
        # the request left, and prove nothing about the service): localhost is not 127.0.0.1,
        # so it is another origin and another site.
        with (
            _serving_page(attack) as attacker,
            page.expect_response(lambda r: r.url == target) as answered,
        ):
            page.goto(attacker)
        assert answered.value.status == 403
        assert service.api.get(f"/tickets/{ticket_id}/feedback").json()["items"] == []
    finally:
        context.close()
