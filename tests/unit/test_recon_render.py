"""Findings rendered as JSON, CSV, Excel and a table, streamed, with their tally."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

from openpyxl import load_workbook
from rich.console import Console

from returnsync.recon import render
from returnsync.recon.findings import Finding, FindingKind, Owner, Severity


def finding(kind=FindingKind.AMOUNT_MISMATCH, severity=Severity.HIGH, amount="12.30"):
    """A finding with every field filled."""
    return Finding(
        kind=kind,
        tenant="acme",
        return_ref="R1",
        line_id=None,
        severity=severity,
        owner=Owner.FINANCE,
        amount=None if amount is None else Decimal(amount),
        currency="GBP",
        evidence={"credit_notes": "CN1", "refunded_amount": "24.60"},
        suggested_action="Compare the amounts.",
    )


def test_json_has_the_documented_shape_with_amounts_as_strings():
    """`{"findings": [...], "summary": {kind: count}}`; amount "12.30", evidence an object."""
    out = io.StringIO()
    items = [finding(), finding(FindingKind.ROUNDING_DIFFERENCE, Severity.INFO, None)]
    render.write_json(iter(items), out)
    document = json.loads(out.getvalue())
    assert list(document) == ["findings", "summary"]
    first = document["findings"][0]
    assert list(first)[:8] == [
        "kind",
        "tenant",
        "return_ref",
        "line_id",
        "severity",
        "owner",
        "amount",
        "evidence",
    ]
    assert (first["amount"], first["line_id"], first["evidence"]["credit_notes"]) == (
        "12.30",
        None,
        "CN1",
    )
    assert document["findings"][1]["amount"] is None
    assert document["summary"] == {"amount_mismatch": 1, "rounding_difference": 1}


def test_json_of_no_findings_is_still_valid():
    """An empty run is `{"findings": [], "summary": {}}`."""
    out = io.StringIO()
    tally = render.write_json(iter([]), out)
    assert json.loads(out.getvalue()) == {"findings": [], "summary": {}}
    assert tally.worst is None


def test_the_tally_knows_the_worst_severity():
    """Info then critical then low: critical is the worst."""
    tally = render.Tally()
    for severity in (Severity.INFO, Severity.CRITICAL, Severity.LOW):
        tally.add(finding(severity=severity))
    assert tally.worst is Severity.CRITICAL


def test_csv_has_one_row_per_finding_and_evidence_as_json():
    """A header of the documented columns, then the finding."""
    out = io.StringIO()
    render.write_csv(iter([finding()]), out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == list(render.COLUMNS)
    assert rows[0]["amount"] == "12.30"
    assert json.loads(rows[0]["evidence"]) == {"credit_notes": "CN1", "refunded_amount": "24.60"}


def test_xlsx_has_a_findings_sheet_and_a_summary_sheet(tmp_path):
    """Two sheets: every finding, and the count per kind."""
    path = tmp_path / "findings.xlsx"
    render.write_xlsx(iter([finding(), finding()]), path)
    book = load_workbook(path, read_only=True)
    assert book.sheetnames == ["findings", "summary"]
    findings_rows = list(book["findings"].iter_rows(values_only=True))
    assert findings_rows[0] == render.COLUMNS
    assert len(findings_rows) == 3
    assert list(book["summary"].iter_rows(values_only=True)) == [
        ("kind", "findings"),
        ("amount_mismatch", 2),
    ]


def test_the_table_shows_each_finding_and_the_summary():
    """The rich table names the kind, the return and the amount with its currency."""
    console = Console(file=io.StringIO(), width=200)
    render.print_table(iter([finding()]), console)
    text = console.file.getvalue()
    assert "amount_mismatch" in text
    assert "12.30 GBP" in text
    assert "Summary" in text
