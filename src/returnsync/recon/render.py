"""Findings as a table, JSON, CSV or an Excel workbook, written as they stream in.

Every renderer consumes the findings once, never holds them all, and returns a
`Tally` (count per kind, the worst severity) for the summary and the exit code.

JSON is `{"findings": [{"kind", "tenant", "return_ref", "line_id", "severity",
"owner", "amount", "evidence", "currency", "suggested_action"}], "summary":
{kind: count}}` with amounts as strings ("12.34") and the summary last.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.table import Table

from returnsync.recon.findings import FindingKind, Severity

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path
    from typing import TextIO

    from rich.console import Console

    from returnsync.recon.findings import Finding

COLUMNS = (
    "kind",
    "severity",
    "owner",
    "tenant",
    "return_ref",
    "line_id",
    "amount",
    "currency",
    "suggested_action",
    "evidence",
)


@dataclass
class Tally:
    """How many findings of each kind, and the worst severity seen."""

    counts: Counter[str] = field(default_factory=Counter)
    worst: Severity | None = None

    def add(self, finding: Finding) -> Finding:
        """Count `finding` and hand it back."""
        self.counts[finding.kind.value] += 1
        if self.worst is None or finding.severity.rank > self.worst.rank:
            self.worst = finding.severity
        return finding

    @property
    def summary(self) -> dict[str, int]:
        """Count per kind, in the order of `FindingKind`, kinds with none left out."""
        return {kind.value: self.counts[kind.value] for kind in FindingKind if self.counts[kind]}


def as_record(finding: Finding) -> dict[str, Any]:
    """A finding as the JSON object (amount as a string, None when there is none)."""
    return {
        "kind": finding.kind.value,
        "tenant": finding.tenant,
        "return_ref": finding.return_ref,
        "line_id": finding.line_id,
        "severity": finding.severity.value,
        "owner": finding.owner.value,
        "amount": None if finding.amount is None else str(finding.amount),
        "evidence": dict(finding.evidence),
        "currency": finding.currency,
        "suggested_action": finding.suggested_action,
    }


def write_json(findings: Iterable[Finding], out: TextIO) -> Tally:
    """Stream the JSON document to `out`."""
    tally = Tally()
    out.write('{"findings": [')
    for index, finding in enumerate(findings):
        out.write(",\n  " if index else "\n  ")
        out.write(json.dumps(as_record(tally.add(finding)), ensure_ascii=False))
    out.write('\n],\n"summary": ' + json.dumps(tally.summary) + "}\n")
    return tally


def _row(finding: Finding) -> list[str]:
    record = as_record(finding)
    record["evidence"] = json.dumps(record["evidence"], ensure_ascii=False)
    return ["" if record[c] is None else str(record[c]) for c in COLUMNS]


def write_csv(findings: Iterable[Finding], out: TextIO) -> Tally:
    """Stream CSV (one finding per row, evidence as a JSON object) to `out`."""
    tally = Tally()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for finding in findings:
        writer.writerow(_row(tally.add(finding)))
    return tally


def write_xlsx(findings: Iterable[Finding], path: Path) -> Tally:
    """Write a workbook: a `findings` sheet (streamed) and a `summary` sheet."""
    from openpyxl import Workbook  # noqa: PLC0415 - only the xlsx format needs it

    tally = Tally()
    book = Workbook(write_only=True)
    sheet = book.create_sheet("findings")
    sheet.append(list(COLUMNS))
    for finding in findings:
        sheet.append(_row(tally.add(finding)))
    summary = book.create_sheet("summary")
    summary.append(["kind", "findings"])
    for kind, count in tally.summary.items():
        summary.append([kind, count])
    book.save(path)
    return tally


def print_table(findings: Iterable[Finding], console: Console) -> Tally:
    """Print a rich table of the findings, then the count per kind."""
    tally = Tally()
    table = Table(title="Reconciliation findings", show_lines=False)
    for column in ("severity", "kind", "tenant", "return", "line", "owner", "amount", "action"):
        table.add_column(column, justify="right" if column == "amount" else "left")
    for finding in findings:
        tally.add(finding)
        amount = "" if finding.amount is None else f"{finding.amount} {finding.currency}"
        table.add_row(
            finding.severity.value,
            finding.kind.value,
            finding.tenant,
            finding.return_ref,
            finding.line_id or "",
            finding.owner.value,
            amount,
            finding.suggested_action,
        )
    console.print(table)
    summary = Table(title="Summary")
    summary.add_column("kind")
    summary.add_column("findings", justify="right")
    for kind, count in tally.summary.items():
        summary.add_row(kind, str(count))
    console.print(summary)
    return tally
