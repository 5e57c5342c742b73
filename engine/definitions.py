"""Pathway definitions: validated, stored once per version by content hash, parsed once.

A definition is one BPMN file (its executable process is the pathway) with the DMN files it
calls. Each file is kept byte for byte. Deploying the same bytes again returns the version
already stored; different bytes make the next version of that pathway.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from . import bundled
from .diagrams import ParsedPathway, build_specs, parse_xml
from .errors import DefinitionInvalid, DefinitionNotFound, Problem
from .steps import Step, read_steps
from .store import cases, definition_files, definitions
from .validation.documents import validate_documents
from .vocabulary import CaseStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DefinitionInfo:
    """A stored definition version."""

    id: int
    pathway: str
    version: int
    bundle_sha256: str
    created_at: datetime
    created: bool = field(default=False, compare=False)
    """Whether this deployment stored it (False when the same bytes were there already)."""


@dataclass(frozen=True)
class Pathway:
    """A definition ready to run: its parsed specs and what the diagram says of each step."""

    info: DefinitionInfo
    parsed: ParsedPathway
    steps: dict[str, Step]

    def step(self, step_id: str | None) -> Step | None:
        """Return a step by id, if the diagram has it."""
        return self.steps.get(step_id) if step_id else None


def sha256(content: bytes) -> str:
    """Return the hex SHA-256 of some bytes."""
    return hashlib.sha256(content).hexdigest()


def _bundle_sha(bpmn_sha: str, dmn_shas: list[str]) -> str:
    return sha256(("bpmn:" + bpmn_sha + ";dmn:" + ",".join(sorted(dmn_shas))).encode())


def deploy(session: Session, *, files: list[tuple[str, bytes]], now: datetime) -> DefinitionInfo:
    """Validate and store a definition; the same bytes give back the same version."""
    reports = validate_documents(files)
    problems = [p for report in reports for p in report.problems]
    bpmn = [r for r in reports if r.kind == "bpmn"]
    if not problems and len(bpmn) != 1:
        problems.append(
            Problem(
                "(deployment)",
                f"a definition is one BPMN file; got {len(bpmn)}",
                fix="deploy one BPMN file with the DMN files it calls",
            )
        )
    elif not problems and len(bpmn[0].process_ids) != 1:
        problems.append(
            Problem(
                bpmn[0].file,
                "a pathway has exactly one executable process",
                fix="set isExecutable=false on the other processes",
            )
        )
    if problems:
        raise DefinitionInvalid(problems)
    content = dict(files)
    bpmn_name = bpmn[0].file
    pathway = bpmn[0].process_ids[0]
    shas = {name: sha256(data) for name, data in files}
    dmn_shas = [shas[r.file] for r in reports if r.kind == "dmn"]
    bundle = _bundle_sha(shas[bpmn_name], dmn_shas)
    existing = session.execute(
        select(definitions).where(definitions.c.bundle_sha256 == bundle)
    ).first()
    if existing is not None:
        return _info(existing)
    stored = set(
        session.scalars(
            select(definition_files.c.sha256).where(definition_files.c.sha256.in_(shas.values()))
        )
    )
    for name, sha in shas.items():
        if sha not in stored:
            session.execute(
                insert(definition_files).values(
                    sha256=sha, filename=name, content=content[name], created_at=now
                )
            )
            stored.add(sha)
    version = (
        session.scalar(
            select(func.max(definitions.c.version)).where(definitions.c.pathway == pathway)
        )
        or 0
    ) + 1
    new_id = session.scalar(
        insert(definitions)
        .values(
            pathway=pathway,
            version=version,
            bundle_sha256=bundle,
            bpmn_sha256=shas[bpmn_name],
            dmn_sha256=sorted(dmn_shas),
            file_names=[bpmn_name, *(_name_of(shas, sha) for sha in sorted(dmn_shas))],
            created_at=now,
        )
        .returning(definitions.c.id)
    )
    assert new_id is not None
    log.info("deployed pathway %s version %d (%s)", pathway, version, bundle[:12])
    return DefinitionInfo(int(new_id), pathway, version, bundle, now, created=True)


def _name_of(shas: dict[str, str], sha: str) -> str:
    return next(name for name, known in shas.items() if known == sha)


def deploy_bundled(session: Session, *, now: datetime) -> DefinitionInfo:
    """Deploy the pathway files shipped in bpmn/ (a no-op when already stored)."""
    return deploy(session, files=bundled.pathway_files(), now=now)


def _info(row: Any) -> DefinitionInfo:
    return DefinitionInfo(row.id, row.pathway, row.version, row.bundle_sha256, row.created_at)


def latest(session: Session, pathway: str) -> DefinitionInfo:
    """Return the newest stored version of a pathway."""
    row = session.execute(
        select(definitions)
        .where(definitions.c.pathway == pathway)
        .order_by(definitions.c.version.desc())
        .limit(1)
    ).first()
    if row is None:
        raise DefinitionNotFound(pathway)
    return _info(row)


def version(session: Session, pathway: str, number: int) -> DefinitionInfo:
    """Return one stored version of a pathway."""
    row = session.execute(
        select(definitions).where(definitions.c.pathway == pathway, definitions.c.version == number)
    ).first()
    if row is None:
        raise DefinitionNotFound(pathway, version=number)
    return _info(row)


def info(session: Session, definition_id: int) -> DefinitionInfo:
    """Return a stored definition by its id."""
    row = session.execute(select(definitions).where(definitions.c.id == definition_id)).first()
    if row is None:
        raise DefinitionNotFound(str(definition_id))
    return _info(row)


def original_files(session: Session, definition_id: int) -> list[tuple[str, bytes]]:
    """Return a definition's files exactly as they were deployed (BPMN first)."""
    row = session.execute(select(definitions).where(definitions.c.id == definition_id)).first()
    if row is None:
        raise DefinitionNotFound(str(definition_id))
    shas = [row.bpmn_sha256, *row.dmn_sha256]
    found = {
        r.sha256: (r.filename, r.content)
        for r in session.execute(
            select(definition_files).where(definition_files.c.sha256.in_(shas))
        )
    }
    names = row.file_names or [found[sha][0] for sha in shas]
    return [(name, found[sha][1]) for name, sha in zip(names, shas, strict=True)]


