"""The pages in a real browser: Debian's headless Chromium driven by Playwright for Python
(never a browser Playwright downloads), against ``pathway serve`` on SQLite and PostgreSQL.

Each test gets a fresh browser context (no cookies) and leaves a screenshot of its page in
tests/artifacts/ (git-ignored), named after the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from sqlalchemy import text

import engine
from tests.api.conftest import CASE_TABLES, Server, start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
MANIFEST = ROOT / "web" / "static" / "dist" / "manifest.json"
ZONE = "Europe/Oslo"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: make test installs Debian's chromium")
    if not MANIFEST.exists():
        pytest.fail("the pages' assets are not built: run make install (web/build.mjs)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def web_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp(f"web-{request.param}")
    if request.param == "sqlite":
        database = f"sqlite:///{data_dir / 'pathway.db'}"
    else:
        database = request.getfixturevalue("postgres_url")
    server = start_server(
        kind=request.param,
        database=database,
        data_dir=data_dir,
        extra_env={"PATHWAY_TIMEZONE": ZONE},
    )
    yield server
    stop_server(server)


@pytest.fixture
def site(web_server: Server) -> Server:
    """The server, every case table emptied first."""
    db = engine.make_engine(web_server.database)
    with db.begin() as conn:
        for table in CASE_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
    db.dispose()
    return web_server


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(viewport={"width": 1280, "height": 900})
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    opened = context.new_page()
    yield opened
    ARTIFACTS.mkdir(exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    if not opened.is_closed():
        opened.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, server: Server, token: str, *, next_page: str = "/") -> None:
    """Sign in through the sign-in page, as a person would: paste the token, press the button."""
    page.goto(f"{server.url}/signin?next={next_page}")
    page.get_by_label("Your access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


def axe_violations(page: Page) -> list[dict[str, object]]:
    """axe-core's serious and critical violations on the page as it stands."""
    page.evaluate(AXE.read_text())
    result = page.evaluate("async () => (await axe.run(document)).violations")
    return [v for v in result if v.get("impact") in ("serious", "critical")]
