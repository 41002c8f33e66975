"""ZigZag times: a zone is required and the UTC conversion never escapes as a crash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from returnsync.adapters.zigzag.schemas import UtcTime

TIMES = TypeAdapter(UtcTime)


def test_a_zoned_time_is_converted_to_utc() -> None:
    assert TIMES.validate_python("2026-10-03T10:15:00+01:00") == datetime(
        2026, 10, 3, 9, 15, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "value",
    ["2026-10-03T10:15:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+05:00"],
)
def test_a_time_without_zone_or_out_of_range_in_utc_is_a_validation_error(value: str) -> None:
    with pytest.raises(ValidationError):
        TIMES.validate_python(value)
