"""The case page: the diagram with the case's position, why a step is there, the step forms
(generated from the form in the diagram) with errors beside their fields, the worklist
opening a step's form, and the actions: moving a deadline and cancelling the case."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Page, expect

from tests.api.conftest import Server
from tests.data import GOOD_PLAN, NO_RED_FLAGS

from .conftest import ZONE, axe_violations, sign_in
from .test_pages import new_case

PLAN = GOOD_PLAN


def complete(client: httpx.Client, case_id: str, step: str, data: dict[str, Any]) -> None:
    version = client.get(f"/cases/{case_id}").json()["version"]
    done = client.post(
        f"/cases/{case_id}/tasks/{step}/complete",
        json={"data": data},
        headers={"If-Match": f'"{version}"'},
    )
    assert done.status_code == 200, done.text


def in_conservative_care(server: Server) -> str:
    """A case driven over the API to conservative care: the 6-week timer waits."""
    case_id = new_case(server, patient_ref="MRN-CONSERVATIVE")
    with server.client("cy", "clinician") as client:
        complete(client, case_id, "red_flag_screen", NO_RED_FLAGS)
        complete(client, case_id, "conservative_plan", PLAN)
    return case_id


def open_case(page: Page, server: Server, case_id: str, *roles: str) -> list[str]:
    """Sign in to the case page; the console's complaints (a CSP refusal, say) are returned,
    growing as the page goes on. The browser's own request for /favicon.ico (the service has
    none) is not the page's complaint."""
    complaints: list[str] = []
    page.on(
        "console",
        lambda message: (
            complaints.append(message.text)
            if message.type == "error"
            and not message.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )
    sign_in(page, server, server.token("bo", *roles), next_page=f"/cases/{case_id}")
    expect(page.get_by_role("heading", name=f"Case {case_id}")).to_be_visible()
    expect(page.locator("#diagram .djs-element").first).to_be_attached()
    return complaints


def test_ready_steps_are_highlighted_and_a_step_tells_why_it_is_there(
    site: Server, page: Page
) -> None:
    case_id = new_case(site)
    open_case(page, site, case_id, "clinician")
    diagram = page.locator("#diagram")
    expect(
        diagram.locator('.djs-element.is-ready[data-element-id="red_flag_screen"]')
    ).to_have_count(1)
    expect(diagram.locator('.djs-element.is-completed[data-element-id="intake"]')).to_have_count(1)
    expect(
        diagram.locator('.djs-connection.is-taken[data-element-id="flow_intake_screen"]')
    ).to_have_count(1)
    expect(page.get_by_role("heading", name="Red-flag screen", level=3)).to_be_visible()
    # Choosing the step in the diagram shows its rationale and evidence.
    diagram.locator('[data-element-id="red_flag_screen"]').first.click()
    why = page.locator("#why")
    expect(why).to_contain_text("Why this step: Red-flag screen")
    expect(why).to_contain_text("Before any conservative therapy, screen for conditions")
    expect(why.locator("blockquote")).to_contain_text("Before initiating conservative therapy")
    expect(why).to_contain_text("Praxis Medical Insights")
    expect(why).to_contain_text("Ready now.")


def test_the_six_week_timer_carries_its_due_date(site: Server, page: Page) -> None:
    case_id = in_conservative_care(site)
    with site.client("cy", "clinician") as client:
        deadline = next(
            d
            for d in client.get(f"/cases/{case_id}").json()["deadlines"]
            if d["kind"] == "reassessment_due_6_weeks"
        )
    open_case(page, site, case_id, "clinician")
    # Seen from the top, conservative care (collapsed) holds the waiting timer and its date.
    care = page.locator('#diagram .djs-element[data-element-id="conservative_care"]')
    expect(care).to_have_class(re.compile(r"\bis-current\b"))
    outside = page.locator('#diagram [data-host-deadline="reassessment_due_6_weeks"]')
    expect(outside).to_have_text(re.compile(r"^6 weeks of conservative care: Due "))
    # Opened, the subprocess shows the 6-week timer waiting, with its due date.
    page.get_by_role("button", name=re.compile(r"^Open Conservative care")).click()
    timer = page.locator('#diagram .djs-element[data-element-id="six_week_timer"]')
    expect(timer).to_have_class(re.compile(r"\bis-waiting\b"))
    badge = page.locator('#diagram .deadline-badge[data-deadline="reassessment_due_6_weeks"]')
    expect(badge).to_be_visible()
    expect(badge).to_have_text(re.compile(r"^Due \d{1,2} \w{3} \d{4}, \d\d:\d\d$"))
    assert deadline["status"] == "waiting"
    expect(page.locator("#deadlines")).to_contain_text("reassessment due 6 weeks")
    expect(page.locator("#record")).to_contain_text("activity_advice")
    expect(page.get_by_text("No step is waiting.")).to_be_visible()
    # The timer tells why it is there too.
    timer.first.click()
    expect(page.locator("#why")).to_contain_text("Waiting: due")


def test_the_case_page_has_no_serious_accessibility_violations(site: Server, page: Page) -> None:
    case_id = in_conservative_care(site)
    complaints = open_case(page, site, case_id, "clinician")
    page.get_by_text("Report a red flag").click()
    page.get_by_text("Add a note").click()
    for summary in page.get_by_text("Move this deadline").all():
        summary.click()
    page.get_by_text("Cancel the case", exact=True).click()
    page.get_by_label("Reason for cancelling").fill("Moved to another clinic.")
    page.get_by_role("button", name="Cancel the case…").click()
    expect(page.get_by_role("button", name="Yes, cancel the case")).to_be_visible()
    assert axe_violations(page) == []
    assert complaints == [], "the strict policy refused nothing the page needs"


def test_a_step_from_the_worklist_shows_errors_beside_fields_then_leaves_the_queue(
    site: Server, page: Page
) -> None:
    case_id = new_case(site, patient_ref="MRN-WORKLIST")
    sign_in(page, site, site.token("bo", "clinician"))
    page.get_by_role("link", name="Red-flag screen").click()
    page.wait_for_url(re.compile(rf".*/cases/{case_id}\?step=red_flag_screen$"))
    heading = page.get_by_role("heading", name="Red-flag screen", level=3)
    expect(heading).to_be_focused()
    form = page.locator("#step-red_flag_screen-form")
    # Every question answered but one: its error shows beside it, nothing is saved.
    fields = list(NO_RED_FLAGS)
    for field in fields[1:]:
        form.locator(f"#step-red_flag_screen-{field}-false").check()
    form.get_by_role("button", name="Complete Red-flag screen").click()
    error = form.locator("#step-red_flag_screen-urinary_retention_or_incontinence-error")
    expect(error).to_have_text("Error: is required")
    expect(form.locator(".form-message")).to_contain_text("1 error(s)")
    expect(form.locator('fieldset[data-field="fever"] .field-error')).to_be_hidden()
    group = form.locator('fieldset[data-field="urinary_retention_or_incontinence"]')
    expect(group).to_have_attribute("aria-invalid", "true")
    # Then correctly: the step is done and leaves the queue.
    form.locator(f"#step-red_flag_screen-{fields[0]}-false").check()
    form.get_by_role("button", name="Complete Red-flag screen").click()
    expect(page.get_by_role("status")).to_have_text("Red-flag screen completed.")
    expect(page.get_by_role("heading", name="Conservative plan", level=3)).to_be_visible()
    page.goto(f"{site.url}/")
    expect(page.get_by_role("table")).to_contain_text("Conservative plan")
    expect(page.get_by_role("link", name="Red-flag screen")).to_have_count(0)


def test_a_number_out_of_range_is_refused_beside_its_field(site: Server, page: Page) -> None:
    with site.client("ana", "coordinator") as client:
        created = client.post(
            "/cases", json={"pathway": "lumbar_radiculopathy", "patient_ref": "MRN-INTAKE"}
        )
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]
    sign_in(page, site, site.token("di", "coordinator"))
    page.get_by_role("link", name="Intake").click()
    form = page.locator("#step-intake-form")
    form.get_by_label("Side of the leg pain").select_option("left")
    form.get_by_label("Date the radicular symptoms began").fill("2026-11-01")
    form.get_by_label("Leg pain, numeric rating scale 0-10").fill("11")
    form.locator("#step-intake-disabling_pain-false").check()
    form.get_by_label("Age in years").fill("44")
    form.get_by_role("button", name="Complete Intake").click()
    error = form.locator("#step-intake-leg_pain_nrs-error")
    expect(error).to_contain_text("Error:")
    expect(form.get_by_label("Leg pain, numeric rating scale 0-10")).to_have_attribute(
        "aria-invalid", "true"
    )
    form.get_by_label("Leg pain, numeric rating scale 0-10").fill("7")
    form.get_by_role("button", name="Complete Intake").click()
    expect(page.get_by_role("status")).to_have_text("Intake completed.")
    with site.client("ana", "coordinator") as client:
        record = client.get(f"/cases/{case_id}").json()["record"]
    assert {"field": "leg_pain_nrs", "value": 7} in [
        {"field": r["field"], "value": r["value"]} for r in record
    ]


