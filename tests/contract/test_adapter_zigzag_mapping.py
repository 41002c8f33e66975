"""ZigZag wire -> domain: inspection groups, envelopes, webhook keys (Z-6, Z-8, Z-9, Z-10)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from returnsync.adapters.errors import InvalidPayloadError
from returnsync.adapters.zigzag import mapping, schemas
from returnsync.adapters.zigzag.webhooks import verify_api_key
from returnsync.domain.model import Disposition, StockAction
from returnsync.domain.money import Money

FIXTURES = Path(__file__).parents[1] / "fixtures" / "zigzag"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_the_documented_example_maps_to_one_line_per_inspection_group():
    """Z-6 example: one item inspected in two groups gives two lines, `<item>#1` and `#2`."""
    ret = mapping.to_domain("acme", fixture("return_processed.json"))
    assert ret.tenant == "acme"
    assert ret.return_ref == "R000123"
    assert ret.order_ref == "ORD-10001"
    assert ret.currency == "GBP"
    assert ret.warehouse == "GB0064"
    assert ret.zigzag_status == "Processed"
    assert ret.zigzag_updated_at == datetime(2026, 10, 6, 14, 3, 11, tzinfo=UTC)
    [first, second] = ret.lines
    assert (first.line_id, first.item_id, first.sku) == ("R000123-1#1", "R000123-1", "TSHIRT-BLK-L")
    assert (first.quantity, first.disposition, first.condition) == (
        2,
        Disposition.RESALEABLE,
        "A_NEW",
    )
    assert first.unit_price == Money(Decimal("24.99"), "GBP")
    assert (second.line_id, second.quantity, second.disposition) == (
        "R000123-1#2",
        1,
        Disposition.WRITE_OFF,
    )
    assert ret.expected_refund == Money(Decimal("74.97"), "GBP")


def test_missing_units_make_a_line_that_earns_no_credit():
    """A MISSING inspection group is kept as a line but is not creditable."""
    ret = mapping.to_domain("acme", fixture("return_partially_inspected.json"))
    missing = next(line for line in ret.lines if line.disposition is Disposition.MISSING)
    assert missing.line_id == "R000124-1#2"
    assert missing.stock_action is StockAction.NONE
    assert not missing.creditable
    assert ret.expected_refund == Money(Decimal("59.00"), "GBP")


def test_items_not_fully_inspected_produce_no_lines():
    """Partly inspected (1 of 3) and not-received items contribute nothing yet."""
    ret = mapping.to_domain("acme", fixture("return_partially_inspected.json"))
    assert [line.line_id for line in ret.lines] == ["R000124-1#1", "R000124-1#2"]


def test_is_fully_inspected_needs_every_received_unit_inspected():
    """The documented example is fully inspected; the partly inspected one is not."""
    assert mapping.is_fully_inspected(fixture("return_processed.json"))
    assert not mapping.is_fully_inspected(fixture("return_partially_inspected.json"))


def test_is_fully_inspected_needs_something_received():
    """A return with nothing received yet is not 'fully inspected', however vacuous."""
    raw = fixture("return_processed.json")
    raw["items"][0].update(receivedQuantity=0, inspections=[])
    assert not mapping.is_fully_inspected(raw)
    assert mapping.to_domain("acme", raw).lines == ()


def test_is_fully_inspected_ignores_items_that_never_arrived():
    """An item with nothing received and nothing inspected does not hold the return back."""
    raw = fixture("return_partially_inspected.json")
    raw["items"] = [raw["items"][0], raw["items"][2]]
    assert mapping.is_fully_inspected(raw)


def test_more_units_inspected_than_received_is_invalid():
    """Inspections adding up to more than the received quantity break Z-8."""
    raw = fixture("return_processed.json")
    raw["items"][0]["receivedQuantity"] = 2
    with pytest.raises(InvalidPayloadError, match=r"items\.0\.inspections: 3 units inspected"):
        mapping.to_domain("acme", raw)


def test_unknown_disposition_is_invalid():
    """A disposition outside Z-8's list is reported with its path."""
    raw = fixture("return_processed.json")
    raw["items"][0]["inspections"][1]["disposition"] = "DONATE"
    with pytest.raises(InvalidPayloadError, match=r"items\.0\.inspections\.1\.disposition"):
        mapping.to_domain("acme", raw)


def test_unknown_status_is_kept_as_text():
    """Statuses are an open enum: a new one passes through untouched."""
    raw = fixture("return_processed.json")
    raw["status"] = "StoreCredited"
    assert mapping.to_domain("acme", raw).zigzag_status == "StoreCredited"


def test_money_given_as_a_json_number_becomes_an_exact_decimal():
    """`24.99` as a number is read through its text, never as binary float."""
    raw = fixture("return_processed.json")
    raw["items"][0]["unitPrice"] = 24.99
    assert mapping.to_domain("acme", raw).lines[0].unit_price.amount == Decimal("24.99")


