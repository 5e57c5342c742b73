"""FEEL unary tests, as Camunda Modeler writes them in decision tables, and what to write instead.

SpiffWorkflow's DMN engine reads an input entry as Python (``DMNEngine.evaluate``): a ``?`` in
the entry stands for the column's value (``1 <= ? <= 5`` is evaluated with ``?`` bound to the
input expression's value); an entry that is an expression on its own is compared with that
value (``(input) == (entry)``); any other entry is appended to the input expression's text as
it stands (``score`` and ``>= 50`` become ``score>= 50``). So FEEL's comparisons (``>= 50``)
work, but its ranges (``[1..5]``) do not parse, and its lists (``"a","b"``) and negations
(``not("a")``) are valid Python that never match. ``feel_form`` recognises these and gives the
entry in our syntax, written with ``?``, which works whatever the input expression is.
"""

from __future__ import annotations

import ast
import re

_RANGE = re.compile(r"^([\[(\]])\s*(.+?)\s*\.\.\s*(.+?)\s*([\])\[])$", re.DOTALL)
_NOT = re.compile(r"^not\s*\((.*)\)$", re.DOTALL)
_COMPARISON = re.compile(r"^(<=|>=|<|>|==|!=|not\s+in\b|in\b|is\b)")


def _range(text: str) -> str | None:
    """``[1..5]`` as ``1 <= ? <= 5`` (``(``, ``]`` at the start and ``)``, ``[`` at the end
    leave the bound out)."""
    found = _RANGE.match(text)
    if found is None:
        return None
    opening, low, high, closing = found.groups()
    left = "<=" if opening == "[" else "<"
    right = "<=" if closing == "]" else "<"
    return f"{low} {left} ? {right} {high}"


def _items(text: str) -> list[str] | None:
    """The values of a FEEL list of values (``"a", "b"`` or ``1, 2``), or None."""
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError):
        return None
    values = tree.elts if isinstance(tree, ast.Tuple) else [tree]
    if not all(isinstance(v, ast.Constant | ast.Name | ast.UnaryOp) for v in values):
        return None
    return [ast.get_source_segment(text, v) or ast.unparse(v) for v in values]


def _in(items: list[str], *, negated: bool) -> str:
    inside = ", ".join(items) + ("," if len(items) == 1 else "")
    return f"? {'not in' if negated else 'in'} ({inside})"


def feel_form(text: str) -> tuple[str, str] | None:
    """Name the FEEL form of an input entry and give it in our syntax, or None when the entry
    is not one of the FEEL forms the engine misreads."""
    text = text.strip()
    negation = _NOT.match(text)
    if negation:
        inner = negation.group(1).strip()
        ranged = _range(inner)
        if ranged:
            return "a FEEL negated range", f"not ({ranged})"
        items = _items(inner)
        if items:
            return "a FEEL negation", _in(items, negated=True)
        return None
    ranged = _range(text)
    if ranged:
        return "a FEEL range", ranged
    items = _items(text)
    if items and len(items) > 1:
        return "a FEEL list of values", _in(items, negated=False)
    return None


def joined_test(input_text: str, entry: str) -> str | None:
    """The reason an entry such as ``> 5`` or ``not in (3, 4)``, appended to the input
    expression's text as SpiffWorkflow does, would not test the input's value (None when it
    would): it fuses with the last name, or binds tighter than the input's own operators."""
    if not _COMPARISON.match(entry.lstrip()):
        return None
    if re.search(r"\w$", input_text) and re.match(r"\w", entry):
        fused = re.search(r"\w+$", input_text)
        name = (fused.group(0) if fused else "") + re.split(r"\W", entry, maxsplit=1)[0]
        return f"appended to the input expression it makes the name '{name}'"
    try:
        tree = ast.parse(input_text.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        return None
    loose = isinstance(tree, ast.BoolOp | ast.Compare | ast.IfExp | ast.Lambda | ast.NamedExpr)
    if loose or (isinstance(tree, ast.UnaryOp) and isinstance(tree.op, ast.Not)):
        return (
            f"appended to the input expression '{input_text.strip()[:60]}' it tests "
            "only the expression's last part"
        )
    return None
