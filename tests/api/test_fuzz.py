"""Fuzz every operation of the OpenAPI schema against the real server, with schemathesis.

The schema comes from the running server's ``/openapi.json`` and schemathesis' own engine
(what ``schemathesis run`` drives) runs every operation through its examples, coverage
(deterministic values on and just past each boundary) and fuzzing phases, with valid and
invalid data, as an admin. A response fails the run when:

- it is a server error (``not_a_server_error``: any 5xx);
- its body breaks the schema the API declares for its status (``response_schema_conformance``,
  formats such as ``date-time`` included);
- its status is not one the operation declares (``status_code_conformance``);
- its Content-Type is not one declared for that status (``content_type_conformance``).

``positive_data_acceptance`` and ``negative_data_rejection`` are left out on purpose: a step's
``data`` is a free-form object in the schema that the pathway's forms validate, so a
schema-valid body is routinely and rightly refused with 422, and those checks would only
raise false alarms. The stateful phase is off: the API declares no links.

So that the fuzzer reaches real cases and not only 404s, cases are started first. The GETs on
a case get their ids from schemathesis itself, which reuses the ids earlier responses returned
(``POST /cases``, ``GET /cases``). The POSTs on a case are sent to a seeded case part of the
time: ``case_id`` for a seeded case (each operation has its own, so that a cancel does not
close the case that complete works on), ``task_id`` for the step that case has ready,
``message`` for ``red_flag_reported``, ``kind`` for a deadline the case waits on; in fuzzing the
body is then a valid form, with ``If-Match: *``, half the time, so the engine really completes
steps, takes a red flag, moves deadlines and cancels. The test checks that it did.

The run is reproducible: Hypothesis is derandomized, schemathesis has a fixed seed and one
worker, and no example database is kept. Examples per operation are bounded (``MAX_EXAMPLES``
in fuzzing; the coverage phase is finite), so a run takes seconds per database. Besides the
checks, the server's own log must show no 5xx and no traceback.

(schemathesis' pytest integration, ``schemathesis.pytest.from_fixture``, cannot be used here:
with pytest 9.2 it fails on ``request.node._nodeid``, which pytest no longer has. The engine is
what ``schemathesis run`` uses, and reports every failure with a curl line to replay it.)
"""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.engine import StopReason, events, from_schema
from schemathesis.generation.meta import TestPhase

from tests.api.conftest import Server, intake
from tests.data import GOOD_PLAN, NO_RED_FLAGS

SEED = 20260105
MAX_EXAMPLES = 30
CHECKS = (
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
)
CASE_OPERATIONS = (
    "GET /cases/{case_id}",
    "GET /cases/{case_id}/timeline",
    "POST /cases/{case_id}/tasks/{task_id}/complete",
    "POST /cases/{case_id}/messages/{message}",
    "POST /cases/{case_id}/deadlines/{kind}/reschedule",
    "POST /cases/{case_id}/cancel",
)
# A line of the server's access log: "... api.access: POST /cases 201 3.1ms request=..."
ACCESS_LINE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|TRACE) (/\S*) (\d{3}) ")


@dataclass(frozen=True)
class Target:
    """A real value set for one case-level operation: its path parameters and a valid body."""

    path_parameters: dict[str, str]
    body: dict[str, Any] | None = None


@dataclass
class Seeded:
    ids: set[str]
    targets: dict[str, list[Target]]


def _start(client: httpx.Client, patient_ref: str, **data: Any) -> dict[str, Any]:
    response = client.post(
        "/cases",
        json={
            "pathway": "lumbar_radiculopathy",
            "patient_ref": patient_ref,
            "data": intake(**data),
        },
    )
    assert response.status_code == 201, response.text
    case: dict[str, Any] = response.json()
    return case


