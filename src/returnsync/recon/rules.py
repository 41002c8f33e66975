"""The rules: pure decisions from gathered facts to findings.

`reconcile(snapshot, policy)` is gather -> decide for an in-memory snapshot; the
files path (`recon.files`) gathers the same facts with DuckDB and calls the same
`decide_*` functions. Each rule is defined in docs/reconciliation-files.md; the
short version sits next to each check below. Time-based rules fire only once the
tenant's SLA has passed at `as_of` (strictly after).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from returnsync.recon import evidence as ev
from returnsync.recon import gather
from returnsync.recon.findings import Finding, FindingKind

if TYPE_CHECKING:
    from datetime import datetime

    from returnsync.recon.facts import (
        LineFacts,
        OrphanCreditNoteFacts,
        OrphanRefundFacts,
        ReturnFacts,
    )
    from returnsync.recon.policy import ReconPolicy, TenantPolicy
    from returnsync.recon.snapshot import Snapshot

K = FindingKind


def overdue(start: datetime | None, hours: int, as_of: datetime) -> bool:
    """Whether more than `hours` have passed between `start` and `as_of`."""
    return start is not None and as_of - start > timedelta(hours=hours)


def decide_line(facts: LineFacts, policy: TenantPolicy, as_of: datetime) -> list[Finding]:
    """Findings of one match line: SKU, credit against receipt, stock against disposition."""
    if facts.stock_code is None:
        return [ev.line_finding(K.SKU_UNMATCHED, facts, facts.expected_amount)]
    found: list[Finding] = []
    diff = facts.credited_amount - facts.expected_amount
    if not facts.credit_notes:
        # Received, owed money, nothing credited after the SLA. An untraced return is a
        # webhook gap instead (decide_return), not one finding per line.
        if (
            facts.return_traced
            and facts.received_quantity > 0
            and facts.expected_amount > 0
            and overdue(facts.first_received_at, policy.received_to_credited_hours, as_of)
        ):
            found.append(ev.line_finding(K.RECEIVED_NOT_CREDITED, facts, facts.expected_amount))
    elif facts.credited_quantity > facts.quantity:
        found.append(ev.line_finding(K.OVER_CREDIT, facts, abs(diff)))
    elif facts.credited_quantity != facts.received_quantity:
        found.append(ev.line_finding(K.QUANTITY_MISMATCH, facts, abs(diff)))
    elif abs(diff) > policy.rounding_tolerance:
        found.append(ev.line_finding(K.AMOUNT_MISMATCH, facts, abs(diff)))
    elif diff:
        found.append(ev.line_finding(K.ROUNDING_DIFFERENCE, facts, abs(diff)))
    if facts.forbidden_quantity > 0 and facts.saleable_quantity > facts.restock_quantity:
        found.append(ev.line_finding(K.RESTOCKED_DAMAGED, facts, facts.expected_amount))
    elif facts.restock_quantity > facts.saleable_quantity and overdue(
        facts.return_refunded_at, policy.refunded_to_restocked_hours, as_of
    ):
        found.append(ev.line_finding(K.REFUNDED_NOT_RESTOCKED, facts, facts.expected_amount))
    return found


def decide_return(facts: ReturnFacts, policy: TenantPolicy, as_of: datetime) -> list[Finding]:
    """Findings of one return: documents against each other and money against money."""
    found: list[Finding] = []
    # Nothing downstream after the SLA and no SKU holding the return back: the events
    # never reached the pipeline (a missed webhook and a missed poll).
    if (
        not facts.traced
        and not facts.has_unmatched_sku
        and facts.received_quantity > 0
        and facts.expected_amount > 0
        and overdue(facts.first_received_at, policy.received_to_credited_hours, as_of)
    ):
        found.append(ev.return_finding(K.WEBHOOK_GAP, facts, facts.expected_amount))
    if facts.duplicate_credit_notes:
        found.append(ev.return_finding(K.DUPLICATE_CREDIT_NOTE, facts, facts.duplicate_amount))
    if facts.unmatched_stock_codes and not facts.has_unmatched_sku:
        # A credited stock code on no line of the return; while a SKU of the return is
        # unmatched that credit may belong to it, so sku_unmatched speaks first.
        found.append(ev.return_finding(K.OVER_CREDIT, facts, facts.unmatched_amount))
    return found + _money_findings(facts, policy, as_of)


def _money_findings(facts: ReturnFacts, policy: TenantPolicy, as_of: datetime) -> list[Finding]:
    """Credited (effective notes) against refunded (named and goodwill refunds)."""
    found: list[Finding] = []
    credited, refunded = facts.credited_amount, facts.refunded_amount
    tolerance = policy.rounding_tolerance * max(facts.credit_line_count, 1)
    # Two refunds or more that together pay out beyond the credit (or with no credit at
    # all): a goodwill refund plus ours, or the same note refunded twice.
    duplicate = len(facts.refunds) > 1 and (
        not facts.credit_notes or refunded - credited > tolerance
    )
    if duplicate:
        extra = refunded - credited if facts.credit_notes else refunded - facts.first_refund_amount
        found.append(ev.return_finding(K.DUPLICATE_REFUND, facts, extra))
    if not facts.credit_notes:
        if facts.refunds:
            found.append(ev.return_finding(K.REFUNDED_WITHOUT_CREDIT_NOTE, facts, refunded))
    elif not facts.refunds:
        if overdue(facts.first_issued_at, policy.credited_to_refunded_hours, as_of):
            found.append(ev.return_finding(K.CREDIT_NOTE_WITHOUT_REFUND, facts, credited))
    elif not duplicate and refunded != credited:
        diff = refunded - credited
        if abs(diff) <= tolerance:
            found.append(ev.return_finding(K.ROUNDING_DIFFERENCE, facts, abs(diff)))
        elif diff > 0 or overdue(facts.last_issued_at, policy.credited_to_refunded_hours, as_of):
            # Short by more than rounding: wait until the latest note's refund SLA is over.
            found.append(ev.return_finding(K.AMOUNT_MISMATCH, facts, abs(diff)))
    return found


def decide_orphan_credit_note(facts: OrphanCreditNoteFacts) -> list[Finding]:
    """A credit note with no return is always a finding."""
    return [ev.orphan_credit_note_finding(facts)]


def decide_orphan_refund(facts: OrphanRefundFacts) -> list[Finding]:
    """A counted refund with no credit note and no return is always a finding."""
    return [ev.orphan_refund_finding(facts)]


def reconcile(snapshot: Snapshot, policy: ReconPolicy) -> list[Finding]:
    """Every finding over `snapshot` under `policy`, in report order (`Finding.sort_key`)."""
    facts = gather.gather(snapshot, policy)
    found: list[Finding] = []
    for line in facts.lines:
        found += decide_line(line, policy.for_tenant(line.tenant), snapshot.as_of)
    for ret in facts.returns:
        found += decide_return(ret, policy.for_tenant(ret.tenant), snapshot.as_of)
    for note in facts.orphan_credit_notes:
        found += decide_orphan_credit_note(note)
    for refund in facts.orphan_refunds:
        found += decide_orphan_refund(refund)
    return sorted(found, key=lambda finding: finding.sort_key)
