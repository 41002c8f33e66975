"""The DuckDB twin of `recon.gather`: the same facts, computed set-wise.

`prepare` builds working tables that follow `recon.linking` rule by rule (named
in each comment). They run over the copy of the candidate returns that the fast
pass (`recon.summary`) makes, so they are exact and cheap; over complete files
they would give the same facts (the tests run them both ways).
`recon.candidates` then picks the match lines and returns that are not plainly
clean and reads them out as facts, ordered for streaming.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from returnsync.recon.cells import sql_list

if TYPE_CHECKING:
    from returnsync.recon.policy import ReconPolicy

# Rule 4: a SKU resolves when the map gives it exactly one stock code.
SKU_MAP = """
CREATE OR REPLACE TABLE sku_one AS
SELECT tenant, sku, min(stock_code) AS stock_code, count(DISTINCT stock_code) AS codes,
       list(DISTINCT stock_code ORDER BY stock_code) AS candidates
FROM sku_map WHERE error IS NULL GROUP BY tenant, sku
"""

# Rule 6: match lines; an unmatched line is a group of its own.
GROUPS = """
CREATE OR REPLACE TABLE grp AS
SELECT r.tenant, r.return_ref, {code} AS stock_code,
       min(r.line_id) AS line_id, list(r.line_id ORDER BY r.line_id) AS line_ids,
       min(r.sku) AS sku, min(r.order_ref) AS order_ref, min(r.currency) AS currency,
       sum(r.quantity) AS quantity, sum(r.received_quantity) AS received_quantity,
       sum(r.refund_amount) AS expected_amount,
       min(r.received_at) FILTER (WHERE r.received_quantity > 0) AS first_received_at,
       coalesce(sum(r.received_quantity) FILTER (WHERE r.disposition IN {restock}), 0)
           AS restock_quantity,
       coalesce(sum(r.received_quantity) FILTER (WHERE r.disposition IN {forbidden}), 0)
           AS forbidden_quantity,
       list(DISTINCT r.disposition ORDER BY r.disposition)
           FILTER (WHERE r.received_quantity > 0 AND r.disposition IN {forbidden})
           AS forbidden_dispositions
FROM returns r {join}
WHERE r.error IS NULL
GROUP BY r.tenant, r.return_ref, {code}, CASE WHEN {code} IS NULL THEN r.line_id END
"""

RETURNS = """
CREATE OR REPLACE TABLE ret AS
SELECT tenant, return_ref, min(order_ref) AS order_ref, min(currency) AS currency,
       sum(received_quantity) AS received_quantity, sum(expected_amount) AS expected_amount,
       min(first_received_at) AS first_received_at, bool_or(stock_code IS NULL) AS has_unmatched_sku
FROM grp GROUP BY tenant, return_ref
"""

# Rule 5: the lines of a credit note that name one return are that return's note (a part).
NOTES = """
CREATE OR REPLACE TABLE cn AS
WITH n AS (
    SELECT tenant, credit_note, link_ref, min(associated_ref) AS associated_ref,
           min(currency) AS currency, sum(gross) AS gross, count(*) AS line_count,
           min(issued_at) AS issued_at
    FROM credits WHERE error IS NULL GROUP BY tenant, credit_note, link_ref)
SELECT n.*, r.return_ref IS NOT NULL AS linked, false AS duplicate
FROM n LEFT JOIN ret r ON r.tenant = n.tenant AND r.return_ref = n.link_ref
"""

# A part repeating, line for line, an earlier part (issue time, then number) of its return.
DUPLICATES = """
UPDATE cn SET duplicate = true FROM (
    WITH multi AS (SELECT tenant, link_ref FROM cn WHERE linked GROUP BY ALL HAVING count(*) > 1),
    cands AS (SELECT n.tenant, n.credit_note, n.link_ref, n.issued_at
              FROM cn n JOIN multi m ON m.tenant = n.tenant AND m.link_ref = n.link_ref),
    sig AS (SELECT c.tenant, c.credit_note, c.link_ref,
                   list((c.stock_code, c.quantity, c.gross)
                        ORDER BY c.stock_code, c.quantity, c.gross) AS signature
            FROM credits c JOIN cands k ON k.tenant = c.tenant AND k.credit_note = c.credit_note
                                       AND k.link_ref = c.link_ref
            WHERE c.error IS NULL GROUP BY ALL),
    ranked AS (SELECT k.tenant, k.credit_note, k.link_ref,
                      row_number() OVER (PARTITION BY k.tenant, k.link_ref, s.signature
                                         ORDER BY k.issued_at, k.credit_note) AS rn
               FROM cands k JOIN sig s ON s.tenant = k.tenant AND s.credit_note = k.credit_note
                                      AND s.link_ref = k.link_ref)
    SELECT tenant, credit_note, link_ref FROM ranked WHERE rn > 1) AS d
WHERE cn.tenant = d.tenant AND cn.credit_note = d.credit_note AND cn.link_ref = d.link_ref
"""

CREDITED = """
CREATE OR REPLACE TABLE cg AS
SELECT c.tenant, n.link_ref AS return_ref, c.stock_code,
       sum(c.quantity) AS credited_quantity, sum(c.gross) AS credited_amount
