"""XML Schema checks of BPMN and DMN documents, against the schemas SpiffWorkflow bundles.

``schema_problems`` reports every schema error, not just the first: it validates a working copy,
sets aside the part each error is about, and validates again (at most 10 rounds and 200
errors, then it says the list is not complete; a valid file is validated once, uncopied).
Messages use the usual prefixes (bpmn:, dmn:, camunda: ...) and come with a fix.
"""

from __future__ import annotations

import copy
import functools
import re
import threading

from lxml import etree
from SpiffWorkflow.dmn.parser.BpmnDmnParser import SCHEMAS as DMN_SCHEMAS

from ..diagrams import BPMN_NS, CAMUNDA_NS
from ..errors import Problem
from .problems import problem

_XS = "{http://www.w3.org/2001/XMLSchema}"
# Each round validates the whole tree again: these keep a file with thousands of errors quick.
_MAX_ROUNDS = 10
_MAX_LISTED = 200
_PREFIXES = {
    BPMN_NS: "bpmn",
    "http://www.omg.org/spec/BPMN/20100524/DI": "bpmndi",
    "http://www.omg.org/spec/DD/20100524/DC": "dc",
    "http://www.omg.org/spec/DD/20100524/DI": "di",
    CAMUNDA_NS: "camunda",
    **{ns: "dmn" for ns in DMN_SCHEMAS},
}
_schema_lock = threading.Lock()


def _detach_imports(tree: etree._ElementTree) -> None:
    """Drop a schema's imports and accept any content where it referred to them."""
    schema = tree.getroot()
    dropped = set()
    for imported in schema.findall(f"{_XS}import"):
        dropped.add(imported.get("namespace"))
        schema.remove(imported)
    for element in schema.iter(f"{_XS}element"):
        ref = element.get("ref") or ""
        namespace = element.nsmap.get(ref.split(":")[0]) if ":" in ref else None
        if namespace in dropped:
            element.tag = f"{_XS}any"
            del element.attrib["ref"]
            element.set("namespace", namespace or "##other")
            element.set("processContents", "lax")


@functools.cache
def _schema(path: str) -> etree.XMLSchema:
    """Load a bundled schema once."""
    tree = etree.parse(path, etree.XMLParser(no_network=True, resolve_entities=False))
    try:
        return etree.XMLSchema(tree)
    except etree.XMLSchemaParseError:
        # SpiffWorkflow 3.2's DMN12.xsd imports DMNDI12.xsd, which declares the DI namespace
        # instead of DMNDI, so lxml cannot compile it: check the model without the diagram part.
        _detach_imports(tree)
        return etree.XMLSchema(tree)


def _readable(message: str, root: etree._Element) -> str:
    names = {ns: prefix for prefix, ns in root.nsmap.items() if prefix}
    names.update(_PREFIXES)

    def short(match: re.Match[str]) -> str:
        prefix = names.get(match[1])
        return f"{prefix}:{match[2]}" if prefix else match[2]

    text = re.sub(r"\{([^}]*)\}([\w.-]+)", short, message)

    def fewer(match: re.Match[str]) -> str:
        items = [i.strip() for i in match[1].split(",")]
        shown = ", ".join(items[:6]) + (", ..." if len(items) > 6 else "")
        return f"( {shown} )"

    return " ".join(re.sub(r"\(\s*([^()]*)\)", fewer, text).split())


def _schema_fix(message: str) -> str:
    if "not expected" in message:
        return "remove the element, or move it to where the schema allows it"
    if "is not allowed" in message:
        return "remove the attribute, or put it in an extension namespace such as camunda:"
    if "required but missing" in message or "Missing child" in message:
        return "add what the schema asks for"
    if "not a valid value" in message or "not accepted" in message:
        return "write a value of the type the schema asks for"
    return "edit the file so it follows the schema; bpmn.io / Camunda Modeler write valid files"


class _Prefixes(dict[str, str]):
    """The file's namespace prefixes: the root's, and the deeper ones once a path needs them
    (gathering them visits every element)."""

    complete = False

    def gather(self, work: etree._Element) -> None:
        self.complete = True
        for node in work.iter():
            if isinstance(node.tag, str):
                self.update((k, v) for k, v in node.nsmap.items() if k)


