"""Reading particle annotations: Gold Digger CSVs, ImageJ ROIs and ImageJ Results tables.

Supported files
---------------
* Gold Digger's particle CSV ``x,y,diameter_nm[,score][,slice]`` (pixels).
* ImageJ ROIs: a RoiSet ``.zip`` or a single ``.roi``; point and multi-point ROIs (every
  point is a particle) and ovals (the centre is the particle). Other ROI types (a membrane
  outline drawn in the same set, say) are skipped with a warning. Point coordinates are
  taken as ImageJ stores them and ovals are shifted by half a pixel; see
  `golddigger.io.rois` for why.
* ImageJ Results tables (``.csv``, or tab-separated ``.txt``/``.xls``/``.tsv``) with
  ``X,Y`` (or ``XM,YM``) columns, as "Measure" writes them, with or without the unnamed
  row-number column. Coordinates may be calibrated (microns, which then needs the pixel
  size) or in pixels: a file or column name saying "micron"/"um"/"µm" means microns,
  "pixel"/"px" means pixels, otherwise small fractional values (all below 50) are taken as
  microns and anything else as pixels; pass ``units=`` to decide yourself. For tables of
  area measurements (an ``Area`` column > 0) the centroids are shifted by half a pixel into
  Gold Digger's pixel-centre convention; point measurements (Area 0 or absent) are not.

The size class
--------------
Each particle's class (its diameter in nm) comes from, in this order: the ``diameter_nm``
argument; a ``diameter_nm`` column; the ROI's ``diameter_nm`` property (written by
`golddigger.io.rois.write_roiset`), its name (``"6nm"``, ``"12 nm"``, ``"gold_12"``) or its
group (Gold Digger's groups: 1 = 6 nm, 2 = 12 nm, 3 = 18 nm); an oval's size (needs the
pixel size; snapped to the nearest common gold size within 30 %); the file name
(``"Results 12nm XY in microns ROI.zip"`` -> 12). If none applies: `AnnotationError`.

Stack positions (ROI position or z/t/c, multi-point counters' positions, a ``Slice`` /
``Frame`` column of a Results table; all 1-based in ImageJ) become the 0-based ``slice``.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from roifile import ROI_TYPE, ImagejRoi

from golddigger.errors import AnnotationError
from golddigger.io.rois import load_rois, roi_slice
from golddigger.particles import ParticleTable

__all__ = [
    "ANNOTATION_SUFFIXES",
    "COMMON_GOLD_SIZES_NM",
    "find_annotations",
    "read_annotation_set",
    "read_particles",
    "size_from_name",
]

log = logging.getLogger(__name__)

ROI_SUFFIXES = (".zip", ".roi")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".xls")
#: Files `read_particles` understands.
ANNOTATION_SUFFIXES = ROI_SUFFIXES + TABLE_SUFFIXES
#: Commercial colloidal gold sizes; an oval's measured size snaps to the nearest one.
COMMON_GOLD_SIZES_NM = (1.4, 5.0, 6.0, 10.0, 12.0, 15.0, 18.0, 20.0, 25.0, 30.0, 40.0)

_SIZE_RANGE_NM = (0.5, 200.0)
_NM_RE = re.compile(r"(?<![\d.])(\d+(?:[.,]\d+)?)\s*[-_]?\s*nm(?!ol)", re.IGNORECASE)
_GOLD_RE = re.compile(r"gold[\s_-]*(\d+(?:[.,]\d+)?)(?![\d.])", re.IGNORECASE)
_MICRON_RE = re.compile(r"(?<![a-z])(microns?|micrometers?|µm|μm|um)(?![a-z])", re.IGNORECASE)
_PIXEL_RE = re.compile(r"(?<![a-z])(pixels?|px)(?![a-z])", re.IGNORECASE)
_NO_CLASS = ("give diameter_nm (--diameter), add a diameter_nm column, or put the size in "
             "the file or ROI name (e.g. 'gold 12nm.zip')")


class _NeedsPixelSize(AnnotationError):
    """A calibrated table was given without a pixel size."""


# ---------------------------------------------------------------------------- class names
def size_from_name(text: str) -> float | None:
    """The particle size (nm) a name states, e.g. ``"6nm"``, ``"12 nm"``, ``"gold_12"``.

    Returns None when the name states no size or several different ones.
    """
    if not text:
        return None
    found = {float(m.replace(",", ".")) for m in _NM_RE.findall(text)}
    if not found:
        found = {float(m.replace(",", ".")) for m in _GOLD_RE.findall(text)}
    found = {v for v in found if _SIZE_RANGE_NM[0] <= v <= _SIZE_RANGE_NM[1]}
    if len(found) == 1:
        return found.pop()
    if len(found) > 1:
        log.debug("name %r states several sizes %s; ignored", text, sorted(found))
    return None


def _snap(d_nm: float) -> float:
    best = min(COMMON_GOLD_SIZES_NM, key=lambda s: abs(s - d_nm))
    if abs(best - d_nm) <= 0.3 * best:
        return best
    return round(d_nm, 1)


# ---------------------------------------------------------------------------- one file
def read_particles(path: str | Path, pixel_size_nm: float | None = None,
                   diameter_nm: float | None = None, *, units: str | None = None
                   ) -> ParticleTable:
    """Read one annotation file into a `ParticleTable` (pixels of the image).

    Parameters
    ----------
    path : str or Path
        A Gold Digger CSV, an ImageJ ``.roi`` / RoiSet ``.zip``, or an ImageJ Results table
        (see the module docstring for the details and conventions).
    pixel_size_nm : float, optional
        nm per pixel; needed for Results tables in microns and to class ovals by size.
    diameter_nm : float, optional
        The size class of every particle in the file (overrides anything in the file).
    units : {"um", "nm", "px"}, optional
        Units of a Results table's coordinates; default: detected.

    Raises
    ------
    AnnotationError
        Unreadable, empty or foreign files, missing columns, non-numeric cells, a
        calibrated table without ``pixel_size_nm``, or no way to tell the size class.
    """
    path = Path(path)
    if not path.exists():
        raise AnnotationError(f"{path}: no such annotation file")
    if path.is_dir():
        raise AnnotationError(f"{path} is a folder; use read_annotation_set for folders")
    px = _pixel_size(pixel_size_nm, path)
    if diameter_nm is not None:
        diameter_nm = _check_diameter(diameter_nm, path)
    suffix = path.suffix.lower()
    if suffix in ROI_SUFFIXES:
        table = _read_roi_particles(path, px, diameter_nm)
    elif suffix in TABLE_SUFFIXES:
        table = _read_table(path, px, diameter_nm, units)
    else:
        raise AnnotationError(
            f"{path}: unknown annotation format {suffix or '(no suffix)'}; use a particle "
            f"CSV, an ImageJ ROI set (.zip/.roi) or an ImageJ Results table (.csv)")
    log.debug("%s: %r", path, table)
    return table


def _pixel_size(pixel_size_nm: float | None, path: Path) -> float | None:
    if pixel_size_nm is None:
        return None
    from golddigger.io.images import validate_pixel_size

    return validate_pixel_size(pixel_size_nm, str(path))


def _check_diameter(d, path: Path) -> float:
    try:
        d = float(d)
    except (TypeError, ValueError):
        raise AnnotationError(f"{path}: diameter {d!r} is not a number of nm") from None
    if not _SIZE_RANGE_NM[0] <= d <= _SIZE_RANGE_NM[1]:
        raise AnnotationError(f"{path}: diameter {d:g} nm is not a plausible gold size "
                              f"({_SIZE_RANGE_NM[0]:g}-{_SIZE_RANGE_NM[1]:g} nm)")
    return d


# ---------------------------------------------------------------------------- ROI files
def _read_roi_particles(path: Path, px: float | None, diameter_nm: float | None
                        ) -> ParticleTable:
    rois = load_rois(path)
    file_size = size_from_name(path.stem)
    xs: list[float] = []
    ys: list[float] = []
    ds: list[float] = []
    ss: list[int] = []
    skipped: dict[str, int] = {}
    unclassed: list[str] = []
    for roi in rois:
        if roi.composite or roi.roitype not in (ROI_TYPE.POINT, ROI_TYPE.OVAL):
            kind = "composite" if roi.composite else _type_name(roi)
            skipped[kind] = skipped.get(kind, 0) + 1
            continue
        if roi.roitype == ROI_TYPE.POINT:
            xy = np.asarray(roi.coordinates(), dtype=float).reshape(-1, 2)
            base = roi_slice(roi)
            if roi.counter_positions is not None and len(roi.counter_positions) == len(xy):
                sl = [int(p) - 1 if p > 0 else base for p in roi.counter_positions]
            else:
                sl = [base] * len(xy)
            own = None
        else:
            x0, y0, w, h = _oval_rect(roi)
            if w <= 0 or h <= 0:
                skipped["empty oval"] = skipped.get("empty oval", 0) + 1
                continue
            xy = np.array([[x0 + w / 2 - 0.5, y0 + h / 2 - 0.5]])
            sl = [roi_slice(roi)]
            own = _snap((w + h) / 2 * px) if px is not None else None
        d = diameter_nm
        if d is None:
            d = _roi_size(roi)
        if d is None:
            d = own
        if d is None:
            d = file_size
        if d is None:
            unclassed.append(roi.name or "?")
            continue
        xs.extend(xy[:, 0])
        ys.extend(xy[:, 1])
        ds.extend([d] * len(xy))
        ss.extend(sl)
    if skipped:
        log.warning("%s: skipped %s ROI(s) that are not particles (points or ovals)", path,
                    ", ".join(f"{n} {k}" for k, n in sorted(skipped.items())))
    if unclassed:
        shown = ", ".join(repr(n) for n in unclassed[:3]) + (", ..." if len(unclassed) > 3
                                                             else "")
        hint = "" if px is not None else "; or give the pixel size to class ovals by size"
        raise AnnotationError(f"{path}: cannot tell the size class of {len(unclassed)} "
                              f"ROI(s) ({shown}); {_NO_CLASS}{hint}")
    if not xs:
        raise AnnotationError(f"{path}: no point or oval ROIs (particles) in the file; mark "
                              "particles with the point or oval tool")
    return ParticleTable(np.array(xs), np.array(ys), np.array(ds), None,
                         np.array(ss, dtype=np.int64))


def _type_name(roi: ImagejRoi) -> str:
    try:
        return ROI_TYPE(roi.roitype).name.lower()
    except ValueError:
        return f"type-{roi.roitype}"


def _oval_rect(roi: ImagejRoi) -> tuple[float, float, float, float]:
    if roi.subpixelrect:
        return float(roi.xd), float(roi.yd), float(roi.widthd), float(roi.heightd)
    return (float(roi.left), float(roi.top), float(roi.right - roi.left),
            float(roi.bottom - roi.top))


def _roi_size(roi: ImagejRoi) -> float | None:
    """Size class stated by the ROI itself: property, name, then Gold Digger group."""
    from golddigger.io.rois import CLASS_GROUPS

    props = {}
    try:
        props = roi.properties
    except Exception:  # malformed property text: ignore it
        log.debug("ROI %r: unreadable properties", roi.name)
    for key in ("diameter_nm", "diameter", "class"):
        if key in props:
            value = props[key]
            d = value if isinstance(value, (int, float)) else size_from_name(str(value))
            if d is not None and _SIZE_RANGE_NM[0] <= float(d) <= _SIZE_RANGE_NM[1]:
                return float(d)
    d = size_from_name(roi.name)
    if d is not None:
        return d
    if roi.group:
        for size, group in CLASS_GROUPS.items():
            if group == roi.group:
                return size
    return None


# ---------------------------------------------------------------------------- tables
def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:4096]:
        raise AnnotationError(f"{path}: not a text table (binary data); export the Results "
                              "as .csv (File > Save As... in the Results window)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _delimiter(text: str) -> str:
    """The separator of a table: tab, ``;`` (spreadsheets with decimal commas) or ``,``."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if "\t" in first:
        return "\t"
    return ";" if first.count(";") > first.count(",") else ","


