"""Compile-time policy of the diagram-code sandbox: what diagram code may be written.

``Checker`` refuses what diagram code may not do (imports, definitions, names and attributes
outside the allow-lists, a value written out in the code too heavy to compare or print, ...)
with a reason a modeler can act on. ``Policy`` is the RestrictedPython transformer that
compiles what is left, adding calls of the run-time guards (``guards``) on sizes, loops and
whatever is compared or hashed in C. Neither runs any code.
"""

from __future__ import annotations

import ast
import re
from typing import ClassVar

from RestrictedPython.transformer import RestrictingNodeTransformer, copy_locations

from .builtins import BUILTINS
from .guards import MAX_WIDTH, METHOD_NAMES
from .limits import MAX_WEIGHT

_FORBIDDEN_NAMES = frozenset(
    {
        "exec",
        "eval",
        "compile",
        "open",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "globals",
        "locals",
        "vars",
        "dir",
        "type",
        "breakpoint",
        "input",
        "help",
        "memoryview",
        "object",
        "super",
        "classmethod",
        "staticmethod",
        "property",
        "print",
        "printed",
        "exit",
        "quit",
    }
)
_IMPORT = "Imports are not allowed: diagram code has no modules. Use the built-in helpers instead."
_DEFS = "Defining functions, lambdas or classes is not allowed. Write the logic inline."
_ERRORS = "'try', 'raise' and 'with' are not allowed. Check conditions with 'if' instead."
_ASYNC = "'yield', 'await' and async code are not allowed. Use a list or a comprehension instead."
_NODE_RULES: dict[type[ast.AST], str] = {
    ast.Import: _IMPORT,
    ast.ImportFrom: _IMPORT,
    ast.FunctionDef: _DEFS,
    ast.AsyncFunctionDef: _DEFS,
    ast.Lambda: _DEFS,
    ast.ClassDef: _DEFS,
    ast.Try: _ERRORS,
    ast.TryStar: _ERRORS,
    ast.Raise: _ERRORS,
    ast.With: _ERRORS,
    ast.Yield: _ASYNC,
    ast.YieldFrom: _ASYNC,
    ast.Await: _ASYNC,
    ast.AsyncFor: _ASYNC,
    ast.AsyncWith: _ASYNC,
    ast.Global: "'global' and 'nonlocal' are not allowed. Assign to plain variable names.",
    ast.Nonlocal: "'global' and 'nonlocal' are not allowed. Assign to plain variable names.",
    ast.Starred: "Star-unpacking (*x) is not allowed. Pass the values one by one.",
    ast.AnnAssign: "Type annotations are not allowed. Write 'x = value'.",
    ast.Match: "'match' is not allowed. Use if/elif/else.",
}


def _literal_weight(node: ast.expr) -> int | None:
    """The weight (see ``limits``) of a value written out in the code, e.g. ``[[0] * 10] * 5``,
    or None when it depends on anything else."""
    if isinstance(node, ast.Constant):
        return 1 + len(node.value) if isinstance(node.value, str) else 1
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        weights = [_literal_weight(e) for e in node.elts]
        return None if None in weights else 1 + sum(w for w in weights if w is not None)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for times, part in ((node.left, node.right), (node.right, node.left)):
            if (
                isinstance(times, ast.Constant)
                and type(times.value) is int
                and not isinstance(part, ast.Constant)
            ):
                weight = _literal_weight(part)
                return None if weight is None else weight * max(times.value, 0)
    return None


class Reject(Exception):
    """Raised by Checker: the code is refused, for the reason given, at the node's line."""

    def __init__(self, node: ast.AST, reason: str) -> None:
        super().__init__(reason)
        self.reason, self.line = reason, getattr(node, "lineno", None)


class Checker(ast.NodeVisitor):
    """Refuses what diagram code may not do, with a reason a modeler can act on."""

    def generic_visit(self, node: ast.AST) -> None:
        rule = _NODE_RULES.get(type(node))
        if rule:
            raise Reject(node, rule)
        super().generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if name.startswith("_"):
            raise Reject(
                node,
                f"Names starting with '_' (like '{name}') are not allowed. "
                "Rename it without the leading underscore.",
            )
        if name in _FORBIDDEN_NAMES:
            raise Reject(
                node,
                f"'{name}' is not available in diagram code. Use the documented "
                f"helpers; if '{name}' is a task variable, give it another name.",
            )
        if not isinstance(node.ctx, ast.Load) and name in BUILTINS:
            raise Reject(
                node,
                f"'{name}' is a built-in helper and cannot be assigned. "
                "Choose another variable name.",
            )

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)  # report the innermost problem first
        attr = node.attr
        if not isinstance(node.ctx, ast.Load):
            raise Reject(node, "Attributes cannot be set or deleted. Use d['key'] = value.")
        if attr.startswith("_"):
            raise Reject(
                node,
                f"Attributes starting with '_' (like '{attr}') are not allowed. "
                "Use the documented helpers instead.",
            )
        if attr in ("format", "format_map"):
            raise Reject(
                node,
                f"'.{attr}()' is not allowed because it can reach object "
                "internals. Use an f-string such as f'{dose} mg' or '+' instead.",
            )
        if attr not in METHOD_NAMES:
            raise Reject(
                node,
                f"'.{attr}' is not available. Allowed: "
                f"{', '.join(sorted(METHOD_NAMES))}. For a dict entry write x['{attr}'].",
            )

    def visit_BinOp(self, node: ast.BinOp) -> None:
        weight = _literal_weight(node)
        if weight is not None and weight > MAX_WEIGHT:
            raise Reject(
                node,
                f"This builds a value of about {weight:,} items (counting each repeat); "
                f"diagram code may compare, sort or print at most {MAX_WEIGHT:,}. "
                "Use smaller values.",
            )
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        if not all(isinstance(t, ast.Name) for t in node.targets):
            raise Reject(
                node,
                "Only plain variables can be deleted ('del x'). To drop a key, "
                "build a new dict: {k: v for k, v in d.items() if k != 'key'}.",
            )
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if not isinstance(node.target, ast.Name):
            raise Reject(
                node,
                "'+=' and the like work only on plain variables. "
                "Write d['k'] = d['k'] + 1 instead.",
            )
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if any(k.arg is None for k in node.keywords):
            raise Reject(node, "Star-unpacking (**x) is not allowed. Pass the values one by one.")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, bytes):
            raise Reject(node, "Byte strings (b'...') are not supported. Use normal text.")

    def visit_FormattedValue(self, node: ast.FormattedValue) -> None:
        spec = node.format_spec
        if isinstance(spec, ast.JoinedStr):
            parts = [p.value for p in spec.values if isinstance(p, ast.Constant)]
            numbers = re.findall(r"\d+", "".join(str(p) for p in parts))
            if len(parts) != len(spec.values) or any(int(n) > MAX_WIDTH for n in numbers):
                raise Reject(
                    node,
                    "f-string formats must be fixed, with widths up to "
                    f"{MAX_WIDTH}, e.g. f'{{x:.1f}}'.",
                )
        self.visit(node.value)


