"""The dependency rule, checked by walking imports."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "returnsync"
DOMAIN_ALLOWED = {"__future__", "dataclasses", "decimal", "datetime", "enum", "typing", "difflib"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_domain_is_pure() -> None:
    """domain/ imports only standard-library value types and itself."""
    for path in (SRC / "domain").glob("*.py"):
        for name in _imports(path):
            root = name.split(".")[0]
            assert root in DOMAIN_ALLOWED or name.startswith("returnsync.domain"), (path, name)


def test_production_code_never_imports_a_simulator() -> None:
    """Only the simulators themselves (and the CLI lazily) import returnsync.simulators."""
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("simulators/") or rel == "cli.py":
            continue
        assert not any(n.startswith("returnsync.simulators") for n in _imports(path)), rel


def test_adapters_never_import_services_or_simulators() -> None:
    """adapters/ depend on domain and ports only."""
    for path in (SRC / "adapters").rglob("*.py"):
        for name in _imports(path):
            assert not name.startswith(("returnsync.services", "returnsync.engine")), (path, name)
            assert not name.startswith("returnsync.simulators"), (path, name)


def test_simulators_share_no_code_with_adapters() -> None:
    """simulators/ import nothing from our adapters, domain or services."""
    for path in (SRC / "simulators").rglob("*.py"):
        if "demo" in path.parts:
            continue  # the demo wires returnsync to the simulators on purpose
        for name in _imports(path):
            if name.startswith("returnsync."):
                assert name.startswith("returnsync.simulators"), (path, name)
