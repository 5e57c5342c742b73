"""The sandbox for code written into diagrams (conditions, timers, DMN entries, scripts).

``expressions`` holds the entry points and the SpiffWorkflow adapter; ``policy`` says what may
be written (checked at compile time), ``guards`` the run-time guards, ``limits`` the limits of
one run (time, budget, and the weight of the values one C-level operation may work on), and
``builtins`` the helpers diagram code may call.
"""

from . import expressions
from .expressions import (
    ExpressionFailed,
    ExpressionRejected,
    SandboxScriptEngine,
    check_expression,
    check_script,
    evaluate,
    execute,
    script_engine,
)

__all__ = [
    "ExpressionFailed",
    "ExpressionRejected",
    "SandboxScriptEngine",
    "check_expression",
    "check_script",
    "evaluate",
    "execute",
    "expressions",
    "script_engine",
]
