"""The states of one return in returnsync, and the only moves allowed between them."""

from __future__ import annotations

from enum import StrEnum

from returnsync.domain.errors import IllegalTransitionError


class ReturnState(StrEnum):
    """Where a return stands in returnsync's sequence."""

    OPEN = "open"
    """Known from ZigZag; not every received unit is inspected yet."""
    READY = "ready"
    """Inspected in ZigZag and confirmed through its API; may be sent to Khaos."""
    HELD = "held"
    """Blocked by an open exception (for example an unmatched SKU); replayed once fixed."""
    STAGED = "staged"
    """Offered to Khaos Control for its next returns pull."""
    CREDITED = "credited"
    """Khaos Control raised the credit note."""
    REFUNDED = "refunded"
    """The gateway refund exists (paid by us, or an earlier manual refund adopted)."""
    CLOSED = "closed"
    """ZigZag was told the outcome; nothing more to do."""
    NOTHING_TO_CREDIT = "nothing_to_credit"
    """Every unit was missing from the parcel: no stock, no credit, no refund."""
    CANCELLED = "cancelled"
    """Cancelled or rejected in ZigZag before anything was posted."""


_S = ReturnState
ALLOWED: dict[ReturnState, frozenset[ReturnState]] = {
    _S.OPEN: frozenset({_S.READY, _S.CANCELLED}),
    _S.READY: frozenset({_S.HELD, _S.STAGED, _S.NOTHING_TO_CREDIT}),
    _S.HELD: frozenset({_S.READY, _S.HELD, _S.CANCELLED}),
    _S.STAGED: frozenset({_S.CREDITED}),
    _S.CREDITED: frozenset({_S.REFUNDED, _S.HELD}),
    _S.REFUNDED: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
    _S.NOTHING_TO_CREDIT: frozenset(),
    _S.CANCELLED: frozenset(),
}

TERMINAL = frozenset({_S.CLOSED, _S.NOTHING_TO_CREDIT, _S.CANCELLED})

# The states a ZigZag snapshot can still move or change (cancelled, inspected, new lines).
# Past them the return is Khaos's and the gateway's: a ZigZag event is news to record.
ZIGZAG_DRIVEN = frozenset({_S.OPEN, _S.READY})

# How far along each state is, so a stale event never moves a return backwards.
RANK: dict[ReturnState, int] = {
    _S.OPEN: 0,
    _S.READY: 1,
    _S.HELD: 1,
    _S.STAGED: 2,
    _S.CREDITED: 3,
    _S.REFUNDED: 4,
    _S.CLOSED: 5,
    _S.NOTHING_TO_CREDIT: 5,
    _S.CANCELLED: 5,
}


def transition(current: ReturnState, target: ReturnState) -> ReturnState:
    """Return `target` if the move is allowed, else raise IllegalTransitionError."""
    if target not in ALLOWED[current]:
        raise IllegalTransitionError(current.value, target.value)
    return target
