"""Step 6 of the saga: the refund, only after the credit note, never twice.

Order of checks, each against the gateway's own state (the ground truth):
1. a refund carrying this return's `return_ref` exists: adopt it (a lost response, a crash,
   or a second worker already paid it); a failed one is an exception, never "paid";
2. manual (goodwill) refunds on the payment that no other return adopted: adopt them and
   pay only the rest, flagging it for finance (MISSION: a refund already paid by hand is
   never paid again);
3. never refund more than is left on the payment: a difference within the rounding
   tolerance is capped and recorded, a larger one is an `amount_mismatch` for finance;
4. pay the rest with an idempotency key derived from (tenant, return, credit note), so a
   retry after an unknown outcome replays the same refund instead of paying again.

A refusal (4xx) is definite: nothing was refunded under that key, and the gateway answers
the key with the same refusal from then on. The key is marked `rejected` in the ledger and
the next attempt, after reading everything again, takes the next key (`...:2`, `...:3`).
When the refusal came because another refund landed on the payment between our read and
our request (two returns of one order refunded at once), the attempt is retried as a
transient failure; otherwise it stays a refusal (a dead job, an exception for a person).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from returnsync.domain.money import Money
from returnsync.errors import RejectedByRemoteError, TransientConnectorError
from returnsync.storage import audit, exceptions, khaos, ledger, returns

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import Connection

    from returnsync.ports import GatewayRefund, Payment
    from returnsync.services.context import Context

LIVE = frozenset({"succeeded", "pending", "requires_action"})


def refund_key(tenant: str, return_ref: str, credit_note: str) -> str:
    """The effect key and gateway idempotency key of a return's refund (assumption G-2)."""
    return f"refund:{tenant}:{return_ref}:{credit_note}"


def refund(ctx: Context, tenant_id: str, return_ref: str) -> GatewayRefund | None:
    """Make sure the credited return is refunded; None when it is not (and why is recorded)."""
    with ctx.db.begin() as conn:
        row = returns.row(conn, tenant_id, return_ref)
        if row is None or not row["credit_note"]:
            raise ValueError(f"return {return_ref} has no credit note: refusing to refund")
        notes = khaos.credit_notes_for(conn, tenant_id, row["associated_ref"])
        note = next(n for n in notes if n["code"] == row["credit_note"])
        key = _attempt_key(conn, tenant_id, refund_key(tenant_id, return_ref, note["code"]))
    credit = Money(Decimal(note["gross"]), note["currency"])
    gateway = ctx.gateway(tenant_id)
    payment = gateway.find_payment(row["order_ref"])
    if payment is None:
        _exception(
            ctx,
            tenant_id,
            return_ref,
            "payment_not_found",
            message=f"no gateway payment for order {row['order_ref']}: cannot refund",
            detail={"order_ref": row["order_ref"], "credit_note": note["code"]},
        )
        return None
    existing = gateway.refunds_for(payment.payment_ref)
    ours = [r for r in existing if r.metadata.get("return_ref") == return_ref]
    live = [r for r in ours if r.status in LIVE]
    if live:
        _done(ctx, tenant_id, return_ref, key=key, paid=live[0], how="adopted_existing")
        return live[0]
    if ours:
        _exception(
            ctx,
            tenant_id,
            return_ref,
            "refund_failed",
            message=f"refund {ours[0].refund_ref} of this return is {ours[0].status}",
            detail={"refund_ref": ours[0].refund_ref, "status": ours[0].status},
        )
        return None
    now = ctx.clock.now()
    with ctx.db.begin() as conn:
        returns.set_state_refs(conn, tenant_id, return_ref, payment_ref=payment.payment_ref)
        goodwill, adopted = _adopt_goodwill(conn, tenant_id, return_ref, existing, now)
        if adopted:
            exceptions.raise_open(
                conn,
                tenant=tenant_id,
                kind="goodwill_refund_adopted",
                owner="finance",
                return_ref=return_ref,
                message=(
                    f"manual refund(s) {adopted} of {goodwill} already paid on the order; "
                    f"counted against credit note {note['code']} ({credit})"
                ),
                detail={"refunds": adopted, "credit_note": note["code"]},
                now=now,
            )
        to_pay = credit - goodwill
        if to_pay.amount <= 0:
            _covered(conn, tenant_id, return_ref, key=key, adopted=adopted, now=now)
            return None
        capped = _cap_at_payment(
            ctx,
            conn=conn,
            tenant_id=tenant_id,
            return_ref=return_ref,
            note=note,
            to_pay=to_pay,
            payment=payment,
            existing=existing,
        )
        if capped is None:
            return None
        ledger.start(
            conn,
            tenant=tenant_id,
            key=key,
            kind="refund",
            return_ref=return_ref,
            detail={"amount": str(capped.amount), "payment_ref": payment.payment_ref},
            now=now,
        )
    if ctx.settings.shadow_mode:
        return None
    try:
        paid = gateway.refund(
            payment.payment_ref,
            amount=capped,
            idempotency_key=key,
            metadata={"return_ref": return_ref, "credit_note": note["code"], "tenant": tenant_id},
        )
    except RejectedByRemoteError as refused:
        _refused(
            ctx,
            tenant_id,
            key=key,
            amount=capped,
            payment=payment,
            counted=existing,
            refused=refused,
        )
        raise
    _done(ctx, tenant_id, return_ref, key=key, paid=paid, how="paid")
    return paid


