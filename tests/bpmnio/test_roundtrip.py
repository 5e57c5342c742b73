"""The pathway diagram survives being opened and saved by bpmn.io / Camunda Modeler's model
layer (bpmn-moddle with the Camunda extension): every element, attribute, form field,
property and layout shape comes back, and the saved file is still deployable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

import engine

HERE = Path(__file__).resolve().parent
BPMN = HERE.parents[1] / "bpmn"


def _signature(path: Path) -> list[tuple[str, str | None, tuple[tuple[str, str], ...], str]]:
    root = etree.parse(str(path)).getroot()
    return sorted(
        (
            etree.QName(e).localname,
            etree.QName(e).namespace,
            tuple(sorted(e.attrib.items())),
            (e.text or "").strip(),
        )
        for e in root.iter()
        if isinstance(e.tag, str)
    )


@pytest.fixture(scope="module")
def saved_by_bpmn_io(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "bpmn-moddle").exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("node and tests/bpmnio/node_modules are required (make install)")
        pytest.skip("node or the bpmn-moddle packages are missing: run make install")
    out = tmp_path_factory.mktemp("bpmnio") / "lumbar_radiculopathy.bpmn"
    result = subprocess.run(
        [node, str(HERE / "roundtrip.mjs"), str(BPMN / "lumbar_radiculopathy.bpmn"), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout) == {"warnings": []}
    shutil.copy(BPMN / "red_flags.dmn", out.parent / "red_flags.dmn")
    return out


def test_bpmn_io_keeps_everything_the_engine_reads(saved_by_bpmn_io: Path) -> None:
    assert _signature(saved_by_bpmn_io) == _signature(BPMN / "lumbar_radiculopathy.bpmn")


def test_the_saved_file_is_still_deployable(saved_by_bpmn_io: Path) -> None:
    (report, *_) = engine.validate_paths([saved_by_bpmn_io])
    assert report.deployable, report.problems
