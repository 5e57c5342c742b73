"""Validating BPMN and DMN files before they are deployed.

Each file gets a report: deployable, or a list of problems that each name the element, its line
and what to change. In order: safe, well-formed XML (no DOCTYPE, nothing expanded or fetched);
the kind of document; the XML Schema SpiffWorkflow bundles (every error, not just the first);
then, for BPMN, what the engine and the sandbox accept on each executable process and what a
pathway needs (see ``diagram_checks``); for DMN, decision tables the engine can run.
Validation never raises for any input bytes and never runs diagram code.
"""

from __future__ import annotations

import ast
import copy
import functools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import XSD_PATH as BPMN_XSD
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.dmn.parser.BpmnDmnParser import SCHEMAS as DMN_SCHEMAS

from .diagram_checks import (
    DecisionSource,
    check_bpmn,
    clean_message,
    code_problem,
    crash_problem,
    decision_refs,
    find_by_id,
    label,
    local,
    problem,
    text_of,
)
from .diagrams import BPMN_NS, CAMUNDA_NS, PathwayParser, XmlRefused, parse_xml
from .errors import Problem

_XS = "{http://www.w3.org/2001/XMLSchema}"
_MAX_ROUNDS = 200
_PREFIXES = {
    BPMN_NS: "bpmn",
    "http://www.omg.org/spec/BPMN/20100524/DI": "bpmndi",
    "http://www.omg.org/spec/DD/20100524/DC": "dc",
    "http://www.omg.org/spec/DD/20100524/DI": "di",
    CAMUNDA_NS: "camunda",
    **{ns: "dmn" for ns in DMN_SCHEMAS},
}
_UPLOAD = "upload a .bpmn or .dmn file as bpmn.io / Camunda Modeler save it"
_HIT_POLICIES = ("UNIQUE", "COLLECT")
_NEED_IDS = ("rule", "inputEntry", "outputEntry")
# SpiffWorkflow's DMN parser calls .tag.endswith() on every child of these elements.
_UNREAD_COMMENTS = frozenset({"decisionTable", "rule", "inputEntry", "outputEntry"})


@dataclass(frozen=True)
class FileReport:
    """What validation found in one file: its kind, what it declares, and its problems."""

    file: str
    kind: str  # 'bpmn' | 'dmn' | 'unknown'
    process_ids: tuple[str, ...]  # the executable processes of a BPMN file
    decision_ids: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def deployable(self) -> bool:
        """Tell whether the file has no problems."""
        return not self.problems


@dataclass
class _Document:
    file: str
    kind: str = "unknown"
    root: etree._Element | None = None
    problems: list[Problem] = field(default_factory=list)
    decision_ids: tuple[str, ...] = ()


# ---------------------------------------------------------------- DMN decisions


def _entry_problem(file: str, entry: etree._Element, input_text: str, text: str) -> Problem | None:
    """Check an input entry the way SpiffWorkflow evaluates it (DMNEngine.evaluate)."""
    replaced = re.sub(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)", "dmninputexpr", text)
    if "dmninputexpr" in replaced:
        return code_problem(file, entry, "the test", replaced)
    for candidate in (text, f"v {text}"):
        try:
            tree = ast.parse(candidate.strip(), mode="eval")
        except (SyntaxError, ValueError):
            continue
        if candidate is text and isinstance(tree.body, ast.Tuple):
            return problem(
                file,
                entry,
                f"{label(entry)} '{text[:60]}' compares the input with "
                "a tuple, so it never matches one value",
                f"write ? in ({text})",
            )
        combined = f"({input_text}) == ({text})" if candidate is text else input_text + text
        return code_problem(file, entry, "the test", combined)
    return problem(
        file,
        entry,
        f"{label(entry)} '{text[:60]}' is not a test the engine can read",
        'write a value such as true or "left", a comparison such as > 5, or - for any value',
    )


