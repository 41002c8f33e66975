"""ZigZag wire -> domain: a Return with one line per inspection group (Z-6, Z-8, Z-9).

Only fully inspected items produce lines: until every received unit of an item has a
disposition, nothing about that item can be staged for Khaos or credited.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from returnsync.adapters.errors import InvalidPayloadError
from returnsync.adapters.zigzag import schemas
from returnsync.domain.model import Disposition, Return, ReturnLine
from returnsync.domain.money import Money

if TYPE_CHECKING:
    from collections.abc import Mapping


def parse_return(raw: Mapping[str, Any]) -> schemas.Return:
    """Validate a raw Return; raises InvalidPayloadError naming every bad field."""
    try:
        return schemas.Return.model_validate(raw)
    except ValidationError as exc:
        raise InvalidPayloadError.from_validation("ZigZag Return", exc) from exc


def parse_envelope(body: bytes) -> schemas.WebhookEnvelope:
    """Parse a webhook body (Z-9).

    Raises InvalidPayloadError for malformed JSON, a non-object, missing fields or wrong
    types, listing every bad field (for example `data.items.0.unitPrice: ...`).
    """
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPayloadError("ZigZag webhook", [f"not JSON: {exc}"]) from exc
    if not isinstance(document, dict):
        raise InvalidPayloadError(
            "ZigZag webhook", [f"(root): a JSON object expected, got {type(document).__name__}"]
        )
    try:
        return schemas.WebhookEnvelope.model_validate(document)
    except ValidationError as exc:
        raise InvalidPayloadError.from_validation("ZigZag webhook", exc) from exc


def item_fully_inspected(item: schemas.Item) -> bool:
    """Whether every received unit of the item has been inspected (and some were received)."""
    return item.receivedQuantity > 0 and item.inspected_quantity == item.receivedQuantity


def is_fully_inspected(raw: Mapping[str, Any] | schemas.Return) -> bool:
    """Whether the whole return is inspected: each item's inspections sum to its received
    quantity, and at least one unit was received. Raises InvalidPayloadError on a bad Return.
    """
    ret = raw if isinstance(raw, schemas.Return) else parse_return(raw)
    received = any(item.receivedQuantity > 0 for item in ret.items)
    return received and all(item.inspected_quantity == item.receivedQuantity for item in ret.items)


def to_domain(tenant: str, raw: Mapping[str, Any] | schemas.Return) -> Return:
    """The domain Return of a raw ZigZag Return, in state OPEN (the caller owns our state).

    Each inspection group of a fully inspected item becomes one ReturnLine with
    `line_id = f"{returnItemId}#{n}"` (n = 1-based position of the inspection in the item) and
    the item's `unitPrice` in the return's currency. Items not yet fully inspected give no
    lines. Raises InvalidPayloadError for a malformed Return, an unknown disposition, or
    inspections adding up to more than was received.
    """
    ret = raw if isinstance(raw, schemas.Return) else parse_return(raw)
    lines: list[ReturnLine] = []
    problems: list[str] = []
    for i, item in enumerate(ret.items):
        if item.inspected_quantity > item.receivedQuantity:
            problems.append(
                f"items.{i}.inspections: {item.inspected_quantity} units inspected but "
                f"{item.receivedQuantity} received"
            )
            continue
        if not item_fully_inspected(item):
            continue
        unit_price = Money(item.unitPrice, ret.currency)
        for n, inspection in enumerate(item.inspections, start=1):
            try:
                disposition = Disposition(inspection.disposition)
            except ValueError:
                problems.append(
                    f"items.{i}.inspections.{n - 1}.disposition: unknown {inspection.disposition!r}"
                )
                continue
            lines.append(
                ReturnLine(
                    line_id=f"{item.returnItemId}#{n}",
                    item_id=item.returnItemId,
                    sku=item.sku,
                    quantity=inspection.quantity,
                    disposition=disposition,
                    unit_price=unit_price,
                    condition=inspection.condition,
                )
            )
    if problems:
        raise InvalidPayloadError(f"ZigZag Return {ret.returnId}", problems)
    return Return(
        tenant=tenant,
        return_ref=ret.returnId,
        order_ref=ret.orderNumber,
        currency=ret.currency,
        warehouse=ret.dcWarehouse,
        zigzag_status=ret.status,
        zigzag_updated_at=ret.updatedAt,
        lines=tuple(lines),
    )
