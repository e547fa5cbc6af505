"""A customer and an agent in a real browser: the ticket form, the live queue, corrections."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.integration.browser.conftest import AGENT, Service, screenshot, sign_in

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
SUBJECT = "Production cluster down: NameNode cannot start after the upgrade"

_HADOOP_TICKETS = [
    (
        "DataNode deadlock under heavy write load",
        "Writers hang forever; jstack shows a deadlock "
        "between the block receiver and the heartbeat thread. The cluster is unusable.",
    ),
    ("Typo in the documentation of the balancer", "The page says 'bandwith'."),
    (
        "NameNode loses edits after a crash during checkpoint",
        "Data loss: the last edits "
        "written before the crash are gone after restart. Blocker for our release.",
    ),
    (
        "Add a configuration option for the balancer bandwidth",
        "It would be nice to set it per node.",
    ),
    ("Fix javadoc warnings in the build", "mvn javadoc:javadoc prints 40 warnings."),
]


def _mark(page: Page) -> None:
    # A value in the page's JavaScript world survives anything but a reload or a navigation.
    page.evaluate("window.__stillTheSamePage = true")


def _assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__stillTheSamePage === true"), "the page was reloaded"


def _submit(service: Service, subject: str, description: str = "") -> dict[str, Any]:
    response = service.api.post(
        "/tickets", json={"subject": subject, "description": description or subject}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_customer_ticket_reaches_the_live_queue_and_an_agent_corrects_it(
    browser: Browser, service: Service
) -> None:
    agent_context = browser.new_context(viewport=DESKTOP)
    customer_context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        agent = agent_context.new_page()
        sign_in(agent, service.url)
        expect(agent.locator("#who")).to_have_text(f"Signed in as {AGENT}")
        _mark(agent)

        customer = customer_context.new_page()
        customer.goto(service.url + "/")
        customer.wait_for_selector("body[data-ready=true]")
        customer.fill("#subject", SUBJECT)
        customer.fill(
            "#description",
            "Since this morning the NameNode crashes on start and we see data loss. "
            "Call me on +44 20 7946 0958 if you need access.",
        )
        customer.fill("#email", "dana@example.com")
        customer.fill("#name", "Dana Scully")
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
        priority = stored["enrichment"]["priority"]
        expect(row.locator(".badge")).to_have_text(priority["label"])
        expect(row.locator(".subject-text")).to_have_text(SUBJECT)
        # The helpdesk delivery lands too, and the queue follows it live.
        expect(row.locator("td").nth(4)).to_have_text("delivered")
        _assert_not_reloaded(agent)

        row.click()
        view = agent.locator("#ticket-view")
        expect(view.locator(".ticket-subject")).to_have_text(SUBJECT)
        expect(view.locator(".probs").first.locator("meter")).to_have_count(
            len(priority["probabilities"])
        )
        expect(view).to_contain_text("resolution time")
        expect(view.locator("ol.similar li")).to_have_count(len(stored["enrichment"]["similar"]))
        first_similar = stored["enrichment"]["similar"][0]["id"]
        expect(view.locator("ol.similar a").first).to_have_attribute(
            "href", f"https://issues.apache.org/jira/secure/ViewIssue.jspa?id={first_similar}"
        )
        # Personal data is redacted in what agents see and the helpdesk receives.
        expect(view.locator("pre.ticket-text")).not_to_contain_text("7946 0958")
        expect(view.get_by_role("link", name="HD-1")).to_have_attribute(
            "href", "https://helpdesk.example/t/HD-1"
        )
        screenshot(agent, "agent-ticket.png")

        # The agent corrects the priority; the correction is a label in the API.
        corrected = next(label for label in priority["probabilities"] if label != priority["label"])
        agent.select_option("#correction-label", corrected)
        agent.click("#correction-save")
        expect(agent.locator("#correction-note")).to_contain_text(f"priority is {corrected}")
        expect(agent.locator("#agreement")).to_contain_text("on 0 of the last 1 corrected")
        expect(row.locator(".agent-label")).to_have_text(corrected)
        _assert_not_reloaded(agent)

        feedback = service.api.get(f"/tickets/{ticket_id}/feedback").json()["items"]
        assert [(f["target"], f["label"], f["predicted"], f["agent"]) for f in feedback] == [
            ("priority", corrected, priority["label"], AGENT)
        ]
        assert service.api.get("/feedback").json()["agreement"]["priority"] == {
            "target": "priority",
            "window": 50,
            "tickets": 1,
            "agreed": 0,
            "rate": 0.0,
        }

        # The customer follows their ticket through the private link.
        customer.goto(status_link)
        expect(customer.locator("#status-subject")).to_have_text(SUBJECT)
        expect(customer.locator("#status-state")).to_have_text("With our support team.")
        screenshot(customer, "customer-status-phone.png")
    finally:
        customer_context.close()
        agent_context.close()


def test_the_customer_form_asks_for_the_models_custom_fields(
    browser: Browser, small_service: Service
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(small_service.url + "/")
        page.wait_for_selector("body[data-ready=true]")
        page.fill("#subject", "Cluster down after the upgrade")
        page.fill("#cf-product", "hdfs")
        screenshot(page, "customer-form.png")
        page.click("#submit")
        expect(page.locator("#confirmation")).to_be_visible()
        ticket_id = page.locator("#confirmation-id").text_content()
        stored = small_service.api.get(f"/tickets/{ticket_id}").json()
        assert stored["ticket"]["custom_fields"] == {"product": "hdfs"}
        assert stored["ticket"]["channel"] == "web"
    finally:
        context.close()


def test_re_enriched_and_new_tickets_appear_live_and_filters_apply(
    browser: Browser, service: Service
) -> None:
    first = _submit(service, *_HADOOP_TICKETS[0])
    _submit(service, *_HADOOP_TICKETS[1])
    context = browser.new_context(viewport=DESKTOP)
    try:
        agent = context.new_page()
        sign_in(agent, service.url)
        _mark(agent)
        rows = agent.locator("#queue-body tr[data-ticket-id]")
        expect(rows).to_have_count(2)

        # Another model re-enriches the first ticket: the row changes in place.
        enrichment = dict(first["enrichment"])
        labels = list(enrichment["priority"]["probabilities"])
        new = next(label for label in labels if label != enrichment["priority"]["label"])
        enrichment["priority"] = {**enrichment["priority"], "label": new, "band": "high"}
        service.store.replace_enrichment(first["id"], enrichment)
        expect(agent.locator(f"tr[data-ticket-id='{first['id']}'] .badge")).to_have_text(new)

        created = [_submit(service, *ticket) for ticket in _HADOOP_TICKETS[2:]]
        expect(rows).to_have_count(len(_HADOOP_TICKETS))
        for ticket in created:
            expect(agent.locator(f"tr[data-ticket-id='{ticket['id']}']")).to_be_visible()
        _assert_not_reloaded(agent)

        # Most pressing first, then oldest first.
        order = service.api.get("/agent/config").json()["priority_order"]
        listed = service.api.get("/tickets").json()["items"]
        received = {t["id"]: t["received_at"] for t in listed}
        shown = [rows.nth(i).get_attribute("data-ticket-id") for i in range(rows.count())]
        keys = [
            (order.index(rows.nth(i).get_attribute("data-priority")), received[ticket_id])
            for i, ticket_id in enumerate(shown)
        ]
        assert keys == sorted(keys)

        # Every filter narrows the queue to what the API says matches it.
        filters = [
            ("#filter-band", "high", {"band": "high"}),
            ("#filter-review", "true", {"needs_review": "true"}),
            ("#filter-priority", order[-1], {"priority": order[-1]}),
            ("#filter-delivery", "dead", {"delivery_status": "dead"}),
            ("#filter-delivery", "delivered", {"delivery_status": "delivered"}),
        ]
        narrowed = 0
        for selector, value, params in filters:
            expect(rows.first.locator("td").nth(4)).to_have_text("delivered")
            agent.select_option(selector, value)
            expected = service.api.get("/agent/queue", params=params).json()["items"]
            narrowed += len(expected) < len(_HADOOP_TICKETS)
            if expected:
                expect(rows).to_have_count(len(expected))
                for i, item in enumerate(expected):
                    expect(rows.nth(i)).to_have_attribute("data-ticket-id", item["id"])
            else:
                expect(agent.locator("#queue-body")).to_contain_text("No ticket matches.")
            agent.select_option(selector, "")
            expect(rows).to_have_count(len(_HADOOP_TICKETS))
        # The high band holds only the re-enriched ticket; no ticket was ever dead.
        assert narrowed >= 2
        agent.fill("#filter-language", "de")
        expect(agent.locator("#queue-body")).to_contain_text("No ticket matches.")
        agent.fill("#filter-language", "en")
        expect(rows).to_have_count(len(_HADOOP_TICKETS))
        assert "language=en" in agent.url
        agent.fill("#filter-language", "")
        expect(rows).to_have_count(len(_HADOOP_TICKETS))
        agent.locator("#filter-language").blur()

        rows.first.click()
        expect(agent.locator("#ticket-view .ticket-subject")).to_be_visible()
        screenshot(agent, "agent-queue.png", full_page=False)
        _assert_not_reloaded(agent)
    finally:
        context.close()


def test_the_model_page_shows_version_data_and_the_report(
    browser: Browser, service: Service
) -> None:
    stored = service.api.post(
        "/tickets", json={"subject": "Quota exceeded", "description": "Jobs fail at submit"}
    ).json()
    confirmed = service.api.post(
        f"/tickets/{stored['id']}/feedback",
        json={"target": "priority", "label": stored["enrichment"]["priority"]["label"]},
    )
    assert confirmed.status_code == 201, confirmed.text
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        sign_in(page, service.url)
        page.click("text=Model")
        page.wait_for_selector("body[data-ready=true]")
        model = service.api.get("/model").json()
        quality = page.locator("#quality-table")
        expect(quality).to_contain_text(model["version"])
        expect(quality).to_contain_text("agreement")
        summary = page.locator("#model-summary")
        expect(summary).to_contain_text(model["version"])
        expect(summary).to_contain_text(model["training_data"]["file"])
        expect(summary).to_contain_text(str(model["training_data"]["rows"]))
        expect(page.locator("#metrics-table")).to_contain_text("macro-F1")
        # Drawn as an SVG heat-map by the page, one cell per pair of labels.
        image = page.locator("svg#confusion-matrix")
        expect(image).to_be_visible()
        assert image.locator("g.cell").count() == len(model["labels"]) ** 2
        screenshot(page, "model.png")
    finally:
        context.close()