def test_a_case_changed_meanwhile_says_so_and_keeps_what_was_typed(
    site: Server, page: Page
) -> None:
    case_id = new_case(site, patient_ref="MRN-STALE")
    open_case(page, site, case_id, "clinician")
    form = page.locator("#step-red_flag_screen-form")
    form.locator("#step-red_flag_screen-fever-true").check()
    # Someone else moved the case on meanwhile: the API answers 409.
    page.route(
        re.compile(r".*/tasks/red_flag_screen/complete$"),
        lambda route: route.fulfill(
            status=409,
            content_type="application/problem+json",
            body='{"status": 409, "detail": "case is at version 9, not 1", "current_version": 9}',
        ),
    )
    form.get_by_role("button", name="Complete Red-flag screen").click()
    message = form.locator(".form-message")
    expect(message).to_contain_text("the case has changed since you opened it")
    page.unroute(re.compile(r".*/tasks/red_flag_screen/complete$"))
    page.get_by_role("button", name="Reload the case, keeping what you typed").click()
    expect(page.get_by_role("status")).to_contain_text("what you typed is kept")
    expect(page.locator("#step-red_flag_screen-fever-true")).to_be_checked()


def test_the_step_form_is_filled_and_sent_with_the_keyboard(site: Server, page: Page) -> None:
    case_id = new_case(site, patient_ref="MRN-KEYS")
    open_case(page, site, case_id, "clinician")
    page.locator("#step-red_flag_screen-heading").focus()
    page.keyboard.press("Tab")  # "Why this step"
    for _ in NO_RED_FLAGS:
        page.keyboard.press("Tab")  # to the group's first choice (Yes)
        page.keyboard.press("ArrowRight")  # No, chosen
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Complete Red-flag screen")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Red-flag screen completed.")
    expect(page.get_by_role("heading", name="Conservative plan", level=3)).to_be_visible()


