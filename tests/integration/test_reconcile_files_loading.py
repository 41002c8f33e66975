"""Loading exports: every bad row reported with its file and physical line, never dropped."""

from __future__ import annotations

import pytest

from returnsync.recon import builders, files, loading
from returnsync.recon.builders import AS_OF, clean_return
from returnsync.recon.policy import ReconPolicy

HEADER = (
    "tenant,return_ref,order_ref,line_id,sku,quantity,received_quantity,disposition,"
    "refund_amount,currency,status,received_at,processed_at"
)
GOOD = "acme,R1,O1,R1-{n},SKU-{n},1,1,RESALEABLE,10.00,GBP,Processed,2026-10-01T10:00:00Z,"
AT = "2026-10-01T10:00:00Z"


def write(tmp_path, name, *lines):
    """A file of `lines` (each without its newline)."""
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def export(tmp_path, returns_path=None, **paths):
    """Clean exports for one return, with any file replaced."""
    base = builders.write_files(
        builders.snapshot(*clean_return("R1", ("SKU-1", 1, "10.00"))), tmp_path / "base"
    )
    return files.ExportFiles(
        returns=returns_path or base.returns,
        credits=paths.get("credits", base.credits),
        stock=paths.get("stock", base.stock),
        refunds=paths.get("refunds", base.refunds),
        sku_map=None,
    )


def bad_rows(export_files):
    """(line, reason) of every bad row."""
    with files.reconcile_files(export_files, ReconPolicy(), as_of=AS_OF) as run:
        list(run.findings())
        assert run.bad_row_count == len(run.bad_rows)
        return [(bad.line, bad.reason) for bad in run.bad_rows]


CASES = [
    ("acme,R1,O1,R1-2,SKU-2,-1,1,RESALEABLE,10.00,GBP,,{at},", "quantity is negative"),
    ("acme,R1,O1,R1-3,SKU-3,1.5,1,RESALEABLE,10.00,GBP,,{at},", "quantity is not a whole number"),
    ("acme,R1,O1,R1-4,SKU-4,1,1,RESALEABLE,10.005,GBP,,{at},", "more than 2 decimal places"),
    ("acme,R1,O1,R1-5,SKU-5,1,1,BROKEN,10.00,GBP,,{at},", 'not a known disposition: "BROKEN"'),
    (",R1,O1,R1-6,SKU-6,1,1,RESALEABLE,10.00,GBP,,{at},", "tenant is blank"),
    ("acme,R1,O1,R1-7,SKU-7,1,1,RESALEABLE,10.00,GBP,,31/10/2026,", "31/10/2026"),
    ("acme,R1,O1,R1-8,SKU-8,1,1,RESALEABLE,10.00,GBP,,,", "received_at is blank"),
    ("acme,R1,O1,R1-1,SKU-1,1,1,RESALEABLE,10.00,GBP,,{at},", "the same as line 2"),
    ("acme,R1,O1,R1-9,SKU-9,1,1,RESALEABLE,10.00,GBP", "Expected Number of Columns"),
    ("acme,R1,O1,R1-10,SKU-10,abc,1,RESALEABLE,10.00,GBP,,{at},", "abc"),
    ("acme,R1,O1,R1-11,SKU-11,1,1,RESALEABLE,10.00,GBPX,,{at},", "not a currency code"),
]


def test_each_kind_of_bad_row_is_reported_on_its_line(tmp_path):
    """Checks by DuckDB's reader (cells, casts) and by ours (values, duplicates) alike."""
    rows = [HEADER, GOOD.format(n=1), *[row.format(at=AT) for row, _ in CASES], GOOD.format(n=12)]
    found = bad_rows(export(tmp_path, write(tmp_path, "returns.csv", *rows)))
    assert [line for line, _ in found] == list(range(3, 3 + len(CASES)))
    for (_, reason), (_, expected) in zip(found, CASES, strict=True):
        assert expected in reason


def test_lines_stay_exact_with_line_breaks_in_cells_and_blank_lines(tmp_path):
    """A quoted cell spanning two lines and blank lines shift every later line; we follow."""
    rows = [
        HEADER,
        (
            'acme,R1,O1,R1-1,SKU-1,1,1,RESALEABLE,10.00,GBP,"Processed,\nby hand",'
            "2026-10-01T10:00:00Z,"
        ),
        "",
        "acme,R1,O1,R1-2,SKU-2,-1,1,RESALEABLE,10.00,GBP,,2026-10-01T10:00:00Z,",
        "acme,R1,O1,R1-3,SKU-3,1,1,RESALEABLE,10.00,GBP,,31/10/2026,",
        "",
        "acme,R1,O1,R1-4,SKU-4,1,1,RESALEABLE,10.00,GBP",
        "acme,R1,O1,R1-5,SKU-5,1,1,BROKEN,10.00,GBP,,2026-10-01T10:00:00Z,",
    ]
    found = bad_rows(export(tmp_path, write(tmp_path, "returns.csv", *rows)))
    assert [line for line, _ in found] == [5, 6, 8, 9]


