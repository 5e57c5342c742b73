"""Patient references in one spelling: Unicode NFKC, surrounding space trimmed, no invisible,
bidirectional or control character.

Until now ``UNI-1``, ``UNI-1 `` and full-width ``ＵＮＩ-1`` were three patients, each with an
active case. Each stored reference is brought to its one spelling, and the change is written
into the case's timeline (``patient_ref_normalised``: the old and the new reference, by whom and
why) with a new version of the case.

Where two active cases of one pathway would then name the same patient, neither is changed:
merging them would hide which one the care team has been working. They are reported (by case
id; a reference is patient data and never logged) and left as they were, for someone to cancel
all but one with a reason (the timeline keeps who and why). The one kept keeps its old
spelling, which a lookup by reference no longer finds: it is reached by its case id. A
reference that would be blank or too long is also reported and left.

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
ACTOR = "schema migration 0005"
REASON = (
    "patient references are kept in one spelling (Unicode NFKC, surrounding space trimmed, "
    "no invisible, bidirectional or control character) so that references that look alike "
    "name one patient"
)


def canonical(value: str) -> str:
    """NFKC, with what may not be in a reference taken out, until that changes nothing
    (taking out a zero-width joiner can leave a combining accent NFKC then composes)."""
    while True:
        folded = unicodedata.normalize("NFKC", value)
        kept = "".join(c for c in folded if unicodedata.category(c) not in _REMOVED).strip()
        if kept == value:
            return kept
        value = kept


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
        if len(ids) > 1:
            left.update(ids)
            log.warning(
                "migration 0005: active cases %s of %s name the same patient once their "
                "references are normalised; left as they were: cancel all but one with a "
                "reason (POST /cases/{id}/cancel); the one kept is found by its id",
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
        # A change of the case: a new version (the ETag a page holds is stale now).
        bind.execute(
            sa.text(
                "UPDATE cases SET patient_ref = :new, version = version + 1, updated_at = :at "
                "WHERE id = :id"
            ),
            {"new": new, "id": row.id, "at": now},
        )
        bind.execute(
            sa.text(
                "INSERT INTO case_events (case_id, at, type, step, actor, detail, evidence) "
                "VALUES (:id, :at, 'patient_ref_normalised', NULL, :actor, :detail, NULL)"
            ).bindparams(sa.bindparam("detail", type_=sa.JSON)),
            {
                "id": row.id,
                "at": now,
                "actor": ACTOR,
                "detail": {"from": row.patient_ref, "to": new, "reason": REASON},
            },
        )
        changed += 1
    if changed:
        log.warning("migration 0005: %d patient reference(s) normalised", changed)


def downgrade() -> None:
    # The old spellings are in each case's timeline and are not restored: they named
    # patients ambiguously. Code before 0005 cannot read a timeline that holds such an entry,
    # so going back is refused while there are any.
    count = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM case_events WHERE type = 'patient_ref_normalised'")
    )
    if count:
        raise RuntimeError(
            f"cannot downgrade below 0005: {count} timeline entries record normalised patient "
            "references, which earlier versions cannot read"
        )
