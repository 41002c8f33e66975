"""What returnsync offers Khaos Control (staged returns) and what it saw back (credit notes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, or_, select, update

from returnsync.domain.states import ReturnState
from returnsync.storage.sql import insert_ignore, upsert
from returnsync.storage.tables import credit_notes, returns, staged_returns

if TYPE_CHECKING:
    from datetime import datetime
    from decimal import Decimal

    from sqlalchemy.engine import Connection


def stage(
    conn: Connection,
    *,
    tenant: str,
    associated_ref: str,
    return_ref: str,
    document: dict[str, Any],
    now: datetime,
) -> bool:
    """Offer a CustomerReturn for the next KCC pull; False if already staged (never twice)."""
    return insert_ignore(
        conn,
        staged_returns,
        {
            "tenant": tenant,
            "associated_ref": associated_ref,
            "return_ref": return_ref,
            "document": document,
            "staged_at": now,
        },
    )


_PAGE = (
    select(staged_returns.c.seq, staged_returns.c.document)
    .where(
        staged_returns.c.tenant == bindparam("tenant"),
        or_(staged_returns.c.seq > bindparam("after_seq"), staged_returns.c.pulled_at.is_(None)),
    )
    .order_by(staged_returns.c.seq)
    .limit(bindparam("limit"))
)


def page_after(
    conn: Connection, tenant: str, after_seq: int, limit: int
) -> list[tuple[int, dict[str, Any]]]:
    """The next page for KCC, oldest first: (seq, document).

    Staged returns with seq > `after_seq`, and before them any return at or below the cursor
    that was never pulled. A cursor can pass a return without serving it: on first contact
    (a datetime continuation, compared with our clock) and, on PostgreSQL, when a lower seq
    commits after a higher one was served. A return staged for Khaos is offered until KCC has
    read it at least once, whatever the cursor says (KCC dedupes on AssociatedRef).
    """
    rows = conn.execute(_PAGE, {"tenant": tenant, "after_seq": after_seq, "limit": limit})
    return [(int(seq), dict(doc)) for seq, doc in rows]


_FIRST_AFTER = (
    select(staged_returns.c.seq)
    .where(
        staged_returns.c.tenant == bindparam("t"), staged_returns.c.staged_at > bindparam("after")
    )
    .order_by(staged_returns.c.seq)
    .limit(1)
)
_LAST_SEQ = (
    select(staged_returns.c.seq)
    .where(staged_returns.c.tenant == bindparam("t"))
    .order_by(staged_returns.c.seq.desc())
    .limit(1)
)


def first_seq_after(conn: Connection, tenant: str, staged_after: datetime) -> int:
    """The seq just before the first return staged after a datetime (first-contact cursor)."""
    seq = conn.execute(_FIRST_AFTER, {"t": tenant, "after": staged_after}).scalar()
    if seq is None:
        return int(conn.execute(_LAST_SEQ, {"t": tenant}).scalar() or 0)
    return int(seq) - 1


def by_refs(conn: Connection, tenant: str, refs: list[str]) -> list[dict[str, Any]]:
    """Staged documents for specific AssociatedRefs (KCC `SpecificIDs`)."""
    rows = conn.execute(
        select(staged_returns.c.document).where(
            staged_returns.c.tenant == tenant, staged_returns.c.associated_ref.in_(refs)
        )
    )
    return [dict(doc) for (doc,) in rows]


_PULLED = (
    update(staged_returns)
    .where(
        staged_returns.c.tenant == bindparam("t"),
        staged_returns.c.seq.in_(bindparam("seqs", expanding=True)),
        staged_returns.c.pulled_at.is_(None),
    )
    .values(pulled_at=bindparam("now"))
)


def mark_pulled(conn: Connection, tenant: str, seqs: list[int], now: datetime) -> None:
    """Remember when KCC first read these documents."""
    if seqs:
        conn.execute(_PULLED, {"t": tenant, "seqs": seqs, "now": now})


def restage_renamed(conn: Connection, tenant: str, renamed: dict[str, str]) -> list[str]:
    """Rewrite renamed stock codes in these staged returns and offer them to KCC again.

    `renamed` maps an old code (case-folded) to the new one; only returns still STAGED
    (waiting for their credit note) are touched. A document staged with the old code is rejected by
    Khaos ("SKU not found"); with the code rewritten and `pulled_at` cleared it is offered on
    the next page (an import that had already succeeded is skipped by KCC on AssociatedRef).
    Returns the refs rewritten.
    """
    if not renamed:
        return []
    awaiting = staged_returns.join(
        returns,
        and_(
            returns.c.tenant == staged_returns.c.tenant,
            returns.c.return_ref == staged_returns.c.return_ref,
        ),
    )
    rows = conn.execute(
        select(staged_returns.c.seq, staged_returns.c.return_ref, staged_returns.c.document)
        .select_from(awaiting)
        .where(staged_returns.c.tenant == tenant, returns.c.state == ReturnState.STAGED.value)
    ).all()
    rewritten = []
    for seq, return_ref, document in rows:
        items = [dict(item) for item in document.get("ReturnedItems", [])]
        hits = [i for i in items if str(i.get("SKU", "")).strip().casefold() in renamed]
        if not hits:
            continue
        for item in hits:
            item["SKU"] = renamed[str(item["SKU"]).strip().casefold()]
        conn.execute(
            update(staged_returns)
            .where(staged_returns.c.seq == seq)
            .values(document={**document, "ReturnedItems": items}, pulled_at=None)
        )
        rewritten.append(return_ref)
    return rewritten


def save_credit_note(
    conn: Connection,
    *,
    tenant: str,
    code: str,
    associated_ref: str,
    net: Decimal,
    tax: Decimal,
    gross: Decimal,
    currency: str,
    lines: list[dict[str, Any]],
    now: datetime,
) -> None:
    """Record a credit note seen in Khaos (idempotent on its code)."""
    upsert(
        conn,
        credit_notes,
        {
            "tenant": tenant,
            "code": code,
            "associated_ref": associated_ref,
            "net": net,
            "tax": tax,
            "gross": gross,
            "currency": currency,
            "lines": lines,
            "observed_at": now,
        },
        keys=["tenant", "code"],
    )


_NOTES_FOR = (
    select(credit_notes)
    .where(credit_notes.c.tenant == bindparam("t"), credit_notes.c.associated_ref == bindparam("a"))
    .order_by(credit_notes.c.code)
)


def credit_notes_for(conn: Connection, tenant: str, associated_ref: str) -> list[dict[str, Any]]:
    """Every credit note Khaos raised against one AssociatedRef (more than one is a finding)."""
    rows = conn.execute(_NOTES_FOR, {"t": tenant, "a": associated_ref}).mappings()
    return [dict(r) for r in rows]
