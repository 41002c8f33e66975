"""How one column of an export file is read, typed and checked.

DuckDB's CSV reader does the parsing and typing (its casts are fast and strict
about dates); a cell it cannot convert rejects the row with its line number.
What the reader would accept but a finance file must not hold becomes an
`error` on the row instead, by a cheap check on the typed value:

- whole numbers and money are read as DECIMAL(18,6), then a count must be
  whole (`1.5` is an error, where a BIGINT read would round it to 2) and money
  must have at most 2 decimal places (digits past the sixth are not inspected);
- keys must not be blank; codes are upper-cased; currencies are three letters;
- dispositions and refund statuses come from closed lists.

`Cell` for one column gives the reader type, the typed SQL value, and the
`WHEN <bad> THEN <reason>` branch for the row's error CASE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from returnsync.recon import linking
from returnsync.recon.policy import REFUND_STATUSES

if TYPE_CHECKING:
    from collections.abc import Iterable

    from returnsync.recon.policy import ReconPolicy

NUMBER = "DECIMAL(18,6)"  # how counts and money are read: exact, room to see stray decimals


def sql_text(value: str | None) -> str:
    """A SQL string literal (or NULL)."""
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def sql_list(values: Iterable[str]) -> str:
    """A SQL list for `IN`, sorted so the SQL text is stable; `('')` when empty."""
    return "(" + ", ".join(sql_text(v) for v in sorted(values) or [""]) + ")"


class Cell(NamedTuple):
    """One column: what the reader reads it as, its typed value, and its check."""

    reader_type: str
    value: str
    check: str


def _shown(raw: str) -> str:
    return f"""'"' || coalesce({raw}::VARCHAR, '') || '"'"""


def cell(
    column: str, kind: str, raw: str | None, policy: ReconPolicy, *, trim: bool = True
) -> Cell:
    """How to read `raw` (a quoted source column, or None when the file lacks it).

    `trim` strips spaces around text; the loader turns it off for a file without
    a single space, where it cannot change anything (the reader reads an empty
    cell as NULL already).
    """
    if raw is None:
        return Cell("", "NULL::TIMESTAMPTZ" if kind == "time?" else "NULL::VARCHAR", "")
    text = f"nullif(trim({raw}), '')" if trim else raw
    if kind in {"text", "key", "code"}:
        code = f"nullif({linking.sql_normalise_code(raw)}, '')" if trim else f"upper({raw})"
        value = code if kind == "code" else text
        blank = f"WHEN {text} IS NULL THEN '{column} is blank' "
        return Cell("VARCHAR", value, "" if kind == "text" else blank)
    if kind in {"count", "signed", "money"}:
        return _number(column, kind, raw)
    if kind in {"time", "time?"}:
        blank = f"WHEN {raw} IS NULL THEN '{column} is blank' "
        return Cell("TIMESTAMPTZ", raw, blank if kind == "time" else "")
    return _listed(column, kind, raw, text, policy)


def _number(column: str, kind: str, raw: str) -> Cell:
    """A count (whole, >= 0), a signed whole number, or money (>= 0, to the penny)."""
    checks = f"WHEN {raw} IS NULL THEN '{column} is blank' "
    if kind != "signed":
        checks += f"WHEN {raw} < 0 THEN '{column} is negative: ' || {_shown(raw)} "
    if kind == "money":
        checks += (
            f"WHEN {raw} <> round({raw}, 2) "
            f"THEN '{column} has more than 2 decimal places: ' || {_shown(raw)} "
        )
        return Cell(NUMBER, f"{raw}::DECIMAL(18,2)", checks)
    checks += (
        f"WHEN {raw} <> round({raw}) THEN '{column} is not a whole number: ' || {_shown(raw)} "
    )
    return Cell(NUMBER, f"{raw}::BIGINT", checks)


def _listed(column: str, kind: str, raw: str, text: str, policy: ReconPolicy) -> Cell:
    """A currency code, a disposition (blank allowed) or a refund status, from a closed set."""
    if kind == "currency":
        value, what = f"upper({text})", "a currency code"
        bad = f"{value} IS NULL OR NOT regexp_full_match({value}, '[A-Z]{{3}}')"
    elif kind == "disposition":
        value, what = f"upper({text})", "a known disposition"
        bad = f"{value} IS NOT NULL AND {value} NOT IN {sql_list(policy.known_dispositions)}"
    elif kind == "refund_status":
        value, what = f"lower({text})", "a refund status"
        bad = f"{value} IS NULL OR {value} NOT IN {sql_list(REFUND_STATUSES)}"
    else:
        raise ValueError(f"unknown column type {kind!r} for {column}")
    return Cell("VARCHAR", value, f"WHEN {bad} THEN '{column} is not {what}: ' || {_shown(raw)} ")
