"""Validation of diagrams before they are deployed: every problem with its file, element, line
and what to change, never a traceback.

``documents`` reads the files and runs the checks; ``limits`` bounds what a file may cost (its
size, its flow elements, rule entries and code); ``schema`` checks against the BPMN schema,
``bpmn`` what a pathway needs of a process (roles, evidence, timers, sandboxed code, layout),
``properties`` the values of the pathway's own properties (``pathway.*``), ``dmn`` the decision
tables (with ``feel``, the FEEL entries the engine misreads), ``spiff`` has SpiffWorkflow build
the processes and turns its refusals into problems, and ``problems`` holds the helpers that
build them.
"""

from .documents import FileReport, check_size, validate_documents, validate_paths

__all__ = ["FileReport", "check_size", "validate_documents", "validate_paths"]
