"""A second pathway, the demonstration in examples/wound_check, deployed into a running server
and run end to end over HTTP, its reminder included, beside a case of the first pathway: nothing
in the engine, the API or the workers assumes the lumbar pathway.

The server runs on the real clock. The timers fall due by sweeping the server's database in
this process with a clock past their due time (``workers.scheduler.sweep``, as the beat's
task does), and each reminder is sent as a worker would (``workers.scheduler.send``) into an
in-memory channel, then rendered as an email. No Celery worker runs here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import engine
from tests.api.conftest import ROOT, Server, intake
from tests.api.test_cases import complete, days_ago, etag, get_case, problem, ready, start
from tests.data import GOOD_PLAN, NO_RED_FLAGS
from workers import scheduler
from workers.channels import MemoryChannel, render
from workers.settings import WorkerSettings

WOUND_CHECK = ROOT / "examples" / "wound_check"
BASE_URL = "https://pathway.hospital.example"
ASSESSMENT = {"redness_cm": 6, "discharge": "purulent", "fever": False}


def deploy_definition(server: Server, folder: Path) -> None:
    """Deploy the BPMN and DMN files of ``folder`` as a modeler does, over ``POST
    /definitions``: a new process id is a new pathway, no restart."""
    parts = [
        ("files", (p.name, p.read_bytes(), "application/xml"))
        for p in [*folder.glob("*.bpmn"), *folder.glob("*.dmn")]
    ]
    with server.client("modeler:mo", "modeler") as modeler:
        answer = modeler.post("/definitions", files=parts)
    assert answer.status_code in (200, 201), answer.text
    assert answer.json()["pathway"] == "wound_check"


def sweep_and_send(server: Server, tmp_path: Path, *, at: datetime) -> list[Any]:
    """Fire every timer due by ``at`` in the server's database, then send each reminder that
    raised, as the beat and a worker would; return the messages the channel was given."""
    settings = WorkerSettings(
        data_dir=tmp_path,
        database_url=server.database,
        jwt_secret="unused-by-workers-but-required-on-postgresql-0123",  # type: ignore[arg-type]
        public_url=BASE_URL,
    )
    clock = engine.SimulatedClock(at)
    db = engine.make_engine(server.database)
    sessions = engine.session_factory(db)
    channel = MemoryChannel()
    try:
        published: list[int] = []
        scheduler.sweep(sessions=sessions, settings=settings, clock=clock, publish=published.extend)
        for reminder_id in published:
            status = scheduler.send(
                reminder_id,
                sessions=sessions,
                settings=settings,
                clock=clock,
                choose=lambda message: [channel],
            )
            assert status == "sent"
    finally:
        db.dispose()
    return channel.sent


def test_a_second_pathway_runs_over_the_api_and_its_reminder_reads_in_its_own_words(
    api: Server, tmp_path: Path
) -> None:
    deploy_definition(api, WOUND_CHECK)
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        response = ana.post("/cases", json={"pathway": "wound_check", "patient_ref": "SYN-W-1"})
        assert response.status_code == 201, response.text[:600]
        wound = response.json()
        assert (wound["pathway"], list(ready(wound))) == ("wound_check", ["wound_assessment"])
        form = {f["id"]: f for f in ready(wound)["wound_assessment"]["form"]}
        assert (form["redness_cm"]["min"], form["redness_cm"]["max"]) == (0, 30)

        refused = ana.post(
            f"/cases/{wound['id']}/tasks/wound_assessment/complete",
            json={"data": {**ASSESSMENT, "redness_cm": 31}},
            headers={"If-Match": etag(wound)},
        )
        errors = {e["field"]: e["message"] for e in problem(refused, 422)["errors"]}
        assert list(errors) == ["redness_cm"], errors
        assert list(ready(get_case(ana, wound["id"]))) == ["wound_assessment"]

        wound = complete(ana, wound, "wound_assessment", ASSESSMENT)
        assessed = datetime.now(UTC)
        assert list(ready(wound)) == ["wound_review"]
        (decision,) = wound["decisions"]
        assert (decision["decision"], decision["rule"], decision["outputs"]) == (
            "wound_review_interval",
            "rule_infection_signs",
            {"review_priority": "early", "review_interval": "P2D"},
        )
        record = {(e["step"], e["field"]): e["value"] for e in wound["record"]}
        assert record[("wound_assessment", "discharge")] == "purulent"
        assert record[("wound_assessment", "patient_ref")] == "SYN-W-1"
        # A correction that would change the decision is refused in this pathway's terms.
        changed = ana.post(
            f"/cases/{wound['id']}/tasks/wound_assessment/amend",
            json={"data": {"redness_cm": 1, "discharge": "none"}, "reason": "wrong wound"},
            headers={"If-Match": etag(wound)},
        )
        detail = problem(changed, 409)["detail"]
        assert "decision 'wound_review_interval'" in detail and "red_flag" not in detail

        (deadline,) = wound["deadlines"]
        assert deadline["kind"] == "wound_review_due"
        due = datetime.fromisoformat(deadline["due_at"].replace("Z", "+00:00"))
        assert abs(due - (assessed + timedelta(days=2))) < timedelta(minutes=1)

        # A case of the first pathway, whose 2-week referral reminder falls due with it.
        lumbar = start(ana, "SYN-L-1", intake(symptom_onset=days_ago(10), disabling_pain=True))
        lumbar = complete(lee, lumbar, "red_flag_screen", NO_RED_FLAGS)
        lumbar = complete(lee, lumbar, "conservative_plan", GOOD_PLAN)

        assert sweep_and_send(api, tmp_path, at=due - timedelta(minutes=1)) == []
        sent = sweep_and_send(api, tmp_path, at=assessed + timedelta(days=15))
        by_case = {message.case_id: message for message in sent}
        assert set(by_case) == {wound["id"], lumbar["id"]}

        reminder = by_case[wound["id"]]
        assert (reminder.kind, reminder.recipients) == (
            "wound_review_overdue",
            ("coordinator", "clinician"),
        )
        subject, body = render(reminder, base_url=BASE_URL)
        assert (
            subject
            == f"[Pathway] Wound review overdue (demonstration pathway) - case {wound['id']}"
        )
        assert "SYN-W-1" not in subject and "Patient reference: SYN-W-1" in body
        assert "Open steps: Wound review" in body
        subject, _ = render(by_case[lumbar["id"]], base_url=BASE_URL)
        assert subject == (
            "[Pathway] Specialist referral due (2 weeks after conservative care started)"
            f" - case {lumbar['id']}"
        )

        wound = get_case(lee, wound["id"])
        assert [(r["kind"], r["status"]) for r in wound["reminders"]] == [
            ("wound_review_overdue", "sent")
        ]
        assert list(ready(wound)) == ["wound_review"], "the reminder leaves the review open"
        wound = complete(lee, wound, "wound_review", {"healing": True})
        assert (wound["status"], wound["end"]) == ("ended", "wound_check_done")
