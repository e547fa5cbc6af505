"""A customer and an agent in a real browser: the ticket form, the live queue, corrections."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.integration.browser.conftest import AGENT, Service, screenshot, sign_in

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


def _no_reload(page: Page) -> None:
    # A marker in the page's JavaScript world survives anything but a reload or a navigation.
    page.evaluate("window.__stillTheSamePage = true")


def _assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__stillTheSamePage === true"), "the page was reloaded"


def test_a_customer_ticket_reaches_the_live_queue_and_an_agent_corrects_it(
    browser: Browser, service: Service
) -> None:
    agent_context = browser.new_context(viewport=DESKTOP)
    customer_context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        agent = agent_context.new_page()
        sign_in(agent, service.url)
        expect(agent.locator("#who")).to_have_text(f"Signed in as {AGENT}")
        _no_reload(agent)

        customer = customer_context.new_page()
        customer.goto(service.url + "/")
        customer.wait_for_selector("body[data-ready=true]")
        customer.fill("#subject", "Production cluster down: cannot start after the upgrade")
        customer.fill(
            "#description",
            "Since this morning the NameNode crashes on start and we see data loss. "
            "Call me on +44 20 7946 0958 if you need access.",
        )
        customer.fill("#email", "dana@example.com")
        customer.fill("#name", "Dana Scully")
        customer.fill("#cf-product", "hdfs")
        screenshot(customer, "customer-form-phone.png")
        customer.click("#submit")
        expect(customer.locator("#confirmation")).to_be_visible()
        ticket_id = customer.locator("#confirmation-id").text_content()
        assert ticket_id
        status_link = customer.locator("#status-link").get_attribute("href")
        assert status_link and f"/status/{ticket_id}#" in status_link
        screenshot(customer, "customer-confirmation-phone.png")

        # The agent's queue shows it, enriched, without a reload.
        row = agent.locator(f"#queue-body tr[data-ticket-id='{ticket_id}']")
        expect(row).to_be_visible()
        stored = service.api.get(f"/tickets/{ticket_id}").json()
        predicted = stored["enrichment"]["priority"]["label"]
        expect(row.locator(".badge")).to_have_text(predicted)
        expect(row.locator(".subject-text")).to_have_text(
            "Production cluster down: cannot start after the upgrade"
        )
        # The helpdesk delivery lands too, and the queue follows it live.
        expect(row.locator("td").nth(4)).to_have_text("delivered")
        _assert_not_reloaded(agent)

        row.click()
        view = agent.locator("#ticket-view")
        expect(view.locator(".ticket-subject")).to_have_text(
            "Production cluster down: cannot start after the upgrade"
        )
        expect(view.locator(".probs meter")).to_have_count(2)
        # PII is redacted in what agents see and the helpdesk receives.
        expect(view.locator("pre.ticket-text")).not_to_contain_text("7946 0958")
        expect(view.get_by_role("link", name="HD-1")).to_have_attribute(
            "href", "https://helpdesk.example/t/HD-1"
        )
        screenshot(agent, "agent-ticket.png")

        # The agent corrects the priority; the correction is a label in the API.
        corrected = "normal" if predicted == "urgent" else "urgent"
        agent.select_option("#correction-label", corrected)
        agent.click("#correction-save")
        expect(agent.locator("#correction-note")).to_contain_text(f"priority is {corrected}")
        expect(agent.locator("#agreement")).to_contain_text("on 0 of the last 1 corrected")
        expect(row.locator(".agent-label")).to_have_text(corrected)
        _assert_not_reloaded(agent)

        feedback = service.api.get(f"/tickets/{ticket_id}/feedback").json()["items"]
        assert [(f["target"], f["label"], f["predicted"], f["agent"]) for f in feedback] == [
            ("priority", corrected, predicted, AGENT)
        ]
        everything = service.api.get("/feedback").json()
        assert everything["agreement"]["priority"] == {
            "target": "priority",
            "window": 50,
            "tickets": 1,
            "agreed": 0,
            "rate": 0.0,
        }

        # The customer follows their ticket through the private link.
        customer.goto(status_link)
        expect(customer.locator("#status-subject")).to_have_text(
            "Production cluster down: cannot start after the upgrade"
        )
        expect(customer.locator("#status-state")).to_have_text("With our support team.")
        screenshot(customer, "customer-status-phone.png")

        # Desktop screenshots of the customer page and the queue, for the docs.
        desktop = (
            customer_context.browser.new_context(viewport=DESKTOP)
            if customer_context.browser
            else None
        )
        if desktop is not None:
            wide = desktop.new_page()
            wide.goto(service.url + "/")
            wide.wait_for_selector("body[data-ready=true]")
            screenshot(wide, "customer-form.png")
            desktop.close()
    finally:
        customer_context.close()
        agent_context.close()


def test_re_enriched_and_new_tickets_appear_live_and_filters_apply(
    browser: Browser, service: Service
) -> None:
    first = _submit(service, "Cluster down, data loss in production")
    second = _submit(service, "Question about the configuration of the balancer")
    context = browser.new_context(viewport=DESKTOP)
    try:
        agent = context.new_page()
        sign_in(agent, service.url)
        _no_reload(agent)
        rows = agent.locator("#queue-body tr[data-ticket-id]")
        expect(rows).to_have_count(2)

        # Another model re-enriches the first ticket: the row changes in place.
        enrichment = dict(first["enrichment"])
        old = enrichment["priority"]["label"]
        new = "normal" if old == "urgent" else "urgent"
        enrichment["priority"] = {**enrichment["priority"], "label": new, "band": "low"}
        service.store.replace_enrichment(first["id"], enrichment)
        expect(agent.locator(f"tr[data-ticket-id='{first['id']}'] .badge")).to_have_text(new)

        third = _submit(service, "Typo in the shell documentation")
        expect(rows).to_have_count(3)
        expect(agent.locator(f"tr[data-ticket-id='{third['id']}']")).to_be_visible()
        _assert_not_reloaded(agent)

        # Filters: the low band holds only the re-enriched ticket; the queue sorts urgent first.
        agent.select_option("#filter-band", "low")
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-ticket-id", first["id"])
        agent.select_option("#filter-band", "")
        expect(rows).to_have_count(3)
        labels = [rows.nth(i).get_attribute("data-priority") for i in range(3)]
        assert labels == sorted(labels, key=lambda label: label != "urgent")
        for name, value in (("#filter-priority", "urgent"), ("#filter-priority", "normal")):
            agent.select_option(name, value)
            expected = sum(1 for label in labels if label == value)
            expect(rows).to_have_count(expected)
            for i in range(expected):
                expect(rows.nth(i)).to_have_attribute("data-priority", value)
        agent.select_option("#filter-priority", "")
        agent.select_option("#filter-review", "true")
        flagged = service.api.get("/tickets", params={"needs_review": "true"}).json()["total"]
        expect(rows).to_have_count(flagged)
        agent.select_option("#filter-review", "")
        agent.fill("#filter-language", "xx")
        expect(agent.locator("#queue-body")).to_contain_text("No ticket matches.")
        agent.fill("#filter-language", "")
        expect(rows).to_have_count(3)
        agent.select_option("#filter-delivery", "dead")
        expect(agent.locator("#queue-body")).to_contain_text("No ticket matches.")
        agent.select_option("#filter-delivery", "delivered")
        expect(rows).to_have_count(3)
        screenshot(agent, "agent-queue.png")
        assert "delivery_status=delivered" in agent.url
        _assert_not_reloaded(agent)
        del second
    finally:
        context.close()


def test_the_model_page_shows_version_data_and_the_report(
    browser: Browser, service: Service
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        sign_in(page, service.url)
        page.click("text=Model")
        page.wait_for_selector("body[data-ready=true]")
        model = service.api.get("/model").json()
        expect(page.locator("#model-summary")).to_contain_text(model["version"])
        expect(page.locator("#model-summary")).to_contain_text(model["training_data"]["file"])
        expect(page.locator("#metrics-table")).to_contain_text("macro-F1")
        image = page.locator("#confusion-matrix")
        expect(image).to_be_visible()
        assert image.evaluate("img => img.complete && img.naturalWidth > 0")
        screenshot(page, "model.png")
    finally:
        context.close()


def _submit(service: Service, subject: str) -> dict[str, Any]:
    response = service.api.post("/tickets", json={"subject": subject, "description": subject})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
