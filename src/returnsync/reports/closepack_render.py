"""Render a close pack: an XLSX workbook and a one-page PDF summary with a chart."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

from openpyxl import Workbook

if TYPE_CHECKING:
    from pathlib import Path

    from returnsync.reports.closepack import ClosePack

FIXED_TIME = (2000, 1, 1, 0, 0, 0)  # XLSX/PDF metadata time: the files depend on content only


def write_all(pack: ClosePack, out_dir: Path) -> dict[str, Path]:
    """Write `<tenant>-<month>.xlsx`, `.pdf` and `.json` (with the digest); returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"close-{pack.tenant}-{pack.month}"
    paths = {
        "xlsx": stem.with_suffix(".xlsx"),
        "pdf": stem.with_suffix(".pdf"),
        "json": stem.with_suffix(".json"),
    }
    write_xlsx(pack, paths["xlsx"])
    write_pdf(pack, paths["pdf"])
    paths["json"].write_text(
        json.dumps({"digest": pack.digest, **pack.canonical()}, indent=2, sort_keys=True),
        encoding="utf-8",
    )
    return paths


def write_xlsx(pack: ClosePack, path: Path) -> None:
    """Summary, returns, accruals and findings sheets."""
    from datetime import datetime  # noqa: PLC0415

    book = Workbook()
    summary = book.create_sheet("Summary", 0)
    for extra in book.sheetnames[1:]:
        del book[extra]
    summary.append(["Close pack", f"{pack.tenant} {pack.month}"])
    summary.append(["Content hash (SHA-256)", pack.digest])
    summary.append([])
    summary.append(["Totals", "GBP"])
    for key, value in pack.totals.items():
        summary.append([key, value])
    summary.append([])
    for key, n in pack.matching.items():
        summary.append([f"returns {key}", n])
    summary.append([])
    summary.append(["Findings by kind", ""])
    for key, n in pack.findings_by_kind.items():
        summary.append([key, n])
    summary.append(["Findings by owner", ""])
    for key, n in pack.findings_by_owner.items():
        summary.append([key, n])
    summary.append(["Ageing of open findings", ""])
    for key, n in pack.ageing.items():
        summary.append([key, n])
    for title, rows in (("Returns", pack.returns), ("Accruals", pack.accruals)):
        sheet = book.create_sheet(title)
        columns = list(rows[0]) if rows else ["(none)"]
        sheet.append(columns)
        for row in rows:
            sheet.append([row[c] for c in columns])
    book.properties.created = datetime(*FIXED_TIME)  # noqa: DTZ001 - openpyxl wants naive
    book.properties.modified = datetime(*FIXED_TIME)  # noqa: DTZ001
    book.save(path)


def write_pdf(pack: ClosePack, path: Path) -> None:
    """One page: headline figures, findings table and a bar chart of findings by kind."""
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from reportlab.lib.pagesizes import A4  # noqa: PLC0415
    from reportlab.lib.utils import ImageReader  # noqa: PLC0415
    from reportlab.pdfgen import canvas  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(6, 3))
    kinds = list(pack.findings_by_kind) or ["none"]
    counts = [pack.findings_by_kind.get(k, 0) for k in kinds]
    ax.barh(kinds, counts, color="#3b6ea8")
    ax.set_xlabel("open findings")
    ax.set_title("Findings by kind")
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=120, metadata={"Software": None})
    plt.close(fig)
    png.seek(0)
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=True)
    width, height = A4
    y = height - 60
    pdf.setFont("Helvetica-Bold", 16)
    pdf.drawString(50, y, f"Month-end close pack: {pack.tenant} {pack.month}")
    pdf.setFont("Helvetica", 9)
    y -= 16
    pdf.drawString(50, y, f"Content hash (SHA-256): {pack.digest}")
    pdf.setFont("Helvetica", 11)
    for key, value in [*pack.totals.items(), *pack.matching.items()]:
        y -= 16
        pdf.drawString(60, y, f"{key.replace('_', ' ')}: {value}")
    y -= 24
    pdf.drawString(
        60, y, f"accrual items (received, not credited in the month): {len(pack.accruals)}"
    )
    y -= 16
    owners = ", ".join(f"{k} {v}" for k, v in pack.findings_by_owner.items()) or "none"
    pdf.drawString(60, y, f"open findings by owner: {owners}")
    pdf.drawImage(ImageReader(png), 50, y - 300, width=width - 100, height=270)
    pdf.setFont("Helvetica", 9)
    pdf.drawString(50, 50, "Signed off by: ____________________   Date: ____________")
    pdf.showPage()
    pdf.save()