def _complete(
    client: httpx.Client, case: dict[str, Any], step: str, data: dict[str, Any]
) -> dict[str, Any]:
    response = client.post(
        f"/cases/{case['id']}/tasks/{step}/complete",
        json={"data": data},
        headers={"If-Match": f'"{case["version"]}"'},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def seed_cases(api: Server) -> Seeded:
    """Start cases in different states and name, per operation, the real values to use."""
    with api.client("seeder", "admin") as admin:
        screening = _start(admin, "MRN-FUZZ-1")
        referral = _start(admin, "MRN-FUZZ-2", disabling_pain=True)
        referral = _complete(admin, referral, "red_flag_screen", NO_RED_FLAGS)
        referral = _complete(admin, referral, "conservative_plan", GOOD_PLAN)
        conservative = _start(admin, "MRN-FUZZ-3")
        conservative = _complete(admin, conservative, "red_flag_screen", NO_RED_FLAGS)
        conservative = _complete(admin, conservative, "conservative_plan", GOOD_PLAN)
        to_cancel = _start(admin, "MRN-FUZZ-4")
        cancelled = _start(admin, "MRN-FUZZ-5")
        response = admin.post(f"/cases/{cancelled['id']}/cancel", json={"reason": "duplicate"})
        assert response.status_code == 200, response.text
    assert [t["id"] for t in screening["ready_tasks"]] == ["red_flag_screen"]
    assert "specialist_referral" in [t["id"] for t in referral["ready_tasks"]]
    assert referral["deadlines"] and conservative["deadlines"]
    every = [screening, referral, conservative, to_cancel, cancelled]
    referral_form = {"referral_date": "2026-11-20", "specialty": "spine surgery"}
    # Seven weeks from now: past the 6-week reassessment's earliest, no earlier than a 2-week
    # referral may go (the 3-month limit, from a fixed onset, refuses it: a 422 is fine there).
    later = (datetime.now(UTC) + timedelta(weeks=7)).replace(microsecond=0).isoformat()
    targets = {
        "POST /cases/{case_id}/tasks/{task_id}/complete": [
            Target(
                {"case_id": screening["id"], "task_id": "red_flag_screen"}, {"data": NO_RED_FLAGS}
            ),
            Target(
                {"case_id": referral["id"], "task_id": "specialist_referral"},
                {"data": referral_form},
            ),
            Target(
                {"case_id": cancelled["id"], "task_id": "red_flag_screen"}, {"data": NO_RED_FLAGS}
            ),
        ],
        "POST /cases/{case_id}/messages/{message}": [
            Target(
                {"case_id": conservative["id"], "message": "red_flag_reported"},
                {"data": {"progressive_motor_deficit": True}},
            ),
        ],
        "POST /cases/{case_id}/deadlines/{kind}/reschedule": [
            Target(
                {"case_id": case["id"], "kind": deadline["kind"]},
                {"due_at": later, "reason": "patient asked for a later date"},
            )
            for case in (referral, conservative)
            for deadline in case["deadlines"]
        ],
        "POST /cases/{case_id}/cancel": [
            Target({"case_id": to_cancel["id"]}, {"reason": "entered twice"}),
            Target({"case_id": cancelled["id"]}, {"reason": "entered twice"}),
        ],
    }
    return Seeded(ids={c["id"] for c in every}, targets=targets)


SET_HEADERS = {"content-type", "if-match"}


def _aim(case: schemathesis.Case, target: Target, *, with_body: bool) -> schemathesis.Case:
    """The case, sent to a real case (and with a valid form and If-Match: * when asked)."""
    case.path_parameters = {**case.path_parameters, **target.path_parameters}
    if with_body and target.body is not None:
        case.body = target.body
        case.media_type = "application/json"
        # Every POST on a case takes If-Match; "*" means "whatever the version is". Whatever
        # else the generated headers hold (a Content-Type of text/plain, an If-Match of their
        # own in another case) goes.
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in SET_HEADERS}
        headers["If-Match"] = "*"
        case.headers = headers
    return case


