"""What must hold at the end of every simulated scenario, checked against the fakes' ledgers
(ZigZag, Khaos, gateway) first and our tables second.

Each check returns human-readable violations; an empty list means the scenario passed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from returnsync.domain.model import associated_ref
from returnsync.domain.states import RANK, ReturnState
from returnsync.services.refunds import LIVE
from returnsync.storage.tables import audit_log, credit_notes, effects, exceptions, inbox, jobs
from returnsync.storage.tables import returns as returns_table

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from returnsync.adapters.payments.fake import FakeGateway
    from returnsync.config import Tenant
    from returnsync.ports import GatewayRefund
    from returnsync.testing.world import SimKhaos, SimZigZag

# Open exceptions that legitimately stop a return short of a terminal state (a person must
# act). Informational ones (goodwill_refund_adopted, duplicate_credit_note, and an
# amount_mismatch raised when the credit note is observed) do not stop the saga, so they
# excuse nothing.
BLOCKING = frozenset({"sku_unmatched", "payment_not_found", "refund_failed", "job_dead"})

# Audit actions that put a return in a state (for the "never backwards" check).
ACTION_STATE = {
    "staged_for_khaos": ReturnState.STAGED,
    "held": ReturnState.HELD,
    "nothing_to_credit": ReturnState.NOTHING_TO_CREDIT,
    "replayed": ReturnState.READY,
    "refunded": ReturnState.REFUNDED,
    "outcome_sent_to_zigzag": ReturnState.CLOSED,
}
REFUND_ACTIONS = frozenset({"refund_paid", "refund_adopted_existing", "refund_covered_by_goodwill"})


@dataclass(kw_only=True)
class TenantTruth:
    """One tenant's outside world, as the invariants need it."""

    tenant: Tenant
    zigzag: SimZigZag
    khaos: SimKhaos
    gateway: FakeGateway
    catalogue_pushed: set[str]  # stock codes (case-folded) the tenant's catalogue told us
    forged: list[str] = field(default_factory=list)


def check_final(conn: Connection, worlds: list[TenantTruth], stats: Counter[str]) -> list[str]:
    """Every end-of-scenario invariant; `stats` counts the outcomes per return."""
    problems: list[str] = []
    queue = Counter(
        status for (status,) in conn.execute(select(jobs.c.status)) if status != "succeeded"
    )
    if queue.get("pending") or queue.get("running"):
        problems.append(f"job queue not drained: {dict(queue)}")
    stats["dead_jobs"] += queue.get("dead", 0)
    problems += _check_dead_job_exceptions(conn)
    for world in worlds:
        problems += _check_tenant(conn, world, stats)
    return problems


@dataclass(kw_only=True)
class _Seen:
    """One tenant's state, gathered once: our tables and the fakes' ledgers side by side."""

    ours: dict[str, dict[str, Any]]
    observed: set[str]
    blocking: dict[str, list[str]]
    goodwill: dict[str, list[tuple[str, Decimal]]]
    notes_by_ref: dict[str, list[str]]
    refunds_by_return: dict[str, list[GatewayRefund]]


def _gather(conn: Connection, world: TenantTruth) -> _Seen:
    tid = world.tenant.id
    notes_by_ref: dict[str, list[str]] = defaultdict(list)
    for note in world.khaos.notes.values():
        notes_by_ref[note.associated_ref].append(note.code)
    refunds_by_return: dict[str, list[GatewayRefund]] = defaultdict(list)
    for refund in world.gateway.refunds:
        if refund.metadata.get("return_ref") and refund.status in LIVE:
            refunds_by_return[refund.metadata["return_ref"]].append(refund)
    rows = conn.execute(select(returns_table).where(returns_table.c.tenant == tid)).mappings()
    codes = conn.execute(select(credit_notes.c.code).where(credit_notes.c.tenant == tid))
    return _Seen(
        ours={r["return_ref"]: dict(r) for r in rows},
        observed={c for (c,) in codes},
        blocking=_blocking_exceptions(conn, tid),
        goodwill=_goodwill_claims(conn, tid),
        notes_by_ref=notes_by_ref,
        refunds_by_return=refunds_by_return,
    )


