"""The worklist page: the queue as the API orders it, filters, marks, the clinic's time."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import Browser, Page, Route, expect

from tests.api.conftest import Server

from .conftest import ARTIFACTS, axe_violations, sign_in
from .test_pages import new_case


def item(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "case_id": "6f0c2b1e-0000-4000-8000-000000000001",
        "patient_ref": "MRN-A",
        "pathway": "lumbar_radiculopathy",
        "task": "mri_referral",
        "name": "MRI referral",
        "role": "clinician",
        "urgent": False,
        "due_at": None,
        "overdue": False,
        "ready_at": "2026-12-01T08:00:00Z",
        "escalated": False,
        "claimed_by": None,
        "claimed_at": None,
    }
    base.update(overrides)
    return base


def test_marks_are_text_and_due_times_are_in_the_clinics_zone(site: Server, page: Page) -> None:
    # The API's own answer, with what a fresh server cannot have yet (an overdue step).
    items = [
        item(urgent=True, overdue=True, due_at="2026-12-01T09:00:00Z", patient_ref="MRN-RED"),
        item(due_at="2026-07-01T21:30:00Z", patient_ref="MRN-SUMMER", escalated=True),
    ]

    def answer(route: Route) -> None:
        route.fulfill(
            status=200,
            content_type="application/json",
            body=json.dumps({"items": items, "total": 2, "limit": 100, "offset": 0}),
        )

    page.route(re.compile(r".*/worklist\?.*"), answer)
    sign_in(page, site, site.token("bo", "clinician"))
    rows = page.locator("#items tr")
    expect(rows).to_have_count(2)
    first, second = rows.nth(0), rows.nth(1)
    expect(first).to_contain_text("Red flag")
    expect(first).to_contain_text("Overdue")
    expect(second).to_contain_text("Escalated")
    expect(second).not_to_contain_text("Overdue")
    # Europe/Oslo: UTC+1 in winter, UTC+2 in summer (the late evening is the next day).
    expect(first.locator("time")).to_have_text("1 Dec 2026, 10:00")
    expect(second.locator("time")).to_have_text("1 Jul 2026, 23:30")
    expect(page.get_by_text("clinic's time zone, Europe/Oslo")).to_be_visible()
    assert axe_violations(page) == []


def test_the_filters_are_labelled_and_work_from_the_keyboard(site: Server, page: Page) -> None:
    new_case(site, patient_ref="MRN-FILTER")
    sign_in(page, site, site.token("bo", "clinician"))
    expect(page.get_by_role("table")).to_contain_text("MRN-FILTER")
    page.get_by_label("Role").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Overdue only")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Enter")  # submits the form
    page.wait_for_url(re.compile(r".*overdue=1.*"))
    expect(page.get_by_role("status")).to_have_text("Nothing is waiting for you.")
    expect(page.get_by_label("Overdue only")).to_be_checked()
    page.get_by_label("Role").select_option("coordinator")
    page.get_by_label("Overdue only").uncheck()
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r".*role=coordinator.*"))
    # bo is no coordinator: the API's refusal is shown, not an empty list.
    expect(page.get_by_role("status")).to_contain_text("do not hold the role coordinator")


def test_the_worklist_is_readable_at_200_percent_zoom(site: Server, browser: Browser) -> None:
    new_case(site, patient_ref="MRN-ZOOM")
    # 200% zoom of a 1280-pixel window: 640 CSS pixels across, each drawn twice as large.
    context = browser.new_context(viewport={"width": 640, "height": 900}, device_scale_factor=2)
    try:
        page = context.new_page()
        sign_in(page, site, site.token("bo", "clinician"))
        expect(page.get_by_role("table")).to_contain_text("MRN-ZOOM")
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"the page scrolls sideways at 200%: {widths}"
        expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"worklist-200-percent-{site.kind}.png"))
    finally:
        context.close()