class Policy(RestrictingNodeTransformer):  # type: ignore[misc, unused-ignore]
    """RestrictedPython's guards, plus size guards on + - * // ** << % and f-strings, and a
    weight guard on whatever is compared or hashed in C (see ``limits``)."""

    _GUARDED: ClassVar[dict[type[ast.operator], str]] = {
        ast.Add: "_add_",
        ast.Sub: "_sub_",
        ast.Mult: "_mul_",
        ast.FloorDiv: "_floordiv_",
        ast.Pow: "_pow_",
        ast.LShift: "_lshift_",
        ast.Mod: "_mod_",
    }

    def _call(self, guard: str, args: list[ast.expr], node: ast.expr) -> ast.Call:
        call = ast.Call(func=ast.Name(guard, ast.Load()), args=args, keywords=[])
        copy_locations(call, node)
        return call

    def _light(self, node: ast.expr) -> ast.expr:
        """node, weighed before use unless it is a constant written in the code."""
        if isinstance(node, ast.Constant):
            return node
        return self._call("_light_", [node], node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = self.node_contents_visit(node)
        guard = self._GUARDED.get(type(node.op))
        return node if guard is None else self._call(guard, [node.left, node.right], node)

    # What C compares or hashes in one go is weighed first: comparison operands, set items,
    # dict keys, and the key of an item assignment.
    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        node = self.node_contents_visit(node)
        if all(isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops):
            return node
        node.left = self._light(node.left)
        node.comparators = [self._light(c) for c in node.comparators]
        return node

    def visit_Set(self, node: ast.Set) -> ast.AST:
        node = self.node_contents_visit(node)
        node.elts = [self._light(e) for e in node.elts]
        return node

    def visit_Dict(self, node: ast.Dict) -> ast.AST:
        node = self.node_contents_visit(node)
        node.keys = [k if k is None else self._light(k) for k in node.keys]
        return node

    def visit_SetComp(self, node: ast.SetComp) -> ast.AST:
        new = super().visit_SetComp(node)
        assert isinstance(new, ast.SetComp)
        new.elt = self._light(new.elt)
        return new

    def visit_DictComp(self, node: ast.DictComp) -> ast.AST:
        new = super().visit_DictComp(node)
        assert isinstance(new, ast.DictComp)
        new.key = self._light(new.key)
        return new

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        new = super().visit_Subscript(node)
        assert isinstance(new, ast.AST)
        if isinstance(new, ast.Subscript) and not isinstance(new.slice, ast.Slice):
            new.slice = self._light(new.slice)  # d[key] = value: the key is hashed
        return new

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return self._call("_fstr_", [self.node_contents_visit(node)], node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        node.value = self._call("_fmtval_", [self.visit(node.value)], node.value)
        if node.format_spec is not None:  # check its parts, but keep it a JoinedStr
            node.format_spec = self.node_contents_visit(node.format_spec)
        return node

    # Every loop pass and comprehension step calls _tick_(), which enforces the time limit.
    def _tick(self, node: ast.While | ast.For) -> ast.Expr:
        where = node.test if isinstance(node, ast.While) else node.iter
        stmt = ast.Expr(self._call("_tick_", [], where))
        copy_locations(stmt, node)
        return stmt

    def visit_While(self, node: ast.While) -> ast.AST:
        node = self.node_contents_visit(node)
        node.body.insert(0, self._tick(node))
        return node

    def visit_For(self, node: ast.For) -> ast.AST:
        new = super().visit_For(node)
        assert isinstance(new, ast.For)
        new.body.insert(0, self._tick(new))
        return new

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        new = super().visit_comprehension(node)
        assert isinstance(new, ast.comprehension)
        new.ifs.insert(0, self._call("_tick_", [], new.iter))
        return new
