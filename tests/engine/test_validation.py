"""Validation of BPMN and DMN files: the interchange corpus, the pathway's own files, and
crafted bad input (hostile XML, forbidden code, missing pieces)."""

from __future__ import annotations

import os
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import engine.validation.spiff as spiff_checks
from engine.diagrams import PathwayParser
from engine.errors import Problem
from engine.validation import FileReport, validate_documents, validate_paths

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DIAGRAMS = HERE / "diagrams"
BPMN_FIXTURE = DIAGRAMS / "triage.bpmn"
DMN_FIXTURE = DIAGRAMS / "triage_decision.dmn"
PATHWAY_BPMN = REPO / "bpmn" / "lumbar_radiculopathy.bpmn"
PATHWAY_DMN = REPO / "bpmn" / "red_flags.dmn"
CORPUS_FOLDERS = ("reference", "bpmn-io-modeler")


def _interchange_dir() -> Path | None:
    candidates = [Path(__file__).resolve().parents[3] / "shared" / "interchange"]
    shared = os.environ.get("PATHWAY_SHARED_DIR")
    if shared:
        candidates += [Path(shared) / "interchange", Path(shared)]
    for candidate in candidates:
        if all((candidate / folder).is_dir() for folder in CORPUS_FOLDERS):
            return candidate
    return None


INTERCHANGE = _interchange_dir()
CORPUS = (
    sorted(
        path
        for folder in CORPUS_FOLDERS
        for path in (INTERCHANGE / folder).iterdir()
        if path.is_file()
    )
    if INTERCHANGE
    else []
)


