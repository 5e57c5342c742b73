"""Validating BPMN and DMN files before they are deployed.

Each file gets a report: deployable, or a list of problems that each name the element, its line
and what to change. In order: a size within the limit (``check_size``: a larger file is not
read); safe, well-formed XML (``safe_xml``: no DOCTYPE, nothing expanded or fetched, bounded
depth); the kind of document; no more elements than the engine takes (``validation.limits``);
the XML Schema SpiffWorkflow bundles (every error, not just the first); then, for BPMN, what
the engine and the sandbox accept on each executable process and what a pathway needs (see
``validation.bpmn``); for DMN, decision tables the engine can run (see ``validation.dmn``).
Validation never raises for any input bytes and never runs diagram code.

This module reads the files, tells their kind, hands them to ``validation.schema`` and the checks
above, matches BPMN files with the DMN files that declare their decisions (given, or found
beside them on disk), and reports each file as a ``FileReport``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import XSD_PATH as BPMN_XSD
from SpiffWorkflow.dmn.parser.BpmnDmnParser import SCHEMAS as DMN_SCHEMAS

from ..diagrams import BPMN_NS
from ..errors import Problem
from ..safe_xml import XmlRefused, parse_xml
from ..settings import get_settings
from .bpmn import DecisionSource, check_bpmn, decision_refs
from .dmn import check_dmn
from .limits import check_counts
from .limits import check_size as check_size
from .problems import find_by_id, problem
from .schema import schema_problems

_UPLOAD = "upload a .bpmn or .dmn file as bpmn.io / Camunda Modeler save it"


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
        doc.problems.append(Problem(file, str(refused), None, refused.line, refused.fix))
        return doc
    qname = etree.QName(root)
    if qname.localname == "definitions" and qname.namespace == BPMN_NS:
        doc.kind, xsd, standard = "bpmn", BPMN_XSD, "BPMN 2.0"
    elif qname.localname == "definitions" and qname.namespace in DMN_SCHEMAS:
        doc.kind, xsd, standard = "dmn", DMN_SCHEMAS[qname.namespace], "DMN"
    else:
        doc.problems.append(_kind_problem(file, root))
        return doc
    too_many = check_counts(file, root, kind=doc.kind)
    if too_many:  # the rest would take too long: this is the file's one problem
        doc.problems.append(too_many)
        return doc
    doc.root = root
    doc.problems.extend(schema_problems(root, file=file, xsd=xsd, standard=standard))
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


def _limit(max_bytes: int | None) -> int:
    return get_settings().max_definition_bytes if max_bytes is None else max_bytes


def validate_documents(
    files: list[tuple[str, bytes]], *, max_bytes: int | None = None
) -> list[FileReport]:
    """Validate files given as (name, bytes); DMN files serve the BPMN files beside them.

    A file over ``max_bytes`` (default: the setting ``max_definition_bytes``) is refused
    unread, with its size and the limit."""
    limit = _limit(max_bytes)
    documents = []
    for name, content in files:
        too_big = check_size(name, len(content), limit)
        documents.append(
            _Document(name, problems=[too_big]) if too_big else _safely_load(name, content)
        )
    return _reports(documents, [])


def _read(path: Path, limit: int) -> _Document:
    try:
        with path.open("rb") as stream:
            content = stream.read(limit + 1)
            size = os.fstat(stream.fileno()).st_size if len(content) > limit else 0
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
    too_big = check_size(str(path), max(size, len(content)), limit)
    if too_big:
        return _Document(str(path), problems=[too_big])
    return _safely_load(str(path), content)


def _beside(path: Path, wanted: set[str], seen: set[Path], limit: int) -> list[_Document]:
    """Read the DMN files in a BPMN file's folder that declare decisions it wants."""
    try:
        candidates = sorted(path.parent.glob("*.dmn"))
    except OSError:
        return []
    found = []
    for candidate in candidates:
        if wanted and candidate.absolute() not in seen:
            seen.add(candidate.absolute())
            extra = _read(candidate, limit)
            if wanted & set(extra.decision_ids):
                found.append(extra)
                wanted -= set(extra.decision_ids)
    return found


def validate_paths(paths: list[Path], *, max_bytes: int | None = None) -> list[FileReport]:
    """Validate files on disk; decisions no given DMN declares are looked for beside the BPMN.

    A file over ``max_bytes`` (default: the setting ``max_definition_bytes``) is refused with
    its size and the limit, after reading no more than the limit."""
    limit = _limit(max_bytes)
    documents = [_read(path, limit) for path in paths]
    declared = {ident for doc in documents for ident in doc.decision_ids}
    seen = {path.absolute() for path in paths}
    supporting: list[_Document] = []
    for doc, path in zip(documents, paths, strict=True):
        if doc.kind != "bpmn" or doc.root is None:
            continue
        wanted = {ref for _, ref in decision_refs(doc.root) if ref} - declared
        if wanted:
            for extra in _beside(path, wanted, seen, limit):
                supporting.append(extra)
                declared.update(extra.decision_ids)
    return _reports(documents, supporting)