def _sniff_header(path: Path) -> tuple[list[str], str]:
    text = _read_text(path)
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    try:
        header = next(csv.reader([first], delimiter=_delimiter(text)), [])
    except csv.Error as err:
        raise AnnotationError(f"{path}: the header line is not readable ({err})") from None
    return [h.strip() for h in header], text


def _is_particle_csv(header: list[str]) -> bool:
    low = [h.lower() for h in header]
    return "diameter_nm" in low and "x" in low and "y" in low


def _read_table(path: Path, px: float | None, diameter_nm: float | None,
                units: str | None) -> ParticleTable:
    header, text = _sniff_header(path)
    if not header:
        raise AnnotationError(f"{path}: the file is empty; a particle table needs a header "
                              "(x,y,diameter_nm or ImageJ's X,Y)")
    delim = _delimiter(text)
    cols, rows = _parse_rows(path, text, delim)  # refuses rows longer than the header
    if _is_particle_csv(header) and delim == ",":
        table = ParticleTable.from_csv(path)
        if diameter_nm is not None:
            table.diameter_nm[:] = diameter_nm
        return _without_duplicates(path, table)
    return _without_duplicates(path, _table_particles(path, cols, rows, px, diameter_nm,
                                                      units))


def _without_duplicates(path: Path, table: ParticleTable) -> ParticleTable:
    """Rows listing the same particle twice (same x, y, class and slice) count once."""
    if len(table) < 2:
        return table
    key = np.stack([np.round(table.x, 3), np.round(table.y, 3), table.diameter_nm,
                    table.slice.astype(float)], axis=1)
    _, first = np.unique(key, axis=0, return_index=True)
    if len(first) == len(table):
        return table
    log.warning("%s: %d duplicate row(s) (same x, y, class and slice) counted once",
                path, len(table) - len(first))
    return table[np.sort(first)]


