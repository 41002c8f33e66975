"""Return-level money rules: credit notes against refunds, goodwill, duplicates, rounding."""

from __future__ import annotations

from decimal import Decimal

from returnsync.recon import rules
from returnsync.recon.builders import credit, line, move, refund, snapshot
from returnsync.recon.findings import FindingKind, Owner, Severity
from returnsync.recon.policy import ReconPolicy

K = FindingKind


def findings(*records):
    """Every finding over the records under the default policy."""
    return rules.reconcile(snapshot(*records), ReconPolicy())


def received_and_credited(amount="10.00", issued_hours_ago=90):
    """One resaleable unit received, restocked and credited; no refund yet."""
    return [
        line(amount=amount),
        credit(gross=amount, issued_hours_ago=issued_hours_ago),
        move(),
    ]


def test_a_credit_note_not_refunded_after_the_sla():
    """Credited 90 hours ago and never refunded: finance refunds it."""
    (finding,) = findings(*received_and_credited())
    assert (finding.kind, finding.owner, finding.amount) == (
        K.CREDIT_NOTE_WITHOUT_REFUND,
        Owner.FINANCE,
        Decimal("10.00"),
    )
    assert finding.evidence["credit_notes"] == "CN1"


def test_a_credit_note_inside_its_refund_sla_is_not_late():
    """Credited 20 hours ago: the refund is not due for another 4 hours."""
    assert findings(*received_and_credited(issued_hours_ago=20)) == []


def test_a_refund_before_its_credit_note_is_reported_at_once():
    """Refunded with no credit note (the rule is credit note first): no SLA applies."""
    records = [line(received_hours_ago=10), move(), refund(credit_note="", created_hours_ago=5)]
    (finding,) = findings(*records)
    assert (finding.kind, finding.line_id, finding.severity) == (
        K.REFUNDED_WITHOUT_CREDIT_NOTE,
        None,
        Severity.HIGH,
    )


def test_goodwill_paid_by_hand_before_the_return_arrived_then_refunded_again():
    """CX refunded by hand before the parcel arrived, then we refunded the credit note too."""
    goodwill = refund("re_manual", "", "", "10.00", created_hours_ago=150)
    records = [*received_and_credited(), refund(), goodwill]
    (finding,) = findings(*records)
    assert (finding.kind, finding.owner, finding.severity) == (
        K.DUPLICATE_REFUND,
        Owner.FINANCE,
        Severity.CRITICAL,
    )
    assert finding.amount == Decimal("10.00")
    assert finding.evidence["goodwill_refunds"] == "re_manual"
    assert finding.evidence["refunds"] == "re_1,re_manual"


def test_goodwill_on_the_order_payment_counts_without_a_refund_of_ours():
    """A manual refund on the order's payment covers the credit note: it was adopted, no gap."""
    goodwill = refund("re_manual", "", "", "10.00", payment_ref="ORD-R1", created_hours_ago=150)
    assert findings(*received_and_credited(), goodwill) == []


def test_goodwill_plus_our_refund_of_the_remainder_is_not_a_duplicate():
    """CX paid 4.00 by hand; we refunded the other 6.00: the credit note is refunded once."""
    goodwill = refund("re_manual", "", "", "4.00", created_hours_ago=150)
    assert findings(*received_and_credited(), refund(amount="6.00"), goodwill) == []


def test_a_manual_refund_on_a_payment_with_no_return_belongs_to_cx():
    """Goodwill on a payment no return knows: refunded without a credit note, owned by CX."""
    stray = refund("re_manual", "", "", "5.00", payment_ref="pi_other")
    (finding,) = findings(stray)
    assert (finding.kind, finding.line_id, finding.owner, finding.severity) == (
        K.REFUNDED_WITHOUT_CREDIT_NOTE,
        "re_manual",
        Owner.CX,
        Severity.MEDIUM,
    )


def test_the_same_credit_note_refunded_twice_is_a_duplicate_refund():
    """Two refunds both naming CN1, each for the full amount."""
    records = [*received_and_credited(), refund("re_1"), refund("re_2")]
    assert [f.kind for f in findings(*records)] == [K.DUPLICATE_REFUND]


def test_a_refund_too_large_is_an_amount_mismatch():
    """One refund of 15.00 against a 10.00 credit note."""
    (finding,) = findings(*received_and_credited(), refund(amount="15.00"))
    assert (finding.kind, finding.line_id, finding.amount) == (
        K.AMOUNT_MISMATCH,
        None,
        Decimal("5.00"),
    )


def test_rounding_within_tolerance_is_one_penny_per_credit_line():
    """Two credit lines: a refund 2p short is rounding, 3p short is a mismatch."""
    records = [
        line("R1", "SKU-1"),
        line("R1", "SKU-2"),
        credit("CN1", "R1", "SKU-1"),
        credit("CN1", "R1", "SKU-2"),
        move("R1", "SKU-1"),
        move("R1", "SKU-2"),
    ]
    (within,) = findings(*records, refund(amount="19.98"))
    assert (within.kind, within.amount) == (K.ROUNDING_DIFFERENCE, Decimal("0.02"))
    (beyond,) = findings(*records, refund(amount="19.97"))
    assert (beyond.kind, beyond.amount) == (K.AMOUNT_MISMATCH, Decimal("0.03"))


def test_a_short_refund_waits_for_the_latest_credit_note():
    """A second partial credit note 5 hours old is not refunded yet: not a mismatch yet."""
    records = [
        line("R1", "SKU-1"),
        line("R1", "SKU-2"),
        credit("CN1", "R1", "SKU-1"),
        credit("CN2", "R1", "SKU-2", issued_hours_ago=5),
        move("R1", "SKU-1"),
        move("R1", "SKU-2"),
        refund(),
    ]
    assert findings(*records) == []
    records[3] = credit("CN2", "R1", "SKU-2", issued_hours_ago=30)
    assert [f.kind for f in findings(*records)] == [K.AMOUNT_MISMATCH]


def test_partial_credits_refunded_one_by_one_are_clean():
    """Two credit notes for two lines, each refunded separately: nothing to report."""
    records = [
        line("R1", "SKU-1"),
        line("R1", "SKU-2"),
        credit("CN1", "R1", "SKU-1"),
        credit("CN2", "R1", "SKU-2"),
        move("R1", "SKU-1"),
        move("R1", "SKU-2"),
        refund("re_1", "R1", "CN1"),
        refund("re_2", "R1", "CN2"),
    ]
    assert findings(*records) == []


def test_failed_and_cancelled_refunds_do_not_count():
    """A failed attempt is no refund: the credit note is still unrefunded."""
    records = [*received_and_credited(), refund(status="failed"), refund("re_2", status="canceled")]
    assert [f.kind for f in findings(*records)] == [K.CREDIT_NOTE_WITHOUT_REFUND]


def test_a_pending_refund_counts():
    """A pending refund is money on its way: the credit note is covered."""
    assert findings(*received_and_credited(), refund(status="pending")) == []
