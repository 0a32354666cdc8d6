"""The one writer of Gold Digger's tables (summaries, Results tables) as CSV.

One rule for every cell: finite floats with up to 6 significant digits (``%.6g``), NaN and
infinities as ``NaN`` (read by ImageJ, pandas and spreadsheets), integers and text as they
are. UTF-8, ``\\n`` line ends, a header row that is the union of the rows' keys in order of
first appearance (missing cells empty). The particle lists (``<stem>.csv``) keep their own
fixed format (`golddigger.particles.ParticleTable.to_csv`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

__all__ = ["format_cell", "rows_to_csv", "read_rows"]


def format_cell(v) -> str:
    """One cell as text (see the module docstring)."""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float) or (hasattr(v, "dtype") and getattr(v.dtype, "kind", "") == "f"):
        f = float(v)
        return f"{f:.6g}" if math.isfinite(f) else "NaN"
    if hasattr(v, "dtype") and getattr(v.dtype, "kind", "") in "iu":
        return str(int(v))
    return str(v)


def rows_to_csv(rows: Sequence[dict], path: str | Path | None = None,
                columns: Sequence[str] | None = None, plain: bool = False) -> str:
    """Write rows as CSV (atomically when ``path`` is given); returns the text.

    With ``plain``, commas, quotes and line breaks in text cells become ``;``, ``'`` and
    spaces, so that an ImageJ macro can split lines at commas.
    """
    cols: list[str] = list(columns or [])
    for row in rows:
        for k in row:
            if k not in cols:
                cols.append(k)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for row in rows:
        cells = [format_cell(row.get(c, "")) for c in cols]
        if plain:
            cells = [c.replace(",", ";").replace('"', "'").replace("\n", " ").replace("\r", " ")
                     for c in cells]
        writer.writerow(cells)
    text = buf.getvalue()
    if path is not None:
        from golddigger.io.safe import atomic_write_text

        atomic_write_text(Path(path), text)
    return text


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a CSV written by `rows_to_csv` (values as text)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: v for k, v in r.items() if k is not None} for r in csv.DictReader(fh)]
