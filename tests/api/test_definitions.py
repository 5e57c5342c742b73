"""Modelers over HTTP: deploy, list, read back, and who may do what (SQLite and PostgreSQL).

Each database kind gets a server and a database of its own: these tests deploy new versions,
which would otherwise become the version every other API test starts its cases on.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.conftest import Server, intake, server_of_its_own
from tests.variants import (
    bundled_files,
    two_week_timer_days,
    with_extra_step_before_reassessment,
)

PATHWAY = "lumbar_radiculopathy"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def modeling(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with server_of_its_own(
        request.param, tmp_path_factory.mktemp(f"modeling-{request.param}")
    ) as server:
        yield server


def upload(files: list[tuple[str, bytes]]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "application/xml")) for name, data in files]


def deploy(server: Server, files: list[tuple[str, bytes]], *roles: str) -> httpx.Response:
    with server.client("modeler:mo", *(roles or ("modeler",))) as client:
        return client.post("/definitions", files=upload(files))


def test_the_same_bytes_are_the_same_version_and_a_change_is_the_next(modeling: Server) -> None:
    same = deploy(modeling, bundled_files())
    assert same.status_code == 200, same.text  # the server deployed these bytes at start
    assert same.json()["version"] == 1 and same.json()["created"] is False

    changed = deploy(modeling, two_week_timer_days(10))
    assert changed.status_code == 201, changed.text
    body = changed.json()
    assert (body["pathway"], body["version"], body["created"]) == (PATHWAY, 2, True)
    assert changed.headers["location"] == f"/definitions/{PATHWAY}/versions/2"
    again = deploy(modeling, two_week_timer_days(10))
    assert (again.status_code, again.json()["version"]) == (200, 2)

    with modeling.client("clinician:lee", "clinician") as reader:
        listed = reader.get("/definitions").json()["pathways"]
        versions = reader.get(f"/definitions/{PATHWAY}/versions").json()["versions"]
        files = versions[1]["files"]
        back = [reader.get(f["href"]) for f in files]
    assert [p["pathway"] for p in listed] == [PATHWAY]
    assert listed[0]["latest_version"] == 2
    assert [v["version"] for v in versions] == [1, 2]
    # the files come back byte for byte, as downloads
    assert [(f["name"], r.content) for f, r in zip(files, back, strict=True)] == list(
        two_week_timer_days(10)
    )
    assert back[0].headers["content-type"] == "application/octet-stream"
    assert back[0].headers["content-disposition"].startswith("attachment")


def test_the_diff_names_the_changed_timer_in_a_clinicians_words(modeling: Server) -> None:
    version = deploy(modeling, two_week_timer_days(10)).json()["version"]
    with modeling.client("clinician:lee", "clinician") as reader:
        answer = reader.get(f"/definitions/{PATHWAY}/versions/1/diff/{version}")
        back = reader.get(f"/definitions/{PATHWAY}/versions/{version}/diff/1")
        missing = reader.get(f"/definitions/{PATHWAY}/versions/1/diff/999")
    assert answer.status_code == 200, answer.text
    changes = answer.json()["changes"]
    assert len(changes) == 1
    assert changes[0]["kind"] == "timer_changed" and changes[0]["breaking"] is False
    assert "Specialist referral" in changes[0]["text"]
    assert "14 days → 10 days" in changes[0]["text"]
    assert "10 days → 14 days" in back.json()["changes"][0]["text"]
    assert missing.status_code == 404


def test_new_cases_start_on_the_latest_version_and_running_ones_stay(modeling: Server) -> None:
    with modeling.client("coordinator:ana", "coordinator") as care:
        first = care.post(
            "/cases", json={"pathway": PATHWAY, "patient_ref": "P-201", "data": intake()}
        )
        assert first.status_code == 201, first.text
        deploy(modeling, two_week_timer_days(9))
        second = care.post(
            "/cases", json={"pathway": PATHWAY, "patient_ref": "P-202", "data": intake()}
        )
        assert second.status_code == 201, second.text
        versions = {
            v["version"]: v["running_cases"]
            for v in care.get(f"/definitions/{PATHWAY}/versions").json()["versions"]
        }
    latest = max(versions)
    assert first.json()["definition_version"] < latest == second.json()["definition_version"]
    assert versions[latest] == 1 and versions[first.json()["definition_version"]] >= 1


def test_a_diagram_with_problems_gets_each_problem_and_nothing_is_deployed(
    modeling: Server,
) -> None:
    name, data = bundled_files()[0]
    broken = data.replace(b"P6W", b"P6WW", 1)
    with modeling.client("modeler:mo", "modeler") as client:
        before = client.get(f"/definitions/{PATHWAY}/versions").json()["versions"]
    answer = deploy(modeling, [(name, broken), *bundled_files()[1:]])
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problems = answer.json()["problems"]
    assert any(p["element_id"] == "six_week_timer" and p["line"] for p in problems), problems
    with modeling.client("modeler:mo", "modeler") as client:
        after = client.get(f"/definitions/{PATHWAY}/versions").json()["versions"]
    assert after == before


def test_who_may_do_what(modeling: Server) -> None:
    refused = deploy(modeling, bundled_files(), "coordinator")
    assert refused.status_code == 403
    assert "modelers" in refused.json()["detail"]
    with modeling.client("coordinator:ana", "coordinator") as care:
        case = care.post(
            "/cases", json={"pathway": PATHWAY, "patient_ref": "P-203", "data": intake()}
        ).json()
    with modeling.client("modeler:mo", "modeler") as modeler:
        assert modeler.get(f"/cases/{case['id']}").status_code == 403
        assert modeler.get("/worklist").status_code == 403
        assert modeler.get("/definitions").status_code == 200
    with httpx.Client(base_url=modeling.url) as anonymous:
        assert anonymous.get("/definitions").status_code == 401
        assert anonymous.post("/definitions", files=upload(bundled_files())).status_code == 401


def test_uploads_that_are_not_diagram_files_are_refused_with_a_reason(modeling: Server) -> None:
    with modeling.client("modeler:mo", "modeler") as client:
        not_multipart = client.post("/definitions", json={"files": []})
        no_files = client.post("/definitions", files={"other": ("x.bpmn", b"<x/>")})
        bad_name = client.post("/definitions", files=upload([("../../etc/passwd", b"<x/>")]))
        big = client.post(
            "/definitions", files=upload([("huge.bpmn", b"<a>" + b" " * 5_000_001 + b"</a>")])
        )
    assert not_multipart.status_code == 415
    assert no_files.status_code == 422 and "'files'" in no_files.json()["detail"]
    assert bad_name.status_code == 422 and "file name" in bad_name.json()["detail"]
    assert big.status_code == 413 and "PATHWAY_MAX_DEFINITION_BYTES" in big.json()["detail"]


def test_fifty_megabytes_are_refused_before_they_are_read(modeling: Server) -> None:
    with modeling.client("modeler:mo", "modeler") as client:
        answer = client.post(
            "/definitions",
            content=b"x" * 50_000_000,
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
    assert answer.status_code == 413
    assert "PATHWAY_MAX_DEFINITION_BYTES" in answer.json()["detail"]


def _wait_for_migration(client: httpx.Client, href: str) -> dict[str, object]:
    """Follow a migration until it finishes (it runs on the server's own thread)."""
    for _ in range(600):
        progress = client.get(href).json()
        if progress["status"] != "running":
            return dict(progress)
        client.get("/healthz")  # a round trip between polls, not a fixed sleep
    raise AssertionError(f"migration still running: {progress}")


def test_running_cases_move_to_a_new_version_with_a_dry_run_first(modeling: Server) -> None:
    with modeling.client("coordinator:ana", "coordinator") as care:
        case = care.post(
            "/cases", json={"pathway": PATHWAY, "patient_ref": "P-301", "data": intake()}
        ).json()
    start = case["definition_version"]
    target = deploy(modeling, with_extra_step_before_reassessment()).json()["version"]
    with modeling.client("modeler:mo", "modeler") as modeler:
        dry = modeler.post(
            f"/definitions/{PATHWAY}/migrations",
            json={"from": start, "to": target, "dry_run": True},
        )
        assert dry.status_code == 200, dry.text
        assert {"case_id": case["id"], "outcome": "can_move", "reason": None} in dry.json()["cases"]
        started = modeler.post(
            f"/definitions/{PATHWAY}/migrations", json={"from": start, "to": target}
        )
        assert started.status_code == 202, started.text
        done = _wait_for_migration(modeler, started.headers["location"])
        missing = modeler.post(f"/definitions/{PATHWAY}/migrations", json={"from": start, "to": 99})
    assert done["status"] == "finished"
    assert {"case_id": case["id"], "outcome": "moved", "reason": None} in done["cases"]
    assert missing.status_code == 422 and "no version 99" in missing.json()["detail"]
    with modeling.client("coordinator:ana", "coordinator") as care:
        moved = care.get(f"/cases/{case['id']}").json()
        events = care.get(f"/cases/{case['id']}/timeline").json()
    assert moved["definition_version"] == target
    migrated = [e for e in events if e["type"] == "migrated"]
    assert migrated and migrated[0]["actor"] == "modeler:mo"
    with modeling.client("coordinator:ana", "coordinator") as care:
        refused = care.post(
            f"/definitions/{PATHWAY}/migrations", json={"from": start, "to": target}
        )
    assert refused.status_code == 403


def test_each_version_keeps_its_own_file_names_and_says_which_version_new_cases_take(
    modeling: Server,
) -> None:
    (bpmn_name, bpmn), (_, dmn) = two_week_timer_days(8)
    renamed = deploy(modeling, [(bpmn_name, bpmn), ("rules.dmn", dmn)])
    assert renamed.status_code == 201, renamed.text
    version = renamed.json()["version"]
    old_bytes = deploy(modeling, bundled_files())
    assert old_bytes.status_code == 200
    assert old_bytes.json()["version"] == 1 and old_bytes.json()["latest_version"] >= version
    with modeling.client("modeler:mo", "modeler") as client:
        versions = client.get(f"/definitions/{PATHWAY}/versions").json()["versions"]
        (stored,) = [v for v in versions if v["version"] == version]
        assert [f["name"] for f in stored["files"]] == [bpmn_name, "rules.dmn"]
        assert client.get(stored["files"][1]["href"]).content == dmn
        assert [f["name"] for f in versions[0]["files"]] == [n for n, _ in bundled_files()]
        unknown = client.post("/definitions/no_such_pathway/migrations", json={"from": 1, "to": 2})
        no_file = client.get(f"/definitions/{PATHWAY}/versions/1/files/other.dmn")
    assert unknown.status_code == 404
    assert no_file.status_code == 404
    assert no_file.json()["detail"] == f"version 1 of pathway '{PATHWAY}' has no file 'other.dmn'"
