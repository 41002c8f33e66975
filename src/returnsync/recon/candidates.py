"""Candidates: the match lines and returns that are not plainly clean, as facts.

"Plainly clean" needs no SLA and no tolerance, so it can be checked over every row
in SQL: a match line credited exactly as received and restocked exactly as its
dispositions say, or neither received nor credited; a return whose effective
credit notes are refunded to the penny, with no duplicate and no stray stock
code, or one with nothing linked and nothing received. Everything else goes to
`recon.rules`, which may still find nothing (a return inside its SLA).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from returnsync.recon.facts import (
    LineFacts,
    OrphanCreditNoteFacts,
    OrphanRefundFacts,
    ReturnFacts,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

CANDIDATE_LINES = """
CREATE OR REPLACE TABLE cand_line AS
SELECT g.*, c.credited_quantity, c.credited_amount,
       coalesce(s.saleable_quantity, 0) AS saleable_quantity
FROM grp g
LEFT JOIN cg c
    ON c.tenant = g.tenant AND c.return_ref = g.return_ref AND c.stock_code = g.stock_code
LEFT JOIN sg s
    ON s.tenant = g.tenant AND s.return_ref = g.return_ref AND s.stock_code = g.stock_code
WHERE NOT coalesce(
    g.stock_code IS NOT NULL
    AND coalesce(s.saleable_quantity, 0) = g.restock_quantity
    AND ((c.credited_quantity IS NULL AND (g.received_quantity = 0 OR g.expected_amount = 0))
         OR (c.credited_quantity = g.received_quantity AND c.credited_quantity <= g.quantity
             AND c.credited_amount = g.expected_amount)),
    false)
"""

CANDIDATE_RETURNS = """
CREATE OR REPLACE TABLE cand_ret AS
SELECT t.*, rc.credit_line_count, rc.credited_amount, rc.first_issued_at, rc.last_issued_at,
       rc.duplicate_amount, um.unmatched_codes, um.unmatched_amount,
       rr.refunded_amount, rr.first_refund_amount
FROM ret t
LEFT JOIN rc ON rc.tenant = t.tenant AND rc.return_ref = t.return_ref
LEFT JOIN rr ON rr.tenant = t.tenant AND rr.return_ref = t.return_ref
LEFT JOIN um ON um.tenant = t.tenant AND um.return_ref = t.return_ref
WHERE NOT coalesce(
    coalesce(rc.duplicate_count, 0) = 0
    AND (um.unmatched_codes IS NULL OR t.has_unmatched_sku)
    AND ((rc.note_count >= 1 AND rr.refund_count >= 1 AND rr.refunded_amount = rc.credited_amount)
         OR (rc.return_ref IS NULL AND rr.return_ref IS NULL
             AND (t.received_quantity = 0 OR t.expected_amount = 0))),
    false)
"""

# Anything downstream naming the return (a linked note, a linked stock movement, a
# refund linked by rule 8) and its first counted refund, for candidate returns only.
TRACED = """
CREATE OR REPLACE TABLE tr AS
WITH k AS (SELECT tenant, return_ref FROM cand_line UNION SELECT tenant, return_ref FROM cand_ret)
SELECT k.tenant, k.return_ref,
       EXISTS (SELECT 1 FROM cn WHERE cn.linked AND cn.tenant = k.tenant
                                  AND cn.link_ref = k.return_ref)
       OR EXISTS (SELECT 1 FROM sg WHERE sg.tenant = k.tenant AND sg.return_ref = k.return_ref)
       OR EXISTS (SELECT 1 FROM rf WHERE rf.tenant = k.tenant AND rf.target = k.return_ref)
           AS traced,
       rr.first_refunded_at
FROM k LEFT JOIN rr ON rr.tenant = k.tenant AND rr.return_ref = k.return_ref
"""

LINES = """
WITH notes AS (
    SELECT k.tenant, k.return_ref, k.stock_code,
           list(DISTINCT c.credit_note ORDER BY c.credit_note) AS notes
    FROM cand_line k
    JOIN cn n ON n.tenant = k.tenant AND n.link_ref = k.return_ref AND n.linked AND NOT n.duplicate
    JOIN credits c ON c.tenant = n.tenant AND c.credit_note = n.credit_note
                  AND c.link_ref = n.link_ref AND c.stock_code = k.stock_code
    WHERE c.error IS NULL GROUP BY ALL)
SELECT k.tenant, k.return_ref, k.line_id, k.line_ids, k.sku, k.stock_code,
       {candidates} AS sku_candidates, t.currency, k.quantity, k.received_quantity,
       k.expected_amount, timezone('UTC', k.first_received_at), k.restock_quantity,
       k.forbidden_quantity,
       coalesce(k.forbidden_dispositions, []), coalesce(n.notes, []),
       coalesce(k.credited_quantity, 0), coalesce(k.credited_amount, 0), k.saleable_quantity,
       tr.traced, timezone('UTC', tr.first_refunded_at)