def _check_tenant(conn: Connection, world: TenantTruth, stats: Counter[str]) -> list[str]:
    seen = _gather(conn, world)
    problems = _check_khaos(world, seen) + _check_gateway(world, seen)
    problems += [f"{world.tenant.id}: ZigZag conflict {c}" for c in world.zigzag.refund_conflicts]
    for ref in world.zigzag.returns:
        problems += _check_return(conn, world, seen, ref, stats)
    problems += _check_forged(conn, world, seen)
    return problems


def _check_khaos(world: TenantTruth, seen: _Seen) -> list[str]:
    """One credit note per AssociatedRef; every import accepted; every note observed."""
    tid = world.tenant.id
    problems = [
        f"{tid}: {len(codes)} credit notes for {ref}: {codes}"
        for ref, codes in sorted(seen.notes_by_ref.items())
        if len(codes) > 1
    ]
    problems += [f"{tid}: Khaos rejected our import {r}" for r in world.khaos.rejections]
    problems += [
        f"{tid}: credit note {code} ({note.associated_ref}) never observed"
        for code, note in sorted(world.khaos.notes.items())
        if code not in seen.observed
    ]
    return problems


def _check_gateway(world: TenantTruth, seen: _Seen) -> list[str]:
    """At most one refund per return; each names a credit note Khaos raised for it."""
    tid = world.tenant.id
    code = world.tenant.zigzag.retailer_code
    problems = []
    for ret_ref, refunds in sorted(seen.refunds_by_return.items()):
        if len(refunds) > 1:
            refs = [f"{r.refund_ref}={r.amount.amount}" for r in refunds]
            problems.append(f"{tid}: {len(refunds)} refunds for return {ret_ref}: {refs}")
        for refund in refunds:
            note_code = refund.metadata.get("credit_note", "")
            note = world.khaos.notes.get(note_code)
            if note is None or note.associated_ref != associated_ref(code, ret_ref):
                problems.append(
                    f"{tid}: refund {refund.refund_ref} of {ret_ref} names credit note "
                    f"{note_code!r}, which Khaos did not raise for that return"
                )
            if refund.metadata.get("tenant") != tid:
                problems.append(f"{tid}: refund {refund.refund_ref} carries another tenant")
    return problems


def _check_return(
    conn: Connection, world: TenantTruth, seen: _Seen, ref: str, stats: Counter[str]
) -> list[str]:
    """Where a return ended up, given where ZigZag says it is."""
    tid = world.tenant.id
    zz = world.zigzag.returns[ref]
    row = seen.ours.get(ref)
    if row is None:
        return [f"{tid}: ZigZag return {ref} ({zz.status}) never reached returnsync"]
    state = ReturnState(row["state"])
    excuses = seen.blocking.get(ref, []) + _dead_push_excuses(conn, tid, row["associated_ref"])
    problems = _check_excuses(world, ref, row, excuses)
    if zz.status in {"Cancelled", "Rejected"}:
        stats["cancelled"] += 1
        if state is not ReturnState.CANCELLED:
            problems.append(f"{tid}: {ref} is {zz.status} in ZigZag but {state} here")
        return problems
    if not zz.processed:
        return [*problems, f"{tid}: {ref} still {zz.status} in ZigZag after the drain"]
    if not zz.creditable:
        stats["nothing_to_credit"] += 1
        if state is not ReturnState.NOTHING_TO_CREDIT:
            problems.append(f"{tid}: {ref} had nothing to credit but is {state}")
        return problems
    if state is ReturnState.NOTHING_TO_CREDIT:
        problems.append(f"{tid}: {ref} has creditable units but is nothing_to_credit")
    elif state is ReturnState.CLOSED:
        stats["closed"] += 1
        problems += _check_zigzag_told(world, ref, row, seen.refunds_by_return.get(ref, []))
    elif excuses:
        stats[f"stopped:{excuses[0]}"] += 1
    else:
        problems.append(
            f"{tid}: {ref} is {state} (ZigZag {zz.status}) with no exception to explain it"
        )
    problems += _check_money(
        world,
        row,
        stats,
        refunds=seen.refunds_by_return.get(ref, []),
        goodwill=seen.goodwill.get(ref, []),
        note_codes=seen.notes_by_ref.get(row["associated_ref"], []),
    )
    return problems + _check_audit(conn, tid, ref)


