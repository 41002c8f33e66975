"""One generated return with its credit notes, stock movements and refunds.

`build` draws a clean return (or one in flight inside its SLAs), then bends it to
carry one planted gap when asked, and says which finding that gap must produce.
Rows are tuples in the canonical column order of `recon.columns`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from returnsync.domain.model import associated_ref
from returnsync.domain.money import round_half_up
from returnsync.recon.findings import FindingKey, FindingKind

if TYPE_CHECKING:
    import random

K = FindingKind
AS_OF = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)
TENANTS = (("acme", "AC1", "GBP"), ("bolt", "BO2", "GBP"), ("cora", "CO3", "EUR"))
SKUS_PER_TENANT = 2000
DISPOSITIONS = (  # (disposition, weight, site its stock goes to or "")
    ("RESALEABLE", 80, "MAIN"),
    ("RESALE_HOLD", 6, "HOLD"),
    ("QUARANTINE", 5, "QUAR"),
    ("WRITE_OFF", 5, ""),
    ("RETURN_TO_VENDOR", 3, "RTV"),
    ("MISSING", 1, ""),
)
SITES = {name: site for name, _, site in DISPOSITIONS}
NEEDS_TWO_LINES = {K.RECEIVED_NOT_CREDITED, K.SKU_UNMATCHED}
LINE_PLANTS = {
    K.RECEIVED_NOT_CREDITED,
    K.REFUNDED_NOT_RESTOCKED,
    K.RESTOCKED_DAMAGED,
    K.ROUNDING_DIFFERENCE,
    K.QUANTITY_MISMATCH,
    K.OVER_CREDIT,
    K.SKU_UNMATCHED,
}


def sku(item: int) -> str:
    """The SKU of catalogue item `item`."""
    return f"SKU-{item:05d}"


def stock_code(item: int) -> str:
    """The Khaos stock code of catalogue item `item`."""
    return f"SC{item:05d}"


class Start(NamedTuple):
    """Who the return belongs to, its sequence number, and the moment of the snapshot."""

    tenant: str
    code: str
    currency: str
    number: int
    as_of: datetime


@dataclass
class Line:
    """One drawn return line; `credit` is (quantity, gross) or None when not credited."""

    line_id: str
    item: int
    quantity: int
    received: int
    disposition: str
    unit: Decimal
    sku: str = ""
    credit: tuple[int, Decimal] | None = None
    site: str = ""

    @property
    def amount(self) -> Decimal:
        """What ZigZag says is owed for the line."""
        return self.unit * self.received


@dataclass
class Drawn:
    """One drawn return: its lines, whether it is in flight, and the gap planted in it.

    `flight` is None (done), "received" (received, nothing downstream yet), "credited"
    (credited, refund not yet due) or "transit" (not received yet).
    """

    start: Start
    ref: str
    kind: FindingKind | None
    flight: str | None
    lines: list[Line]
    expected: set[FindingKey] = field(default_factory=set)


def _draw_line(rng: random.Random, ref: str, index: int) -> Line:
    item = rng.randrange(SKUS_PER_TENANT)
    quantity = rng.choice((1, 1, 1, 2, 3))
    received = quantity - 1 if quantity > 1 and rng.random() < 0.1 else quantity  # partial
    names = [name for name, _, _ in DISPOSITIONS]
    disposition = rng.choices(names, weights=[w for _, w, _ in DISPOSITIONS])[0]
    received = 0 if disposition == "MISSING" else received
    line = Line(f"{ref}-{index}", item, quantity, received, disposition, Decimal(0))
    line.unit = Decimal(rng.randint(499, 12000)).scaleb(-2)
    line.sku = sku(item).lower() if rng.random() < 0.1 else sku(item)
    line.site = SITES[disposition]
    line.credit = (received, line.amount) if line.amount > 0 else None
    return line


def _creditable(line: Line) -> None:
    line.disposition, line.site, line.received = "RESALEABLE", "MAIN", line.quantity
    line.credit = (line.quantity, line.amount)


def draw(rng: random.Random, start: Start, kind: FindingKind | None) -> Drawn:
    """A return of `start.tenant`, clean or in flight, or carrying the gap `kind`."""
    ref = f"R{start.number:07d}"
    count = rng.choice((1, 1, 2, 2, 3, 4))
    items: set[int] = set()
    lines: list[Line] = []
    while len(lines) < max(count, 2 if kind in NEEDS_TWO_LINES else 1):
        line = _draw_line(rng, ref, len(lines) + 1)
        if line.item not in items:
            items.add(line.item)
            lines.append(line)
    flights = (None, "received", "credited", "transit")
    flight = None if kind else rng.choices(flights, (97, 1, 1, 1))[0]
    drawn = Drawn(start, ref, kind, flight, lines)
    if kind is None:
        return drawn
    _creditable(lines[0])
    if kind in LINE_PLANTS:
        target = lines[1] if kind is K.RECEIVED_NOT_CREDITED else lines[0]
        drawn.expected.add(FindingKey(start.tenant, kind, ref, target.line_id))
        _plant_line(kind, lines, target, start.number)
    elif kind is K.CREDIT_NOTE_WITHOUT_RETURN:
        orphan = f"X{start.number:07d}"
        drawn.expected.add(FindingKey(start.tenant, kind, orphan, f"CN{start.number:07d}X"))
    else:
        drawn.expected.add(FindingKey(start.tenant, kind, ref, None))
    return drawn


def _plant_line(kind: FindingKind, lines: list[Line], target: Line, number: int) -> None:
    if kind is K.RECEIVED_NOT_CREDITED:
        _creditable(target)
        target.credit = None
    elif kind is K.REFUNDED_NOT_RESTOCKED:
        target.site = ""
    elif kind is K.RESTOCKED_DAMAGED:
        target.disposition = "WRITE_OFF"
    elif kind is K.ROUNDING_DIFFERENCE:
        target.credit = (target.quantity, target.amount - Decimal("0.01"))
    elif kind is K.QUANTITY_MISMATCH:
        target.quantity, target.received = 3, 2
        target.credit = (3, target.unit * 3)
    elif kind is K.OVER_CREDIT:
        target.quantity = target.received = 1
        target.credit = (2, target.unit * 2)
    elif kind is K.SKU_UNMATCHED:
        target.sku, target.credit, target.site = f"UNMAPPED-{number}", None, ""
        _creditable(lines[1])


def vat_of(gross: Decimal) -> Decimal:
    """UK VAT at 20% inside a gross amount, half-up to the penny."""
    return round_half_up(gross / 6)


def reference(rng: random.Random, start: Start, ref: str) -> str:
    """The associated ref Khaos holds: mostly `ZZ-<code>-<ref>`, sometimes the plain ref."""
    return ref if rng.random() < 0.2 else associated_ref(start.code, ref)


def iso(moment: datetime) -> str:
    """A time as the export files write it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(as_of: datetime, rng: random.Random, low_hours: float, high_hours: float) -> datetime:
    """A whole-second moment between `high_hours` and `low_hours` before `as_of`."""
    return as_of - timedelta(seconds=int(rng.uniform(low_hours, high_hours) * 3600))


def later(moment: datetime, rng: random.Random, low_hours: float, high_hours: float) -> datetime:
    """A whole-second moment `low_hours` to `high_hours` after `moment`."""
    return moment + timedelta(seconds=int(rng.uniform(low_hours, high_hours) * 3600))
