"""The rules page in headless Chromium: an admin sees the rules in force, sees a bad document's
errors beside the editor (nothing saved), saves a version that is in force at once, finds it in
the history and restores an earlier one; rule text is shown as text, never run; an agent who
is not an admin is told so and sees no rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from core import load_enricher
from core.rules import RULES_FORMAT
from tests.integration.browser.conftest import (
    AGENT,
    Service,
    desktop,
    running,
    screenshot,
    sign_in,
)

DESKTOP = {"width": 1280, "height": 900}
XSS = '<img src=x onerror="window.__xss = 1">'


def _spec(*rules: dict[str, Any]) -> str:
    return json.dumps(
        {"format": RULES_FORMAT, "version": "", "order": ["normal", "urgent"], "rules": list(rules)}
    )


ZEBRA = {
    "name": "zebra",
    "minimum": "urgent",
    "description": f"Herds {XSS}",
    "phrases": ["zebra stampede", XSS],
}
LLAMA = {"name": "llama", "minimum": "urgent", "phrases": ["llama parade"]}


def test_an_admin_edits_saves_and_restores_the_rules(
    browser: Browser, admin_service: Service, tmp_path: Path
) -> None:
    service = admin_service
    with desktop(browser, **DESKTOP) as context:
        page = context.new_page()
        sign_in(page, service.url)
        page.click("nav >> text=Rules")
        page.wait_for_selector("body[data-ready=true]")
        expect(page.locator("#rules-version")).to_have_attribute("data-version", "0")
        expect(page.locator("#rules-table")).to_contain_text("No rules.")

        # Errors show beside the editor, and nothing is saved.
        page.fill("#rules-editor", "{not json")
        page.click("#rules-save")
        expect(page.locator("#rules-errors")).to_contain_text("Not valid JSON")
        broken = {"name": "broken", "minimum": "urgent", "patterns": ["(unclosed"]}
        page.fill("#rules-editor", _spec(ZEBRA, broken))
        page.click("#rules-save")
        expect(page.locator("#rules-errors")).to_contain_text("rule 'broken'")
        expect(page.locator("#rules-editor")).to_have_attribute("aria-invalid", "true")
        assert service.api.get("/rules").json()["version"] == 0

        page.fill("#rules-editor", _spec(ZEBRA))
        page.click("#rules-save")
        expect(page.locator("#rules-saved")).to_contain_text("version 1")
        expect(page.locator("#rules-version")).to_have_attribute("data-version", "1")
        row = page.locator("#rules-table tr[data-rule=zebra]")
        expect(row).to_contain_text("at least urgent")
        # The rule's text is shown as written, and nothing in it runs.
        expect(row).to_contain_text(XSS)
        assert page.locator("#rules-table img").count() == 0
        assert page.evaluate("window.__xss") is None
        ticket = {"subject": "zebra stampede in the data centre", "description": "help"}
        enriched = service.api.post("/tickets", json=ticket).json()["enrichment"]
        assert enriched["priority"]["rules"] == ["zebra"]

        page.fill("#rules-editor", _spec(LLAMA))
        page.click("#rules-save")
        expect(page.locator("#rules-version")).to_have_attribute("data-version", "2")
        newest = page.locator("#rules-history tr[data-version='2']")
        expect(newest).to_contain_text("added llama; removed zebra")
        expect(newest).to_contain_text(AGENT)
        expect(newest).to_contain_text("in force")
        screenshot(page, "rules.png")  # for docs/pages.md

        page.click("#rules-history button[data-restore='1']")
        expect(page.locator("#rules-version")).to_have_attribute("data-version", "3")
        expect(page.locator("#rules-history tr[data-version='3']")).to_contain_text(
            "restored version 1"
        )
        expect(page.locator("#rules-table tr[data-rule=zebra]")).to_be_visible()
        assert service.api.get("/rules").json()["version"] == 3
        assert page.evaluate("window.__xss") is None


def test_an_agent_who_is_not_an_admin_sees_no_rules(
    browser: Browser, small_model_dir: Path, tmp_path: Path, helpdesk_url: str, agent_hash: str
) -> None:
    with (
        running(
            load_enricher(small_model_dir),
            tmp_path / "tickets.sqlite3",
            helpdesk_url,
            agent_hash,
            models_dir=tmp_path / "models",
            admins=[],
        ) as service,
        desktop(browser, **DESKTOP) as context,
    ):
        page = context.new_page()
        sign_in(page, service.url)
        page.goto(f"{service.url}/agent/rules")
        page.wait_for_selector("body[data-ready=true]")
        expect(page.locator("#rules-access")).to_contain_text("Only an admin")
        expect(page.locator("#rules-admin")).to_be_hidden()
