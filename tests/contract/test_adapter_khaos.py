"""KCC channel wire: pushes we receive, the CustomerReturn we serve, EndpointConfig (K-1..K-9)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from returnsync.adapters.errors import InvalidPayloadError
from returnsync.adapters.khaos import mapping, schemas
from returnsync.adapters.khaos.webhooks import verify_basic_auth
from returnsync.domain import sku

FIXTURES = Path(__file__).parents[1] / "fixtures" / "khaos"


def load(name: str):
    return schemas.loads((FIXTURES / name).read_bytes())


def walk(value, path="$"):
    """Every (path, leaf-or-container) in a JSON-like value."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk(item, f"{path}[{i}]")


RETURNS_ADDRESS = mapping.Address(
    line1="Unit 4, Returns Park", town="Grantham", postcode="NG31 7FZ", country_code="GB"
)
ADA = mapping.Contact(forename="Ada", surname="Lovelace", email="a.customer@example.com")
LINES = [
    mapping.StagedLine(
        stock_code="TSHIRT-BLK-L",
        quantity=2,
        reason_id="6",
        line_id="R000123-1#1",
        unit_gross=Decimal("24.99"),
    ),
    mapping.StagedLine(
        stock_code="TSHIRT-BLK-L",
        quantity=1,
        reason_id="9",
        line_id="R000123-1#2",
        unit_gross=Decimal("24.99"),
    ),
]


def build(**overrides):
    args = {
        "associated_ref": "ZZ-GL123-R000123",
        "created": datetime(2026, 10, 6, 14, 3, 11, tzinfo=UTC),
        "urn": "WEBRETURNS",
        "order_ref": "ORD-10001",
        "lines": LINES,
        "notes": "ZigZag return R000123",
        "process_return": True,
        "contact": ADA,
        "address": RETURNS_ADDRESS,
    }
    args.update(overrides)
    return mapping.customer_return(**args)


# Pushes we receive


def test_stock_items_map_to_domain_stock_items_and_deletions():
    """StockUpload: StockID, StockCode, OtherRef and barcodes map; Deleted lists StockIDs."""
    items, deleted = mapping.stock_items(load("stock_items.json"))
    assert items[0] == sku.StockItem(
        stock_id="6027",
        stock_code="TSHIRT-BLK-L",
        other_ref="5012345678900-OR",
        barcodes=("5012345678900",),
    )
    assert [i.stock_id for i in items] == ["6027", "A3567", "39681"]
    assert items[2].other_ref == ""  # a null OtherRef is treated as absent
    assert deleted == ["5511", "5512"]


def test_stock_levels_read_the_documented_example_as_decimals():
    """StockStatusUpload: levels per (StockID, SiteID) as exact Decimals; absent when untracked."""
    levels = mapping.stock_levels(load("stock_statuses.json"))
    boo = levels[0]
    assert (boo.stock_id, boo.stock_code, boo.site_id) == ("112", "BOO", 1)
    assert boo.available == Decimal("77.0")
    assert boo.on_order == Decimal("84.0")
    assert isinstance(levels[1].available, Decimal)
    assert levels[2].available is None
    assert levels[2].on_order is None


def test_stock_levels_never_go_through_float_even_from_plain_json():
    """A document parsed with plain json.loads still yields exact Decimals (via str)."""
    doc = json.loads('{"Statuses":[{"StockCode":"X","StockID":"1","SiteID":1,'
                     '"Levels":{"Available":0.1,"OnOrder":3}}]}')  # fmt: skip
    [level] = mapping.stock_levels(doc)
    assert level.available == Decimal("0.1")
    assert level.on_order == Decimal(3)


def test_credit_notes_are_only_order_type_two():
    """OrderStatusUpload: sales orders are skipped; both credit notes are found (K-9)."""
    notes = mapping.credit_notes(load("order_statuses.json"))
    assert [n.code for n in notes] == ["CN00042", "CN00043"]


def test_credit_note_fields_totals_and_lines():
    """A credit note's references, Decimal totals, currency and lines come through."""
    note = mapping.credit_notes(load("order_statuses.json"))[0]
    assert note.associated_ref == "ZZ-GL123-R000123"
    assert (note.net, note.tax, note.gross) == (Decimal("41.65"), Decimal("8.33"), Decimal("49.98"))
    assert note.currency == "GBP"
    assert note.order_id == "2101"
    [line] = note.lines
    assert line["SKU"] == "TSHIRT-BLK-L"
    assert line["Quantity"] == Decimal(2)
    assert line["ExtendedDescription"] == ["R000123-1#1"]
    assert all(not isinstance(v, float) for _, v in walk(note.lines))


def test_status_key_quirk_status_and_order_status_both_read():
    """KCC's example says `Status`, its table `OrderStatus`: both are accepted."""
    parsed = schemas.OrderStatuses.model_validate(load("order_statuses.json"))
    assert [s.Status for s in parsed.Statuses] == ["Received", "Complete", "Complete", "Complete"]


