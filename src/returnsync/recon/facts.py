"""Gathered facts: everything the rules need about one match line, return or document.

Two gatherers produce these: `recon.gather` from an in-memory `Snapshot`, and
`recon.files` with DuckDB SQL over export files. The rules (`recon.rules`) decide
over facts only, so both paths share every decision. Codes are normalised
(`linking.normalise_code`); money is Decimal to the penny; times are aware UTC;
tuples of document numbers are sorted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime
    from decimal import Decimal


@dataclass(frozen=True, kw_only=True)
class LineFacts:
    """One match line: the lines of a return that resolve to one stock code.

    A line whose SKU does not resolve is a match line of its own with
    `stock_code` None (`sku_candidates` lists the codes when it is ambiguous).
    `line_id` is the smallest line id of the match line; `line_ids` all of them.
    Credit figures count only credit notes that are not duplicates.
    """

    tenant: str
    return_ref: str
    line_id: str
    line_ids: tuple[str, ...]
    sku: str
    stock_code: str | None
    sku_candidates: tuple[str, ...]
    currency: str
    quantity: int
    received_quantity: int
    expected_amount: Decimal
    first_received_at: datetime | None
    restock_quantity: int  # received units whose disposition restocks
    forbidden_quantity: int  # received units whose disposition must not reach a saleable site
    forbidden_dispositions: tuple[str, ...]
    credit_notes: tuple[str, ...]
    credited_quantity: int
    credited_amount: Decimal
    saleable_quantity: int  # net units moved to the tenant's saleable sites for this return
    return_traced: bool  # anything downstream (credit, stock, refund naming it) for the return
    return_refunded_at: datetime | None  # first counted refund of the return, goodwill included


@dataclass(frozen=True, kw_only=True)
class ReturnFacts:
    """One return with the documents linked to it.

    `credit_notes` are the effective (non-duplicate) notes in issue order by number;
    `duplicate_credit_notes` repeat an earlier note of the same return line for line.
    `refunds` are the counted refunds (named or goodwill) ordered by number.
    """

    tenant: str
    return_ref: str
    order_ref: str
    currency: str
    received_quantity: int
    expected_amount: Decimal
    first_received_at: datetime | None
    has_unmatched_sku: bool
    traced: bool
    credit_notes: tuple[str, ...]
    credit_line_count: int
    credited_amount: Decimal
    first_issued_at: datetime | None
    last_issued_at: datetime | None
    duplicate_credit_notes: tuple[str, ...]
    duplicate_amount: Decimal
    unmatched_stock_codes: tuple[str, ...]  # credited stock codes on no match line
    unmatched_amount: Decimal
    refunds: tuple[str, ...]
    goodwill_refunds: tuple[str, ...]
    refunded_amount: Decimal
    first_refund_amount: Decimal  # of the earliest counted refund


@dataclass(frozen=True, kw_only=True)
class OrphanCreditNoteFacts:
    """A credit note whose associated ref links to no return of its tenant."""

    tenant: str
    credit_note: str
    associated_ref: str
    return_ref: str
    currency: str
    gross: Decimal
    line_count: int
    issued_at: datetime
    refunds: tuple[str, ...]  # counted refunds that name this note


@dataclass(frozen=True, kw_only=True)
class OrphanRefundFacts:
    """A counted refund that links to no return and no credit note."""

    tenant: str
    refund_id: str
    payment_ref: str
    return_ref: str
    credit_note: str
    amount: Decimal
    currency: str
    created_at: datetime
