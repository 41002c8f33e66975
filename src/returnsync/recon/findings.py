"""What reconciliation finds: one `Finding` per gap, with who owns it and what to do.

A finding is a value: the rules build it, renderers print it, and (later) the
monitoring opens, updates and auto-closes a record under its `key`. The kind
names are part of the contract with finance and operations; never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Mapping
    from decimal import Decimal


class FindingKind(StrEnum):
    """The gaps reconciliation detects (docs/reconciliation-files.md defines each one)."""

    RECEIVED_NOT_CREDITED = "received_not_credited"
    CREDIT_NOTE_WITHOUT_REFUND = "credit_note_without_refund"
    REFUNDED_WITHOUT_CREDIT_NOTE = "refunded_without_credit_note"
    CREDIT_NOTE_WITHOUT_RETURN = "credit_note_without_return"
    REFUNDED_NOT_RESTOCKED = "refunded_not_restocked"
    RESTOCKED_DAMAGED = "restocked_damaged"
    DUPLICATE_CREDIT_NOTE = "duplicate_credit_note"
    DUPLICATE_REFUND = "duplicate_refund"
    AMOUNT_MISMATCH = "amount_mismatch"
    ROUNDING_DIFFERENCE = "rounding_difference"
    QUANTITY_MISMATCH = "quantity_mismatch"
    OVER_CREDIT = "over_credit"
    SKU_UNMATCHED = "sku_unmatched"
    WEBHOOK_GAP = "webhook_gap"


class Severity(StrEnum):
    """How urgent a finding is; compare with `rank`."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for info up to 4 for critical."""
        return list(Severity).index(self)


class Owner(StrEnum):
    """The team that works a finding."""

    OPERATIONS = "operations"
    FINANCE = "finance"
    CX = "cx"
    INTEGRATION = "integration"


class FindingKey(NamedTuple):
    """What identifies a finding across runs: open it once, update it, close it when green."""

    tenant: str
    kind: FindingKind
    return_ref: str
    line_id: str | None


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One gap between the returns platform, the ERP and the payment gateway.

    `line_id` is the return line for line-level kinds, None for return-level kinds,
    and the document number (credit note or refund id) for a document that links
    to no known return. `amount` is what is at stake, in `currency`, or None when
    no money figure applies. `evidence` holds the facts that prove it, as strings.
    """

    kind: FindingKind
    tenant: str
    return_ref: str
    line_id: str | None
    severity: Severity
    owner: Owner
    amount: Decimal | None
    currency: str
    evidence: Mapping[str, str] = field(default_factory=dict)
    suggested_action: str

    @property
    def key(self) -> FindingKey:
        """The stable identity of this finding (tenant, kind, return ref, line)."""
        return FindingKey(self.tenant, self.kind, self.return_ref, self.line_id)

    @property
    def sort_key(self) -> tuple[str, str, str, str]:
        """The order findings are reported in: tenant, return, line, kind."""
        return (self.tenant, self.return_ref, self.line_id or "", self.kind.value)
