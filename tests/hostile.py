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


def script_importing_os() -> bytes:
    """A script task whose script imports ``os`` and runs a shell command."""
    script = "import os\nos.system('touch /tmp/pathway-pwned')"
    return _flow_document(f'<scriptTask id="run" scriptFormat="python"><script>{script}</script>')


def condition_importing_os() -> bytes:
    """A gateway condition that reaches ``os`` through ``__import__``."""
    condition = "__import__('os').system('touch /tmp/pathway-pwned') == 0"
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
