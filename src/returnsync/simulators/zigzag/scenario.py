"""The scenario generator: many realistic returns, each driven to Processed.

A scenario is planned first (pure: orders and capacity in, a list of
`PlannedReturn` out, every random draw from one `random.Random`), then played
through the same lifecycle calls the admin API uses, so it emits the same
events. The same seed over the same registered orders gives the same plan, the
same return ids and the same inspections.

The default mix (`ScenarioMix`): about 60% of returns have one line and the
rest two or three; about 25% of lines are partial (fewer units returned than
ordered, or fewer received than returned); unit groups are 70% RESALEABLE, 10%
RESALE_HOLD, 8% WRITE_OFF, 5% QUARANTINE, 4% RETURN_TO_VENDOR, 3% MISSING; and
some lines are split across two dispositions. Returns spread round-robin over
the retailer's orders; an order whose lines sit in several DCs yields one
return per DC over time (multi-warehouse splits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from returnsync.simulators.zigzag.commands import NewInspection, NewReturnItem
from returnsync.simulators.zigzag.errors import FieldError, bad_request, conflict
from returnsync.simulators.zigzag.model import RETURN_REASONS, Condition, Disposition

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping, Sequence

    from returnsync.simulators.zigzag.model import Order
    from returnsync.simulators.zigzag.state import ZigZagState

DEFAULT_DISPOSITIONS: dict[Disposition, float] = {
    Disposition.RESALEABLE: 0.70,
    Disposition.RESALE_HOLD: 0.10,
    Disposition.WRITE_OFF: 0.08,
    Disposition.QUARANTINE: 0.05,
    Disposition.RETURN_TO_VENDOR: 0.04,
    Disposition.MISSING: 0.03,
}

#: `mix` members (wire name -> attribute of `ScenarioMix`) besides `dispositions`.
_WIRE_NAMES = {"singleLine": "single_line", "partial": "partial", "splitLine": "split_line"}

#: Conditions an inspector plausibly records for each disposition.
CONDITIONS: dict[Disposition, tuple[Condition, ...]] = {
    Disposition.RESALEABLE: (Condition.A_NEW, Condition.A_NEW, Condition.B_GOOD),
    Disposition.RESALE_HOLD: (Condition.B_GOOD, Condition.C_FAIR),
    Disposition.WRITE_OFF: (Condition.DAMAGED, Condition.D_POOR, Condition.JUNK),
    Disposition.QUARANTINE: (Condition.D_POOR, Condition.DAMAGED),
    Disposition.RETURN_TO_VENDOR: (Condition.DAMAGED, Condition.INCORRECT_ITEM),
    Disposition.MISSING: (Condition.MISSING,),
}

NOTES: dict[Disposition, tuple[str, ...]] = {
    Disposition.RESALEABLE: ("",),
    Disposition.RESALE_HOLD: ("needs steaming", "creased", "tags removed"),
    Disposition.WRITE_OFF: ("torn seam", "stained", "water damage"),
    Disposition.QUARANTINE: ("odour", "possible counterfeit", "awaiting QA"),
    Disposition.RETURN_TO_VENDOR: ("manufacturing fault", "wrong item from supplier"),
    Disposition.MISSING: ("not in parcel",),
}


@dataclass(kw_only=True)
class ScenarioMix:
    """The probabilities a scenario draws from; `mix` in `POST /_sim/scenario` patches them."""

    single_line: float = 0.60
    partial: float = 0.25
    split_line: float = 0.20
    dispositions: dict[Disposition, float] = field(
        default_factory=lambda: dict(DEFAULT_DISPOSITIONS)
    )

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> ScenarioMix:
        """Parse `{"singleLine", "partial", "splitLine", "dispositions": {name: weight}}`.

        Missing members keep their defaults; 400 for unknown members or bad values.
        """
        mix = cls()
        errors: list[FieldError] = []
        for key, value in (raw or {}).items():
            if key == "dispositions":
                mix.dispositions = _weights(value, errors)
            elif key in _WIRE_NAMES:
                if not isinstance(value, int | float) or not 0 <= value <= 1:
                    errors.append(FieldError(field=f"mix.{key}", message="a probability 0..1"))
                else:
                    setattr(mix, _WIRE_NAMES[key], float(value))
            else:
                errors.append(FieldError(field=f"mix.{key}", message="unknown mix member"))
        if errors:
            raise bad_request("invalid scenario mix", errors)
        return mix

    def to_json(self) -> dict[str, Any]:
        """Wire view."""
        wire = {wire: getattr(self, attr) for wire, attr in _WIRE_NAMES.items()}
        return wire | {"dispositions": {d.value: w for d, w in self.dispositions.items()}}


def _weights(raw: Any, errors: list[FieldError]) -> dict[Disposition, float]:
    weights: dict[Disposition, float] = {}
    if not isinstance(raw, dict):
        errors.append(FieldError(field="mix.dispositions", message="an object of weights"))
        return weights
    for name, weight in raw.items():
        if name not in Disposition.__members__ or not isinstance(weight, int | float):
            errors.append(FieldError(field=f"mix.dispositions.{name}", message="bad weight"))
        elif weight > 0:
            weights[Disposition(name)] = float(weight)
    if not weights:
        errors.append(FieldError(field="mix.dispositions", message="no positive weight"))
    return weights


@dataclass(frozen=True, kw_only=True)
class PlannedLine:
    """One line of a planned return: units returned, received, and how they are inspected."""

    sku: str
    quantity: int
    received: int
    reason_id: int
    groups: tuple[NewInspection, ...]


@dataclass(frozen=True, kw_only=True)
class PlannedReturn:
    """One planned return against one order, all lines bound for one DC."""

    order_number: str
    lines: tuple[PlannedLine, ...]


def plan(
    orders: Sequence[tuple[Order, dict[str, int]]],
    *,
    count: int,
    rng: random.Random,
    mix: ScenarioMix,
) -> list[PlannedReturn]:
    """Plan `count` returns over `orders` (each with its returnable units per SKU).

    Raises a 409 when the orders run out of returnable units first.
    """
    capacity = {order.order_number: dict(left) for order, left in orders}
    cycle = [order for order, _ in orders]
    rng.shuffle(cycle)
    planned: list[PlannedReturn] = []
    cursor = 0
    for _ in range(count):
        for step in range(len(cycle)):
            order = cycle[(cursor + step) % len(cycle)]
            if any(units > 0 for units in capacity[order.order_number].values()):
                cursor = (cursor + step + 1) % len(cycle)
                break
        else:
            raise conflict(
                f"the orders ran out of returnable units after {len(planned)} of {count} returns"
            )
        planned.append(_plan_return(order, capacity[order.order_number], rng, mix))
    return planned


def _plan_return(
    order: Order, left: dict[str, int], rng: random.Random, mix: ScenarioMix
) -> PlannedReturn:
    open_lines = [line for line in order.lines if left[line.sku] > 0]
    dc = rng.choice(sorted({line.dc_warehouse for line in open_lines}))
    candidates = [line for line in open_lines if line.dc_warehouse == dc]
    wanted = 1 if rng.random() < mix.single_line else rng.choice((2, 3))
    chosen = sorted(
        rng.sample(range(len(candidates)), min(wanted, len(candidates))),
    )
    lines: list[PlannedLine] = []
    for index in chosen:
        sku = candidates[index].sku
        quantity, received = _units(left[sku], rng, mix)
        left[sku] -= quantity
        lines.append(
            PlannedLine(
                sku=sku,
                quantity=quantity,
                received=received,
                reason_id=rng.choice(sorted(RETURN_REASONS)),
                groups=_inspections(received, rng, mix),
            )
        )
    return PlannedReturn(order_number=order.order_number, lines=tuple(lines))


def _units(available: int, rng: random.Random, mix: ScenarioMix) -> tuple[int, int]:
    """(returned, received): everything left, or a partial of either kind when possible."""
    if available < 2 or rng.random() >= mix.partial:
        return available, available
    if rng.random() < 0.5:
        returned = rng.randint(1, available - 1)
        return returned, returned
    return available, rng.randint(1, available - 1)


def _inspections(received: int, rng: random.Random, mix: ScenarioMix) -> tuple[NewInspection, ...]:
    first = _disposition(rng, mix)
    if received < 2 or rng.random() >= mix.split_line:
        return (_group(received, first, rng),)
    second = _disposition(rng, mix, avoid=first)
    split = rng.randint(1, received - 1)
    return (_group(split, first, rng), _group(received - split, second, rng))


def _disposition(
    rng: random.Random, mix: ScenarioMix, avoid: Disposition | None = None
) -> Disposition:
    choices = [d for d in mix.dispositions if d is not avoid] or list(mix.dispositions)
    weights = [mix.dispositions[d] for d in choices]
    return rng.choices(choices, weights=weights)[0]


def _group(quantity: int, disposition: Disposition, rng: random.Random) -> NewInspection:
    return NewInspection(
        quantity=quantity,
        condition=rng.choice(CONDITIONS[disposition]),
        disposition=disposition,
        notes=rng.choice(NOTES[disposition]),
    )


def run(
    state: ZigZagState,
    retailer_code: str,
    *,
    count: int,
    rng: random.Random,
    mix: ScenarioMix,
) -> list[str]:
    """Plan and play a scenario; answers the new return ids, each now Processed.

    Nothing is created when planning fails (404 unknown retailer, 409 not
    enough returnable units).
    """
    state.catalog.retailer(retailer_code)
    orders = [
        (order, state.returnable(retailer_code, order.order_number))
        for order in state.catalog.orders(retailer_code)
    ]
    return_ids: list[str] = []
    for planned in plan(orders, count=count, rng=rng, mix=mix):
        created = state.create_return(
            retailer_code,
            planned.order_number,
            [
                NewReturnItem(sku=line.sku, quantity=line.quantity, return_reason_id=line.reason_id)
                for line in planned.lines
            ],
        )
        return_id = str(created["returnId"])
        item_ids = [str(item["returnItemId"]) for item in created["items"]]
        state.approve(return_id)
        state.create_label(return_id)
        state.receive(
            return_id,
            {item_id: line.received for item_id, line in zip(item_ids, planned.lines, strict=True)},
        )
        state.inspect(
            return_id,
            {item_id: line.groups for item_id, line in zip(item_ids, planned.lines, strict=True)},
        )
        return_ids.append(return_id)
    return return_ids
