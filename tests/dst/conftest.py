"""Deterministic simulation tests: `--run-chaos` enables the 10,000-seed run (`make chaos`)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_addoption(parser: pytest.Parser) -> None:
    with contextlib.suppress(ValueError):  # ValueError: another conftest registered it first
        parser.addoption(
            "--run-chaos",
            action="store_true",
            default=False,
            help="run the tests marked chaos (10,000 simulated seeds; `make chaos`)",
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-chaos", default=False):
        return
    skip = pytest.mark.skip(reason="chaos run: pass --run-chaos (make chaos)")
    for item in items:
        if "chaos" in item.keywords and HERE in item.path.parents:
            item.add_marker(skip)
