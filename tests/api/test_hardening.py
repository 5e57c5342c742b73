"""What an adversarial probe of the API found, each on SQLite and PostgreSQL (issue 9).

- NUL bytes and other control characters in ids, filters, bodies and token claims are a 422
  naming the field (a 401 for a claim), never a 500 from the database;
- a body over the size limit is a 413 before it is read whole, and a refusal lists at most
  50 field errors with the count of the rest;
- retries racing with one Idempotency-Key all get the one case the first one started;
- patient references that look the same name the same patient.

The log side of the same inputs (no value sent appears in the server's log) is in
test_privacy.py; the dates at the calendar's edges are in test_cases.py; the token lifetimes
in test_access.py; the private data folder in tests/cli.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
import sqlalchemy as sa

from tests.api.conftest import SECRET, Server, intake
from tests.api.test_cases import PATHWAY, PROBLEM, problem, recent_intake, start

NUL = "\x00"


def _field_errors(response: httpx.Response) -> dict[str, str]:
    body = problem(response, 422)
    return {error["field"]: error["message"] for error in body["errors"]}


# -- 1. control characters and lengths -------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "params", "field"),
    [
        ("GET", "/cases", {"patient_ref": f"ZZPROBE123{NUL}"}, "query.patient_ref"),
        ("GET", "/cases", {"patient_ref": "ZZPROBE\x1b[2J"}, "query.patient_ref"),
        ("GET", "/cases/%00", None, "path.case_id"),
        ("GET", "/cases/%00/timeline", None, "path.case_id"),
        ("GET", "/reminders", {"kind": NUL}, "query.kind"),
        ("GET", "/reminders", {"case_id": f"abc{NUL}"}, "query.case_id"),
        ("GET", "/cases/" + "c" * 37, None, "path.case_id"),
    ],
)
def test_control_characters_and_overlong_ids_in_paths_and_filters_are_422(
    api: Server, method: str, path: str, params: dict[str, str] | None, field: str
) -> None:
    with api.client("ana", "coordinator") as ana:
        errors = _field_errors(ana.request(method, path, params=params))
    assert field in errors, errors


def test_a_nul_in_a_step_or_deadline_id_is_422_and_changes_nothing(api: Server) -> None:
    with api.client("ana", "coordinator") as ana:
        case = start(ana, "SYN-NUL-1", recent_intake())
        reschedule = {"due_at": "2027-01-01T09:00:00Z", "reason": "asked"}
        for path, body, field in (
            (f"/cases/{case['id']}/tasks/red%00flag_screen/complete", {}, "path.task_id"),
            (f"/cases/{case['id']}/messages/red_flag%00reported", {}, "path.message"),
            (f"/cases/{case['id']}/deadlines/%00/reschedule", reschedule, "path.kind"),
        ):
            errors = _field_errors(ana.post(path, json=body, headers={"If-Match": "*"}))
            assert field in errors, errors
        after = ana.get(f"/cases/{case['id']}").json()
    assert after["version"] == case["version"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pathway": PATHWAY, "patient_ref": f"SYN-1{NUL}"}, "patient_ref"),
        ({"pathway": f"{PATHWAY}{NUL}", "patient_ref": "SYN-1"}, "pathway"),
        (
            {"pathway": PATHWAY, "patient_ref": "SYN-1", "data": intake(side=f"left{NUL}")},
            "data.side",
        ),
        (
            {"pathway": PATHWAY, "patient_ref": "SYN-1", "data": {**intake(), f"x{NUL}": 1}},
            "data",
        ),
    ],
)
def test_control_characters_in_a_new_case_are_422_naming_the_field(
    api: Server, body: dict[str, Any], field: str
) -> None:
    with api.client("ana", "coordinator") as ana:
        errors = _field_errors(ana.post("/cases", json=body))
        assert field in errors, errors
        assert "U+0000" in errors[field]
        assert ana.get("/cases").json()["total"] == 0


def test_free_text_keeps_its_line_breaks_but_not_other_controls(api: Server) -> None:
    with api.client("ana", "coordinator") as ana:
        case = start(ana, "SYN-TEXT-1", recent_intake())
        refused = ana.post(f"/cases/{case['id']}/cancel", json={"reason": f"entered{NUL} twice"})
        assert "reason" in _field_errors(refused)
        cancelled = ana.post(
            f"/cases/{case['id']}/cancel", json={"reason": "entered twice:\n\tsee the other"}
        )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancel_reason"] == "entered twice:\n\tsee the other"


def test_a_lone_surrogate_in_a_body_is_422_not_a_server_error(api: Server) -> None:
    with api.client("ana", "coordinator") as ana:
        response = ana.post(
            "/cases",
            content=b'{"pathway": "lumbar_radiculopathy", "patient_ref": "SYN-\\ud800"}',
            headers={"Content-Type": "application/json"},
        )
    assert "patient_ref" in _field_errors(response)


@pytest.mark.parametrize(
    "body", [b"\x81\x9d^\xf2\x90=\x8a", b'{"text": "unfinished'], ids=["not UTF-8", "not JSON"]
)
def test_a_body_that_is_not_json_is_422_on_every_route_that_takes_one(
    api: Server, body: bytes
) -> None:
    with api.client("ana", "coordinator") as ana:
        case_id = start(ana, "SYN-BODY-0001")["id"]
        for path in ("/cases", f"/cases/{case_id}/notes"):
            response = ana.post(path, content=body, headers={"Content-Type": "application/json"})
            assert set(_field_errors(response)) == {"body"}, path


def _token(**claims: Any) -> str:
    now = int(time.time())
    return jwt.encode(
        {"roles": ["coordinator"], "iat": now, "exp": now + 600, **claims}, SECRET, "HS256"
    )


@pytest.mark.parametrize("sub", [f"ana{NUL}", "ana\x1b[31m", "a" * 201, "ana\u202eadmin"], ids=repr)
def test_a_token_whose_sub_is_not_plain_text_or_too_long_is_401(api: Server, sub: str) -> None:
    response = httpx.get(
        f"{api.url}/worklist", headers={"Authorization": f"Bearer {_token(sub=sub)}"}
    )
    body = problem(response, 401)
    assert "sub" in body["detail"]


def test_a_sub_as_long_as_the_audit_column_is_accepted(api: Server) -> None:
    response = httpx.get(
        f"{api.url}/worklist", headers={"Authorization": f"Bearer {_token(sub='a' * 200)}"}
    )
    assert response.status_code == 200, response.text


# -- 3. body size and the length of a refusal ------------------------------------------------


def _raw_request(api: Server, head: bytes, body_part: bytes) -> bytes:
    """Send a request's head and only part of its body; return what the server answers
    before it closes the connection."""
    url = urlsplit(api.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head + body_part)
        answer = b""
        while chunk := sock.recv(65536):  # the server closes the connection after a 413
            answer += chunk
    return answer


def test_a_body_declared_over_the_limit_is_413_before_it_is_read(api: Server) -> None:
    token = api.token("ana", "coordinator")
    declared = 29 * 1024 * 1024
    head = (
        f"POST /cases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    ).encode()
    # 1 KB of a 29 MB body sent: the answer comes without waiting for the rest.
    answer = _raw_request(api, head, b'{"data": {' + b" " * 1024)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), answer[:300]
    assert PROBLEM.encode() in rest
    assert b"PATHWAY_MAX_BODY_BYTES" in rest


def test_a_body_without_a_length_is_cut_off_at_the_limit(api: Server) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"pathway": "lumbar_radiculopathy", "patient_ref": "SYN-BIG", "data": {'
        for i in range(160_000):  # about 8 MB, if it were all read
            piece = f'"k{i:06d}": "{"x" * 40}", '.encode()
            sent += len(piece)
            yield piece
        yield b'"end": 1}}'

    with api.client("ana", "coordinator") as ana:
        try:
            response = ana.post(
                "/cases", content=chunks(), headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:  # the server may close before the rest is sent
            pytest.fail(f"no answer to an over-long chunked body: {exc!r}")
        assert ana.get("/cases").json()["total"] == 0
    body = problem(response, 413)
    assert "PATHWAY_MAX_BODY_BYTES" in body["detail"]
    # The connection is closed: the rest of an endless body is not read and thrown away.
    assert response.headers["connection"] == "close"
    assert sent < 6_000_000, sent  # the limit, and what the sockets' buffers took


def test_a_body_just_under_the_limit_is_read(api: Server) -> None:
    padding = "x" * (1024 * 1024 - 200)
    with api.client("ana", "coordinator") as ana:
        response = ana.post(
            "/cases",
            json={"pathway": PATHWAY, "patient_ref": "SYN-PAD", "data": {"pad": padding}},
        )
    errors = _field_errors(response)
    assert "pad" in errors  # refused by the form, not by its size


def test_a_refusal_lists_at_most_50_field_errors_and_counts_the_rest(api: Server) -> None:
    unknown = {f"unknown_{i}": i for i in range(5000)}
    with api.client("ana", "coordinator") as ana:
        top = ana.post("/cases", json={"pathway": PATHWAY, "patient_ref": "SYN-E", **unknown})
        in_data = ana.post(
            "/cases", json={"pathway": PATHWAY, "patient_ref": "SYN-E", "data": unknown}
        )
    body = problem(top, 422)
    assert len(body["errors"]) == 50
    assert body["more_errors"] == 4950
    assert "and 4950 more error(s)" in body["detail"]
    assert len(top.content) < 20_000
    body = problem(in_data, 422)
    assert len(body["errors"]) <= 50
    assert "4980 more field(s)" in body["detail"], body["detail"][-300:]
    assert len(in_data.content) < 20_000


# -- 4. retries racing with one Idempotency-Key ----------------------------------------------


@pytest.mark.parametrize("trial", range(5))
def test_retries_racing_with_one_idempotency_key_all_get_the_same_case(
    api: Server, trial: int
) -> None:
    body = {"pathway": PATHWAY, "patient_ref": f"SYN-RACE-{trial}", "data": recent_intake()}
    barrier = threading.Barrier(6)
    answers: list[httpx.Response] = []

    def send() -> None:
        with api.client("ana", "coordinator") as ana:
            barrier.wait()
            answers.append(
                ana.post("/cases", json=body, headers={"Idempotency-Key": f"key-{trial}"})
            )

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [201] * 6, [a.text[:200] for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    with api.client("ana", "coordinator") as ana:
        assert ana.get("/cases").json()["total"] == 1


@pytest.mark.parametrize("api_server", ["postgresql"], indirect=True)
def test_a_retry_that_outwaits_the_first_request_is_409_with_retry_after(api: Server) -> None:
    """On PostgreSQL a retry waits at most 2 s for the first request with its key: here the
    key is held from outside (as a first request that hangs would hold it)."""
    key = sa.select(sa.func.hashtextextended("ana\nkey-held", 0))
    side = sa.create_engine(api.database, poolclass=sa.pool.NullPool)
    with side.connect() as holder, api.client("ana", "coordinator") as ana:
        holder.execute(sa.select(sa.func.pg_advisory_lock(key.scalar_subquery())))
        started = time.monotonic()
        response = ana.post(
            "/cases",
            json={"pathway": PATHWAY, "patient_ref": "SYN-HELD", "data": recent_intake()},
            headers={"Idempotency-Key": "key-held"},
        )
        waited = time.monotonic() - started
        holder.execute(sa.select(sa.func.pg_advisory_unlock(key.scalar_subquery())))
        body = problem(response, 409)
        assert body["type"] == "/problems/idempotency-key-in-use"
        assert response.headers["retry-after"] == "1"
        assert waited >= 1.9, waited
        assert ana.get("/cases").json()["total"] == 0
        # Retried once the key is free, it starts the case.
        again = ana.post(
            "/cases",
            json={"pathway": PATHWAY, "patient_ref": "SYN-HELD", "data": recent_intake()},
            headers={"Idempotency-Key": "key-held"},
        )
    side.dispose()
    assert again.status_code == 201, again.text


# -- 5. patient references that look alike ---------------------------------------------------


@pytest.mark.parametrize("blank", ["", "   ", "\u3000", "\u00a0\t"], ids=repr)
def test_a_blank_patient_reference_is_refused(api: Server, blank: str) -> None:
    with api.client("ana", "coordinator") as ana:
        response = ana.post("/cases", json={"pathway": PATHWAY, "patient_ref": blank})
    assert "patient_ref" in _field_errors(response)


@pytest.mark.parametrize(
    "spelling",
    ["UNI-1 ", " UNI-1", "\uff35\uff2e\uff29-1", "\uff35\uff2e\uff29\uff0d\uff11"],
    ids=["trailing space", "leading space", "full-width letters", "full-width all"],
)
def test_a_reference_spelled_differently_is_the_same_patient(api: Server, spelling: str) -> None:
    with api.client("ana", "coordinator") as ana:
        first = start(ana, "UNI-1")
        again = ana.post("/cases", json={"pathway": PATHWAY, "patient_ref": spelling})
        assert problem(again, 409)["existing_case_id"] == first["id"]
        found = ana.get("/cases", params={"patient_ref": spelling}).json()
    assert [item["id"] for item in found["items"]] == [first["id"]]


@pytest.mark.parametrize(
    "spelling",
    [
        "UNI\u200b-1",
        "UNI-1\u202e",
        "\u202eUNI-1",
        "UNI\u2060-1",
        "\ufeffUNI-1",
        "UNI-1\x1f",
        "UNI-1\x85",
        "\nUNI-1",
    ],
    ids=[
        "zero-width space",
        "right-to-left override",
        "leading override",
        "word joiner",
        "BOM",
        "trailing unit separator",
        "trailing next-line",
        "leading line break",
    ],
)
def test_a_reference_with_invisible_characters_is_refused(api: Server, spelling: str) -> None:
    with api.client("ana", "coordinator") as ana:
        start(ana, "UNI-1")
        errors = _field_errors(
            ana.post("/cases", json={"pathway": PATHWAY, "patient_ref": spelling})
        )
        assert "patient_ref" in errors and "U+" in errors["patient_ref"], errors
        assert ana.get("/cases").json()["total"] == 1


def test_a_reference_is_stored_in_its_one_spelling(api: Server) -> None:
    with api.client("ana", "coordinator") as ana:
        case = start(ana, "  \uff2d\uff32\uff2e-42  ", recent_intake())
        assert case["patient_ref"] == "MRN-42"
        # The intake's own patient_ref field is compared in the same spelling.
        second = ana.post(
            "/cases",
            json={
                "pathway": PATHWAY,
                "patient_ref": "SYN-77",
                "data": recent_intake(patient_ref=" SYN-77 "),
            },
        )
    assert second.status_code == 201, second.text
    assert second.json()["patient_ref"] == "SYN-77"


# -- an unexpected error is logged by its request id, nothing of what it says ----------------


def test_an_unexpected_error_is_a_500_logged_by_request_id_without_its_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import ApiSettings

    settings = ApiSettings(data_dir=tmp_path, jwt_secret=SECRET)  # type: ignore[arg-type]
    app = create_app(settings)

    @app.get("/explode")
    def explode() -> None:
        try:
            raise KeyError("MRN-LEAK-0001")
        except KeyError as exc:
            raise ValueError("patient MRN-LEAK-0001 could not be stored") from exc

    with TestClient(app) as client, caplog.at_level("INFO"):
        response = client.get("/explode", headers={"X-Request-ID": "0123abcd-42"})
    body = problem(response, 500)
    assert body["request_id"] == "0123abcd-42" and "0123abcd-42" in body["detail"]
    assert "MRN-LEAK" not in response.text
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage().split(" at ")[0] for r in errors] == [
        "request 0123abcd-42: unexpected ValueError from KeyError"
    ]
    assert "test_hardening.py" in errors[0].getMessage()  # where it was raised, for the fix
    assert "MRN-LEAK" not in caplog.text
    assert all(r.exc_info is None for r in caplog.records)  # no traceback with the message