def _error_node(
    work: etree._Element, path: str | None, prefixes: _Prefixes
) -> etree._Element | None:
    """The element an error's path (written with the file's prefixes) names."""
    if not path:
        return None
    try:
        found = work.getroottree().xpath(path, namespaces=prefixes)
    except etree.XPathEvalError:
        if prefixes.complete:
            return None
        prefixes.gather(work)
        return _error_node(work, path, prefixes)
    except etree.XPathError:
        return None
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return found[0]
    return None


def _set_aside(node: etree._Element | None, message: str) -> bool:
    """Remove what an error is about from the working copy, so the rest gets checked."""
    if node is None:
        return False
    attribute = re.search(r"attribute '([^']+)'", message)
    if attribute and attribute[1] in node.attrib:
        del node.attrib[attribute[1]]
        return True
    parent = node.getparent()
    if parent is None:
        return False
    parent.remove(node)
    return True


def _problem(
    file: str,
    node: etree._Element | None,
    error: etree._LogEntry,
    *,
    root: etree._Element,
    standard: str,
) -> Problem:
    found = problem(
        file,
        node,
        f"not valid {standard}: {_readable(error.message, root)}",
        _schema_fix(error.message),
    )
    if found.line is None:
        found = Problem(file, found.message, found.element_id, error.line, found.fix)
    return found


def _cut_short(file: str, root: etree._Element, problems: list[Problem], standard: str) -> Problem:
    """Say the list stopped before the end, so it is not taken as complete."""
    return problem(
        file,
        root,
        f"not valid {standard}: only the first {len(problems)} schema errors are listed",
        "fix these and validate again to see the rest",
    )


def schema_problems(root: etree._Element, *, file: str, xsd: str, standard: str) -> list[Problem]:
    """Report every schema error: validate, set the offending part aside, validate again."""
    schema = _schema(xsd)
    # bpmn-js writes formalExpression where the schema wants messagePath; SpiffWorkflow's
    # BpmnValidator renames it before validating, and so do we, in a working copy.
    renamed = f"{{{BPMN_NS}}}correlationPropertyRetrievalExpression/{{{BPMN_NS}}}formalExpression"
    problems: list[Problem] = []
    seen: set[tuple[int, str]] = set()
    first: list[etree._LogEntry] | None = None  # the errors of the file as it is
    if root.find(f".//{renamed}") is None:
        with _schema_lock:
            if schema.validate(root):  # a valid file is not copied
                return []
            first = list(schema.error_log)
        # Enough errors to list without setting any aside: no copy of the tree is needed.
        distinct = {(e.line, e.message): e for e in first[: _MAX_LISTED * 20]}
        if len(distinct) >= _MAX_LISTED:
            prefixes = _Prefixes((k, v) for k, v in root.nsmap.items() if k)
            problems = [
                _problem(file, _error_node(root, e.path, prefixes), e, root=root, standard=standard)
                for e in list(distinct.values())[:_MAX_LISTED]
            ]
            return [*problems, _cut_short(file, root, problems, standard)]
    work = copy.deepcopy(root)
    for child in work.iterfind(f".//{renamed}"):
        child.tag = f"{{{BPMN_NS}}}messagePath"
    prefixes = _Prefixes((k, v) for k, v in work.nsmap.items() if k)
    emptied: set[etree._Element] = set()
    progress = False
    for _ in range(_MAX_ROUNDS):
        if first is not None:  # the copy is the file itself: its errors are known
            valid, errors, first = False, first, None
        else:
            with _schema_lock:
                valid = schema.validate(work)
                errors = list(schema.error_log)
        resolved = []  # every error's element, found before any is set aside (paths are by
        for error in [] if valid else errors:  # position: setting one aside moves the next)
            if len(problems) >= _MAX_LISTED:
                break
            node = _error_node(work, error.path, prefixes)
            if node in emptied and "Missing child" in error.message:
                continue  # a consequence of setting a child aside, not a problem of the file
            resolved.append((error, node))
            if (error.line, error.message) not in seen:
                seen.add((error.line, error.message))
                problems.append(_problem(file, node, error, root=root, standard=standard))
        progress = False
        for error, node in resolved:
            parent = node.getparent() if node is not None else None
            if _set_aside(node, error.message):
                progress = True
                if parent is not None and node is not None and node.getparent() is None:
                    emptied.add(parent)
        if not progress or len(problems) >= _MAX_LISTED:
            break
    if progress:
        problems.append(_cut_short(file, root, problems, standard))
    return problems
