"""The fast pass over every return: which ones can possibly hold a finding.

One narrow aggregate per file and return compares *signatures* instead of joining
line by line: the sum of `hash(stock_code, quantity, amount)` over the return's
received, owed lines must equal the same sum over its credit lines, and the sum
of `hash(stock_code, quantity)` over lines to restock must equal it over stock
moved to saleable sites. Equal sums mean equal multisets (but for a 64-bit hash
collision), so the return is credited and restocked exactly as received. With
money refunded to the penny, no SKU unmatched and no goodwill refund attached,
a return is *clean*: no rule can fire on it. Everything else is a *candidate*.

The fast pass resolves refunds (linking rules 8 and 9) over all data, because a
refund's return can depend on other returns; then it copies the candidates and
every record linked to them into the `cand` schema, where `recon.sql` computes
exact facts over a few rows instead of millions. Copied are: the candidates'
lines, credit lines, stock moves and refunds (any status), the credit lines that
name no return, and the counted refunds that link to nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from returnsync.recon import sql
from returnsync.recon.cells import sql_list

if TYPE_CHECKING:
    from returnsync.recon.policy import ReconPolicy

SCHEMA = "cand"

RETURNS = """
CREATE OR REPLACE TABLE sa AS
SELECT r.tenant, r.return_ref, min(r.order_ref) AS order_ref,
       sum(r.received_quantity) AS received, sum(r.refund_amount) AS expected,
       bool_or({code} IS NULL OR r.received_quantity > r.quantity) AS odd,
       coalesce(sum(hash({code}, r.received_quantity, r.refund_amount))
                FILTER (WHERE r.received_quantity > 0 AND r.refund_amount > 0), 0) AS line_sig,
       coalesce(sum(hash({code}, r.received_quantity))
                FILTER (WHERE r.received_quantity > 0 AND r.disposition IN {restock}), 0)
           AS restock_sig
FROM returns r {join}
WHERE r.error IS NULL
GROUP BY r.tenant, r.return_ref
"""

CREDITS = """
CREATE OR REPLACE TABLE sb AS
SELECT tenant, link_ref AS return_ref, count(*) AS credit_lines, sum(gross) AS credited,
       sum(hash(stock_code, quantity, gross)) AS credit_sig
FROM credits WHERE error IS NULL GROUP BY tenant, link_ref
"""

STOCK = """
CREATE OR REPLACE TABLE ss AS
SELECT tenant, link_ref AS return_ref,
       coalesce(sum(hash(stock_code, quantity)) FILTER (WHERE saleable), 0) AS stock_sig
FROM stock WHERE error IS NULL AND link_ref IS NOT NULL GROUP BY tenant, link_ref
"""

# Rule 8 over all data: the named return, else the smallest return the note's lines name.
TARGETS = """
CREATE OR REPLACE TABLE rt AS
SELECT f.tenant, f.refund_id, f.payment_ref, f.amount, f.counted, f.manual, f.credit_note,
       a.return_ref AS target
FROM refunds f LEFT JOIN sa a ON a.tenant = f.tenant AND a.return_ref = f.named
WHERE f.error IS NULL
"""

VIA_NOTES = """
UPDATE rt SET target = v.target FROM (
    SELECT l.tenant, l.refund_id, min(c.link_ref) AS target
    FROM rt l
    JOIN credits c ON c.tenant = l.tenant AND c.credit_note = l.credit_note
    JOIN sa a ON a.tenant = c.tenant AND a.return_ref = c.link_ref
    WHERE l.target IS NULL AND l.credit_note IS NOT NULL AND c.error IS NULL
    GROUP BY ALL) AS v
WHERE rt.tenant = v.tenant AND rt.refund_id = v.refund_id
"""

REFUNDED = """
CREATE OR REPLACE TABLE sf AS
SELECT tenant, target AS return_ref, count(*) FILTER (WHERE counted) AS refunds,
       coalesce(sum(amount) FILTER (WHERE counted), 0) AS refunded
FROM rt WHERE target IS NOT NULL GROUP BY tenant, target
"""

# Rule 9 over all data: a manual refund goes to the smallest return sharing its payment.
GOODWILL = """
CREATE OR REPLACE TABLE sg AS
WITH manual AS (SELECT tenant, refund_id, payment_ref FROM rt WHERE counted AND manual),
pay AS (
    SELECT a.tenant, a.order_ref AS payment_ref, a.return_ref FROM sa a
    SEMI JOIN manual m ON m.tenant = a.tenant AND m.payment_ref = a.order_ref
    UNION ALL
    SELECT t.tenant, t.payment_ref, t.target FROM rt t
    SEMI JOIN manual m ON m.tenant = t.tenant AND m.payment_ref = t.payment_ref
    WHERE t.target IS NOT NULL)
