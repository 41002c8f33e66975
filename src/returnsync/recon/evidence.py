"""Turning facts into findings: severity, owner, suggested action and evidence per kind.

Evidence values are strings so a finding prints, serialises and compares the same
whichever gatherer produced it: money to the penny, times as ISO 8601 UTC with `Z`,
document numbers comma-joined in sorted order. Empty values are left out.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from returnsync.recon.findings import Finding, FindingKind, Owner, Severity

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from returnsync.recon.facts import (
        LineFacts,
        OrphanCreditNoteFacts,
        OrphanRefundFacts,
        ReturnFacts,
    )

PENNY = Decimal("0.01")
K = FindingKind


class Profile(NamedTuple):
    """Who works a kind, how urgent it is, and what to do."""

    severity: Severity
    owner: Owner
    action: str


PROFILES: dict[FindingKind, Profile] = {
    K.RECEIVED_NOT_CREDITED: Profile(
        Severity.HIGH,
        Owner.OPERATIONS,
        "Process the Khaos return for this line so its credit note is raised.",
    ),
    K.CREDIT_NOTE_WITHOUT_REFUND: Profile(
        Severity.HIGH,
        Owner.FINANCE,
        "Refund the credit note at the gateway, after checking the payment for a manual refund.",
    ),
    K.REFUNDED_WITHOUT_CREDIT_NOTE: Profile(
        Severity.HIGH,
        Owner.FINANCE,
        "Raise the credit note for this refund in Khaos Control, or reverse it if paid in error.",
    ),
    K.CREDIT_NOTE_WITHOUT_RETURN: Profile(
        Severity.MEDIUM,
        Owner.FINANCE,
        "Find the return this credit note belongs to and fix its associated ref, or cancel it.",
    ),
    K.REFUNDED_NOT_RESTOCKED: Profile(
        Severity.MEDIUM,
        Owner.OPERATIONS,
        "Book the returned units back into stock at a saleable site in Khaos Control.",
    ),
    K.RESTOCKED_DAMAGED: Profile(
        Severity.HIGH,
        Owner.OPERATIONS,
        "Move the units out of the saleable site (write off or quarantine) before they sell.",
    ),
    K.DUPLICATE_CREDIT_NOTE: Profile(
        Severity.HIGH,
        Owner.FINANCE,
        "Cancel the duplicate credit note in Khaos Control before it is refunded.",
    ),
    K.DUPLICATE_REFUND: Profile(
        Severity.CRITICAL,
        Owner.FINANCE,
        "Recover the extra refund, or record it as goodwill against a credit note.",
    ),
    K.AMOUNT_MISMATCH: Profile(
        Severity.HIGH,
        Owner.FINANCE,
        "Compare the return, credit note and refund amounts and correct the wrong one.",
    ),
    K.ROUNDING_DIFFERENCE: Profile(
        Severity.INFO,
        Owner.FINANCE,
        "Nothing to fix: a VAT rounding difference within tolerance, kept for the close pack.",
    ),
    K.QUANTITY_MISMATCH: Profile(
        Severity.MEDIUM,
        Owner.OPERATIONS,
        "Recount the received units and correct the credit note or the receipt.",
    ),
    K.OVER_CREDIT: Profile(
        Severity.CRITICAL,
        Owner.FINANCE,
        "Reverse the part of the credit above the returned line.",
    ),
    K.SKU_UNMATCHED: Profile(
        Severity.HIGH,
        Owner.OPERATIONS,
        "Map the SKU to a Khaos stock code; the held return replays once it matches.",
    ),
    K.WEBHOOK_GAP: Profile(
        Severity.HIGH,
        Owner.INTEGRATION,
        "The return never reached Khaos Control: replay it and check the webhook deliveries.",
    ),
}
GOODWILL = Profile(
    Severity.MEDIUM,
    Owner.CX,
    "A refund made by hand on a payment with no return: raise a credit note for the goodwill.",
)


def money(amount: Decimal) -> str:
    """An amount as evidence: to the penny, e.g. `12.30`."""
    return str(amount.quantize(PENNY))


def when(moment: datetime | None) -> str:
    """A time as evidence: ISO 8601 UTC with `Z`, or empty when unknown."""
    return "" if moment is None else moment.isoformat().replace("+00:00", "Z")


def joined(values: Iterable[str]) -> str:
    """Document numbers as evidence: sorted, comma-joined."""
    return ",".join(sorted(values))


def _clean(evidence: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in evidence.items() if value}


# Evidence kept per line-level kind; "credit_notes" is added to every one.
LINE_KEYS: dict[FindingKind, tuple[str, ...]] = {
    K.SKU_UNMATCHED: ("line_ids", "sku", "sku_candidates", "received_quantity"),
    K.RECEIVED_NOT_CREDITED: ("line_ids", "stock_code", "received_quantity", "received_at"),
    K.OVER_CREDIT: ("line_ids", "stock_code", "quantity", "credited_quantity"),
    K.QUANTITY_MISMATCH: ("line_ids", "stock_code", "received_quantity", "credited_quantity"),
    K.AMOUNT_MISMATCH: ("line_ids", "stock_code", "expected_amount", "credited_amount"),
    K.ROUNDING_DIFFERENCE: ("line_ids", "stock_code", "expected_amount", "credited_amount"),
    K.RESTOCKED_DAMAGED: ("line_ids", "stock_code", "dispositions", "saleable_quantity"),
    K.REFUNDED_NOT_RESTOCKED: ("line_ids", "stock_code", "restock_quantity", "saleable_quantity"),
}


def line_finding(kind: FindingKind, facts: LineFacts, amount: Decimal) -> Finding:
    """A line-level finding of `kind` about one match line."""
    every = {
        "line_ids": joined(facts.line_ids),
        "sku": facts.sku,
        "sku_candidates": joined(facts.sku_candidates),
        "stock_code": facts.stock_code or "",
        "quantity": str(facts.quantity),
        "received_quantity": str(facts.received_quantity),
        "received_at": when(facts.first_received_at),
        "expected_amount": money(facts.expected_amount),
        "credited_quantity": str(facts.credited_quantity),
        "credited_amount": money(facts.credited_amount),
        "credit_notes": joined(facts.credit_notes),
        "dispositions": joined(facts.forbidden_dispositions),
        "restock_quantity": str(facts.restock_quantity),
        "saleable_quantity": str(facts.saleable_quantity),
    }
    profile = PROFILES[kind]
    return Finding(
        kind=kind,
        tenant=facts.tenant,
        return_ref=facts.return_ref,
        line_id=facts.line_id,
        severity=profile.severity,
        owner=profile.owner,
        amount=amount.quantize(PENNY),
        currency=facts.currency,
        evidence=_clean({key: every[key] for key in LINE_KEYS[kind] + ("credit_notes",)}),
        suggested_action=profile.action,
    )


def return_finding(kind: FindingKind, facts: ReturnFacts, amount: Decimal) -> Finding:
    """A return-level finding of `kind` (line_id None)."""
    evidence = {
        "order_ref": facts.order_ref,
        "received_at": when(facts.first_received_at),
        "expected_amount": money(facts.expected_amount),
        "credit_notes": joined(facts.credit_notes),
        "credited_amount": money(facts.credited_amount),
        "duplicate_credit_notes": joined(facts.duplicate_credit_notes),
        "unmatched_stock_codes": joined(facts.unmatched_stock_codes),
        "refunds": joined(facts.refunds),
        "goodwill_refunds": joined(facts.goodwill_refunds),
        "refunded_amount": money(facts.refunded_amount),
    }
    profile = PROFILES[kind]
    return Finding(
        kind=kind,
        tenant=facts.tenant,
        return_ref=facts.return_ref,
        line_id=None,
        severity=profile.severity,
        owner=profile.owner,
        amount=amount.quantize(PENNY),
        currency=facts.currency,
        evidence=_clean(evidence),
        suggested_action=profile.action,
    )


def orphan_credit_note_finding(facts: OrphanCreditNoteFacts) -> Finding:
    """`credit_note_without_return` for one credit note (line_id is the note number)."""
    profile = PROFILES[K.CREDIT_NOTE_WITHOUT_RETURN]
    return Finding(
        kind=K.CREDIT_NOTE_WITHOUT_RETURN,
        tenant=facts.tenant,
        return_ref=facts.return_ref,
        line_id=facts.credit_note,
        severity=profile.severity,
        owner=profile.owner,
        amount=facts.gross.quantize(PENNY),
        currency=facts.currency,
        evidence=_clean(
            {
                "associated_ref": facts.associated_ref,
                "credit_note": facts.credit_note,
                "issued_at": when(facts.issued_at),
                "lines": str(facts.line_count),
                "refunds": joined(facts.refunds),
            }
        ),
        suggested_action=profile.action,
    )


def orphan_refund_finding(facts: OrphanRefundFacts) -> Finding:
    """`refunded_without_credit_note` for a refund linked to nothing (line_id is its id).

    A refund made by hand (no return ref, no credit note) on a payment with no return
    is goodwill: CX owns it, at medium severity.
    """
    manual = not facts.return_ref and not facts.credit_note
    profile = GOODWILL if manual else PROFILES[K.REFUNDED_WITHOUT_CREDIT_NOTE]
    return Finding(
        kind=K.REFUNDED_WITHOUT_CREDIT_NOTE,
        tenant=facts.tenant,
        return_ref=facts.return_ref,
        line_id=facts.refund_id,
        severity=profile.severity,
        owner=profile.owner,
        amount=facts.amount.quantize(PENNY),
        currency=facts.currency,
        evidence=_clean(
            {
                "refund_id": facts.refund_id,
                "payment_ref": facts.payment_ref,
                "credit_note": facts.credit_note,
                "created_at": when(facts.created_at),
            }
        ),
        suggested_action=profile.action,
    )
