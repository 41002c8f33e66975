"""Returns and their lines as returnsync holds them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, select, update

from returnsync.domain.model import Disposition, Return, ReturnLine
from returnsync.domain.money import Money
from returnsync.domain.states import ZIGZAG_DRIVEN, ReturnState
from returnsync.storage.sql import upsert
from returnsync.storage.tables import return_lines, returns

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from sqlalchemy.engine import Connection

# The statements run for every event are built once (building and cache-keying a statement
# costs more than running it on SQLite); `:t` and `:r` are the tenant and return_ref.
_ONE_RETURN = (returns.c.tenant == bindparam("t")) & (returns.c.return_ref == bindparam("r"))
_ITS_LINES = (return_lines.c.tenant == bindparam("t")) & (
    return_lines.c.return_ref == bindparam("r")
)
_GET = select(returns).where(_ONE_RETURN)
_GET_LINES = select(return_lines).where(_ITS_LINES).order_by(return_lines.c.line_id)
_EXISTING = select(returns.c.created_at, returns.c.seen_by_webhook, returns.c.seen_by_poll).where(
    _ONE_RETURN
)
_RESOLVED = select(
    return_lines.c.line_id, return_lines.c.stock_id, return_lines.c.stock_code
).where(_ITS_LINES)
_DELETE_LINES = delete(return_lines).where(_ITS_LINES)
_UPDATE = update(returns).where(_ONE_RETURN)  # SET: the other parameters
_LOCK = select(returns.c.state).where(_ONE_RETURN).with_for_update()
_PAST_ZIGZAG = select(returns.c.return_ref).where(
    returns.c.tenant == bindparam("t"),
    returns.c.return_ref.in_(bindparam("refs", expanding=True)),
    returns.c.state.not_in([state.value for state in ZIGZAG_DRIVEN]),
)
_VERSIONS = select(returns.c.return_ref, returns.c.zigzag_updated_at).where(
    returns.c.tenant == bindparam("t"), returns.c.return_ref.in_(bindparam("refs", expanding=True))
)
_BY_ASSOCIATED_REF = select(returns.c.return_ref).where(
    returns.c.tenant == bindparam("t"), returns.c.associated_ref == bindparam("a")
)
_LINE_STOCK = (
    update(return_lines)
    .where(_ITS_LINES, return_lines.c.line_id == bindparam("l"))
    .values(stock_id=bindparam("sid"), stock_code=bindparam("scode"))
)
_INSERT_LINES = return_lines.insert()


def save(
    conn: Connection,
    ret: Return,
    *,
    associated_ref: str,
    snapshot: dict[str, Any],
    now: datetime,
    seen_by: str,
) -> None:
    """Insert or replace the return and its lines (the latest confirmed snapshot)."""
    key = {"t": ret.tenant, "r": ret.return_ref}
    existing = conn.execute(_EXISTING, key).first()
    upsert(
        conn,
        returns,
        {
            "tenant": ret.tenant,
            "return_ref": ret.return_ref,
            "order_ref": ret.order_ref,
            "associated_ref": associated_ref,
            "currency": ret.currency,
            "warehouse": ret.warehouse,
            "state": ret.state.value,
            "zigzag_status": ret.zigzag_status,
            "zigzag_updated_at": ret.zigzag_updated_at,
            "seen_by_webhook": int(seen_by == "webhook" or bool(existing and existing[1])),
            "seen_by_poll": int(seen_by == "poll" or bool(existing and existing[2])),
            "snapshot": snapshot,
            "created_at": existing[0] if existing else now,
            "updated_at": now,
        },
        keys=["tenant", "return_ref"],
    )
    resolved = {r.line_id: (r.stock_id, r.stock_code) for r in conn.execute(_RESOLVED, key)}
    conn.execute(_DELETE_LINES, key)
    if ret.lines:
        conn.execute(
            _INSERT_LINES,
            [
                {
                    "tenant": ret.tenant,
                    "return_ref": ret.return_ref,
                    "line_id": line.line_id,
                    "item_id": line.item_id,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "disposition": line.disposition.value,
                    "condition": line.condition,
                    "unit_price": line.unit_price.amount,
                    "stock_id": resolved.get(line.line_id, (None, None))[0],
                    "stock_code": resolved.get(line.line_id, (None, None))[1],
                }
                for line in ret.lines
            ],
        )


def get(conn: Connection, tenant: str, return_ref: str) -> Return | None:
    """The return with its lines, or None."""
    key = {"t": tenant, "r": return_ref}
    row = conn.execute(_GET, key).first()
    if row is None:
        return None
    lines = conn.execute(_GET_LINES, key).all()
    return Return(
        tenant=row.tenant,
        return_ref=row.return_ref,
        order_ref=row.order_ref,
        currency=row.currency,
        warehouse=row.warehouse,
        zigzag_status=row.zigzag_status,
        zigzag_updated_at=row.zigzag_updated_at,
        state=ReturnState(row.state),
        lines=tuple(
            ReturnLine(
                line_id=line.line_id,
                item_id=line.item_id,
                sku=line.sku,
                quantity=line.quantity,
                disposition=Disposition(line.disposition),
                condition=line.condition,
                unit_price=Money(line.unit_price, row.currency),
            )
            for line in lines
        ),
    )


def synced_versions(
    conn: Connection, tenant: str, return_refs: Iterable[str]
) -> dict[str, datetime]:
    """Per return we hold, ZigZag's `updatedAt` of the newest snapshot we applied (one query)."""
    refs = sorted(set(return_refs))
    if not refs:
        return {}
    rows = conn.execute(_VERSIONS, {"t": tenant, "refs": refs})
    return {ref: at for ref, at in rows if at is not None}


