"""The foundation of the pages: sign-in, sessions, CSRF, HTML beside JSON, accessibility."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Page, Response, expect

from tests.api.conftest import ROOT, SECRET, Server, intake

from .conftest import axe_violations, sign_in

PATIENT = "MRN-WEB-4711"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def new_case(server: Server, patient_ref: str = PATIENT, **data: Any) -> str:
    with server.client("ana", "coordinator") as client:
        created = client.post(
            "/cases",
            json={
                "pathway": "lumbar_radiculopathy",
                "patient_ref": patient_ref,
                "data": intake(**data),
            },
        )
    assert created.status_code == 201, created.text
    case_id: str = created.json()["id"]
    return case_id


def session_cookies(context: BrowserContext) -> dict[str, str]:
    return {c["name"]: c["value"] for c in context.cookies()}


def test_signing_in_with_a_token_shows_the_worklist(site: Server, page: Page) -> None:
    new_case(site)
    sign_in(page, site, site.token("bo", "clinician"))
    expect(page.get_by_role("heading", name="Worklist")).to_be_visible()
    expect(page.get_by_text("Signed in as bo")).to_be_visible()
    expect(page.get_by_role("table")).to_contain_text(PATIENT)
    cookie = next(c for c in page.context.cookies() if c["name"] == "pathway_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["expires"] > 0, "the session ends with the token"


def test_a_page_opened_without_signing_in_shows_sign_in_and_no_case_data(
    site: Server, page: Page
) -> None:
    case_id = new_case(site)
    bodies: list[str] = []

    def keep(response: Response) -> None:
        if response.status < 300 or response.status >= 400:
            bodies.append(response.text())

    page.on("response", keep)
    page.goto(f"{site.url}/cases/{case_id}")
    page.wait_for_load_state("networkidle")
    assert page.url == f"{site.url}/signin?next=/cases/{case_id}"
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert PATIENT not in page.content()
    assert bodies and not [b for b in bodies if PATIENT in b]
    # The worklist likewise, and the JSON under the page without a session.
    page.goto(f"{site.url}/")
    assert page.url == f"{site.url}/signin?next=/"
    assert httpx.get(f"{site.url}/cases/{case_id}").status_code == 401


def test_a_reminder_link_opens_the_case_page_after_sign_in(site: Server, page: Page) -> None:
    case_id = new_case(site)
    page.goto(f"{site.url}/cases/{case_id}")  # the address a reminder carries
    page.get_by_label("Your access token").fill(site.token("bo", "clinician"))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Case {case_id}")).to_be_visible()
    assert page.url == f"{site.url}/cases/{case_id}"
    expect(page.locator("#facts")).to_contain_text(PATIENT)
    expect(page.locator("#ready")).to_contain_text("red_flag_screen")
    expect(page.locator("#timeline")).not_to_be_empty()


def test_the_case_json_is_unchanged_for_api_clients(site: Server) -> None:
    case_id = new_case(site)
    with site.client("ana", "coordinator") as client:
        for accept in (None, "application/json", "*/*", "application/json, text/html"):
            headers = {"Accept": accept} if accept else {}
            answer = client.get(f"/cases/{case_id}", headers=headers)
            assert answer.status_code == 200, (accept, answer.text)
            assert answer.headers["content-type"] == "application/json"
            assert answer.json()["patient_ref"] == PATIENT
        page = client.get(f"/cases/{case_id}", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 303 and page.headers["location"] == f"/signin?next=/cases/{case_id}"


def test_pages_and_assets_carry_a_strict_policy(site: Server, page: Page) -> None:
    answer = httpx.get(f"{site.url}/signin")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in answer.text
    sign_in(page, site, site.token("ana", "coordinator"))
    scripts = page.eval_on_selector_all("script[src]", "s => s.map(e => e.src)")
    assert scripts and all(s.startswith(f"{site.url}/static/dist/") for s in scripts)
    asset = httpx.get(scripts[0])
    assert asset.status_code == 200
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_a_cross_site_request_with_the_session_cookie_is_refused(site: Server, page: Page) -> None:
    case_id = new_case(site)
    sign_in(page, site, site.token("ana", "coordinator"))
    cookies = session_cookies(page.context)
    note = {"text": "from elsewhere"}
    with httpx.Client(base_url=site.url, cookies=cookies) as client:
        origin = {"Origin": site.url}
        csrf = {"X-CSRF-Token": cookies["pathway_csrf"]}
        refused = [
            client.post(f"/cases/{case_id}/notes", json=note, headers=origin),
            client.post(f"/cases/{case_id}/notes", json=note, headers={**csrf}),
            client.post(
                f"/cases/{case_id}/notes", json=note, headers={**csrf, "Origin": "https://evil"}
            ),
            client.post(
                f"/cases/{case_id}/notes",
                json=note,
                headers={**origin, "X-CSRF-Token": "guessed"},
            ),
        ]
        assert [r.status_code for r in refused] == [403, 403, 403, 403]
        reading = client.get(f"/cases/{case_id}")  # reading needs no CSRF token
        assert reading.status_code == 200
    with site.client("ana", "coordinator") as bearer:
        events = bearer.get(f"/cases/{case_id}/timeline").json()
    assert not [e for e in events if e["type"] == "note"]
    # The page itself can: its script sends the header.
    status = page.evaluate(
        """async (caseId) => {
            const csrf = document.cookie.split('; ').find(c => c.startsWith('pathway_csrf='));
            const answer = await fetch(`/cases/${caseId}/notes`, {
                method: 'POST',
                headers: {'Content-Type': 'application/json',
                          'X-CSRF-Token': csrf.split('=')[1]},
                body: JSON.stringify({text: 'from the page'}),
            });
            return answer.status;
        }""",
        case_id,
    )
    assert status == 201


def test_signing_out_ends_the_session(site: Server, page: Page) -> None:
    sign_in(page, site, site.token("ana", "coordinator"))
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert "pathway_session" not in session_cookies(page.context)
    page.goto(f"{site.url}/")
    assert page.url == f"{site.url}/signin?next=/"


def test_a_sign_in_with_a_bad_token_is_refused(site: Server, page: Page) -> None:
    sign_in(page, site, "not-a-token", next_page="/cases/x")
    expect(page.get_by_role("alert")).to_contain_text("Not signed in")
    assert "pathway_session" not in session_cookies(page.context)


def test_next_only_goes_to_this_site(site: Server) -> None:
    token = site.token("ana", "coordinator")
    for wanted, expected in [
        ("/cases/abc", "/cases/abc"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
    ]:
        answer = httpx.post(
            f"{site.url}/signin",
            data={"token": token, "next": wanted},
            headers={"Origin": site.url},
        )
        assert answer.status_code == 303 and answer.headers["location"] == expected, wanted
    cross = httpx.post(
        f"{site.url}/signin", data={"token": token}, headers={"Origin": "https://evil"}
    )
    assert cross.status_code == 403 and "set-cookie" not in cross.headers


def _link(site: Server) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PATHWAY_DATA_DIR": str(site.settings.data_dir),
        "PATHWAY_JWT_SECRET": SECRET,
        "PATHWAY_DATABASE_URL": site.database,
        "PATHWAY_PORT": site.url.rsplit(":", 1)[1],
    }
    made = subprocess.run(
        [sys.executable, "-m", "cli.main", "token", "--link", "--sub", "cy", "--role", "admin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=site.settings.data_dir,
    )
    assert made.returncode == 0, made.stderr
    link = made.stdout.strip()
    assert link.startswith(f"{site.url}/signin/once/") and "eyJ" not in link  # no JWT in it
    return link


def test_the_one_time_link_works_once(site: Server, page: Page, context: BrowserContext) -> None:
    link = _link(site)
    page.goto(link)
    page.get_by_role("button", name="Continue to sign in").click()
    expect(page.get_by_text("Signed in as cy")).to_be_visible()
    assert page.url == f"{site.url}/"
    second = context.browser.new_context() if context.browser else None
    assert second is not None
    try:
        again = second.new_page()
        again.goto(link)
        again.get_by_role("button", name="Continue to sign in").click()
        expect(again.get_by_role("alert")).to_contain_text("used already or has expired")
        assert "pathway_session" not in session_cookies(second)
    finally:
        second.close()
    assert link.rsplit("/", 1)[1] not in site.log_text()


def test_each_page_has_no_serious_accessibility_violations(site: Server, page: Page) -> None:
    case_id = new_case(site, disabling_pain=True)
    page.goto(f"{site.url}/signin")
    assert axe_violations(page) == []
    sign_in(page, site, site.token("bo", "clinician"))
    expect(page.get_by_role("table")).to_be_visible()
    assert axe_violations(page) == []
    page.goto(f"{site.url}/cases/{case_id}")
    expect(page.locator("#case")).to_be_visible()
    assert axe_violations(page) == []