MAX_ATTEMPT_KEYS = 20


def _attempt_key(conn: Connection, tenant_id: str, base: str) -> str:
    """`base`, or the first of `base:2`, `base:3` ... the gateway has not refused."""
    key = base
    for n in range(2, MAX_ATTEMPT_KEYS + 1):
        effect = ledger.get(conn, tenant_id, key)
        if effect is None or effect.status != "rejected":
            return key
        key = f"{base}:{n}"
    raise ValueError(f"the gateway refused {MAX_ATTEMPT_KEYS - 1} refunds for {base}: stopping")


def _live_total(refunds: list[GatewayRefund]) -> Decimal:
    return sum((r.amount.amount for r in refunds if r.status in LIVE), Decimal(0))


def _refused(
    ctx: Context,
    tenant_id: str,
    *,
    key: str,
    amount: Money,
    payment: Payment,
    counted: list[GatewayRefund],
    refused: RejectedByRemoteError,
) -> None:
    """Record a definite refusal of `key`; raise a transient error when the payment took
    another refund since `counted` was read (the next attempt computes again)."""
    with ctx.db.begin() as conn:
        ledger.reject(
            conn,
            tenant=tenant_id,
            key=key,
            # what `ledger.start` recorded for the attempt, and why it was refused
            detail={
                "amount": str(amount.amount),
                "payment_ref": payment.payment_ref,
                "reason": str(refused)[:500],
            },
            now=ctx.clock.now(),
        )
    now_refunded = _live_total(ctx.gateway(tenant_id).refunds_for(payment.payment_ref))
    if now_refunded != _live_total(counted):
        raise TransientConnectorError(
            f"payment {payment.payment_ref} took another refund while this one was computed "
            f"(refunded {_live_total(counted)} then {now_refunded}); computing again",
            system="gateway",
        ) from refused


def _adopt_goodwill(
    conn: Connection,
    tenant_id: str,
    return_ref: str,
    existing: list[GatewayRefund],
    now: datetime,
) -> tuple[Money, list[str]]:
    """Claim the manual refunds on the payment that no other return claimed (once each)."""
    total: Money | None = None
    adopted: list[str] = []
    for manual in (r for r in existing if r.manual and r.status in LIVE):
        claim = f"goodwill:{tenant_id}:{manual.refund_ref}"
        fresh = ledger.start(
            conn,
            tenant=tenant_id,
            key=claim,
            kind="goodwill",
            return_ref=return_ref,
            detail={"amount": str(manual.amount.amount), "return_ref": return_ref},
            now=now,
        )
        prior = None if fresh else ledger.get(conn, tenant_id, claim)
        if fresh or (prior is not None and prior.detail.get("return_ref") == return_ref):
            total = manual.amount if total is None else total + manual.amount
            adopted.append(manual.refund_ref)
    currency = existing[0].amount.currency if existing else "GBP"
    return (total or Money.zero(currency)), adopted


