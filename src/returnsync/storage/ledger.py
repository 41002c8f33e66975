"""The effects ledger: one row per external effect, keyed deterministically.

An effect is `started` before the remote call and `done` after it. A `started` row
found later means the outcome is unknown (the process died, or the response was lost):
the caller must read the remote state and adopt what is there before trying again. A
`rejected` row is an effect the remote system refused: nothing happened under its key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update

from returnsync.storage.sql import insert_ignore
from returnsync.storage.tables import effects

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import Connection


# Built once (ADR 0008): `:t` the tenant, `:k` the effect key.
_ONE = (effects.c.tenant == bindparam("t")) & (effects.c.effect_key == bindparam("k"))
_GET = select(effects).where(_ONE)
_FINISH = (
    update(effects)
    .where(_ONE)
    .values(
        status="done",
        remote_ref=bindparam("ref"),
        detail=bindparam("d", type_=effects.c.detail.type),
        updated_at=bindparam("now"),
    )
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Effect:
    """One recorded external effect."""

    key: str
    kind: str
    status: str  # started | done | rejected
    remote_ref: str | None
    detail: dict[str, Any]


def get(conn: Connection, tenant: str, key: str) -> Effect | None:
    """The effect with this key, or None if never attempted."""
    row = conn.execute(_GET, {"t": tenant, "k": key}).first()
    if row is None:
        return None
    return Effect(
        key=row.effect_key,
        kind=row.kind,
        status=row.status,
        remote_ref=row.remote_ref,
        detail=dict(row.detail),
    )


def start(
    conn: Connection,
    *,
    tenant: str,
    key: str,
    kind: str,
    return_ref: str,
    detail: dict[str, Any],
    now: datetime,
) -> bool:
    """Record that the effect is about to be attempted; False if it was already recorded."""
    return insert_ignore(
        conn,
        effects,
        {
            "tenant": tenant,
            "effect_key": key,
            "kind": kind,
            "return_ref": return_ref,
            "status": "started",
            "detail": detail,
            "created_at": now,
            "updated_at": now,
        },
    )


def finish(
    conn: Connection,
    *,
    tenant: str,
    key: str,
    remote_ref: str,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    """Record that the effect happened, with the remote system's reference."""
    conn.execute(_FINISH, {"t": tenant, "k": key, "ref": remote_ref, "d": detail, "now": now})


def reject(
    conn: Connection, *, tenant: str, key: str, detail: dict[str, Any], now: datetime
) -> None:
    """Record that the remote system refused the effect: nothing happened under this key, and
    nothing ever will (the refusal is what the key replays)."""
    conn.execute(
        update(effects)
        .where(effects.c.tenant == tenant, effects.c.effect_key == key)
        .values(status="rejected", detail=detail, updated_at=now)
    )