def _check_forged(conn: Connection, world: TenantTruth, seen: _Seen) -> list[str]:
    """A webhook without the tenant's key is never stored and creates nothing."""
    tid = world.tenant.id
    problems = [
        f"{tid}: forged webhook for {f} created a return" for f in world.forged if f in seen.ours
    ]
    stored = [p for (p,) in conn.execute(select(inbox.c.payload).where(inbox.c.tenant == tid))]
    problems += [
        f"{tid}: forged webhook for {f} was stored"
        for f in world.forged
        if any(f'"{f}"' in payload for payload in stored)
    ]
    return problems


def _check_dead_job_exceptions(conn: Connection) -> list[str]:
    """An open job_dead exception names a job that is dead (not one another worker finished)."""
    rows = conn.execute(
        select(exceptions.c.tenant, exceptions.c.detail).where(
            exceptions.c.kind == "job_dead", exceptions.c.status == "open"
        )
    ).all()
    problems = []
    for tenant, detail in rows:
        job_id = int(detail["job_id"])
        status = conn.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar()
        if status != "dead":
            problems.append(
                f"{tenant}: open job_dead exception for job {job_id}, which is {status}"
            )
    return problems


def _blocking_exceptions(conn: Connection, tid: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    rows = conn.execute(
        select(exceptions.c.kind, exceptions.c.return_ref, exceptions.c.subject).where(
            exceptions.c.tenant == tid, exceptions.c.status == "open"
        )
    )
    for kind, ret_ref, subject in rows:
        if kind in BLOCKING or (kind == "amount_mismatch" and subject.startswith("refund:")):
            found[ret_ref].append(kind)
    return found


def _dead_push_excuses(conn: Connection, tid: str, assoc: str) -> list[str]:
    """A dead khaos_push job whose stored push names this return blocks it (job_dead, open)."""
    dead = conn.execute(
        select(jobs.c.payload).where(
            jobs.c.tenant == tid, jobs.c.kind == "khaos_push", jobs.c.status == "dead"
        )
    ).all()
    for (payload,) in dead:
        message = conn.execute(
            select(inbox.c.payload).where(inbox.c.id == int(payload["inbox_id"]))
        ).scalar()
        if message and f'"{assoc}"' in message:
            return ["job_dead"]
    return []


def _goodwill_claims(conn: Connection, tid: str) -> dict[str, list[tuple[str, Decimal]]]:
    claims: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    rows = conn.execute(
        select(effects.c.effect_key, effects.c.return_ref, effects.c.detail).where(
            effects.c.tenant == tid, effects.c.kind == "goodwill"
        )
    )
    for key, ret_ref, detail in rows:
        claims[ret_ref].append((key.rsplit(":", 1)[-1], Decimal(str(detail["amount"]))))
    return claims


def _check_excuses(
    world: TenantTruth, ref: str, row: dict[str, Any], excuses: list[str]
) -> list[str]:
    """An exception that stops a return must be true of the world."""
    problems = []
    tid = world.tenant.id
    if "payment_not_found" in excuses and world.gateway.find_payment(row["order_ref"]):
        problems.append(f"{tid}: {ref} payment_not_found, but order {row['order_ref']} is paid")
    if "sku_unmatched" in excuses:
        skus = {item.sku.strip().casefold() for item in world.zigzag.returns[ref].items}
        if skus <= world.catalogue_pushed:
            problems.append(
                f"{tid}: {ref} held on sku_unmatched, but every SKU is in the catalogue"
            )
    return problems


def _check_money(
    world: TenantTruth,
    row: dict[str, Any],
    stats: Counter[str],
    *,
    refunds: list[GatewayRefund],
    goodwill: list[tuple[str, Decimal]],
    note_codes: list[str],
) -> list[str]:
    """Refunded + adopted goodwill == credit gross (a capped rounding penny per line aside)."""
    tid = world.tenant.id
    ref = row["return_ref"]
    state = ReturnState(row["state"])
    if not refunds and state not in {ReturnState.REFUNDED, ReturnState.CLOSED}:
        return []
    if not note_codes:
        return [f"{tid}: {ref} refunded ({state}) without a credit note in Khaos"]
    note = world.khaos.notes[note_codes[0]]
    paid = sum((r.amount.amount for r in refunds), Decimal(0))
    adopted = sum((amount for _, amount in goodwill), Decimal(0))
    if goodwill:
        stats["money:goodwill_adopted"] += 1
    if not refunds:
        stats["money:covered_by_goodwill"] += 1
        if adopted < note.gross:
            return [f"{tid}: {ref} is {state} with no refund and goodwill {adopted} < {note.gross}"]
        return []
    gap = note.gross - (paid + adopted)
    if gap == 0:
        return []
    tolerance = Decimal(world.tenant.refund_tolerance) * max(1, len(note.lines))
    payment = world.gateway.find_payment(row["order_ref"])
    left = Decimal(-1)
    if payment is not None:
        spent = sum(
            (
                r.amount.amount
                for r in world.gateway.refunds
                if r.payment_ref == payment.payment_ref and r.status in LIVE
            ),
            Decimal(0),
        )
        left = payment.amount.amount - spent
    if 0 < gap <= tolerance and left == 0:
        stats["money:capped_at_payment"] += 1
        return []  # capped at what was left on the payment: rounding pennies
    return [
        (
            f"{tid}: {ref} credit {note.gross} but refunded {paid} + goodwill {adopted} "
            f"(gap {gap}, {left} left on the payment)"
        )
    ]


def _check_zigzag_told(
    world: TenantTruth, ref: str, row: dict[str, Any], refunds: list[GatewayRefund]
) -> list[str]:
    tid = world.tenant.id
    told = world.zigzag.returns[ref].refund
    if told is None:
        return [f"{tid}: {ref} is closed but ZigZag was never told of a refund"]
    problems = []
    if told["refundReference"] != row["refund_ref"]:
        problems.append(
            f"{tid}: ZigZag holds refund {told['refundReference']} for {ref}, we hold "
            f"{row['refund_ref']}"
        )
    if refunds and told["refundReference"] != refunds[0].refund_ref:
        problems.append(
            f"{tid}: ZigZag told {told['refundReference']} for {ref}, "
            f"the gateway paid {refunds[0].refund_ref}"
        )
    if told["creditNoteNumber"] != row["credit_note"]:
        problems.append(f"{tid}: ZigZag told credit note {told['creditNoteNumber']} for {ref}")
    return problems


def _check_audit(conn: Connection, tid: str, ref: str) -> list[str]:
    """The timeline never moves a return backwards, and no refund precedes its credit note."""
    rows = conn.execute(
        select(audit_log.c.action, audit_log.c.detail)
        .where(audit_log.c.tenant == tid, audit_log.c.return_ref == ref)
        .order_by(audit_log.c.id)
    ).all()
    problems = []
    rank = -1
    last: ReturnState | None = None
    seen_note = False
    for action, detail in rows:
        if action == "credit_note_observed":
            seen_note = True
        if action in REFUND_ACTIONS and not seen_note:
            problems.append(f"{tid}: {ref} audit shows {action} before credit_note_observed")
        state = ACTION_STATE.get(action)
        if action == "snapshot_applied":
            state = ReturnState(detail["state"])
        if state is None:
            continue
        if RANK[state] < rank:
            problems.append(f"{tid}: {ref} audit moves backwards {last} -> {state} ({action})")
        rank = max(rank, RANK[state])
        last = state
    return problems
