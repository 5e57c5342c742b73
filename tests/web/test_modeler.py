"""The modeler page (/modeler) in a real browser: edit a version in the properties panel, see
the server's diff in clinical words, deploy; the server's problems on their elements; the
diagram and the page's controls worked from the keyboard alone; what a coordinator sees;
accessibility. Deploying tests use a server of their own."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.api.conftest import Server, server_of_its_own

from .conftest import axe_violations, sign_in

PATHWAY = "lumbar_radiculopathy"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def modeling(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with server_of_its_own(
        request.param, tmp_path_factory.mktemp(f"modeler-{request.param}")
    ) as server:
        yield server


def open_version(page: Page, server: Server, version: int = 1, *, role: str = "modeler") -> None:
    sign_in(page, server, server.token("mo", role), next_page="/modeler")
    page.get_by_role("button", name=f"Open {PATHWAY} version {version}").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Editing {PATHWAY} version {version}")


def drill_down(page: Page, sub_process: str) -> None:
    """Open a collapsed sub-process's own diagram, as its drill-down button does."""
    page.locator(f'.djs-overlays[data-container-id="{sub_process}"] .bjs-drilldown').click()


def select_element(page: Page, element_id: str) -> None:
    page.locator(f'.djs-element[data-element-id="{element_id}"]').first.click(force=True)
    expect(page.locator("#bio-properties-panel-id")).to_have_value(element_id)


def test_a_timer_changed_in_the_properties_panel_is_named_in_the_diff_and_deploys(
    modeling: Server, page: Page
) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    open_version(page, modeling)
    drill_down(page, "conservative_care")
    select_element(page, "referral_two_week_timer")
    page.locator(".bio-properties-panel-group-header", has_text="Timer").first.click()
    value = page.locator("#bio-properties-panel-timerEventDefinitionValue")
    expect(value).to_have_value('"P14D" if disabling_pain else null')
    value.fill('"P10D" if disabling_pain else null')
    value.press("Tab")
    page.get_by_role("button", name="Compare with version 1").click()
    changes = page.locator("#changes")
    expect(changes).to_contain_text("14 days → 10 days")
    expect(page.locator("#changes-summary")).to_contain_text("1 change(s) from version 1")
    page.get_by_role("button", name="Deploy as a new version").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Deployed {PATHWAY} as version 2")
    expect(page.get_by_role("button", name=f"Open {PATHWAY} version 2")).to_be_visible()
    expect(page.locator("#versions")).to_contain_text("Version 2 (newest)")
    # the migration section offers version 1 → 2; the dry run answers (no running cases)
    expect(page.get_by_label("To version")).to_have_value("2")
    page.get_by_role("button", name="Dry run").click()
    expect(page.locator("#migration-status")).to_contain_text("no running cases on version 1")
    # The policy holds: the only refusals are the style attributes in the markup of the
    # properties panel's two containers (bpmn-js-properties-panel's own, style-src-attr).
    refused = [e for e in errors if "Content Security Policy" in e]
    assert all("inline style" in e for e in refused), refused
    assert len(refused) <= 2, refused


def test_the_align_menu_draws_its_icons_and_aligns_without_a_policy_refusal(
    site: Server, page: Page
) -> None:
    """bpmn-js writes its align and distribute icons with style attributes, which the policy
    refuses: they drew as black blocks. Now they draw as outlines with a half-tone shape, and
    opening the menu and aligning logs no refusal."""
    refused: list[str] = []
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    open_version(page, site)
    page.evaluate("() => new Promise(requestAnimationFrame)")  # the loading's messages are in
    loaded = len(refused)
    shapes = ("red_flag_screen", "red_flag_decision", "conservative_care")
    for n, element in enumerate(shapes):
        hit = page.locator(f'.djs-element[data-element-id="{element}"] .djs-hit').first
        hit.click(modifiers=["Shift"] if n else [])
    opener = page.locator('.djs-context-pad [data-action="align-elements"]')
    expect(opener.locator("svg rect").first).to_have_css("fill", "none")
    opener.click()
    menu = page.locator('[data-popup="align-elements"] .djs-popup')
    expect(menu.locator(".djs-popup-entry-icon svg")).to_have_count(8)
    for title in ("Align elements top", "Distribute elements horizontally"):
        rects = menu.locator(f'[title="{title}"] svg rect')
        expect(rects.first).to_have_css("fill", "none")
        expect(rects.first).to_have_css("stroke-width", "100px")
        expect(rects.last).to_have_css("opacity", "0.5")
    menu.locator('[title="Align elements top"]').click()
    expect(menu).to_have_count(0)
    tops = page.evaluate(
        """(ids) => ids.map((id) => document.querySelector(
            `.djs-element[data-element-id="${id}"] .djs-hit`).getBoundingClientRect().top)""",
        list(shapes),
    )
    assert max(tops) - min(tops) < 1, tops
    page.evaluate("() => new Promise(requestAnimationFrame)")
    assert refused[loaded:] == []


def test_a_broken_condition_is_shown_on_its_element_after_validation(
    modeling: Server, page: Page
) -> None:
    open_version(page, modeling)
    select_element(page, "flow_red_flag")
    page.locator(".bio-properties-panel-group-header", has_text="Condition").first.click()
    condition = page.locator("#bio-properties-panel-conditionExpression")
    expect(condition).to_have_value('red_flag != "none"')
    condition.fill("red_flag ==")
    condition.press("Tab")
    page.get_by_role("button", name="Validate on the server").click()
    expect(page.locator("#problems-summary")).to_contain_text("1 problem(s)")
    overlay = page.locator('.djs-overlays[data-container-id="flow_red_flag"] .server-problem')
    expect(overlay).to_contain_text("is not valid Python")
    marked = page.locator('.djs-element.has-server-problem[data-element-id="flow_red_flag"]')
    expect(marked).to_have_count(1)
    expect(page.locator("#problems")).to_contain_text("flow_red_flag")
    page.get_by_role("button", name="Show on the diagram").click()
    expect(page.locator("#bio-properties-panel-id")).to_have_value("flow_red_flag")


