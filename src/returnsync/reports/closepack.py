"""The month-end close pack: what finance signs. Built from stored data only, so the same
database gives the same pack, and its content hash proves a signed pack unchanged.

Sections: totals per system, matched vs unmatched returns, findings by kind and owner,
cut-off items (received in the month, credited after it or not yet: the accrual list),
and ageing of open findings.
"""

from __future__ import annotations

import hashlib
import json
from calendar import monthrange
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from returnsync.storage.tables import credit_notes, effects, findings, return_lines, returns

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

AGE_BUCKETS = ((2, "0-2 days"), (7, "2-7 days"), (30, "7-30 days"), (10**6, "over 30 days"))


@dataclass(kw_only=True)
class ClosePack:
    """The pack's content; `digest` is the SHA-256 of its canonical JSON."""

    tenant: str
    month: str
    period_start: datetime
    period_end: datetime
    totals: dict[str, str]
    matching: dict[str, int]
    findings_by_kind: dict[str, int]
    findings_by_owner: dict[str, int]
    accruals: list[dict[str, str]] = field(default_factory=list)
    ageing: dict[str, int] = field(default_factory=dict)
    returns: list[dict[str, str]] = field(default_factory=list)

    def canonical(self) -> dict[str, Any]:
        """Everything in the pack, JSON-ready, in a stable order (the digest's input)."""
        return {
            "tenant": self.tenant,
            "month": self.month,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "totals": self.totals,
            "matching": self.matching,
            "findings_by_kind": self.findings_by_kind,
            "findings_by_owner": self.findings_by_owner,
            "accruals": self.accruals,
            "ageing": self.ageing,
            "returns": self.returns,
        }

    @property
    def digest(self) -> str:
        """SHA-256 over the canonical JSON: the number finance writes next to its signature."""
        raw = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()


def period(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a `YYYY-MM` month in UTC; ValueError for anything else."""
    try:
        year, mon = (int(p) for p in month.split("-"))
        start = datetime(year, mon, 1, tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"month must look like 2026-10, got {month!r}") from exc
    return start, start + timedelta(days=monthrange(year, mon)[1])


def build(conn: Connection, tenant: str, month: str) -> ClosePack:
    """Assemble the pack for one tenant and month from the database."""
    start, end = period(month)
    rows = [
        dict(r)
        for r in conn.execute(
            select(returns).where(returns.c.tenant == tenant).order_by(returns.c.return_ref)
        ).mappings()
    ]
    received: dict[str, datetime] = {}
    for r in rows:
        when = _received_at(r)
        if when is not None and start <= when < end:
            received[r["return_ref"]] = when
    in_month = [r for r in rows if r["return_ref"] in received]
    notes = {
        n["associated_ref"]: n
        for n in conn.execute(
            select(credit_notes)
            .where(credit_notes.c.tenant == tenant)
            .order_by(credit_notes.c.code)
        ).mappings()
    }
    refunds = {
        e["return_ref"]: e
        for e in conn.execute(
            select(effects).where(
                effects.c.tenant == tenant, effects.c.kind == "refund", effects.c.status == "done"
            )
        ).mappings()
    }
    gross_by_return = _gross(conn, tenant)
    zigzag_total = Decimal("0.00")
    credit_total = Decimal("0.00")
    refund_total = Decimal("0.00")
    matched = unmatched = 0
    accruals: list[dict[str, str]] = []
    listing: list[dict[str, str]] = []
    for row in in_month:
        ref = row["return_ref"]
        note = notes.get(row["associated_ref"])
        credited_in_month = note is not None and note["observed_at"] < end
        refund = refunds.get(ref)
        paid = Decimal(str(refund["detail"].get("amount", "0"))) if refund else Decimal("0.00")
        zigzag_total += gross_by_return.get(ref, Decimal("0.00"))
        if credited_in_month and note is not None:
            credit_total += Decimal(note["gross"])
        if refund is not None and refund["updated_at"] < end:
            refund_total += paid
        if credited_in_month and refund is not None:
            matched += 1
        else:
            unmatched += 1
        if not credited_in_month:
            accruals.append(
                {
                    "return_ref": ref,
                    "received_at": received[ref].isoformat(),
                    "expected": str(gross_by_return.get(ref, Decimal("0.00"))),
                    "credit_note": note["code"] if note else "",
                    "credited_at": note["observed_at"].isoformat() if note else "",
                }
            )
        listing.append(
            {
                "return_ref": ref,
                "state": row["state"],
                "zigzag_gross": str(gross_by_return.get(ref, Decimal("0.00"))),
                "credit_note": note["code"] if note else "",
                "credit_gross": str(note["gross"]) if note else "",
                "refund": row["refund_ref"] or "",
                "refund_amount": str(paid) if refund else "",
            }
        )
    open_findings = [
        dict(f)
        for f in conn.execute(
            select(findings).where(
                findings.c.tenant == tenant,
                findings.c.first_seen < end,
                (findings.c.closed_at.is_(None)) | (findings.c.closed_at >= end),
            )
        ).mappings()
    ]
    ageing: Counter[str] = Counter()
    for f in open_findings:
        days = (end - f["first_seen"]).days
        ageing[next(label for limit, label in AGE_BUCKETS if days < limit)] += 1
    return ClosePack(
        tenant=tenant,
        month=month,
        period_start=start,
        period_end=end,
        totals={
            "zigzag_refunds_owed": str(zigzag_total),
            "khaos_credit_notes": str(credit_total),
            "gateway_refunds": str(refund_total),
            "returns": str(len(in_month)),
        },
        matching={"matched": matched, "unmatched": unmatched},
        findings_by_kind=dict(sorted(Counter(f["kind"] for f in open_findings).items())),
        findings_by_owner=dict(sorted(Counter(f["owner"] for f in open_findings).items())),
        accruals=accruals,
        ageing={label: ageing.get(label, 0) for _, label in AGE_BUCKETS},
        returns=listing,
    )


def _received_at(row: dict[str, Any]) -> datetime | None:
    for entry in (row["snapshot"] or {}).get("statusHistory") or []:
        if entry.get("status") == "Received" and entry.get("at"):
            try:
                return datetime.fromisoformat(str(entry["at"])).astimezone(UTC)
            except ValueError:
                return None
    return (
        row["zigzag_updated_at"]
        if row["zigzag_status"] in {"Processed", "Refunded", "Closed"}
        else None
    )


def _gross(conn: Connection, tenant: str) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for line in conn.execute(
        select(return_lines).where(return_lines.c.tenant == tenant)
    ).mappings():
        if line["disposition"] == "MISSING":
            continue
        out[line["return_ref"]] = out.get(line["return_ref"], Decimal("0.00")) + (
            line["unit_price"] * line["quantity"]
        )
    return out
