"""How a drawn return shows up in each system's export: the rows of the four files."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from returnsync.domain.model import associated_ref
from returnsync.recon import shapes
from returnsync.recon.findings import FindingKind

if TYPE_CHECKING:
    import random
    from datetime import datetime

    from returnsync.recon.shapes import Drawn, Line

K = FindingKind
Row = tuple[object, ...]
Rows = dict[str, list[Row]]


def rows(rng: random.Random, drawn: Drawn) -> Rows:
    """The returns, credits, stock and refunds rows of `drawn`."""
    out: Rows = {"returns": [], "credits": [], "stock": [], "refunds": []}
    start, kind, flight = drawn.start, drawn.kind, drawn.flight
    if kind is K.REFUNDED_WITHOUT_CREDIT_NOTE:
        received_at = shapes.ago(start.as_of, rng, 20, 30)
    elif flight in {"received", "credited"}:
        received_at = shapes.ago(start.as_of, rng, 26 if flight == "credited" else 1, 40)
    else:
        received_at = shapes.ago(start.as_of, rng, 96, 720)
    processed_at = shapes.later(received_at, rng, 1, 6)
    if flight == "transit":
        for line in drawn.lines:
            line.received, line.disposition, line.credit, line.site = 0, "", None, ""
    _return_rows(drawn, received_at, processed_at, out)
    if flight in {"transit", "received"} or kind is K.WEBHOOK_GAP:
        return out
    reference = shapes.reference(rng, start, drawn.ref)
    moved_at = shapes.later(processed_at, rng, 0, 0.5)
    for line in drawn.lines:
        if line.site and line.received > 0:
            code = shapes.stock_code(line.item)
            row = (start.tenant, code, line.site, line.received, "RETURN", reference)
            out["stock"].append((*row, shapes.iso(moved_at)))
    if flight == "credited":
        issued_at = shapes.ago(start.as_of, rng, 1, 20)
    else:
        issued_at = shapes.later(processed_at, rng, 1, 12)
    notes = _credit_notes(rng, drawn, reference, issued_at, out)
    if flight == "credited" or kind is K.CREDIT_NOTE_WITHOUT_REFUND:
        return out
    _refund_rows(rng, drawn, notes=notes, received_at=received_at, issued_at=issued_at, out=out)
    return out


def _return_rows(drawn: Drawn, received_at: datetime, processed_at: datetime, out: Rows) -> None:
    start = drawn.start
    received = drawn.flight != "transit"
    statuses = {"transit": "InTransit", "received": "Received", "credited": "Processed"}
    status = statuses.get(drawn.flight or "", "Refunded")
    for line in drawn.lines:
        out["returns"].append(
            (
                start.tenant,
                drawn.ref,
                f"ORD-{start.number:07d}",
                line.line_id,
                line.sku,
                line.quantity,
                line.received,
                line.disposition,
                line.amount,
                start.currency,
                status,
                shapes.iso(received_at) if received else "",
                shapes.iso(processed_at) if received else "",
            )
        )


def _credit_rows(drawn: Drawn, number: str, ref: str, at: datetime, lines: list[Line]) -> list[Row]:
    start = drawn.start
    found: list[Row] = []
    for line in lines:
        quantity, gross = line.credit or (0, Decimal(0))
        vat = shapes.vat_of(gross)
        code = shapes.stock_code(line.item)
        head = (start.tenant, number, ref, f"ORD-{start.number:07d}", code, quantity)
        found.append((*head, gross - vat, vat, gross, start.currency, shapes.iso(at)))
    return found


def _credit_notes(
    rng: random.Random, drawn: Drawn, reference: str, issued_at: datetime, out: Rows
) -> list[tuple[str, Decimal]]:
    """Write the credit notes; return (number, gross) of each one a refund is due for."""
    number = f"CN{drawn.start.number:07d}"
    credited = [line for line in drawn.lines if line.credit]
    if drawn.kind is K.CREDIT_NOTE_WITHOUT_RETURN:
        orphan = associated_ref(drawn.start.code, f"X{drawn.start.number:07d}")
        out["credits"] += _credit_rows(drawn, f"{number}X", orphan, issued_at, credited[:1])
    if drawn.kind is K.REFUNDED_WITHOUT_CREDIT_NOTE or not credited:
        return []
    groups = [credited]
    if drawn.kind is None and len(credited) > 1 and rng.random() < 0.05:
        groups = [credited[:1], credited[1:]]  # credited in two goes
    notes: list[tuple[str, Decimal]] = []
    for index, group in enumerate(groups):
        name = number + ("B" if index else "")
        at = issued_at + timedelta(hours=index)
        out["credits"] += _credit_rows(drawn, name, reference, at, group)
        notes.append((name, sum((line.credit[1] for line in group if line.credit), Decimal(0))))
    if drawn.kind is K.DUPLICATE_CREDIT_NOTE:
        at = issued_at + timedelta(hours=2)
        out["credits"] += _credit_rows(drawn, f"{number}D", reference, at, groups[0])
    return notes


def _refund_rows(
    rng: random.Random,
    drawn: Drawn,
    *,
    notes: list[tuple[str, Decimal]],
    received_at: datetime,
    issued_at: datetime,
    out: Rows,
) -> None:
    start, ref = drawn.start, drawn.ref
    payment = f"pi_{start.number:08d}"
    first = f"re_{start.number:08d}"
    if drawn.kind is K.REFUNDED_WITHOUT_CREDIT_NOTE:
        owed = sum((line.amount for line in drawn.lines if line.credit), Decimal(0))
        created = shapes.iso(shapes.ago(start.as_of, rng, 2, 10))
        out["refunds"].append(
            (start.tenant, first, payment, owed, start.currency, "succeeded", created, ref, "")
        )
        return
    if not notes:
        return
    if drawn.kind is None and rng.random() < 0.01:  # a failed attempt before the real one
        at = shapes.iso(shapes.later(issued_at, rng, 0.1, 0.4))
        failed = (start.tenant, f"{first}F", payment, notes[0][1], start.currency, "failed", at)
        out["refunds"].append((*failed, ref, notes[0][0]))
    for index, (number, gross) in enumerate(notes):
        amount = gross + Decimal("5.00") if drawn.kind is K.AMOUNT_MISMATCH else gross
        status = "pending" if rng.random() < 0.02 else "succeeded"
        at = shapes.iso(shapes.later(issued_at + timedelta(hours=index), rng, 0.5, 6))
        named = "" if rng.random() < 0.05 else ref  # some refunds carry only the credit note
        head = (start.tenant, first + ("B" if index else ""), payment, amount, start.currency)
        out["refunds"].append((*head, status, at, named, number))
    if drawn.kind is K.DUPLICATE_REFUND:  # goodwill paid by hand before the return arrived
        at = shapes.iso(received_at - timedelta(days=2))
        goodwill = (start.tenant, f"{first}G", payment, notes[0][1], start.currency, "succeeded")
        out["refunds"].append((*goodwill, at, "", ""))
