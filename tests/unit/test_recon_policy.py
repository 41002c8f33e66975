"""Policy and column-mapping files, and the severity order findings rely on."""

from __future__ import annotations

import tomllib
from decimal import Decimal

import pytest

from returnsync.recon.columns import SCHEMAS, header_mapping
from returnsync.recon.findings import FindingKind, Severity
from returnsync.recon.policy import ReconPolicy, policy_from

POLICY = """
[default]
received_to_credited_hours = 72
rounding_tolerance = "0.02"

[tenants.acme]
retailer_code = "AC1"
saleable_sites = ["main", "OUTLET "]
"""


def test_a_policy_file_sets_defaults_and_per_tenant_overrides():
    """Tenants inherit [default]; site names are compared normalised."""
    policy = policy_from(tomllib.loads(POLICY))
    acme, other = policy.for_tenant("acme"), policy.for_tenant("bolt")
    assert other.received_to_credited_hours == 72
    assert other.rounding_tolerance == Decimal("0.02")
    assert (acme.received_to_credited_hours, acme.retailer_code) == (72, "AC1")
    assert acme.saleable_sites == frozenset({"MAIN", "OUTLET"})
    assert other.saleable_sites == frozenset({"MAIN"})


def test_an_unknown_policy_key_is_an_error():
    """A typo must not silently fall back to a default SLA."""
    with pytest.raises(ValueError, match="received_to_credit_hours"):
        policy_from({"default": {"received_to_credit_hours": 12}})


def test_the_default_policy_matches_the_issue():
    """48 h to credit, 24 h to refund, 0.01 per line; RESALE_HOLD must not reach MAIN."""
    policy = ReconPolicy()
    tenant = policy.for_tenant("anyone")
    assert (tenant.received_to_credited_hours, tenant.credited_to_refunded_hours) == (48, 24)
    assert tenant.rounding_tolerance == Decimal("0.01")
    assert "RESALE_HOLD" in policy.forbidden_dispositions
    assert "RESALEABLE" not in policy.forbidden_dispositions


def test_a_column_mapping_names_export_headers_per_file():
    """`[returns] return_ref = "Return ID"` maps one header; unknown names are errors."""
    assert header_mapping({"returns": {"return_ref": "Return ID"}}) == {
        "returns": {"return_ref": "Return ID"}
    }
    with pytest.raises(ValueError, match="unknown file"):
        header_mapping({"orders": {}})
    with pytest.raises(ValueError, match="colour"):
        header_mapping({"returns": {"colour": "Colour"}})


def test_the_canonical_columns_are_the_documented_ones():
    """The headers the issue fixes, in order."""
    assert SCHEMAS["returns"].columns == (
        "tenant",
        "return_ref",
        "order_ref",
        "line_id",
        "sku",
        "quantity",
        "received_quantity",
        "disposition",
        "refund_amount",
        "currency",
        "status",
        "received_at",
        "processed_at",
    )
    assert ",".join(SCHEMAS["refunds"].columns) == (
        "tenant,refund_id,payment_ref,amount,currency,status,created_at,return_ref,credit_note"
    )


def test_kinds_and_severities_are_the_contract():
    """Exactly the fourteen kind names of the issue; severities ranked info..critical."""
    assert {kind.value for kind in FindingKind} == {
        "received_not_credited",
        "credit_note_without_refund",
        "refunded_without_credit_note",
        "credit_note_without_return",
        "refunded_not_restocked",
        "restocked_damaged",
        "duplicate_credit_note",
        "duplicate_refund",
        "amount_mismatch",
        "rounding_difference",
        "quantity_mismatch",
        "over_credit",
        "sku_unmatched",
        "webhook_gap",
    }
    assert [s.rank for s in Severity] == [0, 1, 2, 3, 4]