def _missing_corpus() -> None:
    message = (
        "the BPMN interchange corpus was not found: expected ../shared/interchange next "
        "to the repository, or PATHWAY_SHARED_DIR pointing at the shared folder"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _ids_in(content: bytes) -> set[str]:
    return {str(node.get("id")) for node in etree.fromstring(content).iter() if node.get("id")}


def _check_problem_shape(problem: Problem, report: FileReport, ids: set[str]) -> None:
    assert isinstance(problem, Problem)
    assert problem.file == report.file
    assert problem.message.strip(), problem
    assert "Traceback" not in problem.message and 'File "' not in problem.message
    assert problem.fix and problem.fix.strip(), problem
    assert isinstance(problem.line, int) and problem.line > 0, problem
    assert problem.element_id, problem
    assert problem.element_id.split(".")[0] in ids, problem


# ---------------------------------------------------------------- the interchange corpus


def test_interchange_corpus_is_present() -> None:
    if INTERCHANGE is None:
        _missing_corpus()
    assert INTERCHANGE is not None
    for folder in CORPUS_FOLDERS:
        assert any((INTERCHANGE / folder).iterdir()), f"{folder} is empty"


@pytest.mark.parametrize(
    "path",
    CORPUS or [None],
    ids=lambda p: f"{p.parent.name}/{p.name}" if isinstance(p, Path) else "missing-corpus",
)
def test_every_interchange_file_gets_a_report(
    path: Path | None, capsys: pytest.CaptureFixture[str]
) -> None:
    if path is None:
        _missing_corpus()
        return
    content = path.read_bytes()
    reports = validate_paths([path])
    assert len(reports) == 1
    report = reports[0]
    assert report.file == str(path)
    assert report.kind == "bpmn"
    assert report.deployable == (not report.problems)
    ids = _ids_in(content)
    for problem in report.problems:
        _check_problem_shape(problem, report, ids)
    assert set(report.process_ids) <= ids
    assert path.read_bytes() == content  # the file is read, never changed
    assert capsys.readouterr() == ("", "")


def test_whole_corpus_in_one_call_keeps_order_and_is_quick() -> None:
    if not CORPUS:
        _missing_corpus()
    started = time.perf_counter()
    reports = validate_paths(CORPUS)
    elapsed = time.perf_counter() - started
    assert [r.file for r in reports] == [str(p) for p in CORPUS]
    assert elapsed < 30, f"validating the corpus took {elapsed:.1f} s"


# ---------------------------------------------------------------- the pathway's own files


def test_pathway_files_are_deployable() -> None:
    bpmn, dmn = validate_paths([PATHWAY_BPMN, PATHWAY_DMN])
    assert bpmn.problems == () and dmn.problems == ()
    assert bpmn.deployable and dmn.deployable
    assert (bpmn.kind, bpmn.process_ids) == ("bpmn", ("lumbar_radiculopathy",))
    assert (dmn.kind, dmn.decision_ids) == ("dmn", ("red_flags",))


def test_pathway_files_as_bytes_are_deployable() -> None:
    files = [(p.name, p.read_bytes()) for p in (PATHWAY_BPMN, PATHWAY_DMN)]
    assert all(r.deployable for r in validate_documents(files))


def test_decision_is_found_beside_the_bpmn_file() -> None:
    (report,) = validate_paths([PATHWAY_BPMN])
    assert report.deployable, report.problems


# ---------------------------------------------------------------- helpers for crafted files


def _bpmn(*edits: tuple[str, str]) -> bytes:
    text = BPMN_FIXTURE.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text.encode()


def _dmn(*edits: tuple[str, str]) -> bytes:
    text = DMN_FIXTURE.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    return text.encode()


def _check(bpmn: bytes, dmn: bytes | None = None) -> FileReport:
    files = [("triage.bpmn", bpmn)]
    if dmn is not None:
        files.append(("triage_decision.dmn", dmn))
    return validate_documents(files)[0]


def _check_dmn(dmn: bytes) -> FileReport:
    return validate_documents([("triage_decision.dmn", dmn)])[0]


def _about(report: FileReport, element_id: str) -> list[Problem]:
    return [p for p in report.problems if p.element_id == element_id]


def _line_of(content: bytes, needle: str) -> int:
    return (
        content.decode()
        .splitlines()
        .index(next(line for line in content.decode().splitlines() if needle in line))
        + 1
    )


TIMER = '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">P14D</bpmn:timeDuration>'
CONDITION = 'urgency == "urgent"'
SCRIPT = '<bpmn:script>note = "urgent: " + str(score)</bpmn:script>'


# ---------------------------------------------------------------- good files


def test_fixture_files_are_deployable() -> None:
    bpmn, dmn = validate_paths([BPMN_FIXTURE, DMN_FIXTURE])
    assert bpmn.problems == () and dmn.problems == ()
    assert bpmn.process_ids == ("triage",) and dmn.decision_ids == ("triage_decision",)


@pytest.mark.parametrize(
    "body", ["P14D", " P2W ", '"P14D"', "'PT4H' if score > 8 else 'P14D'", "add_days(today(), 14)"]
)
def test_timer_literal_or_expression_is_accepted(body: str) -> None:
    report = _check(_bpmn((TIMER, TIMER.replace("P14D", body))), DMN_FIXTURE.read_bytes())
    assert report.problems == ()


@pytest.mark.parametrize(
    "body",
    ["P6WW", "PT", "P1Y2", "P", "&quot;P14DD&quot; if score &gt; 8 else null", "'PT4HH'"],
)
def test_a_timer_that_is_not_iso_8601_is_a_problem_at_validation(body: str) -> None:
    """These passed validation and failed only when the timer was reached."""
    bpmn = _bpmn((TIMER, TIMER.replace("P14D", body)))
    report = _check(bpmn, DMN_FIXTURE.read_bytes())
    (problem,) = report.problems
    assert "is not an ISO 8601 duration" in problem.message
    assert problem.element_id == "wait_timer"
    assert problem.line == _line_of(bpmn, 'id="wait_timer"')  # the element, as for any problem
    assert problem.fix and "P14D" in problem.fix


@pytest.mark.parametrize(
    "entry", ["-", "true", "&gt; 5", "1 &lt; ? &lt; 9", "? in (1, 2)", "", "? not in (3, 4)", " "]
)
def test_dmn_unary_tests_are_accepted(entry: str) -> None:
    report = _check_dmn(_dmn(("<text>&gt; 7</text>", f"<text>{entry}</text>")))
    assert report.problems == ()


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ('"a", "b"', "FEEL list of values"),
        ("[1..5]", "FEEL range"),
        (" - ", "not a test"),
        ("not in (3, 4)", "makes the name 'scorenot'"),
    ],
)
def test_dmn_tests_the_engine_would_misread(entry: str, words: str) -> None:
    report = _check_dmn(_dmn(("<text>&gt; 7</text>", f"<text>{entry}</text>")))
    (problem,) = report.problems
    assert problem.element_id == "rule_urgent_score" and words in problem.message


