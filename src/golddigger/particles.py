"""The particle table: one row per gold particle, the currency of the whole package.

Coordinates follow ImageJ: ``x`` is the column and ``y`` the row, in pixels of the image
the particles belong to, with pixel centres at integer coordinates (so a particle drawn
centred on pixel (10, 20) has x=10.0, y=20.0). ``slice`` is the 0-based stack index.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golddigger.errors import AnnotationError

__all__ = ["ParticleTable", "CSV_COLUMNS"]

#: The columns of Gold Digger's particle CSV, in order. Only the first three are required
#: when reading; ``score`` defaults to 1 (a label) and ``slice`` to 0.
CSV_COLUMNS = ("x", "y", "diameter_nm", "score", "slice")
#: Optional column after them: the diameter measured on the image (nm), written when
#: known (detections with sizes measured, `golddigger.model.sizing.measure_diameters`);
#: ``diameter_nm`` stays the size class.
MEASURED_COLUMN = "measured_nm"


#: Largest stack index accepted from files (ImageJ stacks hold at most 2**31 - 1 slices).
MAX_SLICE = 2**31 - 2


def is_slice_index(value: float) -> bool:
    """True for a whole number in ``0..MAX_SLICE`` (a 0-based slice read from a file)."""
    return bool(np.isfinite(value) and value == int(value) and 0 <= value <= MAX_SLICE)


def _as_float(values: Iterable[float] | np.ndarray, n: int, default: float) -> np.ndarray:
    if values is None:
        return np.full(n, default, dtype=np.float64)
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size != n:
        raise ValueError(f"column has {arr.size} values, expected {n}")
    return arr


@dataclass
class ParticleTable:
    """Particles as parallel arrays.

    Parameters
    ----------
    x, y : array_like
        Centres in pixels (x = column, y = row).
    diameter_nm : array_like
        Particle diameter (the size class) in nm.
    score : array_like, optional
        Detection confidence in [0, 1]; 1 for annotations. Default 1.
    slice : array_like, optional
        0-based stack slice. Default 0.
    measured_nm : array_like, optional
        Diameter measured on the image (nm), NaN where unknown (labels, old files).
        ``diameter_nm`` is the size class it was binned into.
    """

    x: np.ndarray
    y: np.ndarray
    diameter_nm: np.ndarray
    score: np.ndarray = field(default=None)  # type: ignore[assignment]
    slice: np.ndarray = field(default=None)  # type: ignore[assignment]
    measured_nm: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=np.float64).reshape(-1)
        n = self.x.size
        self.y = _as_float(self.y, n, np.nan)
        self.diameter_nm = _as_float(self.diameter_nm, n, np.nan)
        self.score = _as_float(self.score, n, 1.0)
        if self.slice is None:
            self.slice = np.zeros(n, dtype=np.int64)
        else:
            self.slice = np.asarray(self.slice, dtype=np.int64).reshape(-1)
            if self.slice.size != n:
                raise ValueError(f"slice has {self.slice.size} values, expected {n}")
        self.measured_nm = _as_float(self.measured_nm, n, np.nan)

    # ------------------------------------------------------------------ construction
    @classmethod
    def empty(cls) -> ParticleTable:
        """A table with no particles."""
        return cls(np.empty(0), np.empty(0), np.empty(0))

    @classmethod
    def concat(cls, tables: Iterable[ParticleTable]) -> ParticleTable:
        """Stack several tables into one."""
        tables = list(tables)
        if not tables:
            return cls.empty()
        return cls(
            np.concatenate([t.x for t in tables]),
            np.concatenate([t.y for t in tables]),
            np.concatenate([t.diameter_nm for t in tables]),
            np.concatenate([t.score for t in tables]),
            np.concatenate([t.slice for t in tables]),
            np.concatenate([t.measured_nm for t in tables]),
        )

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return int(self.x.size)

    def __iter__(self) -> Iterator[tuple[float, float, float, float, int]]:
        for row in zip(self.x, self.y, self.diameter_nm, self.score, self.slice, strict=True):
            yield (float(row[0]), float(row[1]), float(row[2]), float(row[3]), int(row[4]))

    def __getitem__(self, index) -> ParticleTable:
        """Rows selected by a boolean mask, an index array or a slice."""
        return ParticleTable(
            self.x[index], self.y[index], self.diameter_nm[index], self.score[index],
            self.slice[index], self.measured_nm[index],
        )

    @property
    def xy(self) -> np.ndarray:
        """(N, 2) array of (x, y)."""
        return np.stack([self.x, self.y], axis=1)

    @property
    def classes(self) -> list[float]:
        """Sorted distinct diameters (nm)."""
        return sorted({float(d) for d in self.diameter_nm})

    def of_class(self, diameter_nm: float, tol_nm: float = 0.5) -> ParticleTable:
        """Rows whose diameter is within ``tol_nm`` of ``diameter_nm``."""
        return self[np.abs(self.diameter_nm - diameter_nm) <= tol_nm]

    def in_slice(self, index: int) -> ParticleTable:
        """Rows of one stack slice (0-based)."""
        return self[self.slice == index]

    def scaled(self, factor: float) -> ParticleTable:
        """Coordinates multiplied by ``factor`` (pixel-centre convention kept)."""
        return ParticleTable(self.x * factor, self.y * factor, self.diameter_nm.copy(),
                             self.score.copy(), self.slice.copy(), self.measured_nm.copy())

    def __eq__(self, other: object) -> bool:  # numpy arrays need an explicit comparison
        if not isinstance(other, ParticleTable):
            return NotImplemented
        mine, theirs = self.columns(), other.columns()
        return len(self) == len(other) and mine.keys() == theirs.keys() and all(
            np.array_equal(mine[k], theirs[k], equal_nan=True) for k in mine)

    def columns(self) -> dict[str, np.ndarray]:
        """The columns by CSV name (``measured_nm`` only when any size is known)."""
        cols = {"x": self.x, "y": self.y, "diameter_nm": self.diameter_nm,
                "score": self.score, "slice": self.slice}
        if np.isfinite(self.measured_nm).any():
            cols[MEASURED_COLUMN] = self.measured_nm
        return cols

    def __repr__(self) -> str:
        counts = ", ".join(f"{d:g} nm: {len(self.of_class(d))}" for d in self.classes)
        return f"ParticleTable({len(self)} particles{'; ' + counts if counts else ''})"

    # ------------------------------------------------------------------ CSV
    def to_csv(self, path: str | Path | None = None, extra: dict[str, Iterable] | None = None
               ) -> str:
        """Write (or return) the CSV ``x,y,diameter_nm,score,slice[,extra...]``.

        Parameters
        ----------
        path : str or Path, optional
            Where to write. The file is written atomically. If omitted, only the text is
            returned.
        extra : dict, optional
            Further columns (name to values, one per row) appended on the right.
        """
        cols = {k: v for k, v in self.columns().items()}
        for name, values in (extra or {}).items():
            values = list(values)
            if len(values) != len(self):
                raise ValueError(f"extra column {name!r} has {len(values)} values, "
                                 f"expected {len(self)}")
            cols[name] = values
        lines = [",".join(cols)]
        for i in range(len(self)):
            cells = []
            for name, values in cols.items():
                v = values[i]
                if name in ("x", "y"):
                    cells.append(f"{float(v):.2f}")
                elif name == "diameter_nm":
                    cells.append(f"{float(v):g}")
                elif name == "score":
                    cells.append(f"{float(v):.4f}")
                elif name == "slice":
                    cells.append(str(int(v)))
                elif name == MEASURED_COLUMN:
                    cells.append(f"{float(v):.2f}")
                elif isinstance(v, (float, np.floating)):
                    cells.append(f"{float(v):.6g}")
                else:
                    cells.append(str(v))
            lines.append(",".join(cells))
        text = "\n".join(lines) + "\n"
        if path is not None:
            from golddigger.io.safe import atomic_write_text

            atomic_write_text(Path(path), text)
        return text

    @classmethod
    def from_csv(cls, path: str | Path) -> ParticleTable:
        """Read Gold Digger's particle CSV (``x,y,diameter_nm[,score][,slice]``).

        Raises
        ------
        AnnotationError
            If the file is missing, has no ``x``/``y``/``diameter_nm`` columns or
            non-numeric cells; the message names the file, the line and the fix.
        """
        import csv

        path = Path(path)
        if not path.is_file():
            raise AnnotationError(f"{path}: no such particle file")
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                if header is None:
                    return cls.empty()
                header = [h.strip().lower() for h in header]
                missing = [c for c in ("x", "y", "diameter_nm") if c not in header]
                if missing:
                    raise AnnotationError(
                        f"{path}: missing column(s) {', '.join(missing)}; a particle CSV needs "
                        f"the header x,y,diameter_nm (found: {','.join(header)})")
                idx = {name: header.index(name) for name in CSV_COLUMNS + (MEASURED_COLUMN,)
                       if name in header}
                data: dict[str, list[float]] = {name: [] for name in idx}
                for lineno, row in enumerate(reader, start=2):
                    if not row or all(not c.strip() for c in row):
                        continue
                    for name, j in idx.items():
                        try:
                            value = float(row[j])
                        except (IndexError, ValueError):
                            cell = row[j] if j < len(row) else "<missing>"
                            raise AnnotationError(
                                f"{path}, line {lineno}: column {name!r} is {cell!r}, "
                                "not a number") from None
                        if name not in ("score", MEASURED_COLUMN) and not np.isfinite(value):
                            raise AnnotationError(
                                f"{path}, line {lineno}: column {name!r} is not finite")
                        if name == "diameter_nm" and value <= 0:
                            raise AnnotationError(
                                f"{path}, line {lineno}: diameter_nm is {row[j]!r}; it must "
                                "be a positive number of nm")
                        if name == "slice" and not is_slice_index(value):
                            raise AnnotationError(
                                f"{path}, line {lineno}: slice is {row[j]!r}; it must be a "
                                "0-based slice number (0, 1, 2, ...)")
                        data[name].append(value)
        except UnicodeDecodeError:
            raise AnnotationError(f"{path}: not a text CSV file") from None
        except csv.Error as err:
            raise AnnotationError(f"{path}: not a readable CSV file ({err})") from None
        return cls(
            data["x"], data["y"], data["diameter_nm"], data.get("score"),
            None if "slice" not in data else np.asarray(data["slice"], dtype=np.int64),
            data.get(MEASURED_COLUMN),
        )
