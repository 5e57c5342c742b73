"""A case's workflow state, stored without its spec.

SpiffWorkflow's JSON embeds the whole spec (about half its size). Each definition version is
stored once, so a case keeps only its task tree, compressed, and is restored against the
definition's already-parsed spec.
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
from SpiffWorkflow.bpmn.serializer.workflow import VERSION

from .diagrams import ClockedCycle, ClockedDuration, ClockedTimeDate, ParsedPathway

FORMAT = f"pathway-1/spiff-{VERSION}"
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
    """Stored state was written by an incompatible version of the engine."""


def dump_state(workflow: BpmnWorkflow, memo: dict[str, Any] | None = None) -> bytes:
    """Serialize a workflow's instance state (no spec) and the engine's memo, compressed."""
    dct = _converter.to_dict(workflow)
    dct["format"] = FORMAT
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
                _converter.to_dict(workflow) | {"format": FORMAT, "memo": memo},
                cls=_encoder,
                separators=(",", ":"),
            ).encode()
        finally:
            _registry._encoder_mode = False
    return zlib.compress(text, 1)


def load_state(blob: bytes, *, parsed: ParsedPathway, script_engine: Any) -> BpmnWorkflow:
    """Restore a workflow from stored state against its definition's parsed spec."""
    return load_state_and_memo(blob, parsed=parsed, script_engine=script_engine)[0]


def load_state_and_memo(
    blob: bytes, *, parsed: ParsedPathway, script_engine: Any
) -> tuple[BpmnWorkflow, dict[str, Any] | None]:
    """Restore a workflow and the memo the engine stored beside it (None in older states)."""
    dct = orjson.loads(zlib.decompress(blob))
    memo = dct.pop("memo", None)
    found = dct.pop("format", None)
    if found != FORMAT:
        raise StateFormatError(f"case state is in format {found!r}, this engine reads {FORMAT}")
    workflow: BpmnWorkflow = _converter.restore(dct, parsed=parsed, script_engine=script_engine)
    return workflow, memo
