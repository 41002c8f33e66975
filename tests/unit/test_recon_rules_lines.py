"""Line-level rules: receipt against credit, partial returns, SKUs and stock."""

from __future__ import annotations

from decimal import Decimal

from returnsync.recon import rules
from returnsync.recon.builders import clean_return, credit, line, move, refund, snapshot
from returnsync.recon.findings import FindingKind, Owner, Severity
from returnsync.recon.policy import ReconPolicy, TenantPolicy
from returnsync.recon.snapshot import SkuLink

K = FindingKind


def kinds(*records, policy=None, **options):
    """The (kind, line_id) of every finding over the records, in report order."""
    found = rules.reconcile(snapshot(*records, **options), policy or ReconPolicy())
    return [(f.kind, f.line_id) for f in found]


def only(*records, policy=None, **options):
    """The single finding over the records."""
    found = rules.reconcile(snapshot(*records, **options), policy or ReconPolicy())
    assert len(found) == 1, found
    return found[0]


def test_a_clean_return_has_no_findings():
    """Received, credited, restocked and refunded exactly: nothing to report."""
    assert kinds(*clean_return("R1", ("SKU-1", 2, "20.00"), ("SKU-2", 1, "5.99"))) == []


def test_received_not_credited_fires_after_the_sla():
    """A received line with no credit 49 hours on is reported, with what is owed."""
    records = [
        line("R1", "SKU-1", received_hours_ago=49),
        line("R1", "SKU-2", received_hours_ago=49),
        credit("CN1", "R1", "SKU-1"),
        move("R1", "SKU-1"),
        move("R1", "SKU-2"),
        refund(amount="10.00"),
    ]
    finding = only(*records)
    assert (finding.kind, finding.line_id, finding.amount) == (
        K.RECEIVED_NOT_CREDITED,
        "R1-SKU-2",
        Decimal("10.00"),
    )
    assert (finding.owner, finding.severity) == (Owner.OPERATIONS, Severity.HIGH)
    assert finding.evidence["received_quantity"] == "1"


def test_received_not_credited_waits_for_the_sla():
    """47 hours after receipt the line is still inside the 48-hour SLA."""
    records = [line("R1", "SKU-1"), line("R1", "SKU-2", received_hours_ago=47)]
    records += [credit("CN1", "R1", "SKU-1"), move("R1", "SKU-1"), move("R1", "SKU-2"), refund()]
    assert kinds(*records) == []


def test_the_sla_is_per_tenant():
    """A tenant with a 24-hour SLA is late where the default one is not."""
    records = [line("R1", "SKU-1"), line("R1", "SKU-2", received_hours_ago=30)]
    records += [credit("CN1", "R1", "SKU-1"), move("R1", "SKU-1"), move("R1", "SKU-2"), refund()]
    strict = ReconPolicy(tenants={"acme": TenantPolicy(received_to_credited_hours=24)})
    assert kinds(*records) == []
    assert only(*records, policy=strict).kind is K.RECEIVED_NOT_CREDITED


def test_a_partial_return_credited_as_received_is_clean():
    """Three units on the return, two received and two credited: a partial return, no gap."""
    records = [
        line("R1", "SKU-1", 3, "20.00", received=2),
        credit("CN1", "R1", "SKU-1", 2, "20.00"),
        move("R1", "SKU-1", 2),
        refund(amount="20.00"),
    ]
    assert kinds(*records) == []


def test_a_partial_return_credited_in_full_is_a_quantity_mismatch():
    """Two of three units received but three credited: credited differs from received."""
    records = [
        line("R1", "SKU-1", 3, "20.00", received=2),
        credit("CN1", "R1", "SKU-1", 3, "30.00"),
        move("R1", "SKU-1", 2),
        refund(amount="30.00"),
    ]
    finding = only(*records)
    assert finding.kind is K.QUANTITY_MISMATCH
    assert (finding.evidence["received_quantity"], finding.evidence["credited_quantity"]) == (
        "2",
        "3",
    )
    assert finding.amount == Decimal("10.00")


def test_crediting_more_than_the_line_is_an_over_credit():
    """Two units credited against a one-unit line: critical, finance."""
    records = [line(), credit(quantity=2, gross="20.00"), move(), refund(amount="20.00")]
    finding = only(*records)
    assert (finding.kind, finding.severity, finding.owner) == (
        K.OVER_CREDIT,
        Severity.CRITICAL,
        Owner.FINANCE,
    )
    assert finding.amount == Decimal("10.00")


def test_a_credit_for_a_stock_code_not_on_the_return_is_an_over_credit():
    """A credit line for an item the customer never returned is credited above any line."""
    records = [line(), credit(), credit("CN1", "R1", "SKU-9", 1, "4.00"), move()]
    finding = only(*records, refund(amount="14.00"))
    assert (finding.kind, finding.line_id) == (K.OVER_CREDIT, None)
    assert finding.evidence["unmatched_stock_codes"] == "SKU-9"


