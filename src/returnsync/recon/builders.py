"""Hand-built snapshots for tests and examples: one clean return in a line of code.

Defaults describe one tenant (`acme`, retailer code `AC1`), GBP, a snapshot at
`AS_OF`, and a return received long before it: received 100 hours ago, credited
90, refunded 80, restocked 95. Without a SKU map a SKU is its own stock code.

    snap = snapshot(*clean_return("R1", ("SKU-1", 2, "10.00")), as_of=AS_OF)

`write_files(snap, directory)` writes the same snapshot as export files, so the
DuckDB path can be checked against `rules.reconcile` on any snapshot.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from returnsync.domain.model import associated_ref
from returnsync.domain.money import round_half_up
from returnsync.recon.columns import SCHEMAS
from returnsync.recon.files import ExportFiles
from returnsync.recon.snapshot import (
    CreditLine,
    Refund,
    ReturnLine,
    SkuLink,
    Snapshot,
    StockMovement,
)

if TYPE_CHECKING:
    from pathlib import Path

AS_OF = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)
Record = ReturnLine | CreditLine | StockMovement | Refund


def ago(hours: float) -> datetime:
    """`hours` before `AS_OF`."""
    return AS_OF - timedelta(hours=hours)


def line(
    return_ref: str = "R1",
    sku: str = "SKU-1",
    quantity: int = 1,
    amount: str = "10.00",
    disposition: str = "RESALEABLE",
    *,
    received: int | None = None,
    line_id: str | None = None,
    tenant: str = "acme",
    received_hours_ago: float = 100,
    currency: str = "GBP",
) -> ReturnLine:
    """A return line, fully received unless `received` says otherwise."""
    got = quantity if received is None else received
    return ReturnLine(
        tenant=tenant,
        return_ref=return_ref,
        order_ref=f"ORD-{return_ref}",
        line_id=line_id or f"{return_ref}-{sku}",
        sku=sku,
        quantity=quantity,
        received_quantity=got,
        disposition=disposition,
        refund_amount=Decimal(amount),
        currency=currency,
        status="Processed",
        received_at=ago(received_hours_ago) if got else None,
    )


def credit(
    credit_note: str = "CN1",
    return_ref: str = "R1",
    stock_code: str = "SKU-1",
    quantity: int = 1,
    gross: str = "10.00",
    *,
    reference: str | None = None,
    tenant: str = "acme",
    issued_hours_ago: float = 90,
    currency: str = "GBP",
) -> CreditLine:
    """A credit line; its associated ref is `ZZ-AC1-<return_ref>` unless `reference` is given."""
    amount = Decimal(gross)
    vat = round_half_up(amount / 6)
    return CreditLine(
        tenant=tenant,
        credit_note=credit_note,
        associated_ref=reference if reference is not None else associated_ref("AC1", return_ref),
        order_ref=f"ORD-{return_ref}",
        stock_code=stock_code,
        quantity=quantity,
        net=amount - vat,
        vat=vat,
        gross=amount,
        currency=currency,
        issued_at=ago(issued_hours_ago),
    )


def move(
    return_ref: str = "R1",
    stock_code: str = "SKU-1",
    quantity: int = 1,
    site: str = "MAIN",
    *,
    tenant: str = "acme",
) -> StockMovement:
    """Units of `stock_code` moved to `site` for the return."""
    return StockMovement(
        tenant=tenant,
        stock_code=stock_code,
        site=site,
        quantity=quantity,
        reason="RETURN",
        reference=associated_ref("AC1", return_ref),
        moved_at=ago(95),
    )


def refund(
    refund_id: str = "re_1",
    return_ref: str = "R1",
    credit_note: str = "CN1",
    amount: str = "10.00",
    *,
    payment_ref: str = "pi_R1",
    status: str = "succeeded",
    tenant: str = "acme",
    created_hours_ago: float = 80,
    currency: str = "GBP",
) -> Refund:
    """A gateway refund; blank `return_ref` and `credit_note` make it a manual one."""
    return Refund(
        tenant=tenant,
        refund_id=refund_id,
        payment_ref=payment_ref,
        amount=Decimal(amount),
        currency=currency,
        status=status,
        created_at=ago(created_hours_ago),
        return_ref=return_ref,
        credit_note=credit_note,
    )


def clean_return(ref: str, *items: tuple[str, int, str]) -> list[Record]:
    """A return credited, restocked and refunded exactly: items are (sku, quantity, amount)."""
    records: list[Record] = []
    total = Decimal(0)
    for sku, quantity, amount in items:
        records += [
            line(ref, sku, quantity, amount),
            credit(f"CN-{ref}", ref, sku, quantity, amount),
        ]
        records.append(move(ref, sku, quantity))
        total += Decimal(amount)
    records.append(refund(f"re-{ref}", ref, f"CN-{ref}", str(total), payment_ref=f"pi_{ref}"))
    return records


def snapshot(
    *records: Record, sku_links: list[SkuLink] | None = None, as_of: datetime = AS_OF
) -> Snapshot:
    """A snapshot of `records`, sorted into their kinds."""
    return Snapshot(
        as_of=as_of,
        returns=tuple(r for r in records if isinstance(r, ReturnLine)),
        credits=tuple(r for r in records if isinstance(r, CreditLine)),
        stock=tuple(r for r in records if isinstance(r, StockMovement)),
        refunds=tuple(r for r in records if isinstance(r, Refund)),
        sku_links=None if sku_links is None else tuple(sku_links),
    )


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def write_files(snap: Snapshot, directory: Path) -> ExportFiles:
    """Write `snap` as the canonical export files (and a SKU map when it has one)."""
    directory.mkdir(parents=True, exist_ok=True)
    groups: dict[str, tuple[object, ...]] = {
        "returns": snap.returns,
        "credits": snap.credits,
        "stock": snap.stock,
        "refunds": snap.refunds,
    }
    if snap.sku_links is not None:
        groups["sku_map"] = snap.sku_links
    for name, records in groups.items():
        columns = SCHEMAS[name].columns
        with (directory / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([_cell(getattr(r, c)) for c in columns] for r in records)
    return ExportFiles(
        returns=directory / "returns.csv",
        credits=directory / "credits.csv",
        stock=directory / "stock.csv",
        refunds=directory / "refunds.csv",
        sku_map=directory / "sku_map.csv" if snap.sku_links is not None else None,
    )