def test_bad_rows_stay_out_and_good_rows_still_reconcile(tmp_path):
    """A bad credit line leaves the return uncredited: the finding shows it, the row is listed."""
    path = export(tmp_path)  # writes the clean files first
    text = path.credits.read_text(encoding="utf-8").replace(",10.00,GBP,", ",10.001,GBP,")
    bad_credits = write(tmp_path, "credits.csv", *text.splitlines())
    with files.reconcile_files(
        export(tmp_path, path.returns, credits=bad_credits), ReconPolicy(), as_of=AS_OF
    ) as run:
        kinds = {f.kind.value for f in run.findings()}
        assert [(b.line, "more than 2 decimal places" in b.reason) for b in run.bad_rows] == [
            (2, True)
        ]
    assert "received_not_credited" in kinds


def test_a_missing_column_stops_the_run_naming_file_and_header_line(tmp_path):
    """Without `refund_amount` nothing can be checked: FileError on line 1."""
    path = write(tmp_path, "returns.csv", HEADER.replace(",refund_amount", ""))
    with pytest.raises(loading.FileError) as raised:
        bad_rows(export(tmp_path, path))
    assert (raised.value.file, raised.value.line) == (str(path), 1)
    assert "refund_amount" in raised.value.reason


def test_an_empty_file_stops_the_run(tmp_path):
    """No header at all is a file error, not an empty reconciliation."""
    path = tmp_path / "returns.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(loading.FileError, match="empty"):
        bad_rows(export(tmp_path, path))


def test_export_headers_map_to_canonical_columns(tmp_path):
    """Real headers, an extra column and no optional `status`/`processed_at` still load."""
    rows = [
        (
            "Retailer,Return ID,Order,Line,SKU,Qty,Qty Received,Disposition,Refund,Currency,"
            "Received,Notes"
        ),
        "acme,R1,ORD-R1,R1-SKU-1,SKU-1,1,1,RESALEABLE,10.00,GBP,2026-10-27T19:59:59Z,hello",
    ]
    headers = {
        "returns": {
            "tenant": "Retailer",
            "return_ref": "Return ID",
            "order_ref": "Order",
            "line_id": "Line",
            "sku": "SKU",
            "quantity": "Qty",
            "received_quantity": "Qty Received",
            "disposition": "Disposition",
            "refund_amount": "Refund",
            "currency": "Currency",
            "received_at": "Received",
        }
    }
    exports = export(tmp_path, write(tmp_path, "returns.csv", *rows))
    with files.reconcile_files(exports, ReconPolicy(), as_of=AS_OF, headers=headers) as run:
        assert list(run.findings()) == []
        assert (run.bad_rows, run.rows["returns"]) == ([], 1)


def test_cells_padded_with_spaces_still_link(tmp_path):
    """` R1 `, `acme ` and ` sku-1` match R1, acme and SKU-1."""
    rows = [
        HEADER,
        " acme , R1 ,O1,R1-SKU-1, sku-1,1,1, resaleable ,10.00, gbp,,2026-10-27T19:59:59Z,",
    ]
    with files.reconcile_files(
        export(tmp_path, write(tmp_path, "returns.csv", *rows)), ReconPolicy(), as_of=AS_OF
    ) as run:
        assert list(run.findings()) == []
        assert run.bad_rows == []


def test_refund_statuses_and_ids_are_checked(tmp_path):
    """An unknown status and a repeated refund id are bad rows of the refunds file."""
    header = "tenant,refund_id,payment_ref,amount,currency,status,created_at,return_ref,credit_note"
    rows = [
        header,
        "acme,re-R1,pi_R1,10.00,GBP,succeeded,2026-10-28T00:00:00Z,R1,CN-R1",
        "acme,re-R2,pi_R1,1.00,GBP,refunded,2026-10-28T00:00:00Z,R1,CN-R1",
        "acme,re-R1,pi_R1,10.00,GBP,succeeded,2026-10-28T00:00:00Z,R1,CN-R1",
    ]
    found = bad_rows(export(tmp_path, refunds=write(tmp_path, "refunds.csv", *rows)))
    assert [line for line, _ in found] == [3, 4]
    assert "not a refund status" in found[0][1]
    assert "duplicate tenant, refund_id: the same as line 2" in found[1][1]


def test_windows_line_ends_and_an_unclosed_quote_are_placed_too(tmp_path):
    """CRLF files count lines the same; a quote never closed is one bad row where it starts."""
    rows = [
        HEADER,
        GOOD.format(n=1),
        "",
        "acme,R1,O1,R1-2,SKU-2,-1,1,RESALEABLE,10.00,GBP,,2026-10-01T10:00:00Z,",
        'acme,R1,O1,R1-3,SKU-3,1,1,RESALEABLE,10.00,GBP,"never closed,2026-10-01T10:00:00Z,',
        GOOD.format(n=4),
    ]
    path = tmp_path / "returns.csv"
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode())
    found = bad_rows(export(tmp_path, path))
    assert [line for line, _ in found] == [4, 5]
