"""The linking functions and their SQL twins say the same thing."""

from __future__ import annotations

import duckdb
import pytest

from returnsync.domain.model import associated_ref
from returnsync.recon import linking

REFERENCES = [
    ("ZZ-AC1-R000123", None, "R000123"),
    ("ZZ-AC1-R000123", "AC1", "R000123"),
    ("ZZ-AC1-R000123", "BO2", "ZZ-AC1-R000123"),
    ("R000123", None, "R000123"),
    ("R000123", "AC1", "R000123"),
    ("ZZ-AC1-R-12-3", None, "R-12-3"),
    ("ZZ--R1", None, "ZZ--R1"),
    ("ZZ-AC1-", None, "ZZ-AC1-"),
    ("ZZ-AC1", None, "ZZ-AC1"),
    ("zz-AC1-R1", None, "zz-AC1-R1"),
    ("ZZ-AC1-R1\nX", None, "R1\nX"),
    ("", None, ""),
]


@pytest.mark.parametrize(("reference", "code", "expected"), REFERENCES)
def test_return_ref_for_reads_the_khaos_associated_ref(reference, code, expected):
    """`ZZ-<code>-<ref>` gives the ref (when the code is accepted); anything else is the ref."""
    assert linking.return_ref_for(reference, code) == expected


def test_the_sql_twin_of_return_ref_for_agrees():
    """DuckDB computes the same return ref for every case."""
    con = duckdb.connect()
    for reference, code, expected in REFERENCES:
        sql = linking.sql_return_ref_for("ref", "code")
        (got,) = con.execute(
            f"SELECT {sql} FROM (SELECT ? AS ref, ? AS code)", [reference, code]
        ).fetchone()
        assert got == expected, (reference, code)


def test_it_inverts_the_domain_associated_ref():
    """What the saga stages as AssociatedRef links back to the same return."""
    assert linking.return_ref_for(associated_ref("GL123", "R000123"), "GL123") == "R000123"


@pytest.mark.parametrize(
    ("code", "expected"), [(" sku-1 ", "SKU-1"), ("SC1", "SC1"), ("\tSC1", "\tSC1"), ("", "")]
)
def test_codes_compare_trimmed_and_upper_cased_in_python_and_sql(code, expected):
    """Only spaces are trimmed, in both twins (a tab is data)."""
    assert linking.normalise_code(code) == expected
    sql = linking.sql_normalise_code("code")
    (got,) = duckdb.connect().execute(f"SELECT {sql} FROM (SELECT ? AS code)", [code]).fetchone()
    assert got == expected


def test_a_sku_resolves_to_exactly_one_stock_code():
    """One code resolves; none or two do not; no map means the SKU is its own code."""
    links = {"SKU-1": frozenset({"SC1"}), "SKU-2": frozenset({"SC2", "SC3"})}
    assert linking.resolve_sku(" sku-1", links) == "SC1"
    assert linking.resolve_sku("SKU-2", links) is None
    assert linking.resolve_sku("SKU-9", links) is None
    assert linking.resolve_sku("sku-9", None) == "SKU-9"