def register_hooks(schema: Any, seeded: Seeded) -> None:
    """Send part of the generated requests of each POST on a case to a seeded case.

    Only the POSTs: the GETs on a case get real ids from schemathesis itself, which reuses the
    ids that earlier responses returned; aiming them as well makes Hypothesis' targeting phase
    (it steers towards accepted inputs) spend seconds on one string for nothing.
    """
    counters: dict[str, itertools.count[int]] = {}
    aimed = [label for label in seeded.targets if label.startswith("POST ")]

    @schema.hook.apply_to(name=aimed)
    def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
        # Coverage: every other case goes to a real case, its body and headers kept (after a
        # first round with valid bodies), so that boundary bodies and If-Match values meet a
        # case that exists. The coverage cases are
        # built once, in a fixed order, so counting is deterministic.
        targets = seeded.targets[case.operation.label]
        if case.meta is None or case.meta.phase.name != TestPhase.COVERAGE:
            return case
        n = next(counters.setdefault(case.operation.label, itertools.count()))
        if n % 2:
            return case
        # The first round over the targets sends their valid bodies: every operation then gets
        # its 200 on a real case here, whatever the fuzzing phase happens to draw (its draws
        # changed with the tests run before it in the same process).
        aimed = n // 2
        return _aim(case, targets[aimed % len(targets)], with_body=aimed < len(targets))

    @schema.hook.apply_to(name=aimed)
    def flatmap_case(
        context: schemathesis.HookContext, case: schemathesis.Case
    ) -> st.SearchStrategy[schemathesis.Case]:
        # Fuzzing: the choice is a Hypothesis draw, so replaying a draw replays the request.
        # A real case with a valid body and If-Match: *, a real case with the generated body and
        # headers, or the case as generated.
        targets = seeded.targets[case.operation.label]
        if case.meta is None or case.meta.phase.name != TestPhase.FUZZING:
            return st.just(case)
        choices: list[tuple[Target | None, bool]] = [
            *((target, True) for target in targets),
            *((target, False) for target in targets),
            *((None, False) for _ in targets),
        ]
        return st.sampled_from(choices).map(
            lambda pick: case if pick[0] is None else _aim(case, pick[0], with_body=pick[1])
        )


# Strings the default alphabet all but never draws: a NUL byte (PostgreSQL refuses it in
# text), other controls, bidirectional and zero-width characters, strings
# past every column's width, and blanks. Schemathesis draws text from Hypothesis' alphabet,
# where these are rare and a string past a few hundred characters rarer still.
HOSTILE_TEXT = (
    "\x00",
    "MRN-1\x00",
    "\x00" * 300,
    "\x1b[2J\r\n",
    "UNI\u200b-1",
    "\u202eUNI-1",
    "\uff35\uff2e\uff29-1",
    "   ",
    "x" * 201,
    "x" * 5000,
    "\x00" + "y" * 70_000,
)


def _spoiled(case: schemathesis.Case, where: int, text: str, index: int) -> schemathesis.Case:
    """The case with one of its strings (a path id, a filter, a body field) made hostile."""
    in_url = text[:5000]  # uvicorn itself refuses a request line past 64 KiB, in plain text
    if where == 0 and case.path_parameters:
        names = sorted(case.path_parameters)
        case.path_parameters = {**case.path_parameters, names[index % len(names)]: in_url}
    elif where == 1 and (names := sorted(p.name for p in case.operation.query)):
        case.query = {**(case.query or {}), names[index % len(names)]: in_url}
    elif isinstance(case.body, dict):
        body = dict(case.body)
        strings = sorted(k for k, v in body.items() if isinstance(v, str)) or ["data"]
        key = strings[index % len(strings)]
        if key == "data" and isinstance(body.get("data"), dict):
            body["data"] = {**body["data"], "specialty": text}
        else:
            body[key] = text
        case.body = body
    return case


def _carries_hostile_text(case: schemathesis.Case) -> bool:
    values = [*case.path_parameters.values(), *(case.query or {}).values()]
    if isinstance(case.body, dict):
        values += case.body.values()
        if isinstance(case.body.get("data"), dict):
            values += case.body["data"].values()
    return any(isinstance(v, str) and v[:5000] in HOSTILE_TEXT_PREFIXES for v in values)


HOSTILE_TEXT_PREFIXES = {text[:5000] for text in HOSTILE_TEXT}


def register_hostile_text(schema: Any, answers: Counter[int]) -> None:
    """In fuzzing, a third of every operation's requests carry a hostile string in a path
    id, a filter or a body field (a Hypothesis draw, so replaying a draw replays it); the
    statuses they got are counted into ``answers``."""

    @schema.hook
    def after_call(
        context: schemathesis.HookContext, case: schemathesis.Case, response: Any
    ) -> None:
        if _carries_hostile_text(case):
            answers[response.status_code] += 1

    @schema.hook
    def flatmap_case(
        context: schemathesis.HookContext, case: schemathesis.Case
    ) -> st.SearchStrategy[schemathesis.Case]:
        if case.meta is None or case.meta.phase.name != TestPhase.FUZZING:
            return st.just(case)
        return st.tuples(st.integers(0, 8), st.sampled_from(HOSTILE_TEXT), st.integers(0, 3)).map(
            lambda pick: case if pick[0] > 2 else _spoiled(case, *pick)
        )