def _table_checks(file: str, table: etree._Element) -> Iterator[Problem | None]:
    ns = etree.QName(table).namespace
    dmn = f"{{{ns}}}"
    policy = (table.get("hitPolicy") or "UNIQUE").strip().upper()
    if policy not in _HIT_POLICIES:
        yield problem(
            file,
            table,
            f"{label(table)} uses hit policy {policy}, which the engine "
            "does not support (only UNIQUE and COLLECT)",
            "write the rules to be "
            "mutually exclusive and use UNIQUE; the engine then takes the first match",
        )
    elif policy == "COLLECT" and table.get("aggregation"):
        yield problem(
            file,
            table,
            f"{label(table)} aggregates with {table.get('aggregation')}, "
            "which the engine ignores (it returns the list of all matches)",
            "remove the aggregation and add up the list in a later step",
        )
    for node in table.iter(etree.Comment, etree.ProcessingInstruction):
        parent = node.getparent()
        if parent is not None and local(parent) in _UNREAD_COMMENTS:
            yield problem(
                file,
                parent,
                "an XML comment or processing instruction in "
                f"{label(parent)} stops the engine from reading the table",
                "remove the comment",
            )
    inputs = table.findall(f"{dmn}input")
    expressions = []
    for column in inputs:
        text = text_of(column.find(f"{dmn}inputExpression/{dmn}text"))
        expressions.append(text)
        if not text:
            yield problem(
                file,
                column,
                f"{label(column)} has no input expression",
                "write the expression the column tests, e.g. a task variable name",
            )
        else:
            yield code_problem(file, column, "the expression", text)
    outputs = table.findall(f"{dmn}output")
    for node in [table, *inputs, *outputs, *table.iter(*(f"{dmn}{k}" for k in _NEED_IDS))]:
        if not node.get("id"):
            yield problem(
                file,
                node,
                f"a DMN {local(node)} has no id, which the engine needs",
                "give it an id; Camunda Modeler gives every element one",
            )
    for rule in table.findall(f"{dmn}rule"):
        entries = rule.findall(f"{dmn}inputEntry")
        results = rule.findall(f"{dmn}outputEntry")
        if len(entries) != len(inputs) or len(results) != len(outputs):
            yield problem(
                file,
                rule,
                f"{label(rule)} has {len(entries)} input and "
                f"{len(results)} output entries; the table has {len(inputs)} inputs "
                f"and {len(outputs)} outputs",
                "give the rule one entry per column",
            )
            continue
        for entry in [*entries, *results]:
            if entry.find(f"{dmn}text") is None:
                yield problem(
                    file,
                    entry,
                    f"{label(entry)} has no text element, which the engine needs",
                    "write the entry; use - for any value",
                )
        for entry, input_text in zip(entries, expressions, strict=True):
            raw = entry.findtext(f"{dmn}text")  # as SpiffWorkflow reads it: only "-" is any
            if raw and raw != "-" and input_text:
                yield _entry_problem(file, entry, input_text, raw)
        for entry in results:
            text = text_of(entry.find(f"{dmn}text"))
            if text:
                yield code_problem(file, entry, "the value", text)


def check_dmn(root: etree._Element, *, file: str) -> tuple[tuple[str, ...], list[Problem]]:
    """Check a DMN document's decisions; return the decision ids and the problems."""
    dmn = f"{{{etree.QName(root).namespace}}}"
    decisions = root.findall(f"{dmn}decision")
    ids = tuple(d.get("id") or "" for d in decisions)
    found: list[Problem | None] = []
    if root.prefix not in (None, "dmn"):
        found.append(
            problem(
                file,
                root,
                f"the DMN namespace has the prefix '{root.prefix}:', which the engine cannot read",
                "make the DMN namespace the default namespace, as Camunda Modeler writes it",
            )
        )
    if not decisions:
        found.append(problem(file, root, "no decision in this DMN file", "add a decision table"))
    elif len(decisions) > 1:
        found.append(
            problem(
                file,
                decisions[1],
                f"this file declares {len(decisions)} "
                f"decisions ({', '.join(ids)}); the engine reads one per file",
                "put each decision in a DMN file of its own",
            )
        )
    for decision in decisions:
        if not decision.get("id"):
            found.append(problem(file, decision, "a decision has no id", "give it an id"))
        tables = decision.findall(f"{dmn}decisionTable")
        if not tables:
            found.append(
                problem(
                    file,
                    decision,
                    f"{label(decision)} has no decision table",
                    "model it as a decision table; the engine runs tables only",
                )
            )
        for table in tables:
            found.extend(_table_checks(file, table))
    problems = [p for p in found if p is not None]
    if not problems:
        problems.extend(_dmn_engine_checks(file, root))
    return ids, list(dict.fromkeys(problems))