SELECT m.tenant, m.refund_id, min(p.return_ref) AS target
FROM manual m JOIN pay p ON p.tenant = m.tenant AND p.payment_ref = m.payment_ref
GROUP BY ALL
"""

# Candidate returns, and the refs that credit lines name but no return has (orphans).
CANDIDATES = """
CREATE OR REPLACE TABLE sk AS
SELECT coalesce(a.tenant, b.tenant) AS tenant, coalesce(a.return_ref, b.return_ref) AS return_ref
FROM sa a
FULL OUTER JOIN sb b ON b.tenant = a.tenant AND b.return_ref = a.return_ref
LEFT JOIN ss s ON s.tenant = a.tenant AND s.return_ref = a.return_ref
LEFT JOIN sf f ON f.tenant = a.tenant AND f.return_ref = a.return_ref
WHERE NOT coalesce(
    NOT a.odd
    AND a.line_sig = coalesce(b.credit_sig, 0)
    AND a.restock_sig = coalesce(s.stock_sig, 0)
    AND ((b.credit_lines > 0 AND f.refunds > 0 AND f.refunded = b.credited)
         OR (b.return_ref IS NULL AND coalesce(f.refunds, 0) = 0
             AND (a.received = 0 OR a.expected = 0))),
    false)
UNION
SELECT tenant, target FROM sg;
DROP TABLE sa; DROP TABLE sb; DROP TABLE ss; DROP TABLE sf; DROP TABLE sg;
"""

# Rows are picked by a narrow scan (row ids), then copied whole: a semi-join that carries
# every column reads every row's long strings first, six times slower.
COPY = """
CREATE SCHEMA IF NOT EXISTS cand;
CREATE OR REPLACE TABLE cand.returns AS
SELECT * FROM returns WHERE rowid IN (
    SELECT r.rowid FROM returns r
    SEMI JOIN sk k ON k.tenant = r.tenant AND k.return_ref = r.return_ref
    WHERE r.error IS NULL);
CREATE OR REPLACE TABLE cand.credits AS
SELECT * FROM credits WHERE rowid IN (
    SELECT c.rowid FROM credits c
    SEMI JOIN sk k ON k.tenant = c.tenant AND k.return_ref = c.link_ref
    WHERE c.error IS NULL);
CREATE OR REPLACE TABLE cand.stock AS
SELECT * FROM stock WHERE rowid IN (
    SELECT s.rowid FROM stock s
    SEMI JOIN sk k ON k.tenant = s.tenant AND k.return_ref = s.link_ref
    WHERE s.error IS NULL);
CREATE OR REPLACE TABLE cand.refunds AS
SELECT * FROM refunds WHERE rowid IN (
    SELECT f.rowid FROM refunds f
    SEMI JOIN (SELECT t.tenant, t.refund_id FROM rt t
                   SEMI JOIN sk k ON k.tenant = t.tenant AND k.return_ref = t.target
               UNION ALL
               SELECT tenant, refund_id FROM rt WHERE target IS NULL AND counted) AS k
        ON k.tenant = f.tenant AND k.refund_id = f.refund_id
    WHERE f.error IS NULL);
DROP TABLE rt; DROP TABLE sk;
"""


def statements(policy: ReconPolicy, *, sku_map: bool) -> list[str]:
    """The fast pass, then the copy of candidates into the `cand` schema, in order."""
    if sku_map:
        code = "s.stock_code"
        join = "LEFT JOIN sku_one s ON s.tenant = r.tenant AND s.sku = r.sku AND s.codes = 1"
    else:
        code, join = "r.sku", ""
    returns = RETURNS.format(code=code, join=join, restock=sql_list(policy.restock_dispositions))
    copy_sku_map = ["CREATE OR REPLACE TABLE cand.sku_map AS SELECT * FROM sku_map"] * sku_map
    first = [sql.SKU_MAP] * sku_map
    fast = [returns, CREDITS, STOCK, TARGETS, VIA_NOTES, REFUNDED, GOODWILL, CANDIDATES, COPY]
    return [*first, *fast, *copy_sku_map]