_cache: OrderedDict[str, Pathway] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 32


def load(session: Session, definition_id: int, *, bundle_sha256: str | None = None) -> Pathway:
    """Return a definition ready to run, parsing it only the first time it is needed.

    Callers that already know the definition's content hash save a query: the cache is keyed
    by content, so a hit is always the right definition.
    """
    if bundle_sha256 is not None:
        with _cache_lock:
            known = _cache.get(bundle_sha256)
        if known is not None:
            return known
    row = session.execute(select(definitions).where(definitions.c.id == definition_id)).first()
    if row is None:
        raise DefinitionNotFound(str(definition_id))
    with _cache_lock:
        cached = _cache.get(row.bundle_sha256)
        if cached is not None:
            _cache.move_to_end(row.bundle_sha256)
            return cached
    files = original_files(session, definition_id)
    bpmn_name, bpmn_bytes = files[0]
    bpmn_root = parse_xml(bpmn_bytes)
    dmn = [(name, parse_xml(data)) for name, data in files[1:]]
    parsed = build_specs(bpmn=[(bpmn_name, bpmn_root)], dmn=dmn, process_id=row.pathway)
    steps, _ = read_steps(bpmn_root, file=bpmn_name)
    pathway = Pathway(_info(row), parsed, steps)
    with _cache_lock:
        _cache[row.bundle_sha256] = pathway
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return pathway


@dataclass(frozen=True)
class VersionSummary:
    """One stored version of a pathway: its files and how many cases run on it."""

    pathway: str
    version: int
    bundle_sha256: str
    created_at: datetime
    files: list[tuple[str, str, int]]  # (name, sha256, size in bytes), the BPMN first
    running_cases: int


def versions(session: Session, pathway: str | None = None) -> list[VersionSummary]:
    """Every stored version (of one pathway, or of all), oldest first, with the files it
    holds and its running cases."""
    query = select(definitions).order_by(definitions.c.pathway, definitions.c.version)
    if pathway is not None:
        query = query.where(definitions.c.pathway == pathway)
    rows = session.execute(query).all()
    if pathway is not None and not rows:
        raise DefinitionNotFound(pathway)
    shas = {sha for r in rows for sha in (r.bpmn_sha256, *r.dmn_sha256)}
    files = {
        f.sha256: (f.filename, f.sha256, int(f.size))
        for f in session.execute(
            select(
                definition_files.c.sha256,
                definition_files.c.filename,
                func.length(definition_files.c.content).label("size"),
            ).where(definition_files.c.sha256.in_(shas))
        )
    }
    running: dict[int, int] = dict(
        session.execute(
            select(cases.c.definition_id, func.count())
            .where(cases.c.status == CaseStatus.ACTIVE)
            .group_by(cases.c.definition_id)
        ).all()
    )
    return [
        VersionSummary(
            r.pathway,
            r.version,
            r.bundle_sha256,
            r.created_at,
            [
                (name, sha, files[sha][2])
                for name, sha in zip(
                    r.file_names or [files[sha][0] for sha in (r.bpmn_sha256, *r.dmn_sha256)],
                    (r.bpmn_sha256, *r.dmn_sha256),
                    strict=True,
                )
            ],
            int(running.get(r.id, 0)),
        )
        for r in rows
    ]


def file_of(session: Session, pathway: str, number: int, name: str) -> bytes:
    """The bytes of one file of a stored version, exactly as deployed."""
    found = version(session, pathway, number)
    for filename, content in original_files(session, found.id):
        if filename == name:
            return content
    raise DefinitionNotFound(pathway, version=number, file=name)