def test_a_coordinator_sees_the_pathways_but_no_deploy_action(site: Server, page: Page) -> None:
    open_version(page, site, role="coordinator")
    expect(page.locator(".djs-element").first).to_be_attached()
    for name in ("Deploy as a new version", "Validate on the server", "Dry run"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    html = page.content()
    assert "Deploy as a new version" not in html and "migrate-from" not in html
    with site.client("coordinator:co", "coordinator") as coordinator:
        refused = coordinator.post(
            "/definitions", files=[("files", ("x.bpmn", b"<x/>", "application/xml"))]
        )
    assert refused.status_code == 403


def test_the_modeler_page_has_no_serious_accessibility_violations(site: Server, page: Page) -> None:
    open_version(page, site)
    drill_down(page, "conservative_care")
    select_element(page, "referral_two_week_timer")
    violations = axe_violations(page)
    assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]][:5]) for v in violations]
    expect(page.get_by_label("Import a BPMN file into the editor")).to_be_attached()
    assert re.search(r"Modeler", page.title())


def tab_to(page: Page, target: Locator, key: str = "Tab", limit: int = 150) -> None:
    """Press Tab (or Shift+Tab) until ``target`` has the focus, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press(key)
        if target.evaluate("node => node === document.activeElement"):
            return
    raise AssertionError(f"{key} never reached {target}")


def position(page: Page, element_id: str) -> str | None:
    """Where an element is drawn (its group's transform)."""
    return page.locator(f'.djs-shape[data-element-id="{element_id}"]').get_attribute("transform")


def test_the_diagram_and_the_controls_are_worked_from_the_keyboard(
    site: Server, page: Page
) -> None:
    sign_in(page, site, site.token("mo", "modeler"), next_page="/modeler")
    opening = page.get_by_role("button", name=f"Open {PATHWAY} version 1")
    expect(opening).to_be_visible()
    tab_to(page, opening)
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text(f"Editing {PATHWAY} version 1")
    # The diagram takes the focus, named, with a focus ring a person can see.
    diagram = page.get_by_role("application", name=f"Diagram of {PATHWAY} version 1")
    expect(diagram).to_be_focused()
    expect(diagram).to_have_accessible_description(re.compile(r"^With the keyboard: Tab to"))
    expect(diagram).to_have_css("outline-style", "solid")
    expect(diagram).to_have_css("outline-width", "3px")
    # Before it, the editor's actions; Enter validates.
    for name in ("Deploy as a new version", "Compare with version 1", "Validate on the server"):
        tab_to(page, page.get_by_role("button", name=name), "Shift+Tab", limit=10)
    page.keyboard.press("Enter")
    expect(page.locator("#problems-summary")).to_have_text("No problems: it can be deployed.")
    tab_to(page, diagram, limit=10)

    # bpmn-js's shortcuts: find the red-flag screen and select it, move it, undo, redo.
    page.keyboard.press("Control+f")
    search = page.get_by_label("Search in diagram")
    expect(search).to_be_focused()
    search.press_sequentially("Red-flag screen")
    expect(page.locator(".djs-search-result").first).to_contain_text("Red-flag screen")
    page.keyboard.press("Enter")
    expect(page.locator("#bio-properties-panel-id")).to_have_value("red_flag_screen")
    expect(diagram).to_be_focused()
    before = position(page, "red_flag_screen")
    assert before and before.startswith("matrix(1 0 0 1 "), before
    x, y = (float(n) for n in before.removesuffix(")").split()[-2:])
    page.keyboard.press("Shift+ArrowDown")
    page.keyboard.press("Shift+ArrowDown")
    page.keyboard.press("ArrowRight")
    moved = f"matrix(1 0 0 1 {x + 1:g} {y + 20:g})"
    expect(page.locator('.djs-shape[data-element-id="red_flag_screen"]')).to_have_attribute(
        "transform", moved
    )
    for _ in range(3):
        page.keyboard.press("Control+z")
    expect(page.locator('.djs-shape[data-element-id="red_flag_screen"]')).to_have_attribute(
        "transform", before
    )
    page.keyboard.press("Control+y")
    expect(page.locator('.djs-shape[data-element-id="red_flag_screen"]')).to_have_attribute(
        "transform", f"matrix(1 0 0 1 {x:g} {y + 10:g})"
    )
    # Deleted with the keyboard, the step leaves the diagram; Ctrl+Z brings it back.
    page.keyboard.press("Delete")
    expect(page.locator('.djs-shape[data-element-id="red_flag_screen"]')).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(page.locator('.djs-shape[data-element-id="red_flag_screen"]')).to_have_count(1)

    # After the diagram and its properties: the migration's controls; Enter runs the dry run.
    for label in ("From version", "To version"):
        tab_to(page, page.get_by_label(label))
    tab_to(page, page.get_by_role("button", name="Dry run"), limit=2)
    tab_to(page, page.get_by_role("button", name="Migrate the cases that can move"), limit=2)
    tab_to(page, page.get_by_role("button", name="Dry run"), "Shift+Tab", limit=2)
    page.keyboard.press("Enter")
    expect(page.locator("#migration-status")).to_contain_text("the same")
