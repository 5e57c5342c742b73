"""Patient references in one spelling: Unicode NFKC, surrounding space trimmed, no invisible,
bidirectional or control character.

Until now ``UNI-1``, ``UNI-1 `` and full-width ``ＵＮＩ-1`` were three patients, each with an
active case. Each stored reference is brought to its one spelling, and the change is written
into the case's timeline (``patient_ref_normalised``: the old and the new reference, and why).

Where two active cases of one pathway would then name the same patient, neither is changed:
merging them would hide which one the care team has been working. They are reported (by case
id; a reference is patient data and never logged) for someone to close or correct one of them
by hand, and left as they were. So is a reference that would be blank.

The rule is written out here rather than imported: a migration must keep doing what it did
when it was written, whatever ``engine.inputs`` becomes.

Revision ID: 0005
Revises: 0004
"""

import logging
import unicodedata
from collections import defaultdict
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

log = logging.getLogger("engine.migrations")

# What a reference may not hold: controls, format characters (zero-width, bidirectional,
# BOM), surrogates, private use, unassigned, line and paragraph separators.
_REMOVED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
REASON = (
    "patient references are kept in one spelling (Unicode NFKC, surrounding space trimmed, "
    "no invisible, bidirectional or control character) so that references that look alike "
    "name one patient"
)


def canonical(value: str) -> str:
    folded = unicodedata.normalize("NFKC", value)
    return "".join(c for c in folded if unicodedata.category(c) not in _REMOVED).strip()


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, pathway, patient_ref, status FROM cases WHERE patient_ref IS NOT NULL"
        )
    ).all()
    changes = {row.id: canonical(row.patient_ref) for row in rows}
    # Who would share a spelling among the active cases of a pathway, once changed.
    active: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        if row.status == "active":
            active[(row.pathway, changes[row.id] or row.patient_ref)].append(row.id)
    left: set[str] = set()
    for (pathway, _ref), ids in active.items():
        stored = {r.id: r.patient_ref for r in rows if r.id in ids}
        if len(ids) > 1 and len(set(stored.values())) > 1:
            left.update(ids)
            log.warning(
                "migration 0005: active cases %s of %s name the same patient once their "
                "references are normalised; left as they were: close or correct all but one",
                ", ".join(sorted(ids)),
                pathway,
            )
    now = datetime.now(UTC).replace(tzinfo=None)
    changed = 0
    for row in rows:
        new = changes[row.id]
        if new == row.patient_ref or row.id in left:
            continue
        if not new or len(new) > 64:
            log.warning(
                "migration 0005: case %s has a patient reference that is %s once "
                "normalised; left as it was: correct it by hand",
                row.id,
                "blank" if not new else "longer than 64 characters",
            )
            continue
        bind.execute(
            sa.text("UPDATE cases SET patient_ref = :new WHERE id = :id"),
            {"new": new, "id": row.id},
        )
        bind.execute(
            sa.text(
                "INSERT INTO case_events (case_id, at, type, step, actor, detail, evidence) "
                "VALUES (:id, :at, 'patient_ref_normalised', NULL, NULL, :detail, NULL)"
            ).bindparams(sa.bindparam("detail", type_=sa.JSON)),
            {
                "id": row.id,
                "at": now,
                "detail": {
                    "from": row.patient_ref,
                    "to": new,
                    "by": "schema migration 0005",
                    "reason": REASON,
                },
            },
        )
        changed += 1
    if changed:
        log.warning("migration 0005: %d patient reference(s) normalised", changed)


def downgrade() -> None:
    # The old spellings are in each case's timeline (patient_ref_normalised); they are not
    # restored: they named patients ambiguously.
    pass
