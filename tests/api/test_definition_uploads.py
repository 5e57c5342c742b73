"""Diagrams from other tools through POST /definitions: a report for each, never a 500; what
is deployable deploys and comes back byte for byte (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Server, start_server, stop_server
from tests.api.test_definitions import deploy
from tests.conftest import own_postgres_database
from tests.engine.test_validation import CORPUS, _missing_corpus


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def uploads(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp(f"uploads-{request.param}")
    if request.param == "sqlite":
        server = start_server(
            kind="sqlite", database=f"sqlite:///{data_dir / 'pathway.db'}", data_dir=data_dir
        )
        yield server
        stop_server(server)
        return
    with own_postgres_database() as url:
        server = start_server(kind="postgresql", database=url, data_dir=data_dir)
        yield server
        stop_server(server)


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
