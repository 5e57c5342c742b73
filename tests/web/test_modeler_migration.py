"""Moving running cases from the modeler page, as a modeler would: change a version
compatibly, deploy it, read the dry run's row for each case, start the migration, follow its
progress bar to the end; the API then shows each case on the new version, with a
``migrated`` event in its timeline. A server of its own: the test deploys a version."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.api.conftest import Server, server_of_its_own

from .test_case import in_conservative_care
from .test_modeler import PATHWAY, drill_down, open_version, select_element
from .test_pages import new_case


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def migrating(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with server_of_its_own(
        request.param, tmp_path_factory.mktemp(f"migrating-{request.param}")
    ) as server:
        yield server


def test_running_cases_move_to_a_compatible_new_version_from_the_modeler(
    migrating: Server, page: Page
) -> None:
    # Three cases at the red-flag screen and one waiting in conservative care.
    cases = [new_case(migrating, patient_ref=f"MRN-MOVE-{n}") for n in range(3)]
    cases.append(in_conservative_care(migrating))
    open_version(page, migrating)
    expect(page.locator("#versions")).to_contain_text("Version 1 (newest)")
    # A compatible change: the 2-week timer becomes 10 days; compared, then deployed.
    drill_down(page, "conservative_care")
    select_element(page, "referral_two_week_timer")
    page.locator(".bio-properties-panel-group-header", has_text="Timer").first.click()
    timer = page.locator("#bio-properties-panel-timerEventDefinitionValue")
    timer.fill('"P10D" if disabling_pain else null')
    timer.press("Tab")
    page.get_by_role("button", name="Compare with version 1").click()
    expect(page.locator("#changes-summary")).to_have_text("1 change(s) from version 1, 0 breaking.")
    page.get_by_role("button", name="Deploy as a new version").click()
    expect(page.locator("#status")).to_contain_text(f"Deployed {PATHWAY} as version 2")

    # The migration section offers 1 → 2 with the running counts; the dry run moves nothing.
    expect(page.get_by_label("From version")).to_have_value("1")
    expect(page.get_by_label("From version").locator("option:checked")).to_have_text(
        "Version 1 (4 running)"
    )
    expect(page.get_by_label("To version")).to_have_value("2")
    page.get_by_role("button", name="Dry run").click()
    status = page.locator("#migration-status")
    expect(status).to_have_text(
        "Dry run, nothing moved: 4 running case(s) on version 1; 4 can move to version 2, 0 cannot."
    )
    table = page.get_by_role("table", name=re.compile(r"^Dry run: each running case"))
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(4)
    for case_id in cases:
        row = rows.filter(has=page.get_by_role("link", name=case_id))
        expect(row.locator("td").first).to_have_text("can move")
    progress = page.get_by_role("progressbar", name="Migration progress")
    expect(progress).to_be_hidden()  # until a migration starts
    with migrating.client("ana", "coordinator") as client:
        assert {client.get(f"/cases/{c}").json()["definition_version"] for c in cases} == {1}

    # The migration: its progress bar fills, the live status says how many moved and stayed.
    page.get_by_role("button", name="Migrate the cases that can move").click()
    expect(progress).to_be_visible()
    expect(status).to_have_text(
        re.compile(
            r"^Migration \d+ finished: 4 case\(s\) moved to version 2, 0 left on version 1\.$"
        )
    )
    expect(progress).to_have_js_property("max", 4)
    expect(progress).to_have_js_property("value", 4)
    expect(page.locator("#migration-count")).to_have_text("4 of 4 case(s) done")
    moved = page.get_by_role("table", name=re.compile(r"^Migration from version 1 to version 2"))
    expect(moved.locator("tbody tr")).to_have_count(4)
    expect(moved.locator("tbody td:first-of-type", has_text="moved")).to_have_count(4)
    expect(page.get_by_label("From version").locator("option:checked")).to_have_text(
        "Version 1 (0 running)"
    )
    catalogue = page.locator("#versions")
    running = {"Version 1": "0", "Version 2 (newest)": "4"}  # the "Running cases" column
    for version, count in running.items():
        row = catalogue.locator("tr", has=page.get_by_text(version, exact=True))
        expect(row.locator("td").nth(2)).to_have_text(count)
    expect(page.get_by_role("button", name="Migrate the cases that can move")).to_be_enabled()

    # Over the API: every case is on version 2, a `migrated` event in its timeline.
    with migrating.client("ana", "coordinator") as client:
        for case_id in cases:
            case = client.get(f"/cases/{case_id}").json()
            assert (case["definition_version"], case["status"]) == (2, "active"), case
            events = client.get(f"/cases/{case_id}/timeline").json()
            migrated = [e for e in events if e["type"] == "migrated"]
            assert [e["actor"] for e in migrated] == ["mo"], events