def _cap_at_payment(
    ctx: Context,
    *,
    conn: Connection,
    tenant_id: str,
    return_ref: str,
    note: dict[str, Any],
    to_pay: Money,
    payment: Payment,
    existing: list[GatewayRefund],
) -> Money | None:
    """`to_pay`, capped at what is left on the payment when the excess is only rounding."""
    remaining = payment.amount.amount - _live_total(existing)
    if to_pay.amount <= remaining:
        return to_pay
    now = ctx.clock.now()
    excess = to_pay.amount - remaining
    tolerance = Decimal(ctx.tenant(tenant_id).refund_tolerance) * max(1, len(note["lines"] or []))
    if excess > tolerance:
        exceptions.raise_open(
            conn,
            tenant=tenant_id,
            kind="amount_mismatch",
            owner="finance",
            return_ref=return_ref,
            subject=f"refund:{note['code']}",
            message=(
                f"credit note {note['code']} asks for {to_pay} but only {remaining} "
                f"is left to refund on payment {payment.payment_ref}"
            ),
            detail={"credit_note": note["code"], "remaining": str(remaining)},
            now=now,
        )
        return None
    audit.record(
        conn,
        tenant=tenant_id,
        actor="system:saga",
        action="refund_capped_at_payment",
        return_ref=return_ref,
        now=now,
        detail={"credit_note": note["code"], "rounding": str(excess)},
    )
    return Money(remaining, to_pay.currency)


def _covered(
    conn: Connection,
    tenant_id: str,
    return_ref: str,
    *,
    key: str,
    adopted: list[str],
    now: datetime,
) -> None:
    """The goodwill already paid covers the whole credit: record it, pay nothing."""
    audit.record(
        conn,
        tenant=tenant_id,
        actor="system:saga",
        action="refund_covered_by_goodwill",
        return_ref=return_ref,
        now=now,
        detail={"covered_by": adopted},
    )
    ledger.start(
        conn, tenant=tenant_id, key=key, kind="refund", return_ref=return_ref, detail={}, now=now
    )
    ledger.finish(
        conn,
        tenant=tenant_id,
        key=key,
        remote_ref=adopted[0],
        detail={"covered_by": adopted},
        now=now,
    )
    returns.set_state_refs(conn, tenant_id, return_ref, refund_ref=adopted[0])


def _exception(
    ctx: Context,
    tenant_id: str,
    return_ref: str,
    kind: str,
    *,
    message: str,
    detail: dict[str, Any],
) -> None:
    with ctx.db.begin() as conn:
        exceptions.raise_open(
            conn,
            tenant=tenant_id,
            kind=kind,
            owner="finance",
            return_ref=return_ref,
            message=message,
            detail=detail,
            now=ctx.clock.now(),
        )


def _done(
    ctx: Context, tenant_id: str, return_ref: str, *, key: str, paid: GatewayRefund, how: str
) -> None:
    now = ctx.clock.now()
    with ctx.db.begin() as conn:
        if ledger.get(conn, tenant_id, key) is None:
            ledger.start(
                conn,
                tenant=tenant_id,
                key=key,
                kind="refund",
                return_ref=return_ref,
                detail={},
                now=now,
            )
        ledger.finish(
            conn,
            tenant=tenant_id,
            key=key,
            remote_ref=paid.refund_ref,
            detail={"amount": str(paid.amount.amount), "how": how},
            now=now,
        )
        returns.set_state_refs(conn, tenant_id, return_ref, refund_ref=paid.refund_ref)
        audit.record(
            conn,
            tenant=tenant_id,
            actor="system:saga",
            action=f"refund_{how}",
            return_ref=return_ref,
            now=now,
            detail={"refund_ref": paid.refund_ref, "amount": str(paid.amount.amount)},
        )
