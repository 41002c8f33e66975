"""Where a row is in its file: the 1-based physical line a bad row starts on.

DuckDB keeps the file's row order in the table it loads (row id n = the n-th row it
accepted) and reports each row it rejects with the row's text. When every record
sits on one line and there are no blank lines (the usual export), its line numbers
are physical lines and arithmetic is enough: accepted row n is on line n + 2 plus
the rejected lines before it. Otherwise (a quoted cell with a line break, blank
lines) DuckDB's numbers drift, so the file is scanned once with Python's csv
reader, which counts physical lines, and each reject is matched, in file order, to
the record with its text. The scan only happens when there are bad rows to place.
"""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
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


def _text(raw: str) -> str:
    """A record's text as compared: line breaks unified, no surrounding line breaks."""
    return raw.replace("\r\n", "\n").strip("\r\n")


def scan(path: Path, rejected: list[str]) -> tuple[list[int], list[int]]:
    """Start lines of the accepted and of the rejected records, in file order.

    `rejected` holds the text of each record DuckDB rejected, in file order.
    """
    pending = [_text(text) for text in rejected]
    accepted: list[int] = []
    refused: list[int] = []
    consumed: list[str] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:

        def lines() -> Iterator[str]:
            for line in handle:
                consumed.append(line)
                yield line

        reader = csv.reader(lines())
        next(reader, None)
        start = len(consumed) + 1
        consumed.clear()
        try:
            for record in reader:
                if record:  # a blank line is no record, for DuckDB too
                    matched = (
                        len(refused) < len(pending)
                        and _text("".join(consumed)) == pending[len(refused)]
                    )
                    (refused if matched else accepted).append(start)
                start += len(consumed)
                consumed.clear()
        except csv.Error:
            refused.append(start)  # a quote never closed: the rest is one rejected record
    return accepted, refused


class Locator:
    """Turns DuckDB row ids and rejects into physical line numbers of one file."""

    def __init__(self, path: Path, *, accepted: int, rejected: list[tuple[int, str]]) -> None:
        """`rejected` is (DuckDB's line, the record's text) per rejected record, in order."""
        self.reported = [line for line, _ in rejected]
        self.accepted: list[int] = []
        self.refused: dict[int, int] = {}
        if physical_lines(path) == 1 + accepted + len(rejected):
            return  # one record per line: DuckDB's lines are physical lines
        kept, refused = scan(path, [text for _, text in rejected])
        if len(kept) == accepted and len(refused) == len(rejected):
            self.accepted = kept
            self.refused = dict(zip(self.reported, refused, strict=True))

    def row(self, row_no: int) -> int:
        """The line of the accepted row with DuckDB row id `row_no` (0-based)."""
        if row_no < len(self.accepted):
            return self.accepted[row_no]
        # Rows before it fill lines 2..; each rejected line at or before it pushes it down one.
        line = row_no + 2
        for rejected in self.reported:
            if rejected > line:
                break
            line += 1
        return line

    def rejected(self, reported: int) -> int:
        """The physical line of the row DuckDB rejected and reported on line `reported`."""
        return self.refused.get(reported, reported)