def test_times_are_held_in_utc():
    """An offset time is converted to UTC."""
    raw = fixture("return_processed.json")
    raw["updatedAt"] = "2026-10-06T16:03:11+02:00"
    assert mapping.to_domain("acme", raw).zigzag_updated_at == datetime(
        2026, 10, 6, 14, 3, 11, tzinfo=UTC
    )


def test_parse_envelope_reads_the_documented_envelope():
    """Z-9: the envelope keeps its event id and type and a full Return in `data`."""
    body = (FIXTURES / "webhook_items_inspected.json").read_bytes()
    envelope = mapping.parse_envelope(body)
    assert envelope.eventId == "6f1c2a9e-3b7d-4e0a-9c55-1d2e3f4a5b6c"
    assert envelope.eventType == "ReturnItemsInspected"
    assert envelope.occurredAt == datetime(2026, 10, 6, 14, 3, 12, tzinfo=UTC)
    assert isinstance(envelope.data, schemas.Return)
    assert mapping.to_domain("acme", envelope.data).lines[0].line_id == "R000123-1#1"


def test_parse_envelope_rejects_malformed_json():
    """A body that is not JSON is an InvalidPayloadError, not a JSONDecodeError."""
    with pytest.raises(InvalidPayloadError, match="not JSON"):
        mapping.parse_envelope(b'{"eventId": ')


def test_parse_envelope_rejects_a_non_object():
    """A JSON array is not an envelope."""
    with pytest.raises(InvalidPayloadError, match="JSON object expected"):
        mapping.parse_envelope(b"[]")


def test_parse_envelope_lists_every_missing_and_mistyped_field():
    """All bad fields are named, with their paths, in one error."""
    envelope = fixture("webhook_items_inspected.json")
    del envelope["eventId"]
    envelope["occurredAt"] = "yesterday"
    envelope["data"]["items"][0]["unitPrice"] = "twenty"
    envelope["data"]["items"][0]["quantity"] = "three"
    with pytest.raises(InvalidPayloadError) as caught:
        mapping.parse_envelope(json.dumps(envelope).encode())
    fields = {problem.split(":")[0] for problem in caught.value.problems}
    assert fields == {
        "eventId",
        "occurredAt",
        "data.items.0.unitPrice",
        "data.items.0.quantity",
    }
    assert isinstance(caught.value, ValueError)


def test_parse_envelope_rejects_a_time_without_a_zone():
    """Z-6 times are UTC with Z; a naive time is refused rather than guessed."""
    envelope = fixture("webhook_items_inspected.json")
    envelope["occurredAt"] = "2026-10-06T14:03:12"
    with pytest.raises(InvalidPayloadError, match="occurredAt"):
        mapping.parse_envelope(json.dumps(envelope).encode())


def test_parse_envelope_rejects_a_snapshot_of_another_return():
    """The envelope's returnId must match its data's."""
    envelope = fixture("webhook_items_inspected.json")
    envelope["returnId"] = "R999999"
    with pytest.raises(InvalidPayloadError, match=r"data\.returnId"):
        mapping.parse_envelope(json.dumps(envelope).encode())


def test_parse_envelope_keeps_unknown_fields():
    """Fields ZigZag adds later survive parsing."""
    envelope = fixture("webhook_items_inspected.json")
    envelope["deliveryAttempt"] = 3
    parsed = mapping.parse_envelope(json.dumps(envelope).encode())
    assert parsed.model_extra == {"deliveryAttempt": 3}


def test_money_rejects_booleans_and_non_finite_values():
    """`true`, `NaN` and `Infinity` are not amounts."""
    for bad in (True, "NaN", "Infinity"):
        raw = fixture("return_processed.json")
        raw["items"][0]["unitPrice"] = bad
        with pytest.raises(InvalidPayloadError, match="unitPrice"):
            mapping.to_domain("acme", raw)


def test_verify_api_key_accepts_the_shared_key_case_insensitively():
    """Z-10: the right key in X-ZigZag-Api-Key (any header case) verifies."""
    assert verify_api_key({"x-zigzag-api-key": "k-123"}, "k-123")
    assert verify_api_key({"X-ZigZag-Api-Key": "k-123"}, "k-123")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "k-123"),
        ({"X-ZigZag-Api-Key": "k-124"}, "k-123"),
        ({"X-ZigZag-Api-Key": ""}, "k-123"),
        ({"X-ZigZag-Api-Key": ""}, ""),
        ({"Authorization": "k-123"}, "k-123"),
    ],
)
def test_verify_api_key_refuses_wrong_missing_or_unconfigured_keys(headers, expected):
    """A wrong or absent key fails, and an empty configured key never verifies."""
    assert not verify_api_key(headers, expected)


def test_verify_api_key_uses_a_configurable_header():
    """The header name is configurable (zigzag.webhook_header)."""
    assert verify_api_key({"X-Retailer-Key": "k"}, "k", header_name="X-Retailer-Key")
