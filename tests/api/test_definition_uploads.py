"""Diagrams from other tools through POST /definitions: a report for each, never a 500; what
is deployable deploys and comes back byte for byte (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests import hostile
from tests.api.conftest import Server, server_of_its_own
from tests.api.test_definitions import deploy
from tests.engine.test_validation import CORPUS, _missing_corpus


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def uploads(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with server_of_its_own(
        request.param, tmp_path_factory.mktemp(f"uploads-{request.param}")
    ) as server:
        yield server


def test_every_interchange_file_gets_a_report_and_deployable_ones_come_back_unchanged(
    uploads: Server,
) -> None:
    if not CORPUS:
        _missing_corpus()
    outcomes: dict[str, int] = {}
    for path in CORPUS:
        content = Path(path).read_bytes()
        answer = deploy(uploads, [(Path(path).name, content)])
        outcomes[Path(path).name] = answer.status_code
        assert answer.status_code in (200, 201, 422), (path, answer.status_code, answer.text[:300])
        body = answer.json()
        if answer.status_code == 422:
            assert body["problems"], path
            for problem in body["problems"]:
                assert problem["message"] and problem["fix"], (path, problem)
            continue
        with uploads.client("clinician:lee", "clinician") as reader:
            versions = reader.get(f"/definitions/{body['pathway']}/versions").json()["versions"]
            (stored,) = [v for v in versions if v["version"] == body["version"]]
            back = reader.get(stored["files"][0]["href"])
        assert back.content == content, path
    assert len(outcomes) == len(CORPUS)
    # the bpmn.io exports of A.4.0, A.4.1 and C.2.0 are deployable: the round trip is checked
    assert sum(code in (200, 201) for code in outcomes.values()) >= 3, outcomes


def _upload(server: Server, name: str, content: bytes) -> httpx.Response:
    with server.client("modeler:mo", "modeler") as modeler:
        return modeler.post("/definitions", files=[("files", (name, content, "application/xml"))])


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (hostile.billion_laughs, "DOCTYPE"),
        (lambda: hostile.external_entity(), "DOCTYPE"),
        (lambda: hostile.external_entity("http://127.0.0.1:9/x"), "DOCTYPE"),
        (lambda: hostile.parameter_entity(), "DOCTYPE"),
        (lambda: hostile.doctype_after_comments(), "DOCTYPE"),
        (lambda: hostile.doctype_after_comments(encoding="utf-16"), "DOCTYPE"),
        (lambda: hostile.doctype_after_comments(encoding="utf-32"), "UTF-8 or UTF-16"),
        (hostile.deep, "levels"),
    ],
    ids=[
        "billion-laughs",
        "external-file-entity",
        "external-http-entity",
        "parameter-entity",
        "doctype-after-1mb-of-comments",
        "same-in-utf16",
        "same-in-utf32",
        "10000-levels-deep",
    ],
)
def test_hostile_xml_gets_a_4xx_with_its_reason_and_nothing_is_deployed(
    uploads: Server, make: Callable[[], bytes], says: str
) -> None:
    with uploads.client("modeler:mo", "modeler") as modeler:
        before = modeler.get("/definitions").json()
    answer = _upload(uploads, "hostile.bpmn", make())
    assert answer.status_code == 422, answer.text[:500]
    detail = " ".join(p["message"] for p in answer.json()["problems"])
    assert says in detail, detail
    with uploads.client("modeler:mo", "modeler") as modeler:
        assert modeler.get("/definitions").json() == before


@pytest.mark.parametrize("make", [hostile.script_importing_os, hostile.condition_importing_os])
def test_code_that_imports_os_is_refused_and_never_runs(
    uploads: Server, make: Callable[[str], bytes], tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    answer = _upload(uploads, "hostile.bpmn", make(str(marker)))
    assert answer.status_code == 422, answer.text[:500]
    refused = [p for p in answer.json()["problems"] if p["element_id"] in ("run", "f_out")]
    assert any(
        "Imports are not allowed" in p["message"] or "'__import__'" in p["message"] for p in refused
    ), answer.text
    assert not marker.exists()


def test_a_file_over_the_limit_is_refused_at_once_with_its_size(uploads: Server) -> None:
    content = hostile.oversized(5_000_001)
    answer = _upload(uploads, "big.bpmn", content)
    assert answer.status_code == 413
    assert f"big.bpmn is {len(content):,} bytes" in answer.json()["detail"]
    assert "PATHWAY_MAX_DEFINITION_BYTES" in answer.json()["detail"]
