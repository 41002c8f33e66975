"""The docs keep up with the code: every CLI command is documented, every link resolves."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main

from returnsync.cli import _register_plugins, app

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

FENCED = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto: ...
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


@functools.cache
def _commands() -> list[tuple[str, Any]]:
    """Every command and sub-command of the CLI as (full name, command), plugins included.

    Groups are recognised by their `commands` mapping rather than by class, because Typer
    may build them on its own vendored copy of click. Cached: plugins register once.
    """
    _register_plugins()
    root = typer.main.get_command(app)
    found: list[tuple[str, Any]] = []

    def walk(command: Any, prefix: str) -> None:
        children = getattr(command, "commands", None)
        if not isinstance(children, dict):
            return
        for name, sub in sorted(children.items()):
            full = f"{prefix} {name}".strip()
            found.append((full, sub))
            walk(sub, full)

    walk(root, "")
    return found


def _doc_files() -> list[Path]:
    """README.md and every Markdown file under docs/."""
    files = sorted(DOCS.rglob("*.md"))
    return [README, *files] if README.exists() else files


def _mentioned(full_name: str, text: str) -> bool:
    """Whether `returnsync <full name>` appears in `text` (words may be split across lines)."""
    words = r"\s+".join(re.escape(word) for word in full_name.split())
    return re.search(rf"returnsync\s+{words}(?![\w-])", text) is not None


def _links(path: Path) -> list[str]:
    """The link targets of a Markdown file, outside code blocks and code spans."""
    text = INLINE_CODE.sub("", FENCED.sub("", path.read_text(encoding="utf-8")))
    return LINK.findall(text)


def _anchors(path: Path) -> set[str]:
    """The heading anchors of a Markdown file, slugged the way GitHub does it."""
    text = FENCED.sub("", path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for heading in HEADING.findall(text):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        anchors.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return anchors


def test_the_cli_has_commands_to_check() -> None:
    """The walk finds the commands we know exist, so the checks below are not vacuous."""
    names = {name for name, _ in _commands()}
    assert {"serve", "worker", "sku map", "jobs retry", "sim zigzag"} <= names


@pytest.mark.parametrize(
    ("full_name", "command"), [pytest.param(n, c, id=n) for n, c in _commands()]
)
def test_every_command_has_help(full_name: str, command: Any) -> None:
    """Every command and sub-command explains itself in `--help`."""
    assert (command.help or command.short_help or "").strip(), f"`{full_name}` has no help text"


@pytest.mark.parametrize(
    ("full_name", "command"), [pytest.param(n, c, id=n) for n, c in _commands()]
)
def test_every_command_is_documented(full_name: str, command: Any) -> None:
    """Every command's full name appears as `returnsync <name>` in the README or docs/."""
    del command
    text = "\n".join(path.read_text(encoding="utf-8") for path in _doc_files())
    assert _mentioned(full_name, text), (
        f"`returnsync {full_name}` is not mentioned in README.md or docs/*.md"
    )


@pytest.mark.parametrize("path", _doc_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_to_another_file_resolves(path: Path) -> None:
    """Relative links in README.md and docs/ point at files (and headings) that exist."""
    broken = []
    for target in _links(path):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part.split("?", 1)[0]) if file_part else path
        missing_heading = bool(anchor) and linked.suffix == ".md" and linked.exists()
        if not linked.exists() or (missing_heading and anchor not in _anchors(linked)):
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)} has broken links: {broken}"


def test_anchors_follow_github_slugs(tmp_path: Path) -> None:
    """Headings become GitHub anchors; headings inside code blocks do not count."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Operator guide\n## `sku_unmatched` (operations)\n## Alerts\n## Alerts\n"
        "```sh\n# not a heading\n```\n",
        encoding="utf-8",
    )
    assert _anchors(page) == {"operator-guide", "sku_unmatched-operations", "alerts", "alerts-1"}


def test_mentions_are_matched_as_whole_commands() -> None:
    """`returnsync reconcile` in the docs does not count as documenting `reconcile-files`."""
    assert _mentioned("sku map", "run `returnsync sku\n  map acme X Y`")
    assert not _mentioned("reconcile-files", "run returnsync reconcile --dry-run")
    assert not _mentioned("reconcile", "run returnsync reconcile-files x")