def _table_particles(path: Path, cols: list[str], rows, px: float | None,
                     diameter_nm: float | None, units: str | None) -> ParticleTable:
    low = {h.lower(): h for h in cols}
    if "x" in low and "y" in low:
        xk, yk = low["x"], low["y"]
    elif "xm" in low and "ym" in low:
        xk, yk = low["xm"], low["ym"]
    else:
        raise AnnotationError(
            f"{path}: no coordinate columns; expected x,y,diameter_nm (Gold Digger) or X,Y / "
            f"XM,YM (ImageJ Results; tick Centroid or Center of mass in Analyze > Set "
            f"Measurements), found: {','.join(cols) or '(none)'}")
    n = len(rows)
    x = _column(path, rows, cols, xk)
    y = _column(path, rows, cols, yk)
    ours = _is_particle_csv(cols)
    # size class
    if diameter_nm is not None:
        d = np.full(n, diameter_nm)
    elif "diameter_nm" in low:
        d = _column(path, rows, cols, low["diameter_nm"])
    else:
        size = size_from_name(path.stem)
        if size is None:
            raise AnnotationError(f"{path}: cannot tell the particle size class; {_NO_CLASS}")
        d = np.full(n, size)
    score = _column(path, rows, cols, low["score"]) if "score" in low else None
    if ours and "slice" in low:
        sl = _slice_column(path, rows, cols, low["slice"], 0)
    else:
        sl = np.zeros(n, dtype=np.int64)
        for key in ("slice", "frame", "z", "ch"):
            if key in low:
                sl = _slice_column(path, rows, cols, low[key], 1)
                break
    if not ours:
        unit = _table_units(path, cols, x, y, units)
        if unit != "px":
            if px is None:
                raise _NeedsPixelSize(
                    f"{path}: the coordinates are in {'microns' if unit == 'um' else 'nm'} "
                    "(ImageJ Results of a calibrated image); give the pixel size "
                    "(pixel_size_nm=..., --pixel-size NM) to convert them to pixels")
            f = (1000.0 if unit == "um" else 1.0) / px
            x, y = x * f, y * f
        if "area" in low and n and np.all(_column(path, rows, cols, low["area"]) > 0):
            x, y = x - 0.5, y - 0.5  # centroid of an area: ImageJ pixel centres are at +0.5
    return ParticleTable(x, y, d, score, sl)