def _dmn_engine_checks(file: str, root: etree._Element) -> list[Problem]:
    try:
        parser = PathwayParser()
        parser.add_dmn_xml(root, filename=file)
        for dmn_parser in parser.dmn_parsers.values():
            dmn_parser.parse()
    except ValidationException as exc:
        node = find_by_id(root, getattr(exc, "id", None))
        node = root if node is None else node
        raw = clean_message(str(exc.args[0]) if exc.args else str(exc))
        return [
            problem(
                file,
                node,
                f"the engine cannot use {label(node)}: {raw}",
                "change the element as the message says",
            )
        ]
    except Exception as exc:
        return [crash_problem(file, root, root, exc)]
    return []


# ---------------------------------------------------------------- XML Schema

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


def _error_node(
    work: etree._Element, path: str | None, prefixes: dict[str, str]
) -> etree._Element | None:
    try:
        found = work.getroottree().xpath(path, namespaces=prefixes) if path else None
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


def _schema_problems(root: etree._Element, *, file: str, xsd: str, standard: str) -> list[Problem]:
    """Report every schema error: validate, set the offending part aside, validate again."""
    schema = _schema(xsd)
    work = copy.deepcopy(root)
    # bpmn-js writes formalExpression where the schema wants messagePath; SpiffWorkflow's
    # BpmnValidator renames it before validating, and so do we.
    for expression in work.iter(f"{{{BPMN_NS}}}correlationPropertyRetrievalExpression"):
        for child in expression.findall(f"{{{BPMN_NS}}}formalExpression"):
            child.tag = f"{{{BPMN_NS}}}messagePath"
    prefixes = {
        k: v
        for node in work.iter()
        if isinstance(node.tag, str)
        for k, v in node.nsmap.items()
        if k
    }
    problems: list[Problem] = []
    seen: set[tuple[int, str]] = set()
    emptied: set[etree._Element] = set()
    for _ in range(_MAX_ROUNDS):
        with _schema_lock:
            valid = schema.validate(work)
            errors = list(schema.error_log)
        progress = False
        for error in [] if valid else errors:
            node = _error_node(work, error.path, prefixes)
            if node in emptied and "Missing child" in error.message:
                continue  # a consequence of setting a child aside, not a problem of the file
            if (error.line, error.message) not in seen:
                seen.add((error.line, error.message))
                found = problem(
                    file,
                    node,
                    f"not valid {standard}: {_readable(error.message, root)}",
                    _schema_fix(error.message),
                )
                if found.line is None:
                    found = Problem(file, found.message, found.element_id, error.line, found.fix)
                problems.append(found)
            parent = node.getparent() if node is not None else None
            if _set_aside(node, error.message):
                progress = True
                if parent is not None and node is not None and node.getparent() is None:
                    emptied.add(parent)
        if not progress:
            break
    return problems


# ---------------------------------------------------------------- documents


def _kind_problem(file: str, root: etree._Element) -> Problem:
    qname = etree.QName(root)
    namespace = qname.namespace or ""
    if "omg.org/spec/DMN" in namespace and qname.localname == "definitions":
        return problem(
            file,
            root,
            f"this DMN version ({namespace}) is not supported: the engine reads DMN 1.1 to 1.3",
            "save it as DMN 1.3, as Camunda Modeler does",
        )
    where = f" in namespace {namespace}" if namespace else " without a namespace"
    return problem(
        file,
        root,
        f"not a BPMN 2.0 or DMN document: the root element is <{qname.localname}>{where}",
        _UPLOAD,
    )


