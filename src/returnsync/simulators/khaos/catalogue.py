"""Sites, stock items, levels, and how a channel SKU finds a stock item.

Khaos facts this follows (reference §1.1.4, §1.1.5, §2.1, §5.8):

- `StockID` is immutable and unique; `StockCode` "can change", is at most 50
  characters, has leading/trailing spaces stripped, may not contain `#`, and may not
  be used twice.
- An item has an `OtherRef` and any number of `Barcodes` `{Barcode, Type{ID, Name}}`.
- A channel SKU is located through `Mapping[]`, tried in order: `StockCode`,
  `OtherRef`, `Barcode` (with `MappingItem` naming the barcode *type* ID), `WebCode`,
  `Automatic` (code, then other ref, then any barcode).
- Matching is case-insensitive and trimmed (K-12), or case-sensitive when the
  simulator is built with `case_sensitive_codes=True`.
- Levels are per `(StockID, SiteID)`: `Available` and `OnOrder`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

MAPPING_TYPES = ("StockCode", "OtherRef", "Barcode", "WebCode", "Automatic")
STANDARD_TAX_RATE = {"Code": "1", "ID": "1", "Name": "Standard"}
MAX_CODE_LENGTH = 50


class CatalogueError(ValueError):
    """A catalogue change Khaos would refuse (duplicate or malformed code, unknown item)."""


@dataclass(frozen=True)
class Site:
    """A Khaos site: a location that holds stock."""

    SiteID: int
    Name: str

    def wire(self) -> dict[str, Any]:
        """JSON view."""
        return {"SiteID": self.SiteID, "Name": self.Name}


@dataclass(frozen=True)
class Barcode:
    """One of an item's barcodes and its barcode type (a DataItem)."""

    Barcode: str
    TypeID: str = ""
    TypeName: str = ""

    def wire(self) -> dict[str, Any]:
        """JSON view, as in the StockItem push."""
        kind = {"ID": self.TypeID} if self.TypeID else {}
        if self.TypeName:
            kind["Name"] = self.TypeName
        return {"Barcode": self.Barcode, "Type": kind}


@dataclass
class StockItem:
    """A stock item: immutable `StockID`, mutable `StockCode`."""

    StockID: str
    StockCode: str
    StockDescription: str
    OtherRef: str = ""
    WebCode: str = ""
    Barcodes: list[Barcode] = field(default_factory=list)
    TaxRate: dict[str, str] = field(default_factory=lambda: dict(STANDARD_TAX_RATE))
    BuyPrice: Decimal = Decimal("0.00")
    SellPrice: Decimal = Decimal("0.00")
    StockControlled: bool = True

    def wire(self) -> dict[str, Any]:
        """The `StockItem` of a `StockItems` push.

        The field table names the description `StockDescription`, the JSON sample
        `ShortDescription`; both are sent. Required objects are present with neutral
        values, and no field is ever null.
        """
        return {
            "StockID": self.StockID,
            "StockCode": self.StockCode,
            "StockDescription": self.StockDescription,
            "ShortDescription": self.StockDescription,
            "OtherRef": self.OtherRef,
            "BuyPrice": {"Net": self.BuyPrice},
            "SellPrice": {"Gross": self.SellPrice},
            "TaxRate": dict(self.TaxRate),
            "Options": {
                "PublishOnWeb": True,
                "Discontinued": False,
                "DropShipItem": False,
                "DiscountsDisabled": False,
                "RunToZero": False,
                "VatReliefQualified": False,
                "StockControlled": self.StockControlled,
                "FreeText": False,
                "NonPhysical": False,
                "CustomOptions": [],
            },
            "SupplierInfo": [],
            "Images": [],
            "Barcodes": [barcode.wire() for barcode in self.Barcodes],
        }


@dataclass
class StockLevel:
    """Levels of one item at one site."""

    Available: Decimal = Decimal(0)
    OnOrder: Decimal = Decimal(0)


