"""e2e options: the large chaos runs only run with `--run-chaos` (`make chaos`)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--run-chaos`: also run the tests marked `chaos` (minutes each)."""
    with contextlib.suppress(ValueError):  # ValueError: another conftest registered it first
        parser.addoption(
            "--run-chaos",
            action="store_true",
            default=False,
            help="run the tests marked chaos (large runs; `make chaos`)",
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this directory's tests marked `chaos` unless `--run-chaos` was given."""
    if config.getoption("--run-chaos", default=False):
        return
    skip = pytest.mark.skip(reason="large chaos run: pass --run-chaos (make chaos)")
    for item in items:
        if "chaos" in item.keywords and HERE in item.path.parents:
            item.add_marker(skip)
