"""What makes the case page quick, as a browser sees it: the page names the case's diagram so
that its script fetches the file at once, and a version's files may be kept by the browser."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx

from tests.api.conftest import Server, intake

PATHWAY = "lumbar_radiculopathy"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
DIAGRAM_META = re.compile(r'<meta name="pathway-diagram" content="([^"]*)">')


def new_case(server: Server, patient_ref: str) -> dict[str, object]:
    with server.client("ana", "coordinator") as client:
        created = client.post(
            "/cases", json={"pathway": PATHWAY, "patient_ref": patient_ref, "data": intake()}
        )
    assert created.status_code == 201, created.text
    case: dict[str, object] = created.json()
    return case


def case_page(server: Server, case_id: str, *roles: str) -> httpx.Response:
    """The case page as a browser signed in with ``roles`` gets it (none: not signed in)."""
    cookies = {"pathway_session": server.token("ana", *roles)} if roles else {}
    with httpx.Client(base_url=server.url, cookies=cookies, timeout=30) as browser:
        return browser.get(f"/cases/{quote(case_id, safe='')}", headers={"Accept": BROWSER_ACCEPT})


def named_diagram(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    found = DIAGRAM_META.findall(page.text)
    assert len(found) == 1, page.text
    return found[0]


def file_address(version: object) -> str:
    return f"/definitions/{PATHWAY}/versions/{version}/files/{PATHWAY}.bpmn"


def test_a_versions_file_is_kept_by_the_browser_and_not_sent_again(api: Server) -> None:
    with api.client("ana", "clinician") as client:
        first = client.get(file_address(1))
        assert first.status_code == 200
        assert first.headers["cache-control"] == "private, max-age=31536000, immutable"
        etag = first.headers["etag"]
        assert first.content.startswith(b"<?xml") and b"bpmn" in first.content
        # The browser asks again with what it has: nothing is sent but the answer's headers.
        for seen in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            again = client.get(file_address(1), headers={"If-None-Match": seen})
            assert again.status_code == 304, seen
            assert again.content == b""
            assert again.headers["etag"] == etag
            assert again.headers["cache-control"] == "private, max-age=31536000, immutable"
        changed = client.get(file_address(1), headers={"If-None-Match": '"not-this-one"'})
        assert changed.status_code == 200 and changed.content == first.content
    with httpx.Client(base_url=api.url) as anonymous:
        refused = anonymous.get(file_address(1), headers={"If-None-Match": etag})
        assert refused.status_code == 401
        assert anonymous.get(file_address(1)).status_code == 401