def _parse_rows(path: Path, text: str, delim: str) -> tuple[list[str], list[list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    rows = []
    try:
        header = [h.strip() for h in next(reader, [])]
        for lineno, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < len(header):
                row = row + [""] * (len(header) - len(row))
            elif len(row) > len(header) and any(c.strip() for c in row[len(header):]):
                raise AnnotationError(
                    f"{path}, line {lineno}: {len(row)} cells under {len(header)} column "
                    f"names{' (decimal commas?)' if delim == ',' else ''}; save the table "
                    "with ';' or tabs between columns when numbers use decimal commas")
            rows.append((lineno, row))
    except csv.Error as err:
        raise AnnotationError(f"{path}, line {reader.line_num}: not a readable table ({err}); "
                              "export the Results as .csv again") from None
    return header, rows  # type: ignore[return-value]


def _column(path: Path, rows, cols: list[str], name: str) -> np.ndarray:
    j = cols.index(name)
    out = np.empty(len(rows))
    for i, (lineno, row) in enumerate(rows):
        cell = row[j].strip()
        if "," in cell and "." not in cell:
            cell = cell.replace(",", ".")  # a decimal comma (the separator is not ',')
        try:
            out[i] = float(cell)
        except ValueError:
            raise AnnotationError(f"{path}, line {lineno}: column {name!r} is {cell!r}, not a "
                                  "number; fix or delete that row") from None
        if not np.isfinite(out[i]):
            raise AnnotationError(f"{path}, line {lineno}: column {name!r} is not finite")
    return out


def _slice_column(path: Path, rows, cols: list[str], name: str, base: int) -> np.ndarray:
    """A stack-position column (``base``: 0 for Gold Digger's, 1 for ImageJ's, where 0
    means "not set") as 0-based slices."""
    from golddigger.particles import is_slice_index

    v = _column(path, rows, cols, name)
    for (lineno, row), value in zip(rows, v, strict=True):
        if not is_slice_index(value):
            raise AnnotationError(f"{path}, line {lineno}: column {name!r} is "
                                  f"{row[cols.index(name)].strip()!r}, not a slice number; "
                                  "fix or delete that row")
    return (np.where(v >= 1, v - 1, 0) if base == 1 else v).astype(np.int64)


def _table_units(path: Path, cols: list[str], x: np.ndarray, y: np.ndarray,
                 units: str | None) -> str:
    if units is not None:
        u = units.strip().lower().replace("µ", "u").replace("μ", "u")
        aliases = {"um": "um", "micron": "um", "microns": "um", "nm": "nm", "px": "px",
                   "pixel": "px", "pixels": "px"}
        if u not in aliases:
            raise ValueError(f"units must be 'um', 'nm' or 'px', got {units!r}")
        return aliases[u]
    names = path.stem + " " + " ".join(cols)
    if _MICRON_RE.search(names):
        return "um"
    if _PIXEL_RE.search(names):
        return "px"
    v = np.concatenate([x, y])
    if v.size and np.abs(v).max() < 50 and np.any(v != np.round(v)):
        log.info("%s: coordinates below 50 with fractions: taken as microns (pass "
                 "units='px' if they are pixels)", path)
        return "um"
    return "px"


# ---------------------------------------------------------------------------- sets of files
def _expand(paths_or_folder) -> list[Path]:
    if isinstance(paths_or_folder, (str, Path)):
        items: Iterable = [paths_or_folder]
    else:
        items = paths_or_folder
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file()
                           and not f.name.startswith(".")
                           and f.suffix.lower() in ANNOTATION_SUFFIXES)
            if not found:
                log.warning("%s: no annotation files in the folder", p)
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise AnnotationError(f"{p}: no such annotation file or folder")
    seen: set[Path] = set()
    return [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]


def _rank(path: Path) -> int:
    """ROI files first, then Gold Digger CSVs, then Results tables."""
    if path.suffix.lower() in ROI_SUFFIXES:
        return 0
    try:
        header, _ = _sniff_header(path)
    except (AnnotationError, OSError):
        return 2
    return 1 if _is_particle_csv(header) else 2


def read_annotation_set(paths_or_folder, pixel_size_nm: float | None = None, *,
                        tolerance_px: float = 2.0) -> ParticleTable:
    """Read several annotation files (or a folder of them) of one image into one table.

    Files are read in the order ROI files, Gold Digger CSVs, Results tables. A particle of
    a later file that lies within ``tolerance_px`` of an already read particle of the same
    class and slice *from another file* is the same particle saved twice (an annotator's
    ROI set and its Results table, say) and is dropped, so nothing is counted twice. A
    Results table in microns needs ``pixel_size_nm`` unless it duplicates a ROI file of
    the same class with the same number of particles, in which case it is skipped.

    Parameters
    ----------
    paths_or_folder : path, folder, or iterable of them
        Folders contribute their annotation files (not recursively).
    pixel_size_nm : float, optional
        nm per pixel (for calibrated tables and classing ovals by size).
    tolerance_px : float
        Distance under which particles of different files are taken as duplicates.
    """
    from scipy.spatial import cKDTree

    files = sorted(_expand(paths_or_folder), key=_rank)
    tables: list[ParticleTable] = []
    for f in files:
        try:
            t = read_particles(f, pixel_size_nm)
        except _NeedsPixelSize:
            if pixel_size_nm is None:
                dup = _duplicate_by_count(f, tables)
                if dup:
                    log.info("%s: skipped (same class and count as %s; no pixel size to "
                             "compare positions)", f, dup)
                    continue
            raise
        if tables and len(t):
            prev = ParticleTable.concat(tables)
            keep = np.ones(len(t), dtype=bool)
            for d in t.classes:
                for s in np.unique(t.slice):
                    sel = (np.abs(t.diameter_nm - d) <= 0.5) & (t.slice == s)
                    psel = (np.abs(prev.diameter_nm - d) <= 0.5) & (prev.slice == s)
                    if not psel.any():
                        continue
                    dist, _ = cKDTree(prev.xy[psel]).query(t.xy[sel])
                    keep[np.flatnonzero(sel)[dist <= tolerance_px]] = False
            if not keep.all():
                log.info("%s: %d of %d particles already read from another file; dropped",
                         f, int((~keep).sum()), len(t))
            t = t[keep]
        tables.append(t)
    return ParticleTable.concat(tables)


def _duplicate_by_count(path: Path, tables: list[ParticleTable]) -> str | None:
    size = size_from_name(path.stem)
    if size is None or not tables:
        return None
    _, text = _sniff_header(path)
    _, rows = _parse_rows(path, text, _delimiter(text))
    have = sum(len(t.of_class(size)) for t in tables)
    return f"the ROI file(s) ({have} particles of {size:g} nm)" if have == len(rows) else None


# ---------------------------------------------------------------------------- conventions
def find_annotations(image_path: str | Path) -> list[Path]:
    """The annotation files that belong to an image, by Gold Digger's naming convention.

    For an image ``<dir>/<stem>.<ext>`` these are, in this order, whichever exist:

    1. ``<dir>/<stem>.csv`` (a particle CSV or an ImageJ Results table),
    2. ``<dir>/<stem>_RoiSet.zip``, ``<dir>/<stem>.zip``, ``<dir>/<stem>.roi``,
    3. every annotation file (``.zip``, ``.roi``, ``.csv``, ...) in a folder ``<dir>/<stem>/``,
    4. ``<dir>/../labels/<stem>.csv`` (a ``labels`` folder beside the images folder).

    Read them together with `read_annotation_set`, which drops particles saved twice.
    Returns an empty list when there is none.
    """
    image_path = Path(image_path)
    d, stem = image_path.parent, image_path.stem
    candidates = [d / f"{stem}.csv", d / f"{stem}_RoiSet.zip", d / f"{stem}.zip",
                  d / f"{stem}.roi"]
    out = [p for p in candidates if p.is_file()]
    folder = d / stem
    if folder.is_dir():
        out.extend(_expand(folder))
    labels = d.parent / "labels" / f"{stem}.csv"
    if labels.is_file() and labels.resolve() != (d / f"{stem}.csv").resolve():
        out.append(labels)
    return out