def test_dmn_1_1_and_1_2_files_are_read() -> None:
    text = DMN_FIXTURE.read_text()
    without_di = re.sub(r"\s*<dmndi:DMNDI>.*</dmndi:DMNDI>", "", text, flags=re.DOTALL)
    for namespace in (
        "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
        "http://www.omg.org/spec/DMN/20180521/MODEL/",
    ):
        content = without_di.replace("https://www.omg.org/spec/DMN/20191111/MODEL/", namespace)
        report = _check_dmn(content.encode())
        assert (report.kind, report.problems) == ("dmn", ()), namespace


# ---------------------------------------------------------------- hostile and broken XML

PASSWD = Path("/etc/passwd")


def _secret_lines() -> list[str]:
    if not PASSWD.exists():
        return ["root:x:0:0"]
    return [line for line in PASSWD.read_text(errors="replace").splitlines() if line][:5]


@pytest.mark.parametrize(
    "content",
    [
        (DIAGRAMS / "xxe.bpmn").read_bytes(),
        b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<x>&e;</x>',
        b'<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><x/>',
        b'<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd"><x/>',
        '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM '
        '"file:///etc/passwd">]>\n<x>&e;</x>'.encode("utf-16"),
    ],
    ids=["bpmn-file", "brief", "parameter-entity", "external-dtd", "utf-16"],
)
def test_external_entities_are_refused_and_never_read(content: bytes) -> None:
    (report,) = validate_documents([("evil.bpmn", content)])
    assert report.kind == "unknown" and not report.deployable
    text = " ".join(str(p) for p in report.problems)
    assert "DOCTYPE" in text
    for secret in _secret_lines():
        assert secret not in text
    assert all(p.line for p in report.problems)


def test_billion_laughs_is_refused_quickly() -> None:
    started = time.perf_counter()
    (report,) = validate_paths([DIAGRAMS / "billion_laughs.bpmn"])
    assert time.perf_counter() - started < 1.0
    assert report.kind == "unknown"
    assert len(report.problems) == 1 and "DOCTYPE" in report.problems[0].message
    assert len(str(report.problems[0])) < 500


@pytest.mark.parametrize(
    "content",
    [
        b"this is not XML at all",
        b'{"process": "json"}',
        bytes(range(256)) * 4,
        b"<definitions><unclosed></definitions>",
        b"\xff\xfe\x00\x00garbage",
    ],
)
def test_not_xml_is_reported(content: bytes) -> None:
    (report,) = validate_documents([("junk.bpmn", content)])
    assert report.kind == "unknown"
    assert len(report.problems) == 1
    assert report.problems[0].file == "junk.bpmn" and report.problems[0].fix


@pytest.mark.parametrize("content", [b"", b"  \n\t "])
def test_empty_file_is_reported(content: bytes) -> None:
    (report,) = validate_documents([("empty.bpmn", content)])
    assert report.kind == "unknown"
    assert [p.message for p in report.problems] == ["the file is empty"]


@pytest.mark.parametrize(
    "content",
    [
        b'<foo xmlns="urn:example"/>',
        b"<definitions/>",
        b'<definitions xmlns="https://www.omg.org/spec/DMN/20230324/MODEL/"/>',
    ],
)
def test_other_documents_are_unknown(content: bytes) -> None:
    (report,) = validate_documents([("other.xml", content)])
    assert report.kind == "unknown" and len(report.problems) == 1
    assert report.problems[0].line == 1


def test_unreadable_paths_are_reports(tmp_path: Path) -> None:
    missing, folder = tmp_path / "missing.bpmn", tmp_path / "folder.bpmn"
    folder.mkdir()
    reports = validate_paths([missing, folder, BPMN_FIXTURE, DMN_FIXTURE])
    assert [r.file for r in reports] == [
        str(missing),
        str(folder),
        str(BPMN_FIXTURE),
        str(DMN_FIXTURE),
    ]
    for report in reports[:2]:
        assert report.kind == "unknown"
        assert report.problems[0].message.startswith("cannot read the file")
    assert reports[2].deployable and reports[3].deployable


def test_schema_errors_are_all_reported_with_lines() -> None:
    content = _bpmn(
        (
            "<bpmn:incoming>flow_start_assess</bpmn:incoming>",
            "<bpmn:bogus/>\n      <bpmn:incoming>flow_start_assess</bpmn:incoming>",
        ),
        (
            '<bpmn:endEvent id="routine_end" name="Routine">',
            '<bpmn:endEvent id="routine_end" name="Routine" colour="red">',
        ),
    )
    report = _check(content, DMN_FIXTURE.read_bytes())
    schema = [p for p in report.problems if p.message.startswith("not valid BPMN 2.0")]
    assert len(schema) == 2, report.problems
    bogus, colour = schema
    assert (bogus.element_id, bogus.line) == ("assess", _line_of(content, "<bpmn:bogus/>"))
    assert "bpmn:bogus" in bogus.message and "{" not in bogus.message
    assert (colour.element_id, colour.line) == ("routine_end", _line_of(content, 'colour="red"'))


