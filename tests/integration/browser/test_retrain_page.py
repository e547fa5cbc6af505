"""The model page's card and retrain panel in headless Chromium: the confusion matrix drawn as
an SVG heat-map, a bad upload refused with its message, an export uploaded and retrained on,
the challenger beside the champion, and its promotion served at once."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from core import load_enricher
from tests.integration.browser.conftest import (
    AGENT,
    SCREENSHOTS,
    Service,
    desktop,
    running,
    sign_in,
)
from tests.support import write_tickets

EXPORTS = Path(__file__).parents[2] / "corpus" / "exports"
DESKTOP = {"width": 1440, "height": 900}
TRAINING_S = 120_000  # ms: a retrain of the small export takes a few seconds on a busy machine


def test_an_admin_retrains_from_an_upload_compares_and_promotes(
    browser: Browser, admin_service: Service, tmp_path: Path
) -> None:
    service = admin_service
    bad = tmp_path / "notes.txt"
    bad.write_text("subject,priority\nx,urgent\n")
    export = write_tickets(tmp_path / "closed.jsonl", rows=160, seed=11)
    # Its own enricher: promotion changes the served one in place.
    champion = service.api.get("/model").json()
    with desktop(browser) as context:
        page = context.new_page()
        sign_in(page, service.url)
        page.click("text=Model")
        page.wait_for_selector("body[data-ready=true][data-retrain-ready=true]")

        labels = champion["labels"]
        matrix = page.locator("svg#confusion-matrix")
        expect(matrix).to_be_visible()
        assert matrix.locator("g.cell").count() == len(labels) ** 2
        card = service.api.get("/admin/model").json()
        counts = card["test"]["confusion_matrix"]["matrix"]
        first = matrix.locator(f"g.cell[data-true='{labels[0]}'][data-predicted='{labels[0]}']")
        assert first.get_attribute("data-count") == str(counts[0][0])
        expect(page.locator("#per-class-table")).to_contain_text(labels[0])
        expect(page.locator("#model-card")).to_contain_text(str(champion["training_data"]["rows"]))
        # A webhook cannot be pulled from: that choice is off.
        expect(page.locator("#source-helpdesk")).to_be_disabled()

        page.set_input_files("#retrain-file", str(bad))
        page.click("#retrain-start")
        expect(page.locator("#retrain-job")).to_contain_text("unknown file type")

        page.set_input_files("#retrain-file", str(export))
        page.click("#retrain-start")
        page.wait_for_selector("#retrain-job[data-status=ready]", timeout=TRAINING_S)
        job = service.api.get("/admin/retrain").json()["job"]
        challenger = job["challenge"]["challenger"]
        table = page.locator("#comparison-table")
        expect(table).to_contain_text("macro-F1")
        expect(table).to_contain_text("auto-applied share")
        expect(table).to_contain_text(f"champion {champion['version']}")
        expect(table).to_contain_text(f"challenger {challenger}")
        expect(page.locator("#verdict")).to_contain_text(job["challenge"]["reason"])
        expect(page.locator("#job-read")).to_contain_text("Tickets read: 160")
        # For the README: the challenger's figures beside the champion's.
        page.locator("#retrain").screenshot(path=str(SCREENSHOTS / "retrain.png"))

        page.click("#promote")
        expect(page.locator("#decision")).to_contain_text(f"Promoted by {AGENT}")
        expect(page.locator("#model-summary")).to_contain_text(challenger)
        expect(page.locator("#model-card")).to_contain_text("production")
        assert service.api.get("/model").json()["version"] == challenger


def test_a_challenger_with_other_labels_is_shown_apart_and_promoted_once_the_admin_accepts(
    browser: Browser, admin_service: Service, tmp_path: Path
) -> None:
    service = admin_service
    champion = service.api.get("/model").json()
    with desktop(browser) as context:
        dashboard = context.new_page()
        sign_in(dashboard, service.url)
        expect(dashboard.locator("#filter-priority option")).to_have_count(3)  # any + 2
        page = context.new_page()
        page.goto(f"{service.url}/agent/model")
        page.wait_for_selector("body[data-ready=true][data-retrain-ready=true]")
        page.set_input_files("#retrain-file", str(EXPORTS / "zendesk.csv"))
        page.click("#retrain-start")
        page.wait_for_selector("#retrain-job[data-status=ready]", timeout=TRAINING_S)
        challenger = service.api.get("/admin/retrain").json()["job"]["challenge"]["challenger"]

        expect(page.locator("#retrain-result h3")).to_contain_text("Not like for like")
        expect(page.locator("#labels-added")).to_have_text("Labels added: high, low")
        expect(page.locator("#labels-removed")).to_have_text("Labels removed: none")
        table = page.locator("#comparison-table")
        expect(table).to_contain_text(f"champion {champion['version']} (its own test window)")
        expect(table).to_contain_text("urgent recall")
        expect(table).to_contain_text("not predicted")  # the champion has no "high"
        expect(page.locator("#verdict")).to_contain_text("no verdict")
        page.locator("#retrain").screenshot(path=str(SCREENSHOTS / "retrain-new-labels.png"))

        promote = page.locator("#promote")
        expect(promote).to_be_disabled()
        page.check("#accept-new-labels")
        expect(promote).to_be_enabled()
        promote.click()
        expect(page.locator("#decision")).to_contain_text(
            f"Promoted by {AGENT}, accepting new priority labels (added: high, low"
        )
        expect(page.locator("#model-summary")).to_contain_text("high, low, normal, urgent")
        assert service.api.get("/model").json()["version"] == challenger

        # The dashboard left open offers the served model's labels once its queue changes.
        service.api.post("/tickets", json={"subject": "Cluster down", "description": "x"})
        options = dashboard.locator("#filter-priority option")
        expect(options).to_have_count(5)
        assert options.all_text_contents() == ["any", "urgent", "high", "normal", "low"]


def test_an_agent_who_is_not_an_admin_sees_the_card_but_cannot_retrain(
    browser: Browser, small_model_dir: Path, tmp_path: Path, helpdesk_url: str, agent_hash: str
) -> None:
    export = write_tickets(tmp_path / "closed.jsonl", rows=60, seed=2)
    with (
        running(
            load_enricher(small_model_dir),
            tmp_path / "tickets.sqlite3",
            helpdesk_url,
            agent_hash,
            models_dir=tmp_path / "models",
        ) as service,
        desktop(browser) as context,
    ):
        page = context.new_page()
        sign_in(page, service.url)
        page.goto(f"{service.url}/agent/model")
        page.wait_for_selector("body[data-ready=true][data-retrain-ready=true]")
        expect(page.locator("svg#confusion-matrix")).to_be_visible()
        expect(page.locator("#retrain-start")).to_be_disabled()
        expect(page.locator("#retrain-hint")).to_contain_text("Only an admin")
        # The server refuses it too, whatever the page does.
        status = page.evaluate(
            """async (text) => {
              const form = new FormData();
              form.append("file", new Blob([text]), "closed.jsonl");
              const token = document.cookie.split("; ").find((c) => c.startsWith("te_csrf="));
              const response = await fetch("/admin/retrain/upload", { method: "POST", body: form,
                headers: { "X-CSRF-Token": decodeURIComponent(token.split("=")[1]) } });
              return response.status;
            }""",
            export.read_text(),
        )
        assert status == 403
        assert service.api.get("/admin/retrain").json()["job"] is None
