"""How records of the three systems link to a return: the one place that says so.

Each function here has a SQL twin (`sql_*`) that the DuckDB path uses; a unit test
runs both over the same cases, so the two can never drift apart.

The links (docs/reconciliation-files.md, "How lines link"):

1. Every link stays inside one tenant.
2. Return: `(tenant, return_ref)`. A return line: `(tenant, return_ref, line_id)`.
3. A reference to a return (credit `associated_ref`, stock `reference`, refund
   `return_ref`) goes through `return_ref_for`: `ZZ-<retailer code>-<return_ref>`
   (the Khaos AssociatedRef, `domain.model.associated_ref`) gives `<return_ref>`;
   anything else is taken as the return ref itself. When the tenant's retailer
   code is configured, a `ZZ-` reference with another code is not stripped (it
   belongs to another retailer) and so links to nothing.
4. SKU and stock code: codes compare trimmed and case-insensitive (K-12), via
   `normalise_code`. A SKU resolves through the SKU map to exactly one stock code;
   none or several means unmatched. Without a SKU map a SKU is its own stock code.
5. A credit line links through its own `associated_ref`. The lines of a credit
   note that name one return are that return's credit note (Khaos gives every
   line of a note the same ref, so in practice the whole note); lines naming
   no return are a credit note without a return.
6. A credit line matches the return lines of its return whose SKU resolves to its
   stock code (a "match line": one stock code on one return).
7. A stock movement links like a credit (its `reference`) and matches the match
   line of its stock code.
8. A refund links to the return its `return_ref` names when that return exists;
   otherwise to the (smallest) return the lines of the credit note it names link
   to; a refund naming a credit note none of whose lines link rides with that
   credit note.
9. A refund with neither `return_ref` nor `credit_note` was made by hand in the
   gateway: a goodwill refund. It counts for the return whose payment it was made
   on: a return's payments are its `order_ref` and the `payment_ref` of every
   refund linked to it by rule 8 (any status). If several returns share the
   payment, the smallest return ref takes it.
"""

from __future__ import annotations

import re

_ZZ_REF = re.compile(r"ZZ-([^-]+)-(.+)", re.DOTALL)


def normalise_code(code: str) -> str:
    """A SKU, stock code or site as compared: spaces trimmed, upper case."""
    return code.strip(" ").upper()


def sql_normalise_code(column: str) -> str:
    """SQL twin of `normalise_code` for `column`."""
    return f"upper(trim({column}))"


def return_ref_for(reference: str, retailer_code: str | None = None) -> str:
    """The return ref a credit, stock or refund reference points at (rule 3)."""
    match = _ZZ_REF.fullmatch(reference)
    if match is None or (retailer_code is not None and match.group(1) != retailer_code):
        return reference
    return match.group(2)


def sql_return_ref_for(column: str, code_column: str) -> str:
    """SQL twin of `return_ref_for`: `column` is the reference, `code_column` the code."""
    code = f"split_part({column}, '-', 2)"
    return (
        f"CASE WHEN regexp_full_match({column}, 'ZZ-[^-]+-.+', 's') "
        f"AND ({code_column} IS NULL OR {code} = {code_column}) "
        f"THEN substr({column}, length({code}) + 5) ELSE {column} END"
    )


def resolve_sku(sku: str, links: dict[str, frozenset[str]] | None) -> str | None:
    """The stock code a SKU stands for (rule 4), or None when unmatched or ambiguous.

    `links` maps normalised SKU to normalised stock codes; None means no SKU map.
    """
    key = normalise_code(sku)
    if links is None:
        return key
    codes = links.get(key, frozenset())
    return next(iter(codes)) if len(codes) == 1 else None
