"""Importing a pulled `CustomerReturnImport` document (reference §1.1.7, §5.4; K-4..K-12).

The document as a whole must be JSON with an `ApiVersion` of 1000 (the docs) or
10000 (the vendor's own PHP sample) and a `Returns` member; otherwise nothing is
imported, a notification is written and the continuation is kept. Then each return
stands alone: a bad one goes to notifications (K-11) and the others import.

Quirks tolerated, because the vendor's own examples have them (§1.1.7):
`Returns` as one object instead of an array; `SourceReference` (field table) as
well as `SourceReturnReference` (examples); the source order with or without the
`SourceOrder` wrapper; several `SourceOrder` fields set at once against the OneOf
rule (accepted when they all name the same order); a `SOrderCode` written without
zero padding (`SO2075` for `SO02075`); `Mapping` as a bare MappingType string as on
order items. Not tolerated: a null anywhere ("A null value will cause errors").

A return is rejected whole when its URN is not a customer, a SKU is not found under
its `Mapping[]`, its `ReturnReason` is unknown, its source order (or order item)
cannot be found, or it returns more than was sold and not yet returned on the
order line. A return whose `AssociatedRef` was imported before is skipped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from returnsync.simulators.khaos.catalogue import MAPPING_TYPES, ItemMapping, StockItem
from returnsync.simulators.khaos.processing import process_return
from returnsync.simulators.khaos.returns import (
    NEW,
    CustomerReturn,
    CustomerReturnItem,
    ExchangeItem,
)
from returnsync.simulators.khaos.wire import loads

if TYPE_CHECKING:
    from returnsync.simulators.khaos.company import Company
    from returnsync.simulators.khaos.returns import ReturnReason
    from returnsync.simulators.khaos.sales import SalesOrder, SalesOrderItem

API_VERSIONS = (1000, 10000)
SOURCE_KEYS = ("SourceReturnReference", "SourceReference")
ORDER_FIELDS = ("AssociatedRef", "SOrderID", "SOrderCode")
DEFAULT_MAPPING = [ItemMapping("StockCode")]


class DocumentError(ValueError):
    """The document as a whole cannot be imported."""


class ImportRejectedError(ValueError):
    """One return cannot be imported."""


@dataclass(frozen=True)
class Page:
    """A parsed document: its returns (still raw) and version."""

    returns: list[Any]
    api_version: int


@dataclass
class ImportOutcome:
    """What one page did."""

    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        """JSON view."""
        return {"imported": self.imported, "skipped": self.skipped, "rejected": self.rejected}


def find_null(value: Any, path: str = "") -> str | None:
    """The path of the first null inside `value`, or None."""
    if value is None:
        return path or "(document)"
    if isinstance(value, dict):
        for key, item in value.items():
            found = find_null(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_null(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def parse_page(raw: bytes) -> Page:
    """Parse a `CustomerReturnImport` document; raises DocumentError."""
    try:
        document = loads(raw)
    except ValueError as exc:
        raise DocumentError(f"CustomerReturnImport is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise DocumentError("CustomerReturnImport must be a JSON object")
    if "ApiVersion" not in document:
        raise DocumentError("CustomerReturnImport has no ApiVersion")
    version = document["ApiVersion"]
    if isinstance(version, bool) or version not in API_VERSIONS:
        raise DocumentError(f"ApiVersion must be 1000, got {version!r}")
    outside = {key: value for key, value in document.items() if key != "Returns"}
    null_at = find_null(outside)
    if null_at is not None:
        raise DocumentError(f"null value at {null_at}: a null value will cause errors")
    if "Returns" not in document:
        raise DocumentError("CustomerReturnImport has no Returns")
    returns = document["Returns"]
    if isinstance(returns, dict):
        returns = [returns]
    if not isinstance(returns, list):
        raise DocumentError("Returns must be an array of CustomerReturn")
    return Page(returns=returns, api_version=int(version))


def import_page(company: Company, entries: list[Any]) -> ImportOutcome:
    """Import each return of a page into the company (call under the state lock)."""
    outcome = ImportOutcome()
    for index, entry in enumerate(entries):
        ref = entry.get("AssociatedRef") if isinstance(entry, dict) else None
        ref = ref if isinstance(ref, str) else ""
        if ref and company.return_by_ref(ref) is not None:
            outcome.skipped.append(ref)
            continue
        try:
            plan = _plan_entry(company, index, entry)
        except ImportRejectedError as exc:
            company.notify("import", str(exc), ref)
            outcome.rejected.append({"AssociatedRef": ref, "message": str(exc)})
            continue
        _apply(company, plan)
        outcome.imported.append(plan.AssociatedRef)
    return outcome


def _plan_entry(company: Company, index: int, entry: Any) -> _Plan:
    if not isinstance(entry, dict):
        raise ImportRejectedError(f"Returns[{index}] is not a CustomerReturn object")
    null_at = find_null(entry)
    if null_at is not None:
        raise ImportRejectedError(
            f"null value at {null_at}: a null value will cause errors "
            "(send a blank string or omit the field)"
        )
    return _ReturnPlanner(company, entry).plan()


@dataclass
class _PlannedItem:
    stock: StockItem
    sku: str
    quantity: Decimal
    reason: ReturnReason
    site_id: int
    order: SalesOrder
    line: SalesOrderItem
    extended: list[str]


@dataclass
class _Plan:
    AssociatedRef: str
    URN: str
    CreatedDate: str
    ProcessReturn: bool
    Notes: str
    items: list[_PlannedItem]
    exchange: list[ExchangeItem]


class _ReturnPlanner:
    """Checks one CustomerReturn against the company and works out what it means."""

    def __init__(self, company: Company, entry: dict[str, Any]) -> None:
        self.company = company
        self.entry = entry
        self.pending: dict[str, Decimal] = {}

    def plan(self) -> _Plan:
        entry = self.entry
        ref = _text(entry, "AssociatedRef", "CustomerReturn", required=True)
        created = _text(entry, "CreatedDate", "CustomerReturn", required=True)
        try:
            datetime.fromisoformat(created)
        except ValueError:
            raise ImportRejectedError(f"CreatedDate {created!r} is not a DateTime") from None
        urn = _text(entry, "URN", "CustomerReturn", required=True).strip()
        if urn not in self.company.customers:
            raise ImportRejectedError(f"URN {urn!r} is not an existing customer account")
        _check_address(entry.get("InvoiceAddress"), "InvoiceAddress", required=True)
        _check_contact(entry.get("InvoiceContact"), "InvoiceContact", required=True)
        _check_address(entry.get("DeliveryAddress"), "DeliveryAddress", required=False)
        _check_contact(entry.get("DeliveryContact"), "DeliveryContact", required=False)
        process = entry.get("ProcessReturn", False)
        if not isinstance(process, bool):
            raise ImportRejectedError("ProcessReturn must be a Boolean")
        notes = _text(entry, "Notes", "CustomerReturn", required=False)
        site_id = self._site(entry.get("Site"), "Site", self.company.default_site_id)
        returned = _array(entry, "ReturnedItems")
        exchanged = _array(entry, "ExchangeItems")
        if not returned and not exchanged:
            raise ImportRejectedError("the return has no ReturnedItems")
        items = [
            self._returned_item(raw, f"ReturnedItems[{i}]", site_id)
            for i, raw in enumerate(returned)
        ]
        exchange = [
            self._exchange_item(raw, f"ExchangeItems[{i}]") for i, raw in enumerate(exchanged)
        ]
        return _Plan(ref, urn, created, process, notes, items, exchange)

    def _site(self, value: Any, where: str, default: int) -> int:
        if value is None:
            return default
        if not isinstance(value, dict):
            raise ImportRejectedError(f"{where} must be a DataItem")
        site = self.company.site_for(value)
        if site is None:
            raise ImportRejectedError(f"{where} {value} is not a site")
        return site.SiteID

    def _stock(self, raw: dict[str, Any], where: str) -> tuple[str, StockItem]:
        sku = _text(raw, "SKU", where, required=True)
        mappings = _mappings(raw.get("Mapping"), where)
        stock = self.company.catalogue.resolve(sku, mappings)
        if stock is None:
            tried = ", ".join(m.Mapping for m in mappings)
            raise ImportRejectedError(f"{where}: SKU {sku!r} not found (Mapping: {tried})")
        return sku, stock

    def _returned_item(self, raw: Any, where: str, site_id: int) -> _PlannedItem:
        if not isinstance(raw, dict):
            raise ImportRejectedError(f"{where} must be a CustomerReturnItem object")
        sku, stock = self._stock(raw, where)
        quantity = _quantity(raw, where)
        reason = self._reason(raw.get("ReturnReason"), where)
        item_site = self._site(raw.get("Site"), f"{where}.Site", site_id)
        order, source_item = self._source_order(raw, where)
        line = self._order_line(order, source_item, stock, quantity, where)
        if not isinstance(raw.get("UnitPrice", {}), dict):
            raise ImportRejectedError(f"{where}.UnitPrice must be a Price object")
        extended = _descriptions(raw.get("ExtendedDescription"), where)
        return _PlannedItem(stock, sku, quantity, reason, item_site, order, line, extended)

    def _exchange_item(self, raw: Any, where: str) -> ExchangeItem:
        if not isinstance(raw, dict):
            raise ImportRejectedError(f"{where} must be a CustomerExchangeItem object")
        sku, stock = self._stock(raw, where)
        quantity = _quantity(raw, where)
        extended = _descriptions(raw.get("ExtendedDescription"), where)
        return ExchangeItem(stock.StockID, sku, quantity, extended)

    def _reason(self, value: Any, where: str) -> ReturnReason:
        if not isinstance(value, dict):
            raise ImportRejectedError(f"{where}.ReturnReason is required (a DataItem)")
        reasons = self.company.return_reasons
        wanted_id = str(value.get("ID", "") or value.get("Code", "")).strip()
        if wanted_id and wanted_id in reasons:
            return reasons[wanted_id]
        name = str(value.get("Name", "")).strip().casefold()
        for reason in reasons.values():
            if name and reason.Description.casefold() == name:
                return reason
        raise ImportRejectedError(f"{where}: unknown ReturnReason {value}")

    def _source_order(self, raw: dict[str, Any], where: str) -> tuple[SalesOrder, str]:
        given = _source_fields(raw, where)
        found: dict[str, SalesOrder] = {}
        for key, value in given.items():
            order = self._order(key, value)
            if order is None:
                raise ImportRejectedError(f"{where}: source order not found ({key} {value!r})")
            found[key] = order
        if len({order.SOrderID for order in found.values()}) > 1:
            named = ", ".join(f"{k} {v!r}" for k, v in given.items())
            raise ImportRejectedError(
                f"{where}: SourceOrder fields name different orders ({named})"
            )
        return next(iter(found.values())), given.get("SOrderItemID", "")

    def _order(self, key: str, value: str) -> SalesOrder | None:
        company = self.company
        if key == "SOrderItemID":
            return company.order_by_item(value)
        if key == "SOrderCode":
            return next(
                (o for o in company.sales_orders.values() if _same_code(o.SOrderCode, value)), None
            )
        return company.order_by(field=key, value=value)

    def _order_line(
        self,
        order: SalesOrder,
        order_item_id: str,
        stock: StockItem,
        quantity: Decimal,
        where: str,
    ) -> SalesOrderItem:
        if order_item_id:
            candidates = [line for line in order.Items if line.OrderItemID == order_item_id]
            if candidates and candidates[0].StockID != stock.StockID:
                raise ImportRejectedError(
                    f"{where}: {order.SOrderCode} item {order_item_id} is not {stock.StockCode}"
                )
        else:
            candidates = [line for line in order.Items if line.StockID == stock.StockID]
        if not candidates:
            raise ImportRejectedError(
                f"{where}: {order.SOrderCode} has no line for {stock.StockCode}"
            )
        left = Decimal(0)
        for line in candidates:
            left = line.returnable - self.pending.get(line.OrderItemID, Decimal(0))
            if quantity <= left:
                self.pending[line.OrderItemID] = (
                    self.pending.get(line.OrderItemID, Decimal(0)) + quantity
                )
                return line
        raise ImportRejectedError(
            f"{where}: quantity {quantity} of {stock.StockCode} is above the {left} sold and "
            f"not yet returned on {order.SOrderCode}"
        )


def _apply(company: Company, plan: _Plan) -> CustomerReturn:
    return_id, code = company.ids.customer_return()
    items = []
    for planned in plan.items:
        planned.line.ReturnedQuantity += planned.quantity
        items.append(
            CustomerReturnItem(
                StockID=planned.stock.StockID,
                StockCode=planned.stock.StockCode,
                SKU=planned.sku,
                Quantity=planned.quantity,
                ReasonID=planned.reason.ID,
                SiteID=planned.site_id,
                SOrderID=planned.order.SOrderID,
                SOrderCode=planned.order.SOrderCode,
                OrderItemID=planned.line.OrderItemID,
                ExtendedDescription=planned.extended,
            )
        )
    at = company.now()
    customer_return = CustomerReturn(
        CustomerReturnID=return_id,
        CustomerReturnCode=code,
        AssociatedRef=plan.AssociatedRef,
        URN=plan.URN,
        CreatedDate=plan.CreatedDate,
        ProcessReturn=plan.ProcessReturn,
        items=items,
        exchange_items=plan.exchange,
        imported_at=at,
        Notes=plan.Notes,
    )
    customer_return.move_to(NEW, at)
    company.customer_returns[code] = customer_return
    if plan.ProcessReturn:
        process_return(company, customer_return)
    return customer_return


def _source_fields(raw: dict[str, Any], where: str) -> dict[str, str]:
    """The non-blank SourceOrder fields of a returned item, wrapper or not, either key."""
    source = next((raw[key] for key in SOURCE_KEYS if raw.get(key)), None)
    if source is None:
        raise ImportRejectedError(f"{where}: no SourceReturnReference to the original sales order")
    if not isinstance(source, dict):
        raise ImportRejectedError(f"{where}: SourceReturnReference must be an object")
    if "SourceOrder" in source:
        source = source["SourceOrder"]
        if not isinstance(source, dict):
            raise ImportRejectedError(f"{where}: SourceOrder must be an object")
    given = {
        key: str(source[key]).strip()
        for key in (*ORDER_FIELDS, "SOrderItemID")
        if key in source and str(source[key]).strip()
    }
    if not given:
        raise ImportRejectedError(f"{where}: SourceOrder names no order")
    return given


def _text(entry: dict[str, Any], key: str, where: str, *, required: bool) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str):
        raise ImportRejectedError(f"{where}.{key} must be a string")
    if required and not value.strip():
        raise ImportRejectedError(f"{where}.{key} is required")
    return value


def _array(entry: dict[str, Any], key: str) -> list[Any]:
    value = entry.get(key, [])
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise ImportRejectedError(f"{key} must be an array")
    return value


def _quantity(raw: dict[str, Any], where: str) -> Decimal:
    value = raw.get("Quantity")
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ImportRejectedError(f"{where}.Quantity must be a number")
    quantity = Decimal(value)
    if quantity <= 0:
        raise ImportRejectedError(f"{where}.Quantity must be positive, got {quantity}")
    return quantity


def _mappings(value: Any, where: str) -> list[ItemMapping]:
    if value is None:
        return list(DEFAULT_MAPPING)
    entries = value if isinstance(value, list) else [value]
    mappings = []
    for entry in entries:
        kind: Any
        item: Any = ""
        if isinstance(entry, str):
            kind = entry
        elif isinstance(entry, dict):
            kind, item = entry.get("Mapping"), entry.get("MappingItem", "")
        else:
            raise ImportRejectedError(f"{where}.Mapping must be an array of ItemMapping")
        if kind not in MAPPING_TYPES:
            raise ImportRejectedError(f"{where}.Mapping: unknown MappingType {kind!r}")
        mappings.append(ItemMapping(str(kind), str(item).strip()))
    return mappings or list(DEFAULT_MAPPING)


def _descriptions(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(line, str) for line in value):
        raise ImportRejectedError(f"{where}.ExtendedDescription must be an array of strings")
    return list(value)


def _check_address(value: Any, where: str, *, required: bool) -> None:
    if value is None and not required:
        return
    if not isinstance(value, dict):
        raise ImportRejectedError(f"{where} is required (an Address)")
    for key in ("Line1", "Town"):
        if not isinstance(value.get(key), str) or not value[key].strip():
            raise ImportRejectedError(f"{where}.{key} is required")
    country = value.get("Country")
    if not isinstance(country, dict) or not any(
        str(country.get(k, "")).strip() for k in ("ID", "Code", "Name")
    ):
        raise ImportRejectedError(f"{where}.Country is required (a DataItem)")


def _check_contact(value: Any, where: str, *, required: bool) -> None:
    if value is None and not required:
        return
    if not isinstance(value, dict):
        raise ImportRejectedError(f"{where} is required (a Contact)")
    names = (value.get("Forename"), value.get("Surname"))
    if not any(isinstance(name, str) and name.strip() for name in names):
        raise ImportRejectedError(f"{where}: either Forename or Surname must be filled in")


_CODE = re.compile(r"^([A-Za-z]*)0*(\d+)$")


def _same_code(ours: str, theirs: str) -> bool:
    """`SO02075` and `SO2075` name the same order (the vendor sample drops the padding)."""
    if ours.casefold() == theirs.casefold():
        return True
    left, right = _CODE.match(ours.strip()), _CODE.match(theirs.strip())
    return bool(
        left
        and right
        and left.group(1).casefold() == right.group(1).casefold()
        and int(left.group(2)) == int(right.group(2))
    )