def test_a_red_flag_and_a_note_are_sent_from_the_case_page(site: Server, page: Page) -> None:
    case_id = in_conservative_care(site)
    open_case(page, site, case_id, "clinician")
    page.get_by_text("Add a note").click()
    page.get_by_role("button", name="Add the note").click()
    expect(page.locator("#note-text-error")).to_contain_text("Error:")
    page.get_by_label("Note").fill("Phoned the patient: walking more.")
    page.get_by_role("button", name="Add the note").click()
    expect(page.locator("#timeline")).to_contain_text("Phoned the patient: walking more.")
    page.get_by_text("Report a red flag").click()
    form = page.locator("#red-flag-form")
    form.get_by_role("button", name="Report the red flag").click()
    expect(form.locator("#red-flag-data-error")).to_contain_text("report at least one finding")
    form.get_by_label("Fever (infection)").check()
    form.get_by_role("button", name="Report the red flag").click()
    expect(page.get_by_role("status")).to_have_text(
        "Red flag reported: the case moves to urgent care."
    )
    expect(page.locator("#timeline")).to_contain_text("message — red_flag_reported")
    expect(page.get_by_text("Report a red flag")).to_have_count(0)


def test_the_six_week_reassessment_is_moved_earlier_with_a_reason(site: Server, page: Page) -> None:
    case_id = in_conservative_care(site)
    open_case(page, site, case_id, "clinician")
    deadline = page.locator("#deadline-reassessment_due_6_weeks")
    deadline.get_by_text("Move this deadline").click()
    form = page.locator("#deadline-reassessment_due_6_weeks-form")
    # The limits the diagram gives, beside the field, in the clinic's time zone.
    expect(form).to_contain_text(f"New due date and time ({ZONE})")
    expect(form).to_contain_text("6 weeks after conservative care started")
    expect(form).to_contain_text("needs the clinician role")
    when = (datetime.now(UTC) + timedelta(days=14)).astimezone(ZoneInfo(ZONE))
    when = when.replace(hour=9, minute=30, second=0, microsecond=0)
    field = form.get_by_label(re.compile(r"^New due date and time"))
    field.fill(when.strftime("%Y-%m-%dT%H:%M"))
    # Without a reason: refused, the error beside the reason, nothing moved.
    form.get_by_role("button", name="Move reassessment due 6 weeks").click()
    error = form.locator("#deadline-reassessment_due_6_weeks-reason-error")
    expect(error).to_contain_text("Error:")
    expect(form.get_by_label(re.compile(r"^Reason for the move"))).to_have_attribute(
        "aria-invalid", "true"
    )
    form.get_by_label(re.compile(r"^Reason for the move")).fill("Pain worse: see sooner.")
    form.get_by_role("button", name="Move reassessment due 6 weeks").click()
    shown = rf"{when.day} {when.strftime('%b')}t? {when.year}, 09:30"
    expect(page.get_by_role("status")).to_have_text(
        re.compile(rf"^reassessment due 6 weeks moved to {shown}\.$")
    )
    outside = page.locator('#diagram [data-host-deadline="reassessment_due_6_weeks"]')
    expect(outside).to_have_text(re.compile(rf"^6 weeks of conservative care: Due {shown}$"))
    page.get_by_role("button", name=re.compile(r"^Open Conservative care")).click()
    badge = page.locator('#diagram .deadline-badge[data-deadline="reassessment_due_6_weeks"]')
    expect(badge).to_have_text(re.compile(rf"^Due {shown}$"))
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("deadline rescheduled")
    expect(timeline).to_contain_text("reason: Pain worse: see sooner.")
    expect(page.locator("#variances")).to_contain_text("conservative care shortened")
    with site.client("cy", "clinician") as client:
        due = next(
            d["due_at"]
            for d in client.get(f"/cases/{case_id}").json()["deadlines"]
            if d["kind"] == "reassessment_due_6_weeks"
        )
    assert datetime.fromisoformat(due) == when