FROM credits c
JOIN cn n ON n.tenant = c.tenant AND n.credit_note = c.credit_note AND n.link_ref = c.link_ref
WHERE c.error IS NULL AND n.linked AND NOT n.duplicate
GROUP BY ALL
"""

# Rule 7: stock links through its reference; net units at the tenant's saleable sites.
STOCK = """
CREATE OR REPLACE TABLE sg AS
SELECT tenant, link_ref AS return_ref, stock_code,
       coalesce(sum(quantity) FILTER (WHERE saleable), 0) AS saleable_quantity
FROM stock WHERE error IS NULL AND link_ref IS NOT NULL GROUP BY ALL
"""

# Rule 8: the named return, else the smallest return its credit note names; a refund whose
# note names no return rides with that note's first part.
REFUNDS = """
CREATE OR REPLACE TABLE rf AS
WITH notes AS (
    SELECT tenant, credit_note, min(link_ref) FILTER (WHERE linked) AS linked_ref,
           min(link_ref) AS first_ref
    FROM cn GROUP BY tenant, credit_note)
SELECT f.tenant, f.refund_id, f.payment_ref, f.amount, f.currency, f.created_at, f.counted,
       f.manual, coalesce(f.named, '') AS named, coalesce(f.credit_note, '') AS credit_note,
       coalesce(r.return_ref, n.linked_ref) AS target,
       r.return_ref IS NULL AND n.linked_ref IS NULL AND n.credit_note IS NOT NULL AS rides,
       n.first_ref AS ride_ref
FROM refunds f
LEFT JOIN ret r ON r.tenant = f.tenant AND r.return_ref = f.named
LEFT JOIN notes n ON n.tenant = f.tenant AND n.credit_note = f.credit_note
WHERE f.error IS NULL
"""

# Rule 9: a manual refund goes to the smallest return whose payments include its payment.
GOODWILL = """
CREATE OR REPLACE TABLE gw AS
WITH manual AS (SELECT tenant, refund_id, payment_ref FROM rf WHERE counted AND manual),
pay AS (SELECT r.tenant, r.order_ref AS payment_ref, r.return_ref FROM ret r
        SEMI JOIN manual m ON m.tenant = r.tenant AND m.payment_ref = r.order_ref
        UNION ALL
        SELECT f.tenant, f.payment_ref, f.target FROM rf f
        SEMI JOIN manual m ON m.tenant = f.tenant AND m.payment_ref = f.payment_ref
        WHERE f.target IS NOT NULL)
SELECT m.tenant, m.refund_id, min(p.return_ref) AS target
FROM manual m JOIN pay p ON p.tenant = m.tenant AND p.payment_ref = m.payment_ref
GROUP BY ALL
"""

# The counted refunds of each return: named (rule 8) and goodwill (rule 9).
PAID = """
CREATE OR REPLACE VIEW paid AS
SELECT tenant, target AS return_ref, refund_id, amount, created_at, false AS goodwill
FROM rf WHERE counted AND target IS NOT NULL
UNION ALL
SELECT f.tenant, g.target, f.refund_id, f.amount, f.created_at, true
FROM rf f JOIN gw g ON g.tenant = f.tenant AND g.refund_id = f.refund_id
"""

REFUNDED = """
CREATE OR REPLACE TABLE rr AS
SELECT tenant, return_ref, count(*) AS refund_count, sum(amount) AS refunded_amount,
       min(created_at) AS first_refunded_at,
       arg_min(amount, (created_at, refund_id)) AS first_refund_amount
FROM paid GROUP BY ALL
"""

NOTES_PER_RETURN = """
CREATE OR REPLACE TABLE rc AS
SELECT tenant, link_ref AS return_ref,
       count(*) FILTER (WHERE NOT duplicate) AS note_count,
       coalesce(sum(gross) FILTER (WHERE NOT duplicate), 0) AS credited_amount,
       coalesce(sum(line_count) FILTER (WHERE NOT duplicate), 0) AS credit_line_count,
       min(issued_at) FILTER (WHERE NOT duplicate) AS first_issued_at,
       max(issued_at) FILTER (WHERE NOT duplicate) AS last_issued_at,
       count(*) FILTER (WHERE duplicate) AS duplicate_count,
       coalesce(sum(gross) FILTER (WHERE duplicate), 0) AS duplicate_amount
FROM cn WHERE linked GROUP BY ALL
"""

# Credited stock codes on no match line of the return.
UNMATCHED = """
CREATE OR REPLACE TABLE um AS
SELECT c.tenant, c.return_ref, list(c.stock_code ORDER BY c.stock_code) AS unmatched_codes,
       sum(c.credited_amount) AS unmatched_amount
FROM cg c ANTI JOIN grp g
    ON g.tenant = c.tenant AND g.return_ref = c.return_ref AND g.stock_code = c.stock_code
GROUP BY ALL
"""


def prepare(policy: ReconPolicy, *, sku_map: bool) -> list[str]:
    """The statements that build the working tables, in order."""
    if sku_map:
        code = "s.stock_code"
        join = "LEFT JOIN sku_one s ON s.tenant = r.tenant AND s.sku = r.sku AND s.codes = 1"
    else:
        code, join = "r.sku", ""
    groups = GROUPS.format(
        code=code,
        join=join,
        restock=sql_list(policy.restock_dispositions),
        forbidden=sql_list(policy.forbidden_dispositions),
    )
    first = [SKU_MAP] if sku_map else []
    return [
        *first,
        groups,
        RETURNS,
        NOTES,
        DUPLICATES,
        CREDITED,
        STOCK,
        REFUNDS,
        GOODWILL,
        PAID,
        REFUNDED,
        NOTES_PER_RETURN,
        UNMATCHED,
    ]