def test_numeric_ids_and_string_totals_are_normalised():
    """IDs sent as numbers become strings; totals sent as strings become Decimals."""
    note = mapping.credit_notes(load("order_statuses.json"))[1]
    assert note.order_id == "2102"
    assert note.gross == Decimal("0.12")


def test_a_credit_note_without_totals_is_invalid():
    """K-9 credit notes carry Totals; without them the push is an InvalidPayloadError."""
    doc = load("order_statuses.json")
    del doc["Statuses"][1]["Totals"]
    with pytest.raises(InvalidPayloadError, match=r"Statuses\.1\.Totals"):
        mapping.credit_notes(doc)


def test_a_status_without_any_status_key_is_invalid():
    """Neither `Status` nor `OrderStatus`: the field is reported missing."""
    doc = load("order_statuses.json")
    del doc["Statuses"][0]["Status"]
    with pytest.raises(InvalidPayloadError, match=r"Statuses\.0\.Status"):
        mapping.credit_notes(doc)


def test_malformed_pushes_are_typed_errors():
    """Bad JSON, wrong types and missing ids raise InvalidPayloadError naming the fields."""
    with pytest.raises(InvalidPayloadError, match="not JSON"):
        schemas.loads(b"{")
    with pytest.raises(InvalidPayloadError, match=r"Statuses\.0\.SiteID"):
        mapping.stock_levels({"Statuses": [{"StockCode": "X", "StockID": "1", "SiteID": "main"}]})
    with pytest.raises(InvalidPayloadError, match=r"Items\.0\.StockID"):
        mapping.stock_items({"Items": [{"StockCode": "X"}]})


# The CustomerReturn we serve


def test_customer_return_matches_the_golden_document():
    """Field names and shapes are verbatim KCC (golden file written from the README)."""
    expected = json.loads((FIXTURES / "customer_return_R000123.json").read_text())
    assert json.loads(mapping.dumps(build())) == expected


def test_customer_return_is_plain_json():
    """The document survives the stdlib encoder (store JSON column, web response) unchanged."""
    document = build()
    assert json.loads(json.dumps(document)) == document
    assert json.dumps(document["ReturnedItems"][0]["UnitPrice"]) == '{"Gross": 24.99}'


def test_customer_return_refuses_a_price_json_cannot_hold_exactly():
    """A unit price with more digits than a double keeps is refused, never rounded."""
    line = mapping.StagedLine(
        stock_code="X", quantity=1, reason_id="6", line_id="R1-1#1",
        unit_gross=Decimal("0.12345678901234567890"),
    )  # fmt: skip
    with pytest.raises(ValueError, match="exactly"):
        build(lines=[line])


def test_channel_paths_match_the_web_routes():
    """Every URL in our EndpointConfig is a route returnsync.web.channel serves."""
    from returnsync.web import channel  # noqa: PLC0415 (only this test needs the web layer)

    served = {route.path for route in channel.router.routes}
    for path in mapping.CHANNEL_PATHS.values():
        assert path.replace("{tenant}", "{tenant_id}") in served


def test_customer_return_holds_no_nulls_anywhere():
    """KCC rejects nulls: no None at any depth, even with an empty contact."""
    document = build(contact=mapping.Contact(), notes="")
    nulls = [path for path, value in walk(document) if value is None]
    assert nulls == []
    assert document["InvoiceContact"] == {"Forename": "", "Surname": "", "Email": ""}


def test_customer_return_dates_are_utc_without_offset():
    """CreatedDate is `YYYY-MM-DDTHH:MM:SS`, converted to UTC, no zone suffix."""
    created = datetime(2026, 10, 6, 15, 3, 11, 999, tzinfo=timezone(timedelta(hours=1)))
    assert build(created=created)["CreatedDate"] == "2026-10-06T14:03:11"


def test_customer_return_links_each_line_to_zigzag_and_the_order():
    """ExtendedDescription holds the ZigZag line id; SourceOrder names the web order (K-4)."""
    items = build()["ReturnedItems"]
    assert [i["ExtendedDescription"] for i in items] == [["R000123-1#1"], ["R000123-1#2"]]
    assert {json.dumps(i["SourceReturnReference"]) for i in items} == {
        '{"SourceOrder": {"AssociatedRef": "ORD-10001"}}'
    }
    assert all(i["Mapping"] == [{"Mapping": "StockCode"}] for i in items)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"associated_ref": "ZZ-" + "X" * 48}, "50"),
        ({"associated_ref": "ZZ-GL123-R1#2"}, "#"),
        ({"created": datetime(2026, 10, 6, 14, 3, 11)}, "timezone"),  # noqa: DTZ001
        ({"lines": []}, "no lines"),
        ({"address": mapping.Address(line1="", town="Grantham")}, "Line1"),
        ({"address": mapping.Address(line1="x" * 36, town="Grantham")}, "35"),
        ({"address": mapping.Address(line1="1 St", town="T", postcode="X" * 11)}, "Postcode"),
    ],
)
def test_customer_return_refuses_what_kcc_would_reject(override, message):
    """Refs over 50 chars or with '#', naive times, no lines and bad addresses fail loudly."""
    with pytest.raises(ValueError, match=message):
        build(**override)


