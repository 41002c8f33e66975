"""Step 2-4 of the saga: resolve every SKU, then offer the return to Khaos Control.

An unmatched SKU holds the return with an `sku_unmatched` exception (owner: operations)
and suggestions; returnsync never invents or rewrites master data. Once the catalogue or
the SKU map is fixed, `replay_held` sends everything it blocked through again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from returnsync.adapters.khaos import mapping as kcc
from returnsync.domain.model import Return, associated_ref
from returnsync.domain.sku import SkuMatch, SkuUnmatched, resolve_sku
from returnsync.domain.states import ReturnState
from returnsync.services import alerts
from returnsync.services.context import serial_key
from returnsync.storage import audit, catalogue, exceptions, jobqueue, khaos, returns

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import Connection

    from returnsync.services.context import Context


def stage(ctx: Context, conn: Connection, ret: Return) -> ReturnState:
    """Move a READY return to STAGED, HELD or NOTHING_TO_CREDIT, in the caller's transaction."""
    tenant = ctx.tenant(ret.tenant)
    now = ctx.clock.now()
    if not ret.creditable_lines:
        target = ret.moved_to(ReturnState.NOTHING_TO_CREDIT).state
        returns.set_state(conn, ret.tenant, ret.return_ref, target, now)
        audit.record(
            conn,
            tenant=ret.tenant,
            actor="system:saga",
            action="nothing_to_credit",
            return_ref=ret.return_ref,
            now=now,
            detail={"why": "every inspected unit was missing"},
        )
        return target
    items = catalogue.items(conn, ret.tenant)
    mapping = catalogue.mapping(conn, ret.tenant)
    matches: dict[str, SkuMatch] = {}
    unmatched: list[SkuUnmatched] = []
    for sku in sorted(ret.skus()):
        found = resolve_sku(sku, items, mapping)
        if isinstance(found, SkuMatch):
            matches[sku] = found
        else:
            unmatched.append(found)
    if unmatched:
        for miss in unmatched:
            opened = exceptions.raise_open(
                conn,
                tenant=ret.tenant,
                kind="sku_unmatched",
                owner="operations",
                return_ref=ret.return_ref,
                subject=miss.sku,
                message=f"SKU {miss.sku!r} matches no Khaos stock item",
                detail={"sku": miss.sku, "suggestions": list(miss.suggestions)},
                now=now,
            )
            if opened:
                alerts.queue(
                    conn,
                    tenant=ret.tenant,
                    subject=f"SKU {miss.sku} unmatched",
                    body=f"return {ret.return_ref} is held; suggestions: {list(miss.suggestions)}",
                    severity="high",
                    now=now,
                )
        target = ret.moved_to(ReturnState.HELD).state
        returns.set_state(conn, ret.tenant, ret.return_ref, target, now)
        audit.record(
            conn,
            tenant=ret.tenant,
            actor="system:saga",
            action="held",
            return_ref=ret.return_ref,
            now=now,
            detail={"unmatched_skus": [m.sku for m in unmatched]},
        )
        return target
    staged_lines = []
    for line in ret.creditable_lines:
        match = matches[line.sku]
        returns.set_line_stock(
            conn,
            ret.tenant,
            ret.return_ref,
            line_id=line.line_id,
            stock_id=match.item.stock_id,
            stock_code=match.item.stock_code,
        )
        staged_lines.append(
            kcc.StagedLine(
                stock_code=match.item.stock_code,
                quantity=line.quantity,
                reason_id=tenant.khaos.return_reasons[line.disposition],
                line_id=line.line_id,
                unit_gross=line.unit_price.amount,
            )
        )
    ref = associated_ref(tenant.zigzag.retailer_code, ret.return_ref)
    row = returns.row(conn, ret.tenant, ret.return_ref) or {}
    customer = dict((row.get("snapshot") or {}).get("customer") or {})
    document = kcc.customer_return(
        associated_ref=ref,
        created=now,
        urn=tenant.khaos.return_urn,
        order_ref=ret.order_ref,
        lines=staged_lines,
        notes=f"ZigZag return {ret.return_ref}",
        process_return=tenant.khaos.process_return,
        contact=kcc.Contact(
            forename=str(customer.get("firstName", "")),
            surname=str(customer.get("lastName", "")),
            email=str(customer.get("email", "")),
        ),
        address=kcc.Address(
            line1=tenant.khaos.returns_address_line1,
            town=tenant.khaos.returns_address_town,
            postcode=tenant.khaos.returns_address_postcode,
        ),
    )
    target = ret.moved_to(ReturnState.STAGED).state
    if ctx.settings.shadow_mode:
        audit.record(
            conn,
            tenant=ret.tenant,
            actor="system:saga",
            action="shadow:would_stage",
            return_ref=ret.return_ref,
            now=now,
            detail={"document": document},
        )
        return ret.state
    khaos.stage(
        conn,
        tenant=ret.tenant,
        associated_ref=ref,
        return_ref=ret.return_ref,
        document=document,
        now=now,
    )
    returns.set_state(conn, ret.tenant, ret.return_ref, target, now)
    audit.record(
        conn,
        tenant=ret.tenant,
        actor="system:saga",
        action="staged_for_khaos",
        return_ref=ret.return_ref,
        now=now,
        detail={"associated_ref": ref, "lines": len(staged_lines)},
    )
    return target


def replay_held(ctx: Context, conn: Connection, tenant_id: str, *, actor: str) -> list[str]:
    """Send every HELD return of the tenant back through staging; returns their refs.

    Open `sku_unmatched` exceptions whose SKU now resolves are resolved first.
    """
    now = ctx.clock.now()
    items = catalogue.items(conn, tenant_id)
    mapping = catalogue.mapping(conn, tenant_id)
    for exc in exceptions.open_for(conn, tenant_id, "sku_unmatched"):
        if isinstance(resolve_sku(exc["subject"], items, mapping), SkuMatch):
            exceptions.resolve(
                conn, tenant=tenant_id, kind="sku_unmatched", subject=exc["subject"], now=now
            )
    replayed = []
    for state in (ReturnState.CREDITED, ReturnState.REFUNDED):
        # A saga waiting on a fixed exception (payment not found, ...) is nudged again.
        for row in returns.listing(conn, tenant=tenant_id, state=state.value, limit=10_000):
            _enqueue_advance(conn, tenant_id, row["return_ref"], now)
    for row in returns.listing(conn, tenant=tenant_id, state=ReturnState.HELD.value, limit=10_000):
        ref = row["return_ref"]
        still_blocked = [
            e
            for e in exceptions.open_for(conn, tenant_id, "sku_unmatched")
            if e["return_ref"] == ref
        ]
        if still_blocked:
            continue
        returns.set_state(conn, tenant_id, ref, ReturnState.READY, now)
        audit.record(
            conn, tenant=tenant_id, actor=actor, action="replayed", return_ref=ref, now=now
        )
        _enqueue_advance(conn, tenant_id, ref, now)
        replayed.append(ref)
    return replayed


def _enqueue_advance(conn: Connection, tenant_id: str, ref: str, now: datetime) -> None:
    jobqueue.enqueue(
        conn,
        tenant=tenant_id,
        kind="advance",
        serial_key=serial_key(tenant_id, ref),
        dedupe_key=f"advance:{tenant_id}:{ref}",
        payload={"return_ref": ref},
        now=now,
    )