@dataclass
class FuzzRun:
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    statuses: Counter[tuple[str, bool, int]] = field(default_factory=Counter)
    stop_reason: StopReason | None = None
    requests: int = 0
    hostile: Counter[int] = field(default_factory=Counter)

    def seeded_statuses(self, label: str) -> set[int]:
        return {status for (op, seeded, status) in self.statuses if op == label and seeded}


def fuzz(api: Server, seeded: Seeded) -> FuzzRun:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": api.url,
            "workers": 1,
            "request-timeout": 10,
            "headers": {"Authorization": f"Bearer {api.token('fuzzer', 'admin')}"},
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            "phases": {"stateful": {"enabled": False}},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        }
    )
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json", config=config)
    register_hooks(schema, seeded)
    run = FuzzRun()
    register_hostile_text(schema, run.hostile)
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            for case_id, interaction in recorder.interactions.items():
                node = recorder.cases.get(case_id)
                if interaction.response is None or node is None:
                    continue
                case = node.value
                on_seeded = case.path_parameters.get("case_id") in seeded.ids
                run.statuses[
                    (case.operation.label, on_seeded, interaction.response.status_code)
                ] += 1
                run.requests += 1
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    key = (event.label or "?", check.name, failure.title)
                    interaction = recorder.interactions.get(case_id)
                    body = interaction.request.body if interaction is not None else None
                    sent = "" if not body else f"\nbody sent: {body[:300]!r}"
                    run.failures.setdefault(
                        key,
                        f"[{event.phase.value}] {key[0]}: {check.name}: {failure.title}\n"
                        f"{failure.message}\n{check.failure_info.code_sample}{sent}",
                    )
        elif isinstance(event, events.NonFatalError):
            run.errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            run.errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            run.stop_reason = event.stop_reason
    return run


def test_no_operation_answers_with_a_server_error_or_breaks_its_schema(api: Server) -> None:
    seeded = seed_cases(api)
    log_start = len(api.log_text())
    started = time.monotonic()
    run = fuzz(api, seeded)
    elapsed = time.monotonic() - started
    log = api.log_text()[log_start:]

    if run.errors:
        pytest.fail("the fuzz run had errors:\n\n" + "\n\n".join(run.errors), pytrace=False)
    assert run.stop_reason == StopReason.COMPLETED, run.stop_reason
    if run.failures:
        pytest.fail(
            f"{len(run.failures)} distinct failure(s) in {run.requests} requests "
            f"(schemathesis seed {SEED}):\n\n" + "\n\n".join(run.failures.values()),
            pytrace=False,
        )
    # Whatever the checks saw: the server's own access log shows no 5xx and no traceback.
    server_errors = [m.group(0) for m in ACCESS_LINE.finditer(log) if m.group(3).startswith("5")]
    assert not server_errors, server_errors[:20]
    assert "Traceback" not in log, log[log.index("Traceback") :][:4000]
    # The run was real: hundreds of requests, and every operation on a case got a 200 from a
    # seeded case at least once: cases read, steps completed, a red flag reported, deadlines
    # moved and a case cancelled.
    assert run.requests >= 300, run.requests
    # NUL bytes, controls, invisible characters and overlong strings were sent, and refused
    # (or, where such text is fine, such as a reason, taken) without a server error.
    assert sum(run.hostile.values()) >= 50, run.hostile
    assert run.hostile[422] >= 30, run.hostile
    assert len(ACCESS_LINE.findall(log)) >= 300, "the server's access log misses the requests"
    reached = {label: sorted(run.seeded_statuses(label)) for label in CASE_OPERATIONS}
    missed = {label: statuses for label, statuses in reached.items() if 200 not in statuses}
    assert not missed, f"no 200 on a seeded case: {missed}"
    assert elapsed < 60, f"the fuzz run took {elapsed:.0f}s; keep it well under a minute"
