"""Decision tables (DMN) as compared: their columns and rules, and what changed in them.

Rules are matched by their ids (Camunda Modeler keeps a rule's id when its entries are
edited); a rule is told by its description, or its id when it has none. Decision rules change
what the pathway decides, not its contract: none of these changes is breaking.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from ..vocabulary import ChangeKind
from .model import Change, Json

_SHORT = 70


@dataclass(frozen=True)
class Column:
    """An input (its expression) or an output (its name) of a decision table."""

    id: str
    label: str
    expression: str
    is_input: bool


@dataclass(frozen=True)
class Rule:
    """A row of a decision table: its entries by column id."""

    id: str
    description: str | None
    cells: dict[str, str]


@dataclass(frozen=True)
class Decision:
    """A decision table: its hit policy, columns and rules in order."""

    id: str
    name: str
    hit_policy: str
    columns: tuple[Column, ...]
    rules: dict[str, Rule]


def _text(node: etree._Element | None) -> str:
    if node is None or node.text is None:
        return ""
    return " ".join(node.text.split())


def read_decisions(root: etree._Element) -> dict[str, Decision]:
    """Read the decision tables of a DMN document, by decision id."""
    ns = f"{{{etree.QName(root).namespace}}}"
    decisions: dict[str, Decision] = {}
    for decision in root.iter(f"{ns}decision"):
        table = decision.find(f"{ns}decisionTable")
        if table is None:
            continue
        columns = [
            Column(
                id=c.get("id", ""),
                label=c.get("label") or c.get("id", ""),
                expression=_text(c.find(f"{ns}inputExpression/{ns}text")),
                is_input=True,
            )
            for c in table.findall(f"{ns}input")
        ]
        columns += [
            Column(
                id=c.get("id", ""),
                label=c.get("label") or c.get("name") or c.get("id", ""),
                expression=c.get("name", ""),
                is_input=False,
            )
            for c in table.findall(f"{ns}output")
        ]
        rules: dict[str, Rule] = {}
        for position, rule in enumerate(table.findall(f"{ns}rule"), start=1):
            entries = rule.findall(f"{ns}inputEntry") + rule.findall(f"{ns}outputEntry")
            rule_id = rule.get("id") or f"rule {position}"
            rules[rule_id] = Rule(
                id=rule_id,
                description=_text(rule.find(f"{ns}description")) or None,
                cells={
                    c.id: _text(e.find(f"{ns}text")) for c, e in zip(columns, entries, strict=False)
                },
            )
        decision_id = decision.get("id", "")
        decisions[decision_id] = Decision(
            id=decision_id,
            name=decision.get("name") or decision_id,
            hit_policy=(table.get("hitPolicy") or "UNIQUE").upper(),
            columns=tuple(columns),
            rules=rules,
        )
    return decisions


def _entry(column: Column, text: str | None) -> str:
    if text is None:
        return "(no entry)"
    if column.is_input and text in ("", "-"):
        return "any"
    return text


def _rule_name(rule: Rule) -> str:
    if rule.description is None:
        return rule.id
    short = rule.description
    if len(short) > _SHORT:
        short = short[: _SHORT - 1].rstrip() + "…"
    return f'"{short}" ({rule.id})'


def rule_words(decision: Decision, rule: Rule) -> str:
    """Say a rule: when its inputs hold, what it decides."""
    tests = [
        f"{c.label} {_entry(c, rule.cells.get(c.id))}"
        for c in decision.columns
        if c.is_input and _entry(c, rule.cells.get(c.id)) != "any"
    ]
    results = [f"{c.label} {rule.cells.get(c.id, '')}" for c in decision.columns if not c.is_input]
    return f"when {', '.join(tests) or 'always'}: {', '.join(results)}"


def _rule_data(decision: Decision, rule: Rule) -> dict[str, Json]:
    return {
        "description": rule.description,
        **{c.label: rule.cells.get(c.id) for c in decision.columns},
    }


def _table_changes(old: Decision, new: Decision) -> list[Change]:
    changes: list[Change] = []

    def table(text: str, before: str | None, after: str | None) -> None:
        changes.append(
            Change(
                ChangeKind.DECISION_TABLE_CHANGED,
                new.id,
                f'Decision table "{new.name}": {text}',
                before=before,
                after=after,
            )
        )

    if old.hit_policy != new.hit_policy:
        table(f"hit policy {old.hit_policy} → {new.hit_policy}", old.hit_policy, new.hit_policy)
    old_columns = {c.id: c for c in old.columns}
    new_columns = {c.id: c for c in new.columns}
    for column in new.columns:
        side = "input" if column.is_input else "output"
        was = old_columns.get(column.id)
        if was is None:
            table(f'new {side} "{column.label}" ({column.expression})', None, column.expression)
        elif (was.label, was.expression) != (column.label, column.expression):
            table(
                f'{side} "{was.label}" ({was.expression}) → "{column.label}" ({column.expression})',
                was.expression,
                column.expression,
            )
    for column in old.columns:
        if column.id not in new_columns:
            side = "input" if column.is_input else "output"
            table(f'{side} "{column.label}" ({column.expression}) removed', column.expression, None)
    kept_old = [r for r in old.rules if r in new.rules]
    kept_new = [r for r in new.rules if r in old.rules]
    if kept_old != kept_new:
        table(
            "its rules are checked in a new order: " + ", ".join(kept_new),
            ", ".join(kept_old),
            ", ".join(kept_new),
        )
    return changes


def _rule_changes(old: Decision, new: Decision) -> list[Change]:
    changes: list[Change] = []
    where = f'Decision table "{new.name}"'
    for rule in new.rules.values():
        was = old.rules.get(rule.id)
        if was is None:
            changes.append(
                Change(
                    ChangeKind.DECISION_RULE_ADDED,
                    rule.id,
                    f"{where}: new rule {_rule_name(rule)}: {rule_words(new, rule)}",
                    after=_rule_data(new, rule),
                )
            )
            continue
        parts = []
        for column in new.columns:
            before, after = was.cells.get(column.id), rule.cells.get(column.id)
            if column.id in {c.id for c in old.columns} and before != after:
                parts.append(f"{column.label} {_entry(column, before)} → {_entry(column, after)}")
        if was.description != rule.description:
            parts.append(f"description now reads {rule.description or 'nothing'!r}")
        if parts:
            changes.append(
                Change(
                    ChangeKind.DECISION_RULE_CHANGED,
                    rule.id,
                    f"{where}, rule {_rule_name(rule)}: " + "; ".join(parts),
                    before=_rule_data(old, was),
                    after=_rule_data(new, rule),
                )
            )
    for rule in old.rules.values():
        if rule.id not in new.rules:
            changes.append(
                Change(
                    ChangeKind.DECISION_RULE_REMOVED,
                    rule.id,
                    f"{where}: rule {_rule_name(rule)} removed ({rule_words(old, rule)})",
                    before=_rule_data(old, rule),
                )
            )
    return changes


def decision_changes(old: dict[str, Decision], new: dict[str, Decision]) -> list[Change]:
    """What changed in the decision tables, matched by decision id."""
    changes: list[Change] = []
    for decision in new.values():
        was = old.get(decision.id)
        if was is None:
            changes.append(
                Change(
                    ChangeKind.DECISION_TABLE_CHANGED,
                    decision.id,
                    f'New decision table "{decision.name}" ({decision.id}), '
                    f"{len(decision.rules)} rule(s)",
                    after=decision.id,
                )
            )
            continue
        changes += _table_changes(was, decision) + _rule_changes(was, decision)
    for decision in old.values():
        if decision.id not in new:
            changes.append(
                Change(
                    ChangeKind.DECISION_TABLE_CHANGED,
                    decision.id,
                    f'Decision table "{decision.name}" ({decision.id}) removed',
                    before=decision.id,
                )
            )
    return changes
