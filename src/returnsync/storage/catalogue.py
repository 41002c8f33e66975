"""Khaos stock items, levels and the SKU map, as pushed by Khaos Control (keyed on StockID)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_, select

from returnsync.domain.sku import StockItem
from returnsync.storage.sql import dialect_insert, upsert
from returnsync.storage.tables import sku_map, stock_items, stock_levels

if TYPE_CHECKING:
    from datetime import datetime
    from decimal import Decimal

    from sqlalchemy.engine import Connection


def save_items(conn: Connection, tenant: str, items: list[StockItem], now: datetime) -> None:
    """Insert or update stock items (a renamed StockCode updates the same StockID)."""
    for item in items:
        upsert(
            conn,
            stock_items,
            {
                "tenant": tenant,
                "stock_id": item.stock_id,
                "stock_code": item.stock_code,
                "other_ref": item.other_ref,
                "barcodes": list(item.barcodes),
                "updated_at": now,
            },
            keys=["tenant", "stock_id"],
        )


def renames(conn: Connection, tenant: str, items: list[StockItem]) -> dict[str, str]:
    """Stock codes these items rename, {old code case-folded: new code} (same StockID).

    Read before `save_items`. A change of letter case only is not a rename (K-12).
    """
    pushed = {item.stock_id: item.stock_code for item in items}
    if not pushed:
        return {}
    rows = conn.execute(
        select(stock_items.c.stock_id, stock_items.c.stock_code).where(
            stock_items.c.tenant == tenant, stock_items.c.stock_id.in_(list(pushed))
        )
    )
    return {
        old.casefold(): pushed[stock_id]
        for stock_id, old in rows
        if old.strip().casefold() != pushed[stock_id].strip().casefold()
    }


def delete_items(conn: Connection, tenant: str, stock_ids: list[str]) -> None:
    """Forget deleted stock items."""
    if stock_ids:
        conn.execute(
            delete(stock_items).where(
                stock_items.c.tenant == tenant, stock_items.c.stock_id.in_(stock_ids)
            )
        )


def items(conn: Connection, tenant: str) -> list[StockItem]:
    """The tenant's whole catalogue."""
    rows = conn.execute(select(stock_items).where(stock_items.c.tenant == tenant))
    return [
        StockItem(
            stock_id=r.stock_id,
            stock_code=r.stock_code,
            other_ref=r.other_ref,
            barcodes=tuple(r.barcodes),
        )
        for r in rows
    ]


def save_level(
    conn: Connection,
    *,
    tenant: str,
    stock_id: str,
    site_id: int,
    stock_code: str,
    available: Decimal,
    now: datetime,
    push_id: int | None = None,
) -> None:
    """Keep the latest Available for (StockID, SiteID): a level set by a later push
    (`push_id`, its inbox id) is never overwritten by an earlier one."""
    values = {
        "tenant": tenant,
        "stock_id": stock_id,
        "site_id": site_id,
        "stock_code": stock_code,
        "available": available,
        "updated_at": now,
        "source_push": push_id,
    }
    conn.execute(_save_level(conn.dialect.name == "postgresql"), values)


@functools.cache
def _save_level(pg: bool) -> Any:
    stmt = dialect_insert(stock_levels, pg=pg)
    keys = ("tenant", "stock_id", "site_id")
    current = stock_levels.c.source_push
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={c.name: stmt.excluded[c.name] for c in stock_levels.c if c.name not in keys},
        where=or_(
            current.is_(None),
            stmt.excluded.source_push.is_(None),
            current <= stmt.excluded.source_push,
        ),
    )


def mapping(conn: Connection, tenant: str) -> dict[str, str]:
    """SKU (trimmed, case-folded) -> StockID, as set by operations."""
    rows = conn.execute(select(sku_map.c.sku, sku_map.c.stock_id).where(sku_map.c.tenant == tenant))
    return {str(sku): str(stock_id) for sku, stock_id in rows.all()}


def map_sku(
    conn: Connection, *, tenant: str, sku: str, stock_id: str, actor: str, now: datetime
) -> None:
    """Map a SKU to a StockID (a human decision; the caller audits it)."""
    upsert(
        conn,
        sku_map,
        {
            "tenant": tenant,
            "sku": sku.strip().casefold(),
            "stock_id": stock_id,
            "created_by": actor,
            "created_at": now,
        },
        keys=["tenant", "sku"],
    )
