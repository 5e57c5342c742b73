"""Checks on a parsed DMN document beyond its XML schema: decision tables the engine can run.

One decision per file, a decision table with a hit policy the engine supports (UNIQUE or
COLLECT), ids where SpiffWorkflow needs them, one entry per column in each rule, and entries
checked the way SpiffWorkflow evaluates them, with the sandbox's compile-time rules. An entry
the engine would misread (FEEL ranges, lists and negations, a test that fuses with the input
expression: see ``validation.feel``) is a problem naming the table, the rule (number and id)
and the column, with the entry in our syntax. A document with none of these problems is then
parsed by SpiffWorkflow itself. Nothing here runs DMN code.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

from ..diagrams import PathwayParser
from ..errors import Problem
from .feel import feel_form, joined_test
from .problems import code_problem, find_by_id, label, local, problem, text_of
from .spiff import clean_message, crash_problem

_HIT_POLICIES = ("UNIQUE", "COLLECT")
_NEED_IDS = ("rule", "inputEntry", "outputEntry")
# SpiffWorkflow's DMN parser calls .tag.endswith() on every child of these elements.
_UNREAD_COMMENTS = frozenset({"decisionTable", "rule", "inputEntry", "outputEntry"})


def _entry_problem(
    file: str, entry: etree._Element, *, where: str, input_text: str, text: str
) -> Problem | None:
    """Check an input entry the way SpiffWorkflow evaluates it (DMNEngine.evaluate; see
    ``validation.feel``): with ``?``, as an expression compared with the input, or appended to
    the input expression."""
    shown = " ".join(text.split())[:60]
    subject = f"{where}: the test '{shown}'"
    replaced = re.sub(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)", "dmninputexpr", text)
    if "dmninputexpr" in replaced:
        return code_problem(file, entry, "the test", replaced, subject=subject)
    feel = feel_form(text)
    if feel is not None:
        kind, fixed = feel
        return problem(
            file,
            entry,
            f"{subject} is {kind}, which the engine "
            + ("cannot read" if "range" in kind else "reads as Python and never matches"),
            f"write {fixed} (? stands for the column's value)",
        )
    for candidate in (text, f"v {text}"):
        try:
            ast.parse(candidate.strip(), mode="eval")
        except (SyntaxError, ValueError):
            continue
        if candidate is text:
            combined = f"({input_text}) == ({text})"
        else:
            joined = joined_test(input_text, text)
            if joined:
                return problem(file, entry, f"{subject}: {joined}", f"write ? {text.strip()}")
            combined = input_text + text
        return code_problem(file, entry, "the test", combined, subject=subject)
    return problem(
        file,
        entry,
        f"{subject} is not a test the engine can read",
        'write a value such as true or "left", a test of the column\'s value ? such as '
        '? >= 50, 1 <= ? <= 5 or ? in ("a", "b"), or - for any value',
    )


def _column(column: etree._Element, dmn: str) -> str:
    """A column as the modeler sees it: its label, else its expression or output name."""
    name = (
        column.get("label")
        or column.get("name")
        or column.findtext(f"{dmn}inputExpression/{dmn}text")
    )
    return " ".join((name or column.get("id") or "?").split())[:60]


def _table_checks(file: str, table: etree._Element) -> Iterator[Problem | None]:
    ns = etree.QName(table).namespace
    dmn = f"{{{ns}}}"
    policy = (table.get("hitPolicy") or "UNIQUE").strip().upper()
    if policy not in _HIT_POLICIES:
        yield problem(
            file,
            table,
            f"{label(table)} uses hit policy {policy}, which the engine "
            "does not support (only UNIQUE and COLLECT)",
            "write the rules to be "
            "mutually exclusive and use UNIQUE; the engine then takes the first match",
        )
    elif policy == "COLLECT" and table.get("aggregation"):
        yield problem(
            file,
            table,
            f"{label(table)} aggregates with {table.get('aggregation')}, "
            "which the engine ignores (it returns the list of all matches)",
            "remove the aggregation and add up the list in a later step",
        )
    for node in table.iter(etree.Comment, etree.ProcessingInstruction):
        parent = node.getparent()
        if parent is not None and local(parent) in _UNREAD_COMMENTS:
            yield problem(
                file,
                parent,
                "an XML comment or processing instruction in "
                f"{label(parent)} stops the engine from reading the table",
                "remove the comment",
            )
    inputs = table.findall(f"{dmn}input")
    expressions = []
    for column in inputs:
        text = text_of(column.find(f"{dmn}inputExpression/{dmn}text"))
        expressions.append(text)
        if not text:
            yield problem(
                file,
                column,
                f"{label(column)} has no input expression",
                "write the expression the column tests, e.g. a task variable name",
            )
        else:
            yield code_problem(file, column, "the expression", text)
    outputs = table.findall(f"{dmn}output")
    for node in [table, *inputs, *outputs, *table.iter(*(f"{dmn}{k}" for k in _NEED_IDS))]:
        if not node.get("id"):
            yield problem(
                file,
                node,
                f"a DMN {local(node)} has no id, which the engine needs",
                "give it an id; Camunda Modeler gives every element one",
            )
    columns = [_column(c, dmn) for c in [*inputs, *outputs]]
    for number, rule in enumerate(table.findall(f"{dmn}rule"), start=1):
        cells = [
            f"rule {number} ('{rule.get('id')}') of {label(table)}, column '{c}'" for c in columns
        ]
        entries = rule.findall(f"{dmn}inputEntry")
        results = rule.findall(f"{dmn}outputEntry")
        if len(entries) != len(inputs) or len(results) != len(outputs):
            yield problem(
                file,
                rule,
                f"{label(rule)} has {len(entries)} input and "
                f"{len(results)} output entries; the table has {len(inputs)} inputs "
                f"and {len(outputs)} outputs",
                "give the rule one entry per column",
            )
            continue
        for entry in [*entries, *results]:
            if entry.find(f"{dmn}text") is None:
                yield problem(
                    file,
                    entry,
                    f"{label(entry)} has no text element, which the engine needs",
                    "write the entry; use - for any value",
                )
        for entry, input_text, where in zip(entries, expressions, cells, strict=False):
            raw = entry.findtext(f"{dmn}text")  # as SpiffWorkflow reads it: only "-" is any
            if raw and raw != "-" and input_text:
                yield _entry_problem(file, entry, where=where, input_text=input_text, text=raw)
        for entry, where in zip(results, cells[len(inputs) :], strict=True):
            text = text_of(entry.find(f"{dmn}text"))
            if text:
                shown = " ".join(text.split())[:60]
                yield code_problem(
                    file, entry, "the value", text, subject=f"{where}: the value '{shown}'"
                )


def check_dmn(root: etree._Element, *, file: str) -> tuple[tuple[str, ...], list[Problem]]:
    """Check a DMN document's decisions; return the decision ids and the problems."""
    dmn = f"{{{etree.QName(root).namespace}}}"
    decisions = root.findall(f"{dmn}decision")
    ids = tuple(d.get("id") or "" for d in decisions)
    found: list[Problem | None] = []
    if root.prefix not in (None, "dmn"):
        found.append(
            problem(
                file,
                root,
                f"the DMN namespace has the prefix '{root.prefix}:', which the engine cannot read",
                "make the DMN namespace the default namespace, as Camunda Modeler writes it",
            )
        )
    if not decisions:
        found.append(problem(file, root, "no decision in this DMN file", "add a decision table"))
    elif len(decisions) > 1:
        found.append(
            problem(
                file,
                decisions[1],
                f"this file declares {len(decisions)} decisions "
                f"({', '.join(ids[:5])}{', ...' if ids[5:] else ''}); the engine reads one per file",
                "put each decision in a DMN file of its own",
            )
        )
    for decision in decisions:
        if not decision.get("id"):
            found.append(problem(file, decision, "a decision has no id", "give it an id"))
        tables = decision.findall(f"{dmn}decisionTable")
        if not tables:
            found.append(
                problem(
                    file,
                    decision,
                    f"{label(decision)} has no decision table",
                    "model it as a decision table; the engine runs tables only",
                )
            )
        for table in tables:
            found.extend(_table_checks(file, table))
    problems = [p for p in found if p is not None]
    if not problems:
        problems.extend(_dmn_engine_checks(file, root))
    return ids, list(dict.fromkeys(problems))


def _dmn_engine_checks(file: str, root: etree._Element) -> list[Problem]:
    try:
        parser = PathwayParser()
        parser.add_dmn_xml(root, filename=file)
        for dmn_parser in parser.dmn_parsers.values():
            dmn_parser.parse()
    except ValidationException as exc:
        node = find_by_id(root, getattr(exc, "id", None))
        node = root if node is None else node
        raw = clean_message(str(exc.args[0]) if exc.args else str(exc))
        return [
            problem(
                file,
                node,
                f"the engine cannot use {label(node)}: {raw}",
                "change the element as the message says",
            )
        ]
    except Exception as exc:
        return [crash_problem(file, root, root, exc)]
    return []