def test_dmn_schema_error_is_reported() -> None:
    content = _dmn(('<rule id="rule_urgent">', '<rule id="rule_urgent" weight="3">'))
    report = _check_dmn(content)
    assert [p.element_id for p in report.problems] == ["rule_urgent"]
    assert report.problems[0].line == _line_of(content, 'weight="3"')


# ---------------------------------------------------------------- forbidden code


def test_gateway_condition_cannot_import(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "triage.bpmn"
    path.write_bytes(_bpmn((CONDITION, f"__import__('os').system('touch {marker}')")))
    report = validate_paths([path, DMN_FIXTURE])[0]
    (problem,) = report.problems
    assert problem.element_id == "flow_urgent"
    assert problem.message.startswith("the condition of sequence flow 'flow_urgent'")
    assert "is not allowed" in problem.message
    assert not marker.exists()


@pytest.mark.parametrize(
    "script", ["data = open('/etc/passwd')", "data = open('/etc/passwd').read()"]
)
def test_script_task_cannot_open_files(script: str) -> None:
    report = _check(
        _bpmn((SCRIPT, f"<bpmn:script>{script}</bpmn:script>")), DMN_FIXTURE.read_bytes()
    )
    (problem,) = report.problems
    assert problem.element_id == "note_urgent"
    assert problem.message.startswith("the script of script task 'note_urgent'")
    assert "is not allowed" in problem.message


def test_multi_line_script_names_the_line() -> None:
    script = "<bpmn:script>a = 1\nb = a.__class__\n</bpmn:script>"
    report = _check(_bpmn((SCRIPT, script)), DMN_FIXTURE.read_bytes())
    (problem,) = report.problems
    assert problem.element_id == "note_urgent" and "(line 2)" in problem.message


def test_timer_expression_is_checked() -> None:
    report = _check(_bpmn((TIMER, TIMER.replace("P14D", "eval('P1D')"))), DMN_FIXTURE.read_bytes())
    assert [p.element_id for p in report.problems] == ["wait_timer"]
    assert "'eval'" in report.problems[0].message


def test_dmn_expressions_are_checked_as_the_engine_runs_them() -> None:
    report = _check_dmn(
        _dmn(
            ("<text>&gt; 7</text>", "<text>__import__('os')</text>"),
            ("<text>score</text>", "<text>score.__class__</text>"),
            ('<text>"routine"</text>', "<text>open('x')</text>"),
        )
    )
    assert [p.element_id for p in report.problems] == [
        "input_score",
        "rule_urgent_score",
        "rule_routine_score",
        "rule_routine_out",
    ]


def test_camunda_juel_condition_gets_a_python_suggestion() -> None:
    report = _check(_bpmn((CONDITION, "${!approved &amp;&amp; urgent}")), DMN_FIXTURE.read_bytes())
    (problem,) = report.problems
    assert "JUEL" in problem.message and "not approved and urgent" in (problem.fix or "")


# ---------------------------------------------------------------- what the engine needs


def test_timer_without_definition() -> None:
    content = _bpmn(
        (
            f"""<bpmn:timerEventDefinition id="wait_timer_definition">
        {TIMER}
      </bpmn:timerEventDefinition>""",
            '<bpmn:timerEventDefinition id="wait_timer_definition"/>',
        )
    )
    report = _check(content, DMN_FIXTURE.read_bytes())
    (problem,) = report.problems
    assert problem.element_id == "wait_timer"
    assert problem.message.startswith("timer 'wait_timer'")
    assert "has no time definition" in problem.message and "timeDuration" in (problem.fix or "")
    assert problem.line == _line_of(content, '<bpmn:intermediateCatchEvent id="wait_timer"')


def test_missing_shape_and_edge_are_reported() -> None:
    report = _check(
        _bpmn(
            (
                '<bpmndi:BPMNShape id="assess_di" bpmnElement="assess">',
                '<bpmndi:BPMNShape id="assess_di" bpmnElement="assess_old">',
            ),
            ('bpmnElement="flow_routine"', 'bpmnElement="flow_other"'),
        ),
        DMN_FIXTURE.read_bytes(),
    )
    assert [p.element_id for p in report.problems] == ["assess", "flow_routine"]
    assert all(p.message.startswith("no diagram layout for") for p in report.problems)
    assert "bpmn.io" in (report.problems[0].fix or "")


def test_first_hit_policy_is_refused_and_blocks_the_bpmn() -> None:
    dmn = _dmn(('hitPolicy="UNIQUE"', 'hitPolicy="FIRST"'))
    bpmn_report, dmn_report = validate_documents(
        [("triage.bpmn", _bpmn()), ("triage_decision.dmn", dmn)]
    )
    (problem,) = dmn_report.problems
    assert problem.element_id == "triage_table" and "FIRST" in problem.message
    assert "UNIQUE" in (problem.fix or "")
    (blocked,) = bpmn_report.problems
    assert blocked.element_id == "classify" and "triage_decision.dmn" in blocked.message


def test_business_rule_task_with_missing_decision(tmp_path: Path) -> None:
    report = _check(_bpmn())
    (problem,) = report.problems
    assert problem.element_id == "classify" and "'triage_decision'" in problem.message
    assert "DMN" in (problem.fix or "")
    alone = tmp_path / "triage.bpmn"  # no DMN in this folder
    alone.write_bytes(_bpmn())
    (from_disk,) = validate_paths([alone])[0].problems
    assert (from_disk.element_id, from_disk.message) == (problem.element_id, problem.message)


def test_spiffworkflow_called_decision_is_resolved() -> None:
    content = _bpmn(
        (
            'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"',
            'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
            'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"',
        ),
        (' camunda:decisionRef="triage_decision">', ">"),
        (
            '<camunda:property name="pathway.evidence.source" value="Test guideline, section 2"/>\n'
            "        </camunda:properties>",
            '<camunda:property name="pathway.evidence.source" value="Test guideline, section 2"/>\n'
            "        </camunda:properties>\n        <spiffworkflow:calledDecisionId>"
            "triage_decision</spiffworkflow:calledDecisionId>",
        ),
    )
    assert _check(content, DMN_FIXTURE.read_bytes()).problems == ()
    (problem,) = _check(content).problems
    assert problem.element_id == "classify" and "'triage_decision'" in problem.message


CORRELATION = """<bpmn:message id="referral_message" name="referral"/>
  <bpmn:correlationProperty id="referral_key" name="Referral key">
    <bpmn:correlationPropertyRetrievalExpression messageRef="referral_message">
      <bpmn:formalExpression>{expression}</bpmn:formalExpression>
    </bpmn:correlationPropertyRetrievalExpression>
  </bpmn:correlationProperty>
  <bpmn:process id="triage\""""


def test_bpmn_js_correlation_expression_is_valid_and_checked() -> None:
    def with_expression(expression: str) -> bytes:
        return _bpmn(('<bpmn:process id="triage"', CORRELATION.format(expression=expression)))

    assert _check(with_expression("referral_id"), DMN_FIXTURE.read_bytes()).problems == ()
    (problem,) = _check(with_expression("().__class__"), DMN_FIXTURE.read_bytes()).problems
    assert problem.element_id == "referral_key" and "retrieval expression" in problem.message


def test_no_executable_process() -> None:
    report = _check(_bpmn(('isExecutable="true"', 'isExecutable="false"')))
    assert [(p.element_id, p.message) for p in report.problems] == [
        ("triage", "no executable process")
    ]
    assert report.process_ids == ()


def test_pathway_rules_on_steps() -> None:
    report = _check(
        _bpmn(
            (' camunda:candidateGroups="clinician"', ""),
            (
                "<bpmn:documentation>Classify the score as urgent or routine.</bpmn:documentation>",
                "",
            ),
            (
                '<camunda:formField id="score" label="Severity score 0-10" type="long">',
                '<camunda:formField id="score" label="Severity score 0-10" type="float">',
            ),
            (
                '<bpmn:scriptTask id="note_urgent" name="Note urgency" scriptFormat="python">',
                '<bpmn:serviceTask id="note_urgent" name="Note urgency">',
            ),
            ("</bpmn:scriptTask>", "</bpmn:serviceTask>"),
        ),
        DMN_FIXTURE.read_bytes(),
    )
    messages = {p.element_id: p.message for p in report.problems}
    assert "has no role" in messages["assess"]
    assert "form field type 'float'" in messages["assess.score"]
    assert "rationale" in messages["classify"]
    assert "no service to call" in messages["note_urgent"]


def test_unknown_role_undeclared_message_and_variance_code() -> None:
    report = _check(
        _bpmn(
            ('camunda:candidateGroups="clinician"', 'camunda:candidateGroups="nurse"'),
            (
                f"""<bpmn:timerEventDefinition id="wait_timer_definition">
        {TIMER}
      </bpmn:timerEventDefinition>""",
                '<bpmn:messageEventDefinition id="wait_message" messageRef="not_declared"/>',
            ),
            (
                '<camunda:property name="pathway.evidence.source" value="Test guideline, section 1"/>',
                '<camunda:property name="pathway.evidence.source" value="Test guideline, section 1"/>'
                '<camunda:property name="pathway.variance.odd" value="score.__class__"/>',
            ),
        ),
        DMN_FIXTURE.read_bytes(),
    )
    found = [(p.element_id, p.message) for p in report.problems]
    assert any(i == "assess" and "unknown role 'nurse'" in m for i, m in found)
    assert any(i == "assess" and "variance condition 'odd'" in m for i, m in found)
    assert any(i == "wait_timer" and "message 'not_declared'" in m for i, m in found)


def test_engine_refusal_is_reported_once() -> None:
    report = _check(
        _bpmn(
            (
                "<bpmn:outgoing>flow_assess_classify</bpmn:outgoing>",
                "<bpmn:outgoing>flow_assess_classify</bpmn:outgoing>\n"
                "      <bpmn:outgoing>flow_shortcut</bpmn:outgoing>",
            ),
            (
                '<bpmn:sequenceFlow id="flow_assess_classify"',
                '<bpmn:sequenceFlow id="flow_shortcut" sourceRef="assess" targetRef="routine_end"/>\n'
                '    <bpmn:sequenceFlow id="flow_assess_classify"',
            ),
            (
                "</bpmndi:BPMNPlane>",
                '<bpmndi:BPMNEdge id="flow_shortcut_di" '
                'bpmnElement="flow_shortcut"><di:waypoint x="1" y="1"/><di:waypoint x="2" y="2"/>'
                "</bpmndi:BPMNEdge></bpmndi:BPMNPlane>",
            ),
        ),
        DMN_FIXTURE.read_bytes(),
    )
    (problem,) = report.problems
    assert problem.element_id == "assess" and "several outgoing flows" in problem.message


def test_unexpected_engine_crash_names_the_element(monkeypatch: pytest.MonkeyPatch) -> None:
    class CrashingParser(PathwayParser):  # type: ignore[misc]
        def add_bpmn_xml(self, bpmn: Any, filename: str | None = None) -> None:
            self.document = bpmn

        def get_subprocess_specs(self, name: str) -> None:
            node = self.document.xpath("//*[@id='wait_timer']")[0]
            assert node is not None
            raise KeyError("timeDuration")

    monkeypatch.setattr(spiff_checks, "PathwayParser", CrashingParser)
    report = _check(_bpmn(), DMN_FIXTURE.read_bytes())
    (problem,) = report.problems
    assert problem.element_id == "wait_timer"
    assert "cannot execute" in problem.message and "KeyError" in problem.message


def test_dmn_shapes_the_engine_cannot_read() -> None:
    report = _check_dmn(
        _dmn(
            ('<rule id="rule_routine">', '<rule id="rule_routine"><!-- why -->'),
            (
                "</decision>",
                '</decision>\n  <decision id="second"><decisionTable id="t2"/></decision>',
            ),
        )
    )
    messages = [p.message for p in report.problems]
    assert any("comment" in m for m in messages)
    assert any("declares 2 decisions" in m for m in messages)
    assert report.decision_ids == ("triage_decision", "second")


# ---------------------------------------------------------------- robustness


def test_damaged_files_never_raise() -> None:
    rng = random.Random(1234)
    originals = [BPMN_FIXTURE.read_bytes(), DMN_FIXTURE.read_bytes(), PATHWAY_DMN.read_bytes()]
    for _ in range(120):
        content = bytearray(rng.choice(originals))
        if rng.random() < 0.5:
            del content[rng.randrange(len(content)) :]
        else:
            for _ in range(rng.randint(1, 5)):
                content[rng.randrange(len(content))] = rng.randrange(256)
        reports = validate_documents([("damaged", bytes(content)), ("dmn", originals[1])])
        assert len(reports) == 2
        assert all(p.message and p.file == "damaged" for p in reports[0].problems)
