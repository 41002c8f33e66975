"""Where a row is in its file: the 1-based physical line a bad row starts on.

DuckDB keeps the file's row order in the table it loads (row id n = the n-th row it
accepted) and reports a line for each row it rejects. When every record sits on
one line and there are no blank lines (the usual export), that is enough:
accepted row n is on line n + 2 plus the rejected lines before it. Otherwise (a
cell with a line break, blank lines) the file is scanned once with Python's csv
reader, which counts physical lines. DuckDB counts a record with line breaks
inside quotes as one line, so its line for a record is the physical start line
minus the line breaks inside earlier records; that is how its rejects are
matched to records. The scan only happens when there are bad rows to place.
"""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

CHUNK = 1 << 20  # bytes read at a time when counting lines


def physical_lines(path: Path) -> int:
    """How many lines the file has (a last line without a newline counts)."""
    count, last = 0, b""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (1 if last not in {b"", b"\n"} else 0)


def scan(path: Path) -> list[tuple[int, int]]:
    """(physical start line, DuckDB line) of every non-blank record after the header."""
    records: list[tuple[int, int]] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        start, folded = reader.line_num + 1, 0
        try:
            for record in reader:
                if record:  # a blank line is no record, for DuckDB too
                    records.append((start, start - folded))
                folded += reader.line_num - start  # line breaks inside quoted cells
                start = reader.line_num + 1
        except csv.Error:
            records.append((start, start - folded))  # a quote never closed: one bad record
    return records


class Locator:
    """Turns DuckDB row ids and reject lines into physical line numbers of one file."""

    def __init__(self, path: Path, *, accepted: int, rejected: list[int]) -> None:
        self.rejected_lines = sorted(set(rejected))
        self.accepted: list[int] = []
        self.physical: dict[int, int] = {}
        if physical_lines(path) == 1 + accepted + len(self.rejected_lines):
            return  # one record per line: arithmetic is exact
        records = scan(path)
        self.physical = {duck: start for start, duck in records}
        refused = set(self.rejected_lines)
        kept = [start for start, duck in records if duck not in refused]
        if len(kept) == accepted:
            self.accepted = kept

    def row(self, row_no: int) -> int:
        """The line of the accepted row with DuckDB row id `row_no` (0-based)."""
        if row_no < len(self.accepted):
            return self.accepted[row_no]
        # Rows before it fill lines 2..; each rejected line at or before it pushes it down one.
        line = row_no + 2
        for rejected in self.rejected_lines:
            if rejected > line:
                break
            line += 1
        return line

    def rejected(self, reported: int) -> int:
        """The physical line of the row DuckDB rejected and reported on line `reported`."""
        return self.physical.get(reported, reported)
