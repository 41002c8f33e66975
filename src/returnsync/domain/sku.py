"""Resolving a ZigZag SKU to a Khaos stock item, without ever inventing master data."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class StockItem:
    """A Khaos stock item as the catalogue push describes it. StockID never changes."""

    stock_id: str
    stock_code: str
    other_ref: str = ""
    barcodes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SkuMatch:
    """A SKU resolved to one stock item, and how."""

    sku: str
    item: StockItem
    how: str  # "mapping" | "StockCode" | "OtherRef" | "Barcode"


@dataclass(frozen=True, slots=True, kw_only=True)
class SkuUnmatched:
    """No stock item answers to the SKU; `suggestions` are close stock codes for a human."""

    sku: str
    suggestions: tuple[str, ...]


def _norm(code: str) -> str:
    return code.strip().casefold()


def _codes(item: StockItem, how: str) -> tuple[str, ...]:
    if how == "StockCode":
        return (item.stock_code,)
    if how == "OtherRef":
        return (item.other_ref,) if item.other_ref else ()
    return item.barcodes


def resolve_sku(
    sku: str, catalogue: list[StockItem], mapping: dict[str, str]
) -> SkuMatch | SkuUnmatched:
    """Resolve `sku`: an explicit mapping (SKU -> StockID) first, then StockCode, OtherRef, Barcode.

    Matching is trimmed and case-insensitive (assumption K-12). A SKU that matches more than
    one item on the same field is ambiguous and counts as unmatched: returnsync never guesses.
    """
    by_id = {item.stock_id: item for item in catalogue}
    mapped = mapping.get(_norm(sku))
    if mapped is not None and mapped in by_id:
        return SkuMatch(sku=sku, item=by_id[mapped], how="mapping")
    key = _norm(sku)
    for how in ("StockCode", "OtherRef", "Barcode"):
        hits = [item for item in catalogue if key in {_norm(v) for v in _codes(item, how)}]
        if len(hits) == 1:
            return SkuMatch(sku=sku, item=hits[0], how=how)
        if len(hits) > 1:
            break
    codes = [item.stock_code for item in catalogue]
    suggestions = difflib.get_close_matches(sku, codes, n=3, cutoff=0.6)
    return SkuUnmatched(sku=sku, suggestions=tuple(suggestions))


class SkuIndex:
    """`resolve_sku`'s answer for many SKUs over one catalogue, indexed once (dictionary
    lookups instead of a scan per SKU; no suggestions). For reconciliation over many lines."""

    def __init__(self, catalogue: list[StockItem], mapping: dict[str, str]) -> None:
        self._by_id = {item.stock_id: item for item in catalogue}
        self._mapping = mapping
        self._fields: dict[str, dict[str, list[StockItem]]] = {}
        for how in ("StockCode", "OtherRef", "Barcode"):
            index: dict[str, list[StockItem]] = {}
            for item in catalogue:
                for value in {_norm(v) for v in _codes(item, how)}:
                    index.setdefault(value, []).append(item)
            self._fields[how] = index

    def item(self, sku: str) -> StockItem | None:
        """The stock item `resolve_sku` would match `sku` to, or None when it would not."""
        key = _norm(sku)
        mapped = self._mapping.get(key)
        if mapped is not None and mapped in self._by_id:
            return self._by_id[mapped]
        for how in ("StockCode", "OtherRef", "Barcode"):
            hits = self._fields[how].get(key, [])
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                return None
        return None
