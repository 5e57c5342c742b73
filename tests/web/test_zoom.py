"""The case page and the modeler at 200% zoom: a 1280×900 window zoomed to 200% is 640×450
CSS pixels, each drawn twice as large. Neither the page's text nor its tables scroll
sideways, and the controls a person needs are there, whole, and work."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.api.conftest import Server
from tests.data import NO_RED_FLAGS

from .conftest import ARTIFACTS, sign_in
from .test_pages import new_case

PATHWAY = "lumbar_radiculopathy"


@pytest.fixture
def zoomed(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a 1280×900 window at 200% zoom; its screenshot is left in tests/artifacts/."""
    context = browser.new_context(viewport={"width": 640, "height": 450}, device_scale_factor=2)
    page = context.new_page()
    try:
        yield page
        ARTIFACTS.mkdir(exist_ok=True)
        name = request.node.name.replace("[", "_").replace("]", "")
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    finally:
        context.close()


def assert_no_sideways_scrolling(page: Page) -> None:
    """Neither the page nor a table's box scrolls sideways: every line of text is whole."""
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]"
    )
    assert max(widths[:2]) <= widths[2], f"the page scrolls sideways at 200%: {widths}"
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('.table-scroll')]
            .filter((box) => box.offsetParent && box.scrollWidth > box.clientWidth)
            .map((box) => [box.id || box.firstElementChild.id, box.scrollWidth, box.clientWidth])"""
    )
    assert boxes == [], f"tables scroll sideways at 200%: {boxes}"


def assert_usable(control: Locator) -> None:
    """In view once scrolled to, whole (not cut off at the window's edge), and enabled."""
    control.scroll_into_view_if_needed()
    expect(control).to_be_in_viewport(ratio=1)
    expect(control).to_be_enabled()


def test_the_case_page_is_readable_and_works_at_200_percent_zoom(
    site: Server, zoomed: Page
) -> None:
    case_id = new_case(site, patient_ref="MRN-ZOOM-CASE")
    sign_in(zoomed, site, site.token("bo", "clinician"), next_page=f"/cases/{case_id}")
    expect(zoomed.get_by_role("heading", name=f"Case {case_id}")).to_be_visible()
    expect(zoomed.locator("#diagram .djs-element").first).to_be_attached()
    assert_no_sideways_scrolling(zoomed)
    expect(zoomed.get_by_role("button", name="Sign out")).to_be_in_viewport()
    # The diagram keeps a useful size; the step's form comes below it, whole.
    box = zoomed.locator("#diagram").bounding_box()
    assert box is not None and box["width"] >= 560 and box["height"] >= 300, box
    form = zoomed.locator("#step-red_flag_screen-form")
    for field in NO_RED_FLAGS:
        choice = form.locator(f"#step-red_flag_screen-{field}-false")
        assert_usable(choice)
        choice.check()
    complete = form.get_by_role("button", name="Complete Red-flag screen")
    assert_usable(complete)
    complete.click()
    expect(zoomed.get_by_role("status")).to_have_text("Red-flag screen completed.")
    expect(zoomed.get_by_role("heading", name="Conservative plan", level=3)).to_be_visible()
    assert_no_sideways_scrolling(zoomed)
    for name in ("Report a red flag", "Add a note", "Cancel the case"):
        assert_usable(zoomed.get_by_text(name, exact=True))
    zoomed.get_by_text("Cancel the case", exact=True).click()
    assert_usable(zoomed.get_by_label("Reason for cancelling"))
    assert_no_sideways_scrolling(zoomed)


def test_the_modeler_is_readable_and_works_at_200_percent_zoom(site: Server, zoomed: Page) -> None:
    new_case(site, patient_ref="MRN-ZOOM-MODELER")
    sign_in(zoomed, site, site.token("mo", "modeler"), next_page="/modeler")
    opening = zoomed.get_by_role("button", name=f"Open {PATHWAY} version 1")
    assert_usable(opening)
    assert_no_sideways_scrolling(zoomed)
    opening.click()
    expect(zoomed.locator("#status")).to_contain_text(f"Editing {PATHWAY} version 1")
    assert_no_sideways_scrolling(zoomed)
    # The diagram and its properties panel stack, each wide enough to work in.
    canvas = zoomed.locator("#canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None and box["width"] >= 560 and box["height"] >= 300, box
    expect(zoomed.locator(".djs-element").first).to_be_attached()
    panel = zoomed.locator("#properties").bounding_box()
    assert panel is not None and panel["width"] >= 560, panel
    for name in ("Validate on the server", "Compare with version 1", "Deploy as a new version"):
        assert_usable(zoomed.get_by_role("button", name=name))
    zoomed.get_by_role("button", name="Validate on the server").click()
    expect(zoomed.locator("#problems-summary")).to_have_text("No problems: it can be deployed.")
    # The migration controls: the dry run answers with its table, inside its own box.
    for label in ("From version", "To version"):
        assert_usable(zoomed.get_by_label(label))
    dry_run = zoomed.get_by_role("button", name="Dry run")
    assert_usable(dry_run)
    assert_usable(zoomed.get_by_role("button", name="Migrate the cases that can move"))
    dry_run.click()  # one version only: from and to are the same
    expect(zoomed.locator("#migration-status")).to_contain_text("the same")
    assert_no_sideways_scrolling(zoomed)