def past_zigzag(conn: Connection, tenant: str, return_refs: Iterable[str]) -> set[str]:
    """Those of `return_refs` we hold in a state no ZigZag snapshot can move (one query)."""
    refs = sorted(set(return_refs))
    if not refs:
        return set()
    return set(conn.execute(_PAST_ZIGZAG, {"t": tenant, "refs": refs}).scalars())


def lock(conn: Connection, tenant: str, return_ref: str) -> None:
    """Lock the return's row until the transaction ends (PostgreSQL; SQLite has one writer)."""
    conn.execute(_LOCK, {"t": tenant, "r": return_ref})


def row(conn: Connection, tenant: str, return_ref: str) -> dict[str, Any] | None:
    """The raw returns row (snapshot, refs, flags), or None."""
    found = conn.execute(_GET, {"t": tenant, "r": return_ref}).mappings().first()
    return dict(found) if found else None


def by_associated_ref(conn: Connection, tenant: str, associated_ref: str) -> str | None:
    """The return_ref staged under a Khaos AssociatedRef, or None."""
    return conn.execute(_BY_ASSOCIATED_REF, {"t": tenant, "a": associated_ref}).scalar()


def set_state(
    conn: Connection, tenant: str, return_ref: str, state: ReturnState, now: datetime, **refs: str
) -> None:
    """Record a new state (already validated by the domain) and any refs learned with it."""
    conn.execute(
        _UPDATE, {"t": tenant, "r": return_ref, "state": state.value, "updated_at": now, **refs}
    )


def set_line_stock(
    conn: Connection, tenant: str, return_ref: str, *, line_id: str, stock_id: str, stock_code: str
) -> None:
    """Remember which Khaos stock item a line resolved to."""
    conn.execute(
        _LINE_STOCK,
        {"t": tenant, "r": return_ref, "l": line_id, "sid": stock_id, "scode": stock_code},
    )


def counts_by_state(conn: Connection, tenant: str | None = None) -> dict[str, int]:
    """Returns per state."""
    stmt = select(returns.c.state, func.count()).group_by(returns.c.state)
    if tenant is not None:
        stmt = stmt.where(returns.c.tenant == tenant)
    return {state: int(n) for state, n in conn.execute(stmt)}


def listing(
    conn: Connection, *, tenant: str | None = None, state: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Returns (without snapshots), most recently updated first."""
    cols = [c for c in returns.c if c.name != "snapshot"]
    stmt = select(*cols).order_by(returns.c.updated_at.desc()).limit(limit)
    if tenant is not None:
        stmt = stmt.where(returns.c.tenant == tenant)
    if state is not None:
        stmt = stmt.where(returns.c.state == state)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def set_state_refs(conn: Connection, tenant: str, return_ref: str, **refs: str) -> None:
    """Record refs learned along the way (payment_ref, credit_note, refund_ref)."""
    if refs:
        conn.execute(_UPDATE, {"t": tenant, "r": return_ref, **refs})
