"""The canonical columns of each export file, their types, and header mapping.

Types (how `recon.files` validates each cell; a bad cell makes a bad row):

- `key`: text, trimmed, required.
- `text`: text, trimmed, may be blank.
- `code`: a SKU, stock code or site: trimmed, upper-cased, required.
- `count`: a whole number >= 0; `signed`: a whole number, may be negative.
- `money`: a decimal >= 0 with at most 2 decimal places (`12`, `12.3`, `12.30`).
- `currency`: three letters (upper-cased).
- `time` / `time?`: ISO 8601 (`2026-10-31T23:59:59Z`, an offset, or no zone = UTC);
  `time?` may be blank.
- `disposition`: one of the policy's dispositions, or blank (not inspected yet).
- `refund_status`: succeeded, pending, failed, canceled or requires_action.

A `--columns` TOML file maps canonical names to the headers of a real export:

    [returns]
    return_ref = "Return ID"
    received_quantity = "Qty Received"
    [credits]
    credit_note = "Credit Note Code"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class Schema:
    """One export file: canonical column names in order, with their types."""

    name: str
    types: tuple[tuple[str, str], ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """The canonical header, in order."""
        return tuple(name for name, _ in self.types)


SCHEMAS: dict[str, Schema] = {
    schema.name: schema
    for schema in (
        Schema(
            "returns",
            (
                ("tenant", "key"),
                ("return_ref", "key"),
                ("order_ref", "key"),
                ("line_id", "key"),
                ("sku", "code"),
                ("quantity", "count"),
                ("received_quantity", "count"),
                ("disposition", "disposition"),
                ("refund_amount", "money"),
                ("currency", "currency"),
                ("status", "text"),
                ("received_at", "time?"),
                ("processed_at", "time?"),
            ),
        ),
        Schema(
            "credits",
            (
                ("tenant", "key"),
                ("credit_note", "key"),
                ("associated_ref", "key"),
                ("order_ref", "text"),
                ("stock_code", "code"),
                ("quantity", "count"),
                ("net", "money"),
                ("vat", "money"),
                ("gross", "money"),
                ("currency", "currency"),
                ("issued_at", "time"),
            ),
        ),
        Schema(
            "stock",
            (
                ("tenant", "key"),
                ("stock_code", "code"),
                ("site", "code"),
                ("quantity", "signed"),
                ("reason", "text"),
                ("reference", "text"),
                ("moved_at", "time?"),
            ),
        ),
        Schema(
            "refunds",
            (
                ("tenant", "key"),
                ("refund_id", "key"),
                ("payment_ref", "key"),
                ("amount", "money"),
                ("currency", "currency"),
                ("status", "refund_status"),
                ("created_at", "time"),
                ("return_ref", "text"),
                ("credit_note", "text"),
            ),
        ),
        Schema("sku_map", (("tenant", "key"), ("sku", "code"), ("stock_code", "code"))),
    )
}


def header_mapping(data: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Validate a parsed `--columns` TOML: `{file: {canonical: export header}}`.

    Raises ValueError naming the unknown file or column.
    """
    mapping: dict[str, dict[str, str]] = {}
    for file, table in data.items():
        if file not in SCHEMAS:
            raise ValueError(
                f"unknown file {file!r} in column mapping (known: {', '.join(SCHEMAS)})"
            )
        unknown = sorted(set(table) - set(SCHEMAS[file].columns))
        if unknown:
            raise ValueError(f"unknown column(s) for {file}: {', '.join(unknown)}")
        mapping[file] = {str(name): str(header) for name, header in table.items()}
    return mapping
