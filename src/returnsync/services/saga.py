"""The saga for one return: stage -> (credit note observed) -> refund -> tell ZigZag.

`advance` looks at where the return stands and does the next step, as many steps as it
can; it is safe to run any number of times (every step is idempotent or checks remote
state first) and never runs twice at once for a return (jobs share its serial key).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from returnsync.domain.money import Money
from returnsync.domain.states import ReturnState
from returnsync.services import refunds, staging
from returnsync.storage import audit, khaos, returns

if TYPE_CHECKING:
    from returnsync.services.context import Context


def advance(ctx: Context, tenant_id: str, return_ref: str) -> ReturnState:
    """Run the next steps of the return's saga; returns the state it stopped in."""
    while True:
        with ctx.db.begin() as conn:
            ret = returns.get(conn, tenant_id, return_ref)
            if ret is None:
                raise ValueError(f"unknown return {tenant_id}/{return_ref}")
            if ret.state is ReturnState.READY:
                state = staging.stage(ctx, conn, ret)
                if state in {ReturnState.STAGED, ReturnState.READY}:
                    return state  # now Khaos pulls it; the credit note push wakes us up
                continue
        if ret.state is ReturnState.CREDITED:
            if refunds.refund(ctx, tenant_id, return_ref) is None and not _refund_settled(
                ctx, tenant_id, return_ref
            ):
                return ret.state  # waiting on an exception (payment not found, shadow mode)
            _move(ctx, tenant_id, return_ref, ReturnState.REFUNDED, "refunded")
            continue
        if ret.state is ReturnState.REFUNDED:
            _tell_zigzag(ctx, tenant_id, return_ref)
            _move(ctx, tenant_id, return_ref, ReturnState.CLOSED, "outcome_sent_to_zigzag")
            continue
        return ret.state


def _refund_settled(ctx: Context, tenant_id: str, return_ref: str) -> bool:
    with ctx.db.begin() as conn:
        row = returns.row(conn, tenant_id, return_ref) or {}
    return bool(row.get("refund_ref"))


def _move(ctx: Context, tenant_id: str, return_ref: str, target: ReturnState, action: str) -> None:
    now = ctx.clock.now()
    with ctx.db.begin() as conn:
        ret = returns.get(conn, tenant_id, return_ref)
        if ret is None or ret.state is target:
            return
        returns.set_state(conn, tenant_id, return_ref, ret.moved_to(target).state, now)
        audit.record(
            conn,
            tenant=tenant_id,
            actor="system:saga",
            action=action,
            return_ref=return_ref,
            now=now,
        )


def _tell_zigzag(ctx: Context, tenant_id: str, return_ref: str) -> None:
    with ctx.db.begin() as conn:
        row = returns.row(conn, tenant_id, return_ref) or {}
        notes = khaos.credit_notes_for(conn, tenant_id, row.get("associated_ref", ""))
    note = next((n for n in notes if n["code"] == row.get("credit_note")), None)
    if note is None or not row.get("refund_ref"):
        raise ValueError(f"return {return_ref} is marked refunded without credit note or refund")
    ctx.platform(tenant_id).record_refund(
        return_ref,
        amount=Money(Decimal(note["gross"]), note["currency"]),
        refund_ref=row["refund_ref"],
        credit_note=note["code"],
    )
