"""Return state transitions and SKU resolution in the pure core."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from returnsync.domain.errors import IllegalTransitionError
from returnsync.domain.model import STOCK_ACTION, Disposition, StockAction, associated_ref
from returnsync.domain.sku import SkuIndex, SkuMatch, SkuUnmatched, StockItem, resolve_sku
from returnsync.domain.states import ALLOWED, ReturnState, transition


def test_the_happy_path_is_allowed() -> None:
    """open -> ready -> staged -> credited -> refunded -> closed."""
    path = [
        ReturnState.OPEN,
        ReturnState.READY,
        ReturnState.STAGED,
        ReturnState.CREDITED,
        ReturnState.REFUNDED,
        ReturnState.CLOSED,
    ]
    for current, target in itertools.pairwise(path):
        assert transition(current, target) is target


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (ReturnState.READY, ReturnState.REFUNDED),  # refund before credit note
        (ReturnState.STAGED, ReturnState.REFUNDED),
        (ReturnState.CLOSED, ReturnState.OPEN),
        (ReturnState.OPEN, ReturnState.CREDITED),
    ],
)
def test_illegal_moves_raise(current: ReturnState, target: ReturnState) -> None:
    """A refund can never come before the credit note; closed returns stay closed."""
    with pytest.raises(IllegalTransitionError):
        transition(current, target)


def test_every_state_has_a_rule() -> None:
    """The transition table covers every state."""
    assert set(ALLOWED) == set(ReturnState)


def test_dispositions_map_to_stock_actions() -> None:
    """Write-offs do not restock; missing units earn nothing."""
    assert STOCK_ACTION[Disposition.WRITE_OFF] is StockAction.WRITE_OFF
    assert STOCK_ACTION[Disposition.RESALEABLE] is StockAction.RESTOCK
    assert STOCK_ACTION[Disposition.QUARANTINE] is StockAction.HOLD
    assert STOCK_ACTION[Disposition.MISSING] is StockAction.NONE


CATALOGUE = [
    StockItem(stock_id="1", stock_code="TEE-BLK-L", other_ref="OR-1", barcodes=("5012345678900",)),
    StockItem(stock_id="2", stock_code="TEE-BLK-M"),
]


def test_sku_resolves_by_code_case_insensitively() -> None:
    """Stock codes match trimmed and case-insensitively (assumption K-12)."""
    found = resolve_sku(" tee-blk-l ", CATALOGUE, {})
    assert isinstance(found, SkuMatch)
    assert found.item.stock_id == "1"


def test_sku_resolves_by_other_ref_and_barcode() -> None:
    """OtherRef and barcodes are tried after the stock code."""
    by_ref = resolve_sku("OR-1", CATALOGUE, {})
    by_barcode = resolve_sku("5012345678900", CATALOGUE, {})
    assert isinstance(by_ref, SkuMatch)
    assert by_ref.how == "OtherRef"
    assert isinstance(by_barcode, SkuMatch)
    assert by_barcode.how == "Barcode"


def test_explicit_mapping_wins() -> None:
    """An operator's SKU map entry is used before any matching."""
    found = resolve_sku("WEB-123", CATALOGUE, {"web-123": "2"})
    assert isinstance(found, SkuMatch)
    assert found.item.stock_code == "TEE-BLK-M"


def test_unmatched_sku_gets_suggestions_and_is_never_guessed() -> None:
    """An unknown SKU is unmatched, with close stock codes suggested for a person."""
    found = resolve_sku("TEE-BLK-L-V2", CATALOGUE, {})
    assert isinstance(found, SkuUnmatched)
    assert "TEE-BLK-L" in found.suggestions


def test_associated_ref_fits_khaos_limits() -> None:
    """AssociatedRef is ZZ-<retailer>-<return>, no '#', at most 50 characters."""
    assert associated_ref("GL100", "R#1") == "ZZ-GL100-R-1"
    with pytest.raises(ValueError, match="50 characters"):
        associated_ref("GL100", "R" * 60)


_CODES = st.sampled_from(["A", "a ", "B", "C-1", "c-1", "D", ""])


@given(
    items=st.lists(
        st.builds(
            StockItem,
            stock_id=st.sampled_from(["1", "2", "3", "4", "5"]),
            stock_code=_CODES,
            other_ref=_CODES,
            barcodes=st.lists(_CODES, max_size=2).map(tuple),
        ),
        max_size=5,
        unique_by=lambda item: item.stock_id,
    ),
    mapping=st.dictionaries(st.sampled_from(["a", "b", "x"]), st.sampled_from(["1", "2", "9"])),
    sku=_CODES,
)
def test_the_sku_index_answers_as_resolve_sku(
    items: list[StockItem], mapping: dict[str, str], sku: str
) -> None:
    """The index reconciliation uses matches exactly the items `resolve_sku` matches."""
    found = resolve_sku(sku, items, mapping)
    expected = found.item if isinstance(found, SkuMatch) else None
    assert SkuIndex(items, mapping).item(sku) == expected