@dataclass(frozen=True)
class ItemMapping:
    """One entry of a return item's `Mapping[]`."""

    Mapping: str
    MappingItem: str = ""


def clean_stock_code(code: str) -> str:
    """A Stock Code as Khaos stores it: trimmed, at most 50 characters, no `#`."""
    cleaned = code.strip()
    if not cleaned:
        raise CatalogueError("Stock Code must not be blank")
    if "#" in cleaned:
        raise CatalogueError(f"Stock Code {cleaned!r}: hashes are not supported")
    if len(cleaned) > MAX_CODE_LENGTH:
        raise CatalogueError(f"Stock Code {cleaned!r} is longer than 50 characters")
    return cleaned


class Catalogue:
    """One company's stock items, levels and SKU lookup."""

    def __init__(self, *, case_sensitive_codes: bool) -> None:
        self.case_sensitive = case_sensitive_codes
        self.items: dict[str, StockItem] = {}
        self.levels: dict[tuple[str, int], StockLevel] = {}

    def key(self, code: str) -> str:
        """How codes compare (K-12)."""
        trimmed = code.strip()
        return trimmed if self.case_sensitive else trimmed.casefold()

    def by_code(self, code: str) -> StockItem | None:
        """The item whose current Stock Code matches `code`."""
        wanted = self.key(code)
        for item in self.items.values():
            if self.key(item.StockCode) == wanted:
                return item
        return None

    def put(self, item: StockItem) -> None:
        """Add or replace an item (same StockID), refusing a Stock Code already used."""
        item.StockCode = clean_stock_code(item.StockCode)
        holder = self.by_code(item.StockCode)
        if holder is not None and holder.StockID != item.StockID:
            raise CatalogueError(
                f"Stock Code {item.StockCode!r} is already used by StockID {holder.StockID}"
            )
        self.items[item.StockID] = item

    def rename(self, stock_id: str, new_code: str) -> StockItem:
        """Change an item's Stock Code (its StockID stays)."""
        item = self.get(stock_id)
        code = clean_stock_code(new_code)
        holder = self.by_code(code)
        if holder is not None and holder.StockID != stock_id:
            raise CatalogueError(f"Stock Code {code!r} is already used by StockID {holder.StockID}")
        item.StockCode = code
        return item

    def get(self, stock_id: str) -> StockItem:
        """The item with this StockID, or CatalogueError."""
        try:
            return self.items[stock_id]
        except KeyError:
            raise CatalogueError(f"unknown StockID {stock_id!r}") from None

    def level(self, stock_id: str, site_id: int) -> StockLevel:
        """The (created on demand) level of an item at a site."""
        return self.levels.setdefault((stock_id, site_id), StockLevel())

    def resolve(self, sku: str, mappings: list[ItemMapping]) -> StockItem | None:
        """Locate the item a channel SKU means, trying `mappings` in order."""
        for mapping in mappings:
            found = self._match(sku, mapping)
            if found is not None:
                return found
        return None

    def _match(self, sku: str, mapping: ItemMapping) -> StockItem | None:
        wanted = self.key(sku)
        if not wanted:
            return None
        automatic = mapping.Mapping == "Automatic"
        kinds = ("StockCode", "OtherRef", "Barcode") if automatic else (mapping.Mapping,)
        barcode_type = "" if automatic else mapping.MappingItem
        for kind in kinds:
            for item in self.items.values():
                if wanted in self._keys(item, kind, barcode_type):
                    return item
        return None

    def _keys(self, item: StockItem, kind: str, barcode_type: str) -> list[str]:
        """The keys under which one MappingType finds `item`."""
        if kind == "StockCode":
            values = [item.StockCode]
        elif kind == "OtherRef":
            values = [item.OtherRef]
        elif kind == "WebCode":
            values = [item.WebCode]
        elif kind == "Barcode":
            values = [
                b.Barcode for b in item.Barcodes if not barcode_type or b.TypeID == barcode_type
            ]
        else:
            values = []
        return [self.key(value) for value in values if value.strip()]
