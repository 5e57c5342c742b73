"""The second, demonstration pathway end to end with a real worker and beat: deployed over the
API, its reminder delivered by webhook in the diagram's own words (nothing in the workers
knows this pathway)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import engine
from tests.api.conftest import start_server, stop_server
from tests.conftest import Database
from tests.workers.conftest import HOOK, SECRET, more_sweeps, start, stop, verify, wait, worker_env

ROOT = Path(__file__).resolve().parents[2]
WOUND_CHECK = ROOT / "examples" / "wound_check"
TEXT = "Wound review overdue"


def test_a_newly_deployed_pathways_reminder_arrives_once_in_its_own_words(
    db: Database, tmp_path: Path, broker: str, httpserver: HTTPServer
) -> None:
    server = start_server(kind=db.kind, database=db.url, data_dir=tmp_path / "api")
    try:
        parts = [
            ("files", (p.name, p.read_bytes(), "application/xml"))
            for p in [*WOUND_CHECK.glob("*.bpmn"), *WOUND_CHECK.glob("*.dmn")]
        ]
        with server.client("modeler:mo", "modeler") as modeler:
            deployed = modeler.post("/definitions", files=parts)
        assert deployed.status_code == 201, deployed.text
    finally:
        stop_server(server)

    # A case assessed two days ago (less a second): its early review falls due at once.
    clock = engine.SimulatedClock(datetime.now(UTC) - timedelta(days=2) + timedelta(seconds=1))
    with db.sessions.begin() as session:
        case = engine.start_case(
            session,
            pathway="wound_check",
            clock=clock,
            actor="coordinator:ana",
            patient_ref="SYN-W-9",
        )
        engine.complete_task(
            session,
            case_id=case.id,
            step="wound_assessment",
            data={"redness_cm": 6, "discharge": "purulent", "fever": False},
            clock=clock,
            actor="coordinator:ana",
        )

    received: list[tuple[dict[str, str], bytes]] = []

    def receive(request: Request) -> Response:
        received.append((dict(request.headers), request.get_data()))
        return Response("ok", status=200)

    httpserver.expect_request(HOOK, method="POST").respond_with_handler(receive)
    env = worker_env(
        db,
        tmp_path,
        broker,
        PATHWAY_CHANNELS=json.dumps({"coordinator": ["webhook"], "clinician": ["webhook"]}),
        PATHWAY_WEBHOOK_URL=httpserver.url_for(HOOK),
    )
    processes = [
        start(["worker", "--concurrency", "1"], env, tmp_path / "worker.log"),
        start(["beat"], env, tmp_path / "beat.log"),
    ]
    try:
        assert wait(lambda: bool(received), timeout=40), (tmp_path / "worker.log").read_text()
        assert more_sweeps(tmp_path, 3), "the worker stopped sweeping"
    finally:
        stop(processes)
    assert len(received) == 1
    headers, body = received[0]
    assert verify(SECRET, headers, body)
    payload = json.loads(body)
    assert payload["kind"] == "wound_review_overdue"
    assert payload["case_id"] == case.id
    assert TEXT in payload["text"]