def test_customer_return_refuses_a_non_positive_quantity():
    """A zero-quantity line is a bug upstream, not something to stage."""
    bad = mapping.StagedLine(
        stock_code="X", quantity=0, reason_id="6", line_id="R1-1#1", unit_gross=Decimal(1)
    )
    with pytest.raises(ValueError, match="quantity"):
        build(lines=[bad])


def test_import_document_always_wraps_an_array():
    """CustomerReturnImport: Returns is an array (even of one) and ApiVersion is 1000."""
    document = mapping.import_document([build()])
    assert isinstance(document["Returns"], list)
    assert document["ApiVersion"] == 1000
    assert mapping.import_document([]) == {"Returns": [], "ApiVersion": 1000}


def test_dumps_writes_decimals_as_exact_numbers():
    """Money leaves as a JSON number with the same digits: 24.99, not 24.989999..."""
    text = mapping.dumps({"UnitPrice": {"Gross": Decimal("24.99")}}).decode()
    assert text == '{"UnitPrice":{"Gross":24.99}}'


def test_dumps_refuses_a_decimal_it_cannot_write_exactly():
    """More digits than a JSON double holds is an error, not a silent rounding."""
    with pytest.raises(ValueError, match="exactly"):
        mapping.dumps({"x": Decimal("0.12345678901234567890")})


def test_assert_no_nulls_names_the_path():
    """The null check says where the None is."""
    with pytest.raises(ValueError, match=r"\$\.Returns\[0\]\.Notes"):
        mapping.assert_no_nulls({"Returns": [{"Notes": None}]})


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="#"), max_size=20
)


@given(
    forename=_text,
    surname=_text,
    email=_text,
    notes=_text,
    quantity=st.integers(min_value=1, max_value=999),
    pence=st.integers(min_value=0, max_value=10_000_000),
)
def test_customer_return_never_has_nulls_and_round_trips_money(  # noqa: PLR0917 (hypothesis)
    forename, surname, email, notes, quantity, pence
):
    """For any contact text and price, the document is null-free and the price exact."""
    line = mapping.StagedLine(
        stock_code="SKU-1",
        quantity=quantity,
        reason_id="6",
        line_id="R1-1#1",
        unit_gross=Decimal(pence).scaleb(-2),
    )
    document = build(
        contact=mapping.Contact(forename=forename, surname=surname, email=email),
        notes=notes,
        lines=[line],
    )
    assert all(value is not None for _, value in walk(document))
    parsed = json.loads(mapping.dumps(document), parse_float=Decimal)
    assert parsed["ReturnedItems"][0]["UnitPrice"]["Gross"] == Decimal(pence).scaleb(-2)


# EndpointConfig and auth


def test_endpoint_config_names_every_endpoint_kcc_needs():
    """K-1: JSON format everywhere; pulls carry the frequency; OrderDownload is present."""
    config = mapping.endpoint_config("https://sync.example.com/", "acme ltd", 15)
    assert set(config) == {
        "OrderDownload",
        "CReturnDownload",
        "StockUpload",
        "StockStatusUpload",
        "OrderStatusUpload",
    }
    assert config["CReturnDownload"] == {
        "URL": "https://sync.example.com/khaos/acme%20ltd/returns",
        "Format": "JSON",
        "Frequency": 15,
    }
    assert config["OrderDownload"]["Frequency"] == 15
    assert "Frequency" not in config["StockUpload"]
    assert all(entry["Format"] == "JSON" for entry in config.values())
    assert all(value is not None for _, value in walk(config))


def test_endpoint_config_refuses_a_zero_frequency():
    """KCC pulls every Frequency minutes; zero makes no sense."""
    with pytest.raises(ValueError, match="minute"):
        mapping.endpoint_config("https://sync.example.com", "acme", 0)


def test_empty_order_import_is_what_kcc_expects():
    """K-1: OrderDownload serves an empty SalesOrderImport."""
    assert mapping.empty_order_import() == {"Orders": [], "ApiVersion": 1000}


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def test_basic_auth_accepts_the_channel_credentials():
    """KCC's `Authorization: Basic` with the channel's username and password verifies."""
    assert verify_basic_auth(_basic("khaos", "control"), "khaos", "control")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _basic("khaos", "wrong"),
        _basic("other", "control"),
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic !!notbase64!!"},
        {"Authorization": "Basic"},
    ],
)
def test_basic_auth_refuses_anything_else(headers):
    """Missing, wrong, non-Basic or garbled credentials fail."""
    assert not verify_basic_auth(headers, "khaos", "control")


def test_basic_auth_never_verifies_unconfigured_credentials():
    """Empty configured credentials refuse even an empty presented pair."""
    assert not verify_basic_auth(_basic("", ""), "", "")
