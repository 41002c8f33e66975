"""Document rules and links: orphans, duplicates, webhook gaps, how references resolve."""

from __future__ import annotations

from decimal import Decimal

from returnsync.recon import rules
from returnsync.recon.builders import clean_return, credit, line, move, refund, snapshot
from returnsync.recon.findings import FindingKind, Owner
from returnsync.recon.policy import ReconPolicy, TenantPolicy

K = FindingKind


def findings(*records, policy=None):
    """Every finding over the records."""
    return rules.reconcile(snapshot(*records), policy or ReconPolicy())


def test_a_credit_note_for_an_unknown_return_is_reported_per_note():
    """CN9 names R9, which no returns export holds: its number is the finding's line."""
    (finding,) = findings(credit("CN9", "R9", gross="12.00"))
    assert (finding.kind, finding.return_ref, finding.line_id, finding.amount) == (
        K.CREDIT_NOTE_WITHOUT_RETURN,
        "R9",
        "CN9",
        Decimal("12.00"),
    )
    assert finding.evidence["associated_ref"] == "ZZ-AC1-R9"


def test_a_refund_of_an_orphan_credit_note_rides_with_it():
    """A refund naming only CN9 adds evidence to that note, not a second finding."""
    records = [credit("CN9", "R9"), refund("re_9", "", "CN9")]
    (finding,) = findings(*records)
    assert finding.kind is K.CREDIT_NOTE_WITHOUT_RETURN
    assert finding.evidence["refunds"] == "re_9"


def test_the_plain_return_ref_links_as_well_as_the_zz_form():
    """An associated ref equal to the return ref links like `ZZ-AC1-R1` does."""
    records = [line(), credit(reference="R1"), move(), refund()]
    assert findings(*records) == []


def test_a_zz_ref_of_another_retailer_does_not_link_when_the_code_is_known():
    """With acme's code set to AC1, `ZZ-XX-R1` is someone else's return."""
    records = [line(), credit(reference="ZZ-XX-R1"), move(), refund(credit_note="")]
    coded = ReconPolicy(tenants={"acme": TenantPolicy(retailer_code="AC1")})
    assert K.CREDIT_NOTE_WITHOUT_RETURN in {f.kind for f in findings(*records, policy=coded)}
    assert findings(*records) == []  # no code configured: any ZZ- code is accepted


def test_a_refund_naming_only_the_credit_note_links_through_it():
    """Refund metadata with no return ref still finds the return via its credit note."""
    records = [line(), credit(), move(), refund(return_ref="")]
    assert findings(*records) == []


def test_a_refund_for_an_unknown_return_and_no_credit_note_is_an_orphan():
    """Refund metadata naming R9 (unknown), no credit note: finance, keyed by refund id."""
    (finding,) = findings(refund("re_9", "R9", "", "7.00"))
    assert (finding.kind, finding.return_ref, finding.line_id, finding.owner) == (
        K.REFUNDED_WITHOUT_CREDIT_NOTE,
        "R9",
        "re_9",
        Owner.FINANCE,
    )


def test_a_repeated_credit_note_is_a_duplicate():
    """CN2 repeats CN1 line for line: the later one is the duplicate, and only it."""
    records = [*clean_return("R1", ("SKU-1", 1, "10.00"))]
    records.append(credit("CN-R2", "R1", "SKU-1", issued_hours_ago=80))
    (finding,) = findings(*records)
    assert (finding.kind, finding.amount) == (K.DUPLICATE_CREDIT_NOTE, Decimal("10.00"))
    assert finding.evidence["duplicate_credit_notes"] == "CN-R2"
    assert finding.evidence["credit_notes"] == "CN-R1"


def test_two_notes_for_different_lines_are_not_duplicates():
    """Partial credits (one note per line) are not a duplicate."""
    records = [
        *clean_return("R1", ("SKU-1", 1, "10.00")),
        line("R1", "SKU-2", amount="10.00"),
        credit("CN-B", "R1", "SKU-2"),
        move("R1", "SKU-2"),
        refund("re-B", "R1", "CN-B", payment_ref="pi_R1"),
    ]
    assert findings(*records) == []


def test_a_return_nothing_downstream_knows_is_a_webhook_gap():
    """Received 60 hours ago, owed money, and no credit, stock move or refund names it."""
    (finding,) = findings(line("R1", "SKU-1", 2, "30.00", received_hours_ago=60))
    assert (finding.kind, finding.line_id, finding.owner, finding.amount) == (
        K.WEBHOOK_GAP,
        None,
        Owner.INTEGRATION,
        Decimal("30.00"),
    )


def test_a_webhook_gap_waits_for_the_credit_sla():
    """Received 40 hours ago: Khaos may not have pulled it yet."""
    assert findings(line(received_hours_ago=40)) == []


def test_nothing_owed_and_nothing_downstream_is_no_gap():
    """A missing item (received nothing, owed nothing) needs no credit note."""
    assert findings(line(disposition="MISSING", amount="0.00", received=0)) == []


def test_a_stock_move_alone_is_a_trace_so_lines_are_received_not_credited():
    """Khaos moved the stock but raised no credit: operations, per line, not a webhook gap."""
    records = [line(received_hours_ago=60), move()]
    assert [(f.kind, f.line_id) for f in findings(*records)] == [
        (K.RECEIVED_NOT_CREDITED, "R1-SKU-1")
    ]


def test_findings_come_in_report_order_with_stable_keys():
    """Sorted by tenant, return, line (return-level first), kind; the key is stable."""
    records = [line("R2", received_hours_ago=60), credit("CN9", "R1")]
    found = findings(*records)
    assert [f.sort_key for f in found] == sorted(f.sort_key for f in found)
    assert found[0].key == ("acme", K.CREDIT_NOTE_WITHOUT_RETURN, "R1", "CN9")
