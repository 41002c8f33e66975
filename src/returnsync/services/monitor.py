"""Continuous reconciliation: gather live snapshots, run the rules, apply the findings.

Gather: returns and lines from our confirmed ZigZag snapshots, credit notes as Khaos
pushed them, refunds read live from the gateway (the ground truth). Decide: the pure
rules of `returnsync.recon` plus `webhook_gap` (a state change ZigZag's webhooks never
told us about, seen only by the polling sweep). Apply: open new findings (alerting on
high and critical ones), refresh the ones still true, and close the ones that re-check
green.

Khaos pushes no stock movements, only levels, so the two stock-movement kinds
(`refunded_not_restocked`, `restocked_damaged`) are left to `reconcile-files` with a
stock export; the live monitor does not guess them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update

from returnsync.domain.model import Disposition
from returnsync.domain.sku import SkuIndex
from returnsync.domain.states import ReturnState
from returnsync.recon.findings import Finding, FindingKind, Owner, Severity
from returnsync.recon.policy import ReconPolicy, TenantPolicy
from returnsync.recon.rules import reconcile
from returnsync.recon.snapshot import CreditLine, Refund, ReturnLine, SkuLink, Snapshot
from returnsync.services import alerts, monitor_scope
from returnsync.services.monitor_scope import LAST_FULL_PASS, LAST_PASS, Scope
from returnsync.storage import catalogue, cursors
from returnsync.storage.sql import upsert_many
from returnsync.storage.tables import credit_notes, findings, return_lines, returns

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

    from returnsync.services.context import Context

LIVE_EXCLUDED = frozenset({FindingKind.REFUNDED_NOT_RESTOCKED, FindingKind.RESTOCKED_DAMAGED})
ALERT_FROM = Severity.HIGH
WEBHOOK_GRACE = timedelta(minutes=30)  # normal webhook lag; ZigZag itself retries only daily
PROCESSED = frozenset({"Processed", "Refunded", "Exchanged", "Closed"})
BEFORE_STAGING = frozenset({ReturnState.OPEN.value, ReturnState.READY.value})
# An incremental pass also looks at what changed this long before the last pass started
# (a worker's transaction stamped before that start may commit after it; a job holds no
# transaction across a remote call, so none lasts anywhere near this long).
OVERLAP = timedelta(minutes=2)
_CHUNK = 500  # keys per IN list


@dataclass(frozen=True, slots=True)
class MonitorRun:
    """What one run changed; `scope` is the number of returns it looked at."""

    tenant: str
    found: int
    opened: int
    closed: int
    full: bool = True
    scope: int = 0


def run(
    ctx: Context, tenant_id: str, *, refunds_live: bool = True, full: bool | None = None
) -> MonitorRun:
    """Reconcile one tenant now and record the outcome in the findings table.

    `full=None` (the scheduler) makes a full pass when the last one is older than
    `monitor_full_pass_hours` and an incremental one otherwise (`monitor_scope`);
    True and False force one or the other (an incremental pass with no earlier pass
    is a full one).
    """
    now = ctx.clock.now()
    tenant = ctx.tenant(tenant_id)
    with ctx.db.read() as conn:
        since = _incremental_since(conn, tenant_id, now, ctx.settings.monitor_full_pass_hours, full)
        scope = monitor_scope.choose(
            conn, tenant_id, since=since, retailer_code=tenant.zigzag.retailer_code
        )
    found, snapshot = decide(ctx, tenant_id, now=now, scope=scope, refunds_live=refunds_live)
    documents = frozenset(
        {c.credit_note for c in snapshot.credits} | {r.refund_id for r in snapshot.refunds}
    )
    outcome = apply(ctx, tenant_id, found, now=now, scope=scope, documents=documents)
    with ctx.db.begin() as conn:
        cursors.put(conn, tenant_id, LAST_PASS, now.isoformat(), now)
        if scope.full:
            cursors.put(conn, tenant_id, LAST_FULL_PASS, now.isoformat(), now)
    return replace(outcome, scope=len({line.return_ref for line in snapshot.returns}))


def decide(
    ctx: Context, tenant_id: str, *, now: datetime, scope: Scope, refunds_live: bool = True
) -> tuple[list[Finding], Snapshot]:
    """The findings of one tenant over `scope` at `now` (nothing is recorded), and the
    snapshot they were decided on."""
    tenant = ctx.tenant(tenant_id)
    snapshot, gaps = gather(ctx, tenant_id, now=now, refunds_live=refunds_live, scope=scope)
    policy = ReconPolicy(
        tenants={
            tenant_id: TenantPolicy(
                received_to_credited_hours=round(tenant.sla.received_to_credited_hours),
                credited_to_refunded_hours=round(tenant.sla.credited_to_refunded_hours),
                rounding_tolerance=Decimal(tenant.refund_tolerance),
                retailer_code=tenant.zigzag.retailer_code,
            )
        }
    )
    found = [f for f in reconcile(snapshot, policy) if f.kind not in LIVE_EXCLUDED] + gaps
    return found, snapshot


def _incremental_since(
    conn: Connection, tenant_id: str, now: datetime, full_every_hours: float, full: bool | None
) -> datetime | None:
    """Where an incremental pass starts looking, or None for a full pass."""
    if full:
        return None
    last_full = cursors.get(conn, tenant_id, LAST_FULL_PASS)
    last = cursors.get(conn, tenant_id, LAST_PASS)
    if last_full is None or last is None:
        return None
    if full is None and now - datetime.fromisoformat(last_full) >= timedelta(
        hours=full_every_hours
    ):
        return None
    return datetime.fromisoformat(last) - OVERLAP


def gather(
    ctx: Context,
    tenant_id: str,
    *,
    now: datetime,
    refunds_live: bool = True,
    scope: Scope | None = None,
) -> tuple[Snapshot, list[Finding]]:
    """The live snapshot of one tenant (or of `scope`), plus webhook-gap findings from our
    own records."""
    scope = scope or Scope(full=True)
    with ctx.db.read() as conn:
        rows = _select(conn, returns, tenant_id, None if scope.full else scope.returns)
        lines = _select(conn, return_lines, tenant_id, None if scope.full else scope.returns)
        notes = _select(conn, credit_notes, tenant_id, None if scope.full else scope.notes)
    by_return: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_return.setdefault(line["return_ref"], []).append(line)
    return_lines_out: list[ReturnLine] = []
    links: dict[str, str] = {}
    gaps: list[Finding] = []
    for row in rows:
        return_lines_out += _lines_of(row, by_return.get(row["return_ref"], []))
        for line in by_return.get(row["return_ref"], []):
            if line["stock_code"]:
                links[line["sku"]] = line["stock_code"]
        late = now - row["updated_at"] > WEBHOOK_GRACE
        if row["seen_by_poll"] and not row["seen_by_webhook"] and late:
            gaps.append(_webhook_gap(row))
    links |= _links_before_staging(ctx, tenant_id, rows, by_return, known=links)
    code = ctx.tenant(tenant_id).zigzag.retailer_code
    due = _refunds_due(ctx, tenant_id, rows, notes, now)
    refunds = (
        [r for r in _refunds(ctx, tenant_id, due) if scope.keeps(r, code)] if refunds_live else []
    )
    snapshot = Snapshot(
        as_of=now,
        returns=tuple(return_lines_out),
        credits=tuple(c for note in notes for c in _credit_lines(tenant_id, note)),
        refunds=tuple(refunds),
        sku_links=tuple(SkuLink(tenant=tenant_id, sku=s, stock_code=c) for s, c in links.items()),
    )
    return snapshot, gaps


def _links_before_staging(
    ctx: Context,
    tenant_id: str,
    rows: list[dict[str, Any]],
    by_return: dict[str, list[dict[str, Any]]],
    *,
    known: dict[str, str],
) -> dict[str, str]:
    """SKU -> stock code for the lines of returns staging has not reached yet (open or
    ready: their lines have no stock code stored), resolved as staging will resolve them.
    Without it every return waiting in a backlog would be a `sku_unmatched` finding, and an
    alert, until staged; a SKU that truly resolves to nothing still is one."""
    waiting = {
        line["sku"]
        for row in rows
        if row["state"] in BEFORE_STAGING
        for line in by_return.get(row["return_ref"], [])
        if not line["stock_code"] and line["sku"] not in known
    }
    if not waiting:
        return {}
    with ctx.db.read() as conn:
        index = SkuIndex(catalogue.items(conn, tenant_id), catalogue.mapping(conn, tenant_id))
    found = {sku: index.item(sku) for sku in waiting}
    return {sku: item.stock_code for sku, item in found.items() if item is not None}


def _select(
    conn: Connection, table: Table, tenant_id: str, keys: Iterable[str] | None
) -> list[dict[str, Any]]:
    """Every row of the tenant in `table`, or those whose key (return_ref, or code for
    credit notes) is in `keys`."""
    where = table.c.tenant == tenant_id
    if keys is None:
        return [dict(r) for r in conn.execute(select(table).where(where)).mappings()]
    column = table.c.code if table is credit_notes else table.c.return_ref
    chosen = sorted(keys)
    out: list[dict[str, Any]] = []
    for start in range(0, len(chosen), _CHUNK):
        part = chosen[start : start + _CHUNK]
        stmt = select(table).where(where, column.in_(part))
        out += [dict(r) for r in conn.execute(stmt).mappings()]
    return out


def _lines_of(row: dict[str, Any], lines: list[dict[str, Any]]) -> list[ReturnLine]:
    raw = row["snapshot"] or {}
    history = {h.get("status"): h.get("at") for h in raw.get("statusHistory") or []}
    received_at = _when(history.get("Received"))
    processed_at = row["zigzag_updated_at"] if row["zigzag_status"] in PROCESSED else None
    out = []
    for line in lines:
        missing = line["disposition"] == Disposition.MISSING.value
        out.append(
            ReturnLine(
                tenant=row["tenant"],
                return_ref=row["return_ref"],
                order_ref=row["order_ref"],
                line_id=line["line_id"],
                sku=line["sku"],
                quantity=line["quantity"],
                received_quantity=0 if missing else line["quantity"],
                disposition=line["disposition"],
                refund_amount=Decimal(0) if missing else line["unit_price"] * line["quantity"],
                currency=row["currency"],
                status=row["zigzag_status"],
                received_at=received_at or processed_at,
                processed_at=processed_at,
            )
        )
    return out


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _credit_lines(tenant_id: str, note: dict[str, Any]) -> list[CreditLine]:
    lines = note["lines"] or []
    if not lines:  # a credit note pushed without lines: one line carrying the totals
        lines = [
            {
                "SKU": "",
                "Quantity": 0,
                "Net": note["net"],
                "Tax": note["tax"],
                "Gross": note["gross"],
            }
        ]
    return [
        CreditLine(
            tenant=tenant_id,
            credit_note=note["code"],
            associated_ref=note["associated_ref"],
            order_ref="",
            stock_code=str(line.get("SKU") or line.get("StockCode") or ""),
            quantity=int(Decimal(str(line.get("Quantity") or 0))),
            net=Decimal(str(line.get("Net") or 0)),
            vat=Decimal(str(line.get("Tax") or 0)),
            gross=Decimal(str(line.get("Gross") or 0)),
            currency=note["currency"],
            issued_at=note["observed_at"],
        )
        for line in lines
    ]


def _refunds_due(
    ctx: Context,
    tenant_id: str,
    rows: list[dict[str, Any]],
    notes: list[dict[str, Any]],
    now: datetime,
) -> list[dict[str, Any]]:
    """The returns whose refunds the monitor reads (`_refund_in_hand` says which wait)."""
    first_note: dict[str, datetime] = {}
    for note in notes:
        ref = note["associated_ref"]
        first_note[ref] = min(note["observed_at"], first_note.get(ref, note["observed_at"]))
    window = timedelta(hours=ctx.tenant(tenant_id).sla.credited_to_refunded_hours)
    return [row for row in rows if not _refund_in_hand(row, first_note, now - window)]


def _refund_in_hand(row: dict[str, Any], first_note: dict[str, datetime], since: datetime) -> bool:
    """Whether a return's refund is the saga's business still: credited, no refund recorded,
    and its first credit note (`first_note` by associated ref) observed after `since` (the
    credited-to-refunded SLA ago). Its payment is not read for it: the saga reads it before
    paying and adopts a refund made by hand, and before the SLA no rule can fire on it but
    on refunds the saga is about to make. On a burst this is most credited returns; without
    it every run would read each of their payments."""
    if row["state"] != ReturnState.CREDITED.value or row["refund_ref"]:
        return False
    issued = first_note.get(row["associated_ref"])
    return issued is not None and issued >= since


def _refunds(ctx: Context, tenant_id: str, rows: list[dict[str, Any]]) -> list[Refund]:
    """Every refund on every payment behind a credited return, read from the gateway once
    per payment (an order's returns share it) and once per order still to look up."""
    gateway = ctx.gateway(tenant_id)
    seen: dict[str, Refund] = {}
    payments: dict[str, str | None] = {}  # order_ref -> payment_ref, this run's lookups
    read: set[str] = set()
    for row in rows:
        if not row["credit_note"] and not row["refund_ref"]:
            continue
        payment_ref = row["payment_ref"]
        if not payment_ref:
            if row["order_ref"] not in payments:
                payment = gateway.find_payment(row["order_ref"])
                payments[row["order_ref"]] = payment.payment_ref if payment else None
            payment_ref = payments[row["order_ref"]]
        if payment_ref is None or payment_ref in read:
            continue
        read.add(payment_ref)
        for refund in gateway.refunds_for(payment_ref):
            seen[refund.refund_ref] = Refund(
                tenant=tenant_id,
                refund_id=refund.refund_ref,
                payment_ref=payment_ref,
                amount=refund.amount.amount,
                currency=refund.amount.currency,
                status=refund.status,
                created_at=ctx.clock.now(),
                return_ref=refund.metadata.get("return_ref", ""),
                credit_note=refund.metadata.get("credit_note", ""),
            )
    return list(seen.values())


def _webhook_gap(row: dict[str, Any]) -> Finding:
    return Finding(
        kind=FindingKind.WEBHOOK_GAP,
        tenant=row["tenant"],
        return_ref=row["return_ref"],
        line_id=None,
        severity=Severity.LOW,
        owner=Owner.INTEGRATION,
        amount=None,
        currency=row["currency"],
        evidence={"zigzag_status": row["zigzag_status"], "seen_by": "poll only"},
        suggested_action=(
            "ZigZag's webhooks never told us about this return; check the webhook "
            "subscription and our endpoint's 401/5xx answers in ZigZag's delivery log"
        ),
    )


def apply(
    ctx: Context,
    tenant_id: str,
    found: list[Finding],
    *,
    now: datetime,
    scope: Scope | None = None,
    documents: frozenset[str] = frozenset(),
) -> MonitorRun:
    """Open, refresh and auto-close findings; queue an alert for each new high-severity one
    (sent once this commits, `services.alerts`). Only the
    open findings `scope` covers are closed when no longer found (a full pass: all)."""
    scope = scope or Scope(full=True)
    opened = 0
    with ctx.db.begin() as conn:
        open_rows = {
            (r.kind, r.return_ref, r.line_id): r.id
            for r in conn.execute(
                select(
                    findings.c.id, findings.c.kind, findings.c.return_ref, findings.c.line_id
                ).where(findings.c.tenant == tenant_id, findings.c.status == "open")
            )
        }
        current = set()
        new: list[dict[str, Any]] = []
        refreshed: list[dict[str, Any]] = []
        for finding in found:
            key = (finding.kind.value, finding.return_ref, finding.line_id or "")
            current.add(key)
            if key not in open_rows:
                opened += 1
                if finding.severity.rank >= ALERT_FROM.rank:
                    alerts.queue(
                        conn,
                        tenant=tenant_id,
                        subject=f"{finding.kind.value} on {finding.return_ref or finding.line_id}",
                        body=finding.suggested_action,
                        severity=finding.severity.value,
                        now=now,
                    )
            if key in open_rows:
                refreshed.append({"finding_id": open_rows[key], **_refresh_params(finding, now)})
            else:
                new.append(_values(finding, now) | {"first_seen": now})
        # one statement each for all the new and all the refreshed findings, built once: a
        # pass may refresh thousands, and SQLite's writers wait meanwhile
        upsert_many(conn, findings, new, keys=["tenant", "kind", "return_ref", "line_id"])
        if refreshed:
            conn.execute(_REFRESH, refreshed)
        stale = [
            fid
            for key, fid in open_rows.items()
            if key not in current and scope.covers(key[1], key[2], documents)
        ]
        if stale:
            conn.execute(
                update(findings)
                .where(findings.c.id.in_(stale))
                .values(status="closed", closed_at=now)
            )
    return MonitorRun(
        tenant=tenant_id,
        found=len(found),
        opened=opened,
        closed=len(stale),
        full=scope.full,
    )


def _values(finding: Finding, now: datetime) -> dict[str, Any]:
    """A finding's row, as open and seen `now` (without `first_seen`)."""
    return {
        "tenant": finding.tenant,
        "kind": finding.kind.value,
        "return_ref": finding.return_ref,
        "line_id": finding.line_id or "",
        "severity": finding.severity.value,
        "owner": finding.owner.value,
        "amount": finding.amount,
        "currency": finding.currency,
        "evidence": dict(finding.evidence),
        "suggested_action": finding.suggested_action,
        "status": "open",
        "last_seen": now,
        "closed_at": None,
    }


_REFRESHED = (
    "severity",
    "owner",
    "amount",
    "currency",
    "evidence",
    "suggested_action",
    "status",
    "last_seen",
    "closed_at",
)
_REFRESH = (
    update(findings)
    .where(findings.c.id == bindparam("finding_id"))
    .values({name: bindparam(f"new_{name}", type_=findings.c[name].type) for name in _REFRESHED})
)


def _refresh_params(finding: Finding, now: datetime) -> dict[str, Any]:
    values = _values(finding, now)
    return {f"new_{name}": values[name] for name in _REFRESHED}


def ageing(now: datetime, first_seen: datetime) -> timedelta:
    """How long a finding has been open."""
    return now - first_seen
