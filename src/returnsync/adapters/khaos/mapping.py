"""KCC pushes -> domain values, and our staged returns -> KCC's CustomerReturnImport.

Inbound (KCC POSTs to us): `stock_items`, `stock_levels`, `credit_notes`. Each takes the
parsed JSON document (use `schemas.loads` so numbers are Decimal) or the schema object, and
raises InvalidPayloadError naming every bad field.

Outbound (KCC GETs from us): `customer_return` builds one CustomerReturn exactly as the
KCC web-services README names its fields; `import_document` wraps a page of them;
`endpoint_config` is our EndpointConfig (K-1). KCC rejects nulls, so these documents never
hold None (checked on the way out). They are JSON-native (plain `json.dumps` works, as the
store's JSON column and the web layer need): a price becomes a JSON number only when the
number's shortest form is exactly the Decimal (`24.99`), else ValueError. `dumps` also
accepts Decimals, with the same exactness check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from returnsync.adapters.errors import InvalidPayloadError
from returnsync.adapters.khaos import schemas
from returnsync.domain import sku

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

API_VERSION = 1000  # "Must be set to 1000" (KCC README)
RETURN_MAPPING = "StockCode"  # K-6: we resolve SKUs to the Khaos StockCode ourselves
MAX_REF = 50  # characters of an AssociatedRef
MAX_LINE1 = 35  # characters of Address.Line1 (and Town)
MAX_POSTCODE = 10  # characters of Address.Postcode

# Paths, under our base URL, of the channel endpoints KCC calls (K-1). They must match the
# routes returnsync.web.channel serves; tests/contract/test_adapter_khaos.py checks that.
CHANNEL_PATHS = {
    "OrderDownload": "/khaos/{tenant}/orders",
    "CReturnDownload": "/khaos/{tenant}/returns",
    "StockUpload": "/khaos/{tenant}/stock",
    "StockStatusUpload": "/khaos/{tenant}/stock-status",
    "OrderStatusUpload": "/khaos/{tenant}/order-status",
}

_M = TypeVar("_M", bound=BaseModel)


def _parse(model: type[_M], doc: Mapping[str, Any] | _M, what: str) -> _M:
    if isinstance(doc, model):
        return doc
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise InvalidPayloadError.from_validation(what, exc) from exc


# Inbound


def stock_items(
    doc: Mapping[str, Any] | schemas.StockItems,
) -> tuple[list[sku.StockItem], list[str]]:
    """The stock items of a StockUpload push, and the StockIDs it deletes."""
    parsed = _parse(schemas.StockItems, doc, "KCC StockItems")
    items = [
        sku.StockItem(
            stock_id=item.StockID,
            stock_code=item.StockCode,
            other_ref=item.OtherRef,
            barcodes=tuple(entry.Barcode for entry in item.Barcodes if entry.Barcode),
        )
        for item in parsed.Items
    ]
    return items, list(parsed.Deleted)


@dataclass(frozen=True, slots=True, kw_only=True)
class StockLevel:
    """Stock of one item at one site; levels are None when the item is not stock controlled."""

    stock_id: str
    stock_code: str
    site_id: int
    available: Decimal | None
    on_order: Decimal | None


def stock_levels(doc: Mapping[str, Any] | schemas.StockStatuses) -> list[StockLevel]:
    """The levels of a StockStatusUpload push, in push order (KCC sends no sequence number)."""
    parsed = _parse(schemas.StockStatuses, doc, "KCC StockStatuses")
    return [
        StockLevel(
            stock_id=status.StockID,
            stock_code=status.StockCode,
            site_id=status.SiteID,
            available=status.Levels.Available if status.Levels else None,
            on_order=status.Levels.OnOrder if status.Levels else None,
        )
        for status in parsed.Statuses
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditNoteSeen:
    """A Khaos credit note as an OrderStatusUpload reports it (K-9)."""

    code: str
    associated_ref: str
    net: Decimal
    tax: Decimal
    gross: Decimal
    currency: str
    lines: list[dict[str, Any]]
    order_id: str = ""
    status: str = ""


def credit_notes(doc: Mapping[str, Any] | schemas.OrderStatuses) -> list[CreditNoteSeen]:
    """The credit notes in an OrderStatusUpload push (OrderType ID "2"); sales orders are
    skipped. A credit note without `Totals` is an InvalidPayloadError.
    """
    parsed = _parse(schemas.OrderStatuses, doc, "KCC OrderStatuses")
    seen: list[CreditNoteSeen] = []
    missing: list[str] = []
    for i, status in enumerate(parsed.Statuses):
        if not status.is_credit_note:
            continue
        if status.Totals is None:
            missing.append(f"Statuses.{i}.Totals: required on a credit note ({status.OrderCode})")
            continue
        seen.append(
            CreditNoteSeen(
                code=status.OrderCode,
                associated_ref=status.AssociatedRef,
                net=status.Totals.Net,
                tax=status.Totals.Tax,
                gross=status.Totals.Gross,
                currency=status.Totals.Currency.upper(),
                lines=[line.model_dump() for line in status.Lines],
                order_id=status.OrderID,
                status=status.Status,
            )
        )
    if missing:
        raise InvalidPayloadError("KCC OrderStatuses", missing)
    return seen


# Outbound


@dataclass(frozen=True, slots=True, kw_only=True)
class StagedLine:
    """One ReturnedItems line: an inspection group resolved to a Khaos stock code (K-6)."""

    stock_code: str
    quantity: int
    reason_id: str
    line_id: str  # the ZigZag line id, `<returnItemId>#<n>`, echoed in ExtendedDescription
    unit_gross: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Address:
    """An invoice address. KCC requires Line1, Town and Country; Postcode is optional."""

    line1: str
    town: str
    postcode: str = ""
    country_code: str = "GB"


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    """An invoice contact, from the ZigZag customer (firstName, lastName, email)."""

    forename: str = ""
    surname: str = ""
    email: str = ""


def customer_return(
    *,
    associated_ref: str,
    created: datetime,
    urn: str,
    order_ref: str,
    lines: list[StagedLine],
    notes: str,
    process_return: bool,
    contact: Contact,
    address: Address,
) -> dict[str, Any]:
    """One CustomerReturn for CReturnDownload, field names verbatim from the KCC README.

    `created` (aware) is sent as UTC without an offset (`2026-10-06T14:03:11`). `urn` is
    the tenant's returns account (K-4); `order_ref` the ZigZag orderNumber, which KCC knows
    as the web order's AssociatedRef. ZigZag has no address, so `address` is the tenant's
    returns address. Raises ValueError for an AssociatedRef KCC would refuse (over 50
    characters, or '#'), an address over KCC's lengths, a naive `created`, no lines, or a
    non-positive quantity.
    """
    if not associated_ref or len(associated_ref) > MAX_REF or "#" in associated_ref:
        raise ValueError(f"AssociatedRef {associated_ref!r}: 1 to {MAX_REF} characters, no '#'")
    if created.tzinfo is None:
        raise ValueError("created must be timezone-aware")
    if not lines:
        raise ValueError(f"return {associated_ref!r} has no lines to stage")
    document = {
        "AssociatedRef": associated_ref,
        "CreatedDate": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "URN": urn,
        "InvoiceAddress": _address(address),
        "InvoiceContact": {
            "Forename": contact.forename,
            "Surname": contact.surname,
            "Email": contact.email,
        },
        "ReturnedItems": [_returned_item(line, order_ref) for line in lines],
        "ExchangeItems": [],
        "Notes": notes,
        "ProcessReturn": process_return,
    }
    assert_no_nulls(document)
    return document


def _address(address: Address) -> dict[str, Any]:
    if not address.line1 or not address.town:
        raise ValueError("the returns address needs Line1 and Town (KCC requires both)")
    if len(address.line1) > MAX_LINE1 or len(address.town) > MAX_LINE1:
        raise ValueError(f"Line1 and Town are at most {MAX_LINE1} characters in KCC")
    if len(address.postcode) > MAX_POSTCODE:
        raise ValueError(f"Postcode is at most {MAX_POSTCODE} characters in KCC")
    return {
        "Line1": address.line1,
        "Town": address.town,
        "Postcode": address.postcode,
        "Country": {"Code": address.country_code},
    }


def _returned_item(line: StagedLine, order_ref: str) -> dict[str, Any]:
    if line.quantity <= 0:
        raise ValueError(f"line {line.line_id!r}: quantity must be positive")
    return {
        "SKU": line.stock_code,
        "Mapping": [{"Mapping": RETURN_MAPPING}],
        "Quantity": line.quantity,
        "ReturnReason": {"ID": line.reason_id},
        "ExtendedDescription": [line.line_id],
        "SourceReturnReference": {"SourceOrder": {"AssociatedRef": order_ref}},
        "UnitPrice": {"Gross": json_number(line.unit_gross)},
    }


def import_document(returns: list[dict[str, Any]]) -> dict[str, Any]:
    """A CustomerReturnImport page: `Returns` is always an array (KCC's table, not its example)."""
    document = {"Returns": list(returns), "ApiVersion": API_VERSION}
    assert_no_nulls(document)
    return document


def empty_order_import() -> dict[str, Any]:
    """The SalesOrderImport we serve on OrderDownload: KCC requires the endpoint (K-1)."""
    return {"Orders": [], "ApiVersion": API_VERSION}


def endpoint_config(base_url: str, tenant: str, frequency_minutes: int) -> dict[str, Any]:
    """Our EndpointConfig for one tenant (K-1), URLs built from CHANNEL_PATHS."""
    if frequency_minutes < 1:
        raise ValueError("KCC pulls at most once a minute")
    root = base_url.rstrip("/")
    slug = quote(tenant, safe="")

    def url(name: str) -> str:
        return root + CHANNEL_PATHS[name].format(tenant=slug)

    return {
        "OrderDownload": {
            "URL": url("OrderDownload"),
            "Format": "JSON",
            "Frequency": frequency_minutes,
        },
        "CReturnDownload": {
            "URL": url("CReturnDownload"),
            "Format": "JSON",
            "Frequency": frequency_minutes,
        },
        "StockUpload": {"URL": url("StockUpload"), "Format": "JSON"},
        "StockStatusUpload": {"URL": url("StockStatusUpload"), "Format": "JSON"},
        "OrderStatusUpload": {"URL": url("OrderStatusUpload"), "Format": "JSON"},
    }


def assert_no_nulls(value: Any, path: str = "$") -> None:
    """Raise ValueError naming the first None found anywhere in `value` (KCC rejects nulls)."""
    if value is None:
        raise ValueError(f"KCC rejects nulls, found one at {path}")
    if isinstance(value, dict):
        for key, item in value.items():
            assert_no_nulls(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            assert_no_nulls(item, f"{path}[{i}]")


def dumps(document: Any) -> bytes:
    """JSON for KCC: Decimals written as exact JSON numbers (`24.99`, never `24.990000001`)."""
    return json.dumps(document, default=_number, separators=(",", ":")).encode("utf-8")


def json_number(value: Decimal) -> float:
    """The JSON number of a Decimal, only when it prints back as the same value (`24.99`).

    A JSON number is read as a binary double by KCC and most parsers; this refuses any
    Decimal (more than ~15 significant digits) whose double would print differently.
    """
    if not value.is_finite():
        raise ValueError(f"{value} is not a JSON number")
    as_float = float(value)
    if Decimal(repr(as_float)) != value:
        raise ValueError(f"{value} cannot be written exactly as a JSON number")
    return as_float


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return json_number(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