def _load(file: str, content: bytes) -> _Document:
    """Parse a file safely, tell its kind, check its schema and (DMN) its decisions."""
    doc = _Document(file)
    if not content.strip():
        doc.problems.append(Problem(file, "the file is empty", None, None, _UPLOAD))
        return doc
    try:
        root = parse_xml(content)
    except XmlRefused as refused:
        fix = (
            "remove the DOCTYPE: BPMN and DMN files need none"
            if "DOCTYPE" in str(refused)
            else "save the file again from bpmn.io / Camunda Modeler"
        )
        doc.problems.append(Problem(file, str(refused), None, refused.line, fix))
        return doc
    qname = etree.QName(root)
    if qname.localname == "definitions" and qname.namespace == BPMN_NS:
        doc.kind, xsd, standard = "bpmn", BPMN_XSD, "BPMN 2.0"
    elif qname.localname == "definitions" and qname.namespace in DMN_SCHEMAS:
        doc.kind, xsd, standard = "dmn", DMN_SCHEMAS[qname.namespace], "DMN"
    else:
        doc.problems.append(_kind_problem(file, root))
        return doc
    doc.root = root
    doc.problems.extend(_schema_problems(root, file=file, xsd=xsd, standard=standard))
    if doc.kind == "dmn":
        doc.decision_ids, found = check_dmn(root, file=file)
        doc.problems.extend(found)
    return doc


def _safely_load(file: str, content: bytes) -> _Document:
    try:
        return _load(file, content)
    except Exception as exc:  # a last resort: validation must never raise
        return _Document(file, problems=[_internal(file, exc)])


def _internal(file: str, exc: Exception) -> Problem:
    return Problem(
        file,
        f"the validator could not check this file ({type(exc).__name__})",
        None,
        None,
        "report the file to the pathway engineers",
    )


def _reports(documents: list[_Document], supporting: list[_Document]) -> list[FileReport]:
    decisions: dict[str, DecisionSource] = {}
    first: dict[str, str] = {}
    for doc in documents:
        for ident in doc.decision_ids:
            if ident in first and doc.root is not None:
                doc.problems.append(
                    problem(
                        doc.file,
                        find_by_id(doc.root, ident),
                        f"decision '{ident}' is also declared in {first[ident]}",
                        "give each decision its own id",
                    )
                )
            first.setdefault(ident, doc.file)
    for doc in [*documents, *supporting]:
        if doc.root is not None:
            for ident in doc.decision_ids:
                decisions.setdefault(ident, DecisionSource(doc.file, doc.root, not doc.problems))
    reports = []
    for doc in documents:
        process_ids: tuple[str, ...] = ()
        if doc.kind == "bpmn" and doc.root is not None:
            try:
                process_ids, found = check_bpmn(doc.root, file=doc.file, decisions=decisions)
                doc.problems.extend(found)
            except Exception as exc:
                doc.problems.append(_internal(doc.file, exc))
        reports.append(
            FileReport(
                doc.file,
                doc.kind,
                process_ids,
                doc.decision_ids,
                tuple(dict.fromkeys(doc.problems)),
            )
        )
    return reports


def validate_documents(files: list[tuple[str, bytes]]) -> list[FileReport]:
    """Validate files given as (name, bytes); DMN files serve the BPMN files beside them."""
    return _reports([_safely_load(name, content) for name, content in files], [])


def _read(path: Path) -> _Document:
    try:
        content = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return _Document(
            str(path),
            problems=[
                Problem(
                    str(path),
                    f"cannot read the file: {reason}",
                    None,
                    None,
                    "check the path and the file's permissions",
                )
            ],
        )
    return _safely_load(str(path), content)


def _beside(path: Path, wanted: set[str], seen: set[Path]) -> list[_Document]:
    """Read the DMN files in a BPMN file's folder that declare decisions it wants."""
    try:
        candidates = sorted(path.parent.glob("*.dmn"))
    except OSError:
        return []
    found = []
    for candidate in candidates:
        if wanted and candidate.absolute() not in seen:
            seen.add(candidate.absolute())
            extra = _read(candidate)
            if wanted & set(extra.decision_ids):
                found.append(extra)
                wanted -= set(extra.decision_ids)
    return found


def validate_paths(paths: list[Path]) -> list[FileReport]:
    """Validate files on disk; decisions no given DMN declares are looked for beside the BPMN."""
    documents = [_read(path) for path in paths]
    declared = {ident for doc in documents for ident in doc.decision_ids}
    seen = {path.absolute() for path in paths}
    supporting: list[_Document] = []
    for doc, path in zip(documents, paths, strict=True):
        if doc.kind != "bpmn" or doc.root is None:
            continue
        wanted = {ref for _, ref in decision_refs(doc.root) if ref} - declared
        if wanted:
            for extra in _beside(path, wanted, seen):
                supporting.append(extra)
                declared.update(extra.decision_ids)
    return _reports(documents, supporting)