FROM cand_line k
JOIN ret t ON t.tenant = k.tenant AND t.return_ref = k.return_ref
JOIN tr ON tr.tenant = k.tenant AND tr.return_ref = k.return_ref
LEFT JOIN notes n ON n.tenant = k.tenant AND n.return_ref = k.return_ref
                 AND n.stock_code = k.stock_code
{sku_join}
ORDER BY k.tenant, k.return_ref, k.line_id
"""

RETURNS = """
WITH notes AS (
    SELECT n.tenant, n.link_ref AS return_ref,
           list(n.credit_note ORDER BY n.credit_note) FILTER (WHERE NOT n.duplicate) AS notes,
           list(n.credit_note ORDER BY n.credit_note) FILTER (WHERE n.duplicate) AS duplicates
    FROM cn n SEMI JOIN cand_ret k ON k.tenant = n.tenant AND k.return_ref = n.link_ref
    WHERE n.linked GROUP BY ALL),
refunds AS (
    SELECT p.tenant, p.return_ref, list(p.refund_id ORDER BY p.refund_id) AS refunds,
           list(p.refund_id ORDER BY p.refund_id) FILTER (WHERE p.goodwill) AS goodwill
    FROM paid p SEMI JOIN cand_ret k ON k.tenant = p.tenant AND k.return_ref = p.return_ref
    GROUP BY ALL)
SELECT k.tenant, k.return_ref, k.order_ref, k.currency, k.received_quantity, k.expected_amount,
       timezone('UTC', k.first_received_at), k.has_unmatched_sku, tr.traced, coalesce(n.notes, []),
       coalesce(k.credit_line_count, 0), coalesce(k.credited_amount, 0),
       timezone('UTC', k.first_issued_at), timezone('UTC', k.last_issued_at),
       coalesce(n.duplicates, []), coalesce(k.duplicate_amount, 0),
       coalesce(k.unmatched_codes, []), coalesce(k.unmatched_amount, 0), coalesce(f.refunds, []),
       coalesce(f.goodwill, []), coalesce(k.refunded_amount, 0), coalesce(k.first_refund_amount, 0)
FROM cand_ret k
JOIN tr ON tr.tenant = k.tenant AND tr.return_ref = k.return_ref
LEFT JOIN notes n ON n.tenant = k.tenant AND n.return_ref = k.return_ref
LEFT JOIN refunds f ON f.tenant = k.tenant AND f.return_ref = k.return_ref
ORDER BY k.tenant, k.return_ref
"""

ORPHAN_NOTES = """
SELECT n.tenant, n.credit_note, n.associated_ref, n.link_ref, n.currency, n.gross, n.line_count,
       timezone('UTC', n.issued_at), coalesce(r.refunds, [])
FROM cn n
LEFT JOIN (SELECT tenant, credit_note, ride_ref, list(refund_id ORDER BY refund_id) AS refunds
           FROM rf WHERE rides AND counted GROUP BY ALL) r
    ON r.tenant = n.tenant AND r.credit_note = n.credit_note AND r.ride_ref = n.link_ref
WHERE NOT n.linked
ORDER BY n.tenant, n.link_ref, n.credit_note
"""

ORPHAN_REFUNDS = """
SELECT f.tenant, f.refund_id, f.payment_ref, f.named, f.credit_note, f.amount, f.currency,
       timezone('UTC', f.created_at)
FROM rf f ANTI JOIN gw g ON g.tenant = f.tenant AND g.refund_id = f.refund_id
WHERE f.counted AND f.target IS NULL AND NOT f.rides
ORDER BY f.tenant, f.named, f.refund_id
"""


def lines_query(*, sku_map: bool) -> str:
    """The candidate match lines, with the codes an ambiguous SKU maps to."""
    if not sku_map:
        return LINES.format(candidates="[]::VARCHAR[]", sku_join="")
    join = (
        "LEFT JOIN sku_one s ON k.stock_code IS NULL AND s.tenant = k.tenant "
        "AND s.sku = k.sku AND s.codes > 1"
    )
    return LINES.format(candidates="coalesce(s.candidates, [])", sku_join=join)


def _value(value: Any) -> Any:
    """Lists become tuples; times come as naive UTC (5x cheaper to fetch) and get their zone."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC)
    return value


def _names(row: Sequence[Any], fields: Sequence[str]) -> dict[str, Any]:
    return {name: _value(value) for name, value in zip(fields, row, strict=True)}


LINE_FIELDS = tuple(name for name in LineFacts.__dataclass_fields__)
RETURN_FIELDS = tuple(name for name in ReturnFacts.__dataclass_fields__)
NOTE_FIELDS = tuple(name for name in OrphanCreditNoteFacts.__dataclass_fields__)
REFUND_FIELDS = tuple(name for name in OrphanRefundFacts.__dataclass_fields__)


def line_facts(row: Sequence[Any]) -> LineFacts:
    """A row of `lines_query` as facts (columns in `LineFacts` field order)."""
    return LineFacts(**_names(row, LINE_FIELDS))


def return_facts(row: Sequence[Any]) -> ReturnFacts:
    """A row of `RETURNS` as facts (columns in `ReturnFacts` field order)."""
    return ReturnFacts(**_names(row, RETURN_FIELDS))


def orphan_note_facts(row: Sequence[Any]) -> OrphanCreditNoteFacts:
    """A row of `ORPHAN_NOTES` as facts."""
    return OrphanCreditNoteFacts(**_names(row, NOTE_FIELDS))


def orphan_refund_facts(row: Sequence[Any]) -> OrphanRefundFacts:
    """A row of `ORPHAN_REFUNDS` as facts."""
    return OrphanRefundFacts(**_names(row, REFUND_FIELDS))