def test_the_move_form_gives_the_dates_this_cases_limits_come_to(site: Server, page: Page) -> None:
    """A coordinator sees the latest date the 3-month referral may move to, as a date in the
    clinic's time zone, and the field goes no further; the 6-week reassessment's field starts
    at its earliest, which only a clinician may go before."""
    onset = date.today() - timedelta(days=10)
    case_id = new_case(site, patient_ref="MRN-LIMITS", symptom_onset=onset.isoformat())
    with site.client("cy", "clinician") as client:
        complete(client, case_id, "red_flag_screen", NO_RED_FLAGS)
        complete(client, case_id, "conservative_plan", PLAN)
        started = datetime.now(ZoneInfo(ZONE)).date()
        limits = {d["kind"]: d for d in client.get(f"/cases/{case_id}").json()["deadlines"]}
    year, month = divmod(onset.month - 1 + 3, 12)
    last_day = calendar.monthrange(onset.year + year, month + 1)[1]
    latest = date(onset.year + year, month + 1, min(onset.day, last_day))
    earliest = started + timedelta(weeks=6)
    zone = ZoneInfo(ZONE)
    assert datetime.fromisoformat(limits["referral_escalation_3_months"]["latest_at"]) == (
        datetime(latest.year, latest.month, latest.day, tzinfo=zone)
    )
    complaints = open_case(page, site, case_id, "coordinator")
    page.locator("#deadline-referral_escalation_3_months").get_by_text("Move this deadline").click()
    form = page.locator("#deadline-referral_escalation_3_months-form")
    shown = rf"{latest.day} {latest.strftime('%b')}t? {latest.year}, 00:00"
    expect(form).to_contain_text(re.compile(rf"Latest on this case: {shown}\."))
    expect(form).to_contain_text("3 months after symptom onset")
    field = form.get_by_label(re.compile(r"^New due date and time"))
    expect(field).to_have_attribute("max", f"{latest.isoformat()}T00:00")
    page.locator("#deadline-reassessment_due_6_weeks").get_by_text("Move this deadline").click()
    form = page.locator("#deadline-reassessment_due_6_weeks-form")
    shown = rf"{earliest.day} {earliest.strftime('%b')}t? {earliest.year}, 00:00"
    expect(form).to_contain_text(
        re.compile(rf"6 weeks after conservative care started \(on this case {shown}\)")
    )
    field = form.get_by_label(re.compile(r"^New due date and time"))
    expect(field).to_have_attribute("min", f"{earliest.isoformat()}T00:00")
    expect(field).not_to_have_attribute("max", re.compile(r"."))
    assert complaints == []


def test_a_case_is_cancelled_with_a_reason_after_a_confirmation(site: Server, page: Page) -> None:
    case_id = in_conservative_care(site)
    open_case(page, site, case_id, "coordinator")
    page.get_by_text("Cancel the case", exact=True).click()
    form = page.locator("#cancel-form")
    form.get_by_role("button", name="Cancel the case…").click()
    expect(form.locator("#cancel-reason-error")).to_contain_text("Error:")
    expect(form.get_by_role("button", name="Yes, cancel the case")).to_be_hidden()
    form.get_by_label(re.compile(r"^Reason for cancelling")).fill("Patient moved away.")
    form.get_by_role("button", name="Cancel the case…").click()
    # The confirmation can be declined, then given.
    form.get_by_role("button", name="No, keep the case").click()
    expect(form.get_by_role("button", name="Yes, cancel the case")).to_be_hidden()
    form.get_by_role("button", name="Cancel the case…").click()
    form.get_by_role("button", name="Yes, cancel the case").click()
    expect(page.get_by_role("status")).to_have_text("The case is cancelled.")
    expect(page.locator("#facts")).to_contain_text("cancelled")
    expect(page.locator("#facts")).to_contain_text("Patient moved away.")
    expect(page.locator("#no-actions")).to_have_text("This case is cancelled: no action remains.")
    expect(page.locator("#case form")).to_have_count(0)
    expect(page.locator("#case details.action")).to_have_count(0)
    expect(page.locator("#timeline")).to_contain_text("reason: Patient moved away.")
    with site.client("cy", "clinician") as client:
        assert client.get(f"/cases/{case_id}").json()["status"] == "cancelled"
