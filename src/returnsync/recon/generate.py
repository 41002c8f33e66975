"""A seeded dataset of the four export files plus a SKU map, with planted gaps.

`generate(directory, lines=N, plant={kind: k})` writes `returns.csv`, `credits.csv`,
`stock.csv`, `refunds.csv` and `sku_map.csv` describing three tenants whose
returns are clean except for the planted gaps, and returns the keys of exactly
the findings those gaps must produce. The clean part is not trivial: partial
returns, several credit notes per return, failed refund attempts, plain and
`ZZ-` associated refs, lower-case SKUs, hold and quarantine sites, and returns
still in flight inside their SLAs. Same seed, same files.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from returnsync.recon import emit, shapes
from returnsync.recon.columns import SCHEMAS
from returnsync.recon.shapes import AS_OF, TENANTS

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime
    from pathlib import Path

    from returnsync.recon.findings import FindingKey, FindingKind

MEAN_LINES_PER_RETURN = 2.3  # (1+1+2+2+3+4)/6 drawn, fewer where items repeat


class _Writer(Protocol):
    def writerow(self, row: Iterable[object], /) -> object: ...


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """Where the files are, the moment they describe, and the findings planted in them."""

    returns: Path
    credits: Path
    stock: Path
    refunds: Path
    sku_map: Path
    as_of: datetime
    lines: int
    expected: frozenset[FindingKey]


def generate(
    directory: Path,
    *,
    lines: int,
    seed: int = 7,
    plant: Mapping[FindingKind, int] | None = None,
    as_of: datetime = AS_OF,
) -> Dataset:
    """Write about `lines` return lines (at least that many) and the matching documents.

    Each kind in `plant` is planted that many times, each on its own return, spread
    evenly through the file. The dataset grows past `lines` if needed to fit them.
    """
    rng = random.Random(seed)
    plan = [kind for kind, count in sorted((plant or {}).items()) for _ in range(count)]
    rng.shuffle(plan)
    step = max(1, int(lines / MEAN_LINES_PER_RETURN) // (len(plan) + 1))
    directory.mkdir(parents=True, exist_ok=True)
    names = ("returns", "credits", "stock", "refunds", "sku_map")
    paths = {name: directory / f"{name}.csv" for name in names}
    handles = {name: path.open("w", newline="", encoding="utf-8") for name, path in paths.items()}
    try:
        writers = {
            name: csv.writer(handle, lineterminator="\n") for name, handle in handles.items()
        }
        for name, writer in writers.items():
            writer.writerow(SCHEMAS[name].columns)
        _write_sku_map(writers["sku_map"])
        expected: set[FindingKey] = set()
        written = number = 0
        while written < lines or plan:
            kind = plan.pop() if plan and number % step == step - 1 else None
            start = shapes.Start(*TENANTS[number % len(TENANTS)], number, as_of)
            drawn = shapes.draw(rng, start, kind)
            for name, rows in emit.rows(rng, drawn).items():
                writers[name].writerows(rows)
            expected.update(drawn.expected)
            written += len(drawn.lines)
            number += 1
    finally:
        for handle in handles.values():
            handle.close()
    return Dataset(
        returns=paths["returns"],
        credits=paths["credits"],
        stock=paths["stock"],
        refunds=paths["refunds"],
        sku_map=paths["sku_map"],
        as_of=as_of,
        lines=written,
        expected=frozenset(expected),
    )


def _write_sku_map(writer: _Writer) -> None:
    for tenant, _, _ in TENANTS:
        for item in range(shapes.SKUS_PER_TENANT):
            writer.writerow((tenant, shapes.sku(item), shapes.stock_code(item)))
