"""A case's workflow state, stored without its spec, in a format that carries its version.

SpiffWorkflow's JSON embeds the whole spec (about half its size). Each definition version is
stored once, so a case keeps only its task tree, compressed, and is restored against the
definition's already-parsed spec.

The stored document says which format it is in (``format``, our number) and which
SpiffWorkflow serializer wrote its task tree (``spiff``). Loading brings an older document
forward through ``MIGRATIONS``, one format at a time, and then through ``SPIFF_MIGRATIONS``
when SpiffWorkflow's serializer has moved on, as ``BpmnWorkflowSerializer.migrate`` does for
its own full documents. A state this engine cannot bring forward (a newer format, a
serializer version with no migration) is refused with a message saying which.
"""

from __future__ import annotations

import json
import zlib
from typing import Any
from uuid import UUID

import orjson
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.event_definition import (
    TimerConditionalEventDefinitionConverter,
)
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.helpers.encoder import create_encoder
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SPIFF_VERSION

from ..diagrams import ClockedCycle, ClockedDuration, ClockedTimeDate, ParsedPathway

FORMAT = 2
"""The format ``dump_state`` writes. Raise it, and add a step to ``MIGRATIONS``, whenever
what is stored changes shape."""
_STRICT = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


class _StateConverter(BpmnWorkflowConverter):  # type: ignore[misc]
    """Converts a top-level workflow to a dict without its specs, and back."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def restore(
        self, dct: dict[str, Any], *, parsed: ParsedPathway, script_engine: Any
    ) -> BpmnWorkflow:
        workflow = BpmnWorkflow(
            parsed.spec, parsed.subprocess_specs, script_engine=script_engine, deserializing=True
        )
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


_registry = BpmnWorkflowSerializer.configure()
_converter = _StateConverter(BpmnWorkflow, _registry)
for _timer_class in (ClockedTimeDate, ClockedDuration, ClockedCycle):
    TimerConditionalEventDefinitionConverter(_timer_class, _registry)
_encoder = create_encoder(_registry, None)


class StateFormatError(ValueError):
    """Stored state cannot be read by this engine (a newer format, or an unknown one)."""


def _from_format_1(dct: dict[str, Any]) -> dict[str, Any]:
    """Format 1 named its SpiffWorkflow serializer inside one string, ``pathway-1/spiff-1.5``;
    format 2 keeps our number and SpiffWorkflow's version apart."""
    marker = str(dct.pop("format", ""))
    prefix = "pathway-1/spiff-"
    if not marker.startswith(prefix):
        raise StateFormatError(f"case state in an unknown format {marker!r}")
    dct["format"], dct["spiff"] = 2, marker[len(prefix) :]
    return dct


MIGRATIONS: dict[int, Any] = {1: _from_format_1}
"""Format n to n + 1, applied in turn on load."""

SPIFF_MIGRATIONS: dict[str, Any] = {}
"""SpiffWorkflow serializer version v to the next one it knows, for the task tree stored here.

Empty while SpiffWorkflow's serializer is at the version every stored case was written with
(1.5). When an upgrade moves it on, its release notes and its own table
(``SpiffWorkflow.bpmn.serializer.migration.version_migration.MIGRATIONS``) say what changed in
the task tree; a step here makes that change to our documents, which hold no spec (the spec
is parsed anew from the stored diagram, so a change to specs alone needs only a new entry
that sets ``spiff``). SpiffWorkflow's functions cannot be called on our documents as they
are: they read the spec embedded in a full document."""


def _format_of(dct: dict[str, Any]) -> int:
    found = dct.get("format")
    if isinstance(found, int):
        return found
    if isinstance(found, str) and found.startswith("pathway-1/"):
        return 1
    raise StateFormatError(f"case state in an unknown format {found!r}")


def migrate(dct: dict[str, Any]) -> dict[str, Any]:
    """Bring a stored state document to the current format and SpiffWorkflow serializer."""
    found = _format_of(dct)
    if found > FORMAT:
        raise StateFormatError(
            f"case state is in format {found}, newer than this engine reads ({FORMAT}): "
            "upgrade Pathway"
        )
    while found < FORMAT:
        dct = MIGRATIONS[found](dct)
        found = _format_of(dct)
    spiff = dct.get("spiff")
    while spiff != SPIFF_VERSION:
        step = SPIFF_MIGRATIONS.get(str(spiff))
        if step is None:
            raise StateFormatError(
                f"case state's task tree was written by SpiffWorkflow serializer {spiff!r}; "
                f"this SpiffWorkflow writes {SPIFF_VERSION} and engine/runtime/state.py has no "
                "migration from it: add one to SPIFF_MIGRATIONS"
            )
        dct = step(dct)
        spiff = dct.get("spiff")
    return dct


def dump_state(workflow: BpmnWorkflow, memo: dict[str, Any] | None = None) -> bytes:
    """Serialize a workflow's instance state (no spec) and the engine's memo, compressed."""
    dct = _converter.to_dict(workflow)
    dct["format"] = FORMAT
    dct["spiff"] = SPIFF_VERSION
    if memo is not None:
        dct["memo"] = memo
    try:
        # Pass-through makes orjson refuse (TypeError) what it would otherwise write in its
        # own way, so such values take SpiffWorkflow's encoder and come back as they were.
        text = orjson.dumps(dct, option=_STRICT)
    except TypeError:
        # Something orjson cannot write (a value only SpiffWorkflow's encoder knows).
        _registry._encoder_mode = True
        try:
            text = json.dumps(
                _converter.to_dict(workflow)
                | {"format": FORMAT, "spiff": SPIFF_VERSION, "memo": memo},
                cls=_encoder,
                separators=(",", ":"),
            ).encode()
        finally:
            _registry._encoder_mode = False
    return zlib.compress(text, 1)


def load_state(blob: bytes, *, parsed: ParsedPathway, script_engine: Any) -> BpmnWorkflow:
    """Restore a workflow from stored state against its definition's parsed spec."""
    return load_state_and_memo(blob, parsed=parsed, script_engine=script_engine)[0]


def read_document(blob: bytes) -> dict[str, Any]:
    """The stored document (task tree, memo) in the current format, not yet restored."""
    dct: dict[str, Any] = orjson.loads(zlib.decompress(blob))
    if dct.get("format") != FORMAT or dct.get("spiff") != SPIFF_VERSION:
        dct = migrate(dct)
    return dct


def load_state_and_memo(
    blob: bytes, *, parsed: ParsedPathway, script_engine: Any
) -> tuple[BpmnWorkflow, dict[str, Any] | None]:
    """Restore a workflow and the memo the engine stored beside it (None in older states)."""
    dct = read_document(blob)
    memo = dct.pop("memo", None)
    del dct["format"], dct["spiff"]
    workflow: BpmnWorkflow = _converter.restore(dct, parsed=parsed, script_engine=script_engine)
    return workflow, memo