def test_a_penny_off_on_a_line_is_a_rounding_difference():
    """Credited 9.99 against 10.00 owed: within the 0.01 tolerance, informational."""
    records = [line(), credit(gross="9.99"), move(), refund(amount="9.99")]
    finding = only(*records)
    assert (finding.kind, finding.severity, finding.amount) == (
        K.ROUNDING_DIFFERENCE,
        Severity.INFO,
        Decimal("0.01"),
    )


def test_two_pence_off_on_a_line_is_an_amount_mismatch():
    """Credited 9.98 against 10.00 owed: beyond the tolerance."""
    records = [line(), credit(gross="9.98"), move(), refund(amount="9.98")]
    assert kinds(*records) == [(K.AMOUNT_MISMATCH, "R1-SKU-1")]


def test_the_tolerance_is_a_policy():
    """With a 0.05 tolerance two pence off is rounding, not a mismatch."""
    records = [line(), credit(gross="9.98"), move(), refund(amount="9.98")]
    loose = ReconPolicy(default=TenantPolicy(rounding_tolerance=Decimal("0.05")))
    assert only(*records, policy=loose).kind is K.ROUNDING_DIFFERENCE


def test_an_unmapped_sku_is_reported_and_nothing_else_about_its_line():
    """A SKU missing from the map holds the line: sku_unmatched, not received_not_credited."""
    links = [SkuLink(tenant="acme", sku="SKU-1", stock_code="SC1")]
    records = [line("R1", "SKU-1"), line("R1", "SKU-X"), credit(stock_code="SC1")]
    records += [move("R1", "SC1"), refund()]
    finding = only(*records, sku_links=links)
    assert (finding.kind, finding.line_id, finding.owner) == (
        K.SKU_UNMATCHED,
        "R1-SKU-X",
        Owner.OPERATIONS,
    )


def test_a_sku_mapped_to_two_stock_codes_is_unmatched_with_its_candidates():
    """An ambiguous SKU is never guessed: unmatched, and the candidates are evidence."""
    links = [
        SkuLink(tenant="acme", sku="SKU-1", stock_code="SC1"),
        SkuLink(tenant="acme", sku="sku-1 ", stock_code="SC2"),
    ]
    finding = only(line(), sku_links=links)
    assert finding.kind is K.SKU_UNMATCHED
    assert finding.evidence["sku_candidates"] == "SC1,SC2"


def test_skus_and_stock_codes_match_trimmed_and_case_blind():
    """`sku-1` on the return, ` SC1 ` in the map and `sc1` on the credit all match."""
    links = [SkuLink(tenant="acme", sku="SKU-1", stock_code=" SC1 ")]
    records = [line("R1", "sku-1"), credit(stock_code="sc1"), move("R1", "Sc1"), refund()]
    assert kinds(*records, sku_links=links) == []


def test_refunded_but_not_restocked_after_the_sla():
    """Refunded 25 hours ago and the resaleable unit is still not back at a saleable site."""
    records = [line(), credit(), refund(created_hours_ago=25)]
    finding = only(*records)
    assert (finding.kind, finding.owner) == (K.REFUNDED_NOT_RESTOCKED, Owner.OPERATIONS)
    assert finding.evidence["restock_quantity"] == "1"


def test_refunded_not_restocked_waits_for_the_sla():
    """Refunded 23 hours ago: stock updates reach Khaos in batches, so not yet."""
    assert kinds(line(), credit(), refund(created_hours_ago=23)) == []


def test_a_written_off_unit_back_at_a_saleable_site_is_restocked_damaged():
    """WRITE_OFF must never reach MAIN; moving it to QUAR is fine."""
    written_off = [line(disposition="WRITE_OFF"), credit(), refund()]
    assert kinds(*written_off, move()) == [(K.RESTOCKED_DAMAGED, "R1-SKU-1")]
    assert kinds(*written_off, move(site="QUAR")) == []


def test_resale_hold_goes_to_a_hold_site_not_a_saleable_one():
    """RESALE_HOLD stock at HOLD is right; at MAIN it is the error."""
    held = [line(disposition="RESALE_HOLD"), credit(), refund()]
    assert kinds(*held, move(site="HOLD")) == []
    assert kinds(*held, move(site="MAIN")) == [(K.RESTOCKED_DAMAGED, "R1-SKU-1")]


def test_a_restock_reversed_by_a_write_off_adjustment_nets_to_zero():
    """Moved to MAIN then adjusted out again for the return: nothing saleable remains."""
    records = [line(disposition="WRITE_OFF"), credit(), refund(), move(), move(quantity=-1)]
    assert kinds(*records) == []


def test_saleable_sites_are_per_tenant():
    """OUTLET is saleable for acme when its policy says so."""
    records = [line(disposition="WRITE_OFF"), credit(), refund(), move(site="OUTLET")]
    outlet = ReconPolicy(
        tenants={"acme": TenantPolicy(saleable_sites=frozenset({"MAIN", "OUTLET"}))}
    )
    assert kinds(*records) == []
    assert only(*records, policy=outlet).kind is K.RESTOCKED_DAMAGED
