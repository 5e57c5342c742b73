"""Hostile and oversized diagram files, as bytes, for the tests of every layer that reads them.

Each function returns the whole file. The engine's validation tests and the API's upload tests
send the same bytes, so a file refused by ``pathway validate`` is refused over HTTP too.
Everything here is synthetic: no patient data, and the only "secret" an entity points at is
``/etc/passwd`` (or an address on 127.0.0.1 where nothing listens).
"""

from __future__ import annotations

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_OPEN = f'<definitions xmlns="{BPMN_NS}" id="hostile" targetNamespace="https://example.org/t">'
_PROCESS = '<process id="hostile_process" isExecutable="true">'
PASSWD = "file:///etc/passwd"
NOWHERE = "http://127.0.0.1:9/evil.dtd"


def _document(body: str, *, doctype: str = "", before: str = "") -> str:
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return f"{head}{before}{doctype}\n{_OPEN}{_PROCESS}{body}</process></definitions>\n"


def billion_laughs(levels: int = 9) -> bytes:
    """Nested internal entities that expand to 10**levels 'lol's, used in text and attribute."""
    entities = ['<!ENTITY lol0 "lol">']
    for level in range(1, levels + 1):
        entities.append(f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">')
    doctype = "<!DOCTYPE definitions [\n" + "\n".join(entities) + "\n]>"
    body = (
        f'<startEvent id="start" name="&lol{levels};"/><documentation>&lol{levels};</documentation>'
    )
    return _document(body, doctype=doctype).encode()


def external_entity(url: str = PASSWD) -> bytes:
    """An external general entity (a local file or an http URL) used in an attribute and text."""
    doctype = f'<!DOCTYPE definitions [<!ENTITY e SYSTEM "{url}">]>'
    return _document('<startEvent id="start" name="&e;"/>', doctype=doctype).encode()


def parameter_entity(url: str = PASSWD) -> bytes:
    """An external parameter entity, expanded inside the DTD itself."""
    doctype = f'<!DOCTYPE definitions [<!ENTITY % p SYSTEM "{url}"> %p;]>'
    return _document('<startEvent id="start"/>', doctype=doctype).encode()


def external_dtd(url: str = NOWHERE) -> bytes:
    """A DOCTYPE that names an external DTD to fetch."""
    doctype = f'<!DOCTYPE definitions SYSTEM "{url}">'
    return _document('<startEvent id="start"/>', doctype=doctype).encode()


def doctype_after_comments(padding: int = 1_100_000, *, encoding: str = "utf-8") -> bytes:
    """An external entity behind more than ``padding`` characters of comments and processing
    instructions, out of reach of any pre-check that reads only the start of the file."""
    chunk = "<!-- " + "x" * 990 + " -->\n<?pad " + "y" * 90 + "?>\n"
    before = chunk * (padding // len(chunk) + 1)
    doctype = f'<!DOCTYPE definitions [<!ENTITY e SYSTEM "{PASSWD}">]>'
    text = _document('<startEvent id="start" name="&e;"/>', doctype=doctype, before=before)
    return _encoded(text, encoding)


def encoded(content: bytes, encoding: str) -> bytes:
    """The same UTF-8 document re-encoded (``utf-16``, ``utf-32``, ``utf-16-le`` ...), with
    its XML declaration saying so; ``utf-16`` and ``utf-32`` carry a byte order mark."""
    return _encoded(content.decode("utf-8"), encoding)


def _encoded(text: str, encoding: str) -> bytes:
    name = encoding.upper().replace("-LE", "").replace("-BE", "")
    return text.replace('encoding="UTF-8"', f'encoding="{name}"', 1).encode(encoding)


def deep(levels: int = 10_000) -> bytes:
    """Elements nested ``levels`` deep inside a process's documentation."""
    inner = "<x>" * levels + "</x>" * levels
    return _document(f'<extensionElements xmlns:h="urn:h">{inner}</extensionElements>').encode()


def oversized(size: int = 50_000_000) -> bytes:
    """A well-formed process padded with documentation to at least ``size`` bytes."""
    filler = "synthetic filler text. " * (size // 23 + 1)
    return _document(f"<documentation>{filler}</documentation>").encode()


def many_tasks(count: int = 130_000, *, flows: bool = False) -> bytes:
    """One executable process of ``count`` empty tasks named as bpmn.io names them (about
    31 bytes each: 130,000 make 4 MB), chained by sequence flows from a start to an end event
    when ``flows``."""
    parts = ['<startEvent id="start"/>'] if flows else []
    for index in range(count):
        parts.append(f'<task id="Activity_{index:07d}"/>')
        if flows:
            source = "start" if index == 0 else f"Activity_{index - 1:07d}"
            parts.append(
                f'<sequenceFlow id="Flow_{index:07d}" sourceRef="{source}" '
                f'targetRef="Activity_{index:07d}"/>'
            )
    if flows:
        parts.append('<endEvent id="end"/>')
        parts.append(
            f'<sequenceFlow id="Flow_end" sourceRef="Activity_{count - 1:07d}" targetRef="end"/>'
        )
    return _document("\n".join(parts)).encode()


def script_importing_os(marker: str = "pathway-pwned") -> bytes:
    """A script task whose script imports ``os`` and runs a shell command that would create
    the file ``marker``."""
    script = f"import os\nos.system('touch {marker}')"
    return _flow_document(f'<scriptTask id="run" scriptFormat="python"><script>{script}</script>')


def condition_importing_os(marker: str = "pathway-pwned") -> bytes:
    """A gateway condition that reaches ``os`` through ``__import__`` and runs a shell command
    that would create the file ``marker``."""
    condition = f"__import__('os').system('touch {marker}') == 0"
    return _flow_document(
        '<exclusiveGateway id="run" default="f_other"/>',
        condition=condition,
    )


def _flow_document(node: str, *, condition: str = "") -> bytes:
    if not node.endswith("/>"):
        node += "</scriptTask>"
    when = f"<conditionExpression>{condition}</conditionExpression>" if condition else ""
    flows = (
        '<sequenceFlow id="f_in" sourceRef="start" targetRef="run"/>'
        f'<sequenceFlow id="f_out" sourceRef="run" targetRef="end">{when}</sequenceFlow>'
    )
    if condition:
        flows += '<sequenceFlow id="f_other" sourceRef="run" targetRef="end"/>'
    body = f'<startEvent id="start"/>{node}<endEvent id="end"/>{flows}'
    return _document(body).encode()


def many_processes(count: int = 2_400) -> bytes:
    """``count`` executable processes of a start and an end event each."""
    processes = "".join(
        f'<process id="p{index}" isExecutable="true"><startEvent id="s{index}"/>'
        f'<endEvent id="e{index}"/><sequenceFlow id="f{index}" sourceRef="s{index}" '
        f'targetRef="e{index}"/></process>\n'
        for index in range(count)
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{_OPEN}{processes}</definitions>\n'.encode()


def failing_processes(count: int = 1_200, *, padding: int = 120) -> bytes:
    """``count`` executable processes the engine refuses (no start event), each padded with
    ``padding`` empty documentation elements: many refusals in a large document."""
    docs = "<documentation/>" * padding
    processes = "".join(
        f'<process id="p{index}" isExecutable="true">{docs}<endEvent id="e{index}"/></process>\n'
        for index in range(count)
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{_OPEN}{processes}</definitions>\n'.encode()


def many_gateways(count: int = 1_600) -> bytes:
    """A chain of ``count`` exclusive gateways, each with a conditional and a default flow."""
    parts = ['<startEvent id="start"/><sequenceFlow id="f_in" sourceRef="start" targetRef="g0"/>']
    for index in range(count):
        after = f"g{index + 1}" if index + 1 < count else "end"
        parts.append(
            f'<exclusiveGateway id="g{index}" default="d{index}"/>'
            f'<sequenceFlow id="c{index}" sourceRef="g{index}" targetRef="{after}">'
            f"<conditionExpression>score == {index}</conditionExpression></sequenceFlow>"
            f'<sequenceFlow id="d{index}" sourceRef="g{index}" targetRef="{after}"/>'
        )
    parts.append('<endEvent id="end"/>')
    return _document("\n".join(parts)).encode()


def many_scripts(count: int = 4_000, *, lines: int = 4) -> bytes:
    """``count`` script tasks, each a distinct script of ``lines`` lines."""
    tasks = "\n".join(
        f'<scriptTask id="t{index}"><script>'
        + "".join(f"v{line} = score * {index} + {line}&#10;" for line in range(lines))
        + "</script></scriptTask>"
        for index in range(count)
    )
    return _document(tasks).encode()


def many_schema_errors(count: int = 5_990) -> bytes:
    """``count`` elements the BPMN schema does not allow, one a line, in one process."""
    return _document('<startEvent id="start"/>\n' + "\n".join(["<unknown/>"] * count)).encode()


def many_attributes(parents: int = 16, children: int = 5_990) -> bytes:
    """``parents`` processes of ``children`` documentation elements each, every one with an
    attribute the schema does not allow: as many schema errors among as many siblings as the
    XML limits let through (16 x 5,990 make 191,700 elements and attributes)."""
    line = '<documentation bad="1"/>'
    processes = "".join(
        f'<process id="p{index}">\n' + "\n".join([line] * children) + "\n</process>\n"
        for index in range(parents)
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{_OPEN}{processes}</definitions>\n'.encode()


def large_decision_table(rules: int = 5_000) -> bytes:
    """One decision table of ``rules`` rules, one input and one output column each."""
    body = "".join(
        f'<rule id="r{index}"><inputEntry id="i{index}"><text>&gt; {index}</text></inputEntry>'
        f'<outputEntry id="o{index}"><text>"band {index}"</text></outputEntry></rule>\n'
        for index in range(rules)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="big" '
        'name="big" namespace="https://example.org/t"><decision id="big_decision" name="big">'
        '<decisionTable id="big_table"><input id="in" label="Score"><inputExpression id="ie" '
        'typeRef="integer"><text>score</text></inputExpression></input>'
        f'<output id="out" name="band" typeRef="string"/>\n{body}</decisionTable></decision>'
        "</definitions>\n"
    ).encode()


def drawn_pathway(branches: int = 20, length: int = 60) -> bytes:
    """A pathway as bpmn.io saves one, but large: after the start a parallel gateway opens
    ``branches`` branches of ``length`` user tasks (role, rationale, evidence source, layout),
    joined again before the end. 20 x 60 is about 1,200 tasks in 2.3 MB."""
    camunda = 'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'
    di = 'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"'
    dc = 'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"'
    ddi = 'xmlns:di="http://www.omg.org/spec/DD/20100524/DI"'
    nodes, shapes = [], []

    def shape(ident: str, x: int, y: int) -> None:
        shapes.append(
            f'<bpmndi:BPMNShape id="{ident}_di" bpmnElement="{ident}">'
            f'<dc:Bounds x="{x}" y="{y}" width="100" height="80"/></bpmndi:BPMNShape>'
        )

    def flow(ident: str, source: str, target: str) -> None:
        nodes.append(f'<sequenceFlow id="{ident}" sourceRef="{source}" targetRef="{target}"/>')
        shapes.append(
            f'<bpmndi:BPMNEdge id="{ident}_di" bpmnElement="{ident}"><di:waypoint x="0" y="0"/>'
            '<di:waypoint x="10" y="10"/></bpmndi:BPMNEdge>'
        )

    nodes.append('<startEvent id="start" name="Referral received"/>')
    nodes.append('<parallelGateway id="split"/><parallelGateway id="join"/>')
    nodes.append('<endEvent id="end" name="Pathway complete"/>')
    for ident, x in (("start", 0), ("split", 100), ("join", 200 * length + 300), ("end", 0)):
        shape(ident, x, 0)
    flow("f_start", "start", "split")
    flow("f_end", "join", "end")
    for branch in range(branches):
        previous = "split"
        for step in range(length):
            ident = f"review_{branch}_{step}"
            nodes.append(
                f'<userTask id="{ident}" name="Review {branch}.{step}" '
                'camunda:candidateGroups="clinician">'
                "<documentation>Synthetic step: review the synthetic findings of this "
                "branch before the next one.</documentation><extensionElements>"
                '<camunda:properties><camunda:property name="pathway.evidence.source" '
                'value="Synthetic guideline, section 1"/></camunda:properties>'
                "</extensionElements></userTask>"
            )
            shape(ident, 200 + 200 * step, 120 * branch)
            flow(f"f_{ident}", previous, ident)
            previous = ident
        flow(f"f_join_{branch}", previous, "join")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<definitions xmlns="{BPMN_NS}" {camunda} {di} {dc} {ddi} id="drawn" '
        'targetNamespace="https://example.org/t">\n'
        '<process id="drawn_pathway" isExecutable="true">\n'
        + "\n".join(nodes)
        + '\n</process>\n<bpmndi:BPMNDiagram id="diagram"><bpmndi:BPMNPlane id="plane" '
        'bpmnElement="drawn_pathway">\n' + "\n".join(shapes) + "\n</bpmndi:BPMNPlane>"
        "</bpmndi:BPMNDiagram>\n</definitions>\n"
    ).encode()
