"""The modeler page's routes over HTTP: validate files and compare edited files with a
deployed version, neither deploying anything (SQLite and PostgreSQL)."""

from __future__ import annotations

from tests.api.conftest import Server
from tests.api.test_definitions import upload
from tests.variants import bundled_files, two_week_timer_days

PATHWAY = "lumbar_radiculopathy"


def _broken_condition() -> list[tuple[str, bytes]]:
    (bpmn_name, bpmn), *rest = bundled_files()
    assert b'red_flag != "none"' in bpmn
    return [(bpmn_name, bpmn.replace(b'red_flag != "none"', b"red_flag ==")), *rest]


def test_validate_reports_each_problem_on_its_element_and_deploys_nothing(api: Server) -> None:
    with api.client("modeler:mo", "modeler") as modeler:
        before = modeler.get(f"/definitions/{PATHWAY}/versions").json()["versions"]
        good = modeler.post("/definitions/validate", files=upload(bundled_files()))
        bad = modeler.post("/definitions/validate", files=upload(_broken_condition()))
        after = modeler.get(f"/definitions/{PATHWAY}/versions").json()["versions"]
    assert good.status_code == 200, good.text
    assert good.json()["deployable"] is True and good.json()["problems"] == []
    assert bad.status_code == 200, bad.text
    body = bad.json()
    assert body["deployable"] is False
    (problem,) = body["problems"]
    assert problem["element_id"] == "flow_red_flag"
    assert problem["file"] == "lumbar_radiculopathy.bpmn"
    assert problem["line"] and problem["fix"] and "condition" in problem["message"]
    assert len(after) == len(before)


def test_validate_and_the_edited_diff_are_for_modelers_only(api: Server) -> None:
    with api.client("coordinator:co", "coordinator") as coordinator:
        assert (
            coordinator.post("/definitions/validate", files=upload(bundled_files())).status_code
            == 403
        )
        answer = coordinator.post(
            f"/definitions/{PATHWAY}/versions/1/diff", files=upload(bundled_files())
        )
        assert answer.status_code == 403
    with api.client("modeler:mo", "modeler") as modeler:
        assert modeler.post("/definitions/validate").status_code == 415


def test_the_edited_diff_names_the_change_in_clinical_words(api: Server) -> None:
    with api.client("modeler:mo", "modeler") as modeler:
        same = modeler.post(
            f"/definitions/{PATHWAY}/versions/1/diff", files=upload(bundled_files())
        )
        edited = modeler.post(
            f"/definitions/{PATHWAY}/versions/1/diff", files=upload(two_week_timer_days(10))
        )
        broken = modeler.post(
            f"/definitions/{PATHWAY}/versions/1/diff", files=upload(_broken_condition())
        )
        missing = modeler.post(
            f"/definitions/{PATHWAY}/versions/999/diff", files=upload(bundled_files())
        )
    assert same.status_code == 200, same.text
    assert same.json()["changes"] == []
    assert edited.status_code == 200, edited.text
    (change,) = edited.json()["changes"]
    assert change["element"] == "referral_two_week_timer"
    assert "14 days → 10 days" in change["text"]
    assert broken.status_code == 422
    assert broken.json()["problems"][0]["element_id"] == "flow_red_flag"
    assert missing.status_code == 404
