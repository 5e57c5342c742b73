"""The pathway diagrams shipped with Pathway, read through importlib.resources.

Modelers keep them in bpmn/; pyproject.toml ships that folder as the package data of the
namespace package ``bpmn`` (the folder has no __init__.py), so a checkout, an editable
install and a wheel all read the same files the same way, wherever Pathway is installed.
"""

from __future__ import annotations

import importlib
from importlib.resources import files
from importlib.resources.abc import Traversable
from importlib.resources.readers import MultiplexedPath
from pathlib import Path

PACKAGE = "bpmn"
PATHWAY_FILES = ("lumbar_radiculopathy.bpmn", "red_flags.dmn")


def directory() -> Traversable:
    """Return the folder of the bundled diagrams."""
    try:
        return files(PACKAGE)
    except NotADirectoryError:
        # An editable install puts a placeholder that is not a folder on the namespace
        # package's path, which Python 3.11's importlib.resources refuses: leave it out.
        entries = [Path(p) for p in importlib.import_module(PACKAGE).__path__]
        return MultiplexedPath(*(p for p in entries if p.is_dir()))


def pathway_files() -> list[tuple[str, bytes]]:
    """Return the bundled pathway's files as (name, bytes), the BPMN file first."""
    folder = directory()
    return [(name, (folder / name).read_bytes()) for name in PATHWAY_FILES]
