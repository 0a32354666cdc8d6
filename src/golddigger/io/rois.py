"""ImageJ ROI files: particles out as a RoiSet zip, regions in (and back out).

Coordinate conventions (checked against ImageJ 1.53t)
-----------------------------------------------------
ImageJ has two conventions, and Gold Digger (pixel centres at integer coordinates, see
`golddigger.particles`) meets each as follows:

* **Area ROIs** (rectangle, oval, polygon, freehand, traced, composite) live in ImageJ's
  continuous coordinates, where pixel ``(c, r)`` is the unit square ``[c, c+1) x [r, r+1)``
  and its centre is ``(c + 0.5, r + 0.5)``; ImageJ's mask of a ROI holds the pixels whose
  centre is inside. A rectangle ROI ``x=10, y=20, w=5, h=4`` covers columns 10..14 and rows
  20..23. Gold Digger's `Region` says a pixel is inside when its centre ``(c, r)`` is, so
  area ROIs are shifted by ``(-0.5, -0.5)`` on reading and ``(+0.5, +0.5)`` on writing.
* **Point ROIs** are taken as they are: a point at ``(828, 1402)`` marks pixel column 828,
  row 1402, which ImageJ's Measure reports as ``X = 828 * pixel width`` and which is what
  the MPFI labels CSVs hold. So point coordinates are copied unchanged both ways.

An oval drawn on a particle is therefore read as centred at ``(left + w/2 - 0.5,
top + h/2 - 0.5)``, and `write_roiset` writes an oval of diameter ``d`` px around particle
``(x, y)`` with ``left = x + 0.5 - d/2``.

Stack positions: ImageJ's are 1-based (0 = "not set"); Gold Digger's ``slice`` is 0-based.
"""

from __future__ import annotations

import logging
import math
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import roifile
from roifile import ROI_OPTIONS, ROI_TYPE, ImagejRoi

from golddigger.errors import AnnotationError
from golddigger.io.regions import Region
from golddigger.io.safe import atomic_path
from golddigger.particles import ParticleTable

__all__ = [
    "CLASS_COLORS",
    "CLASS_GROUPS",
    "EXTRA_COLORS",
    "MASK_SUFFIXES",
    "PARTICLE_STROKE_WIDTH",
    "class_colors",
    "class_groups",
    "load_rois",
    "read_region",
    "region_to_imagej_roi",
    "roi_slice",
    "roi_to_geometry",
    "write_roiset",
]

log = logging.getLogger(__name__)

#: Stroke colour per particle class (diameter in nm), from the Okabe-Ito palette, which
#: stays distinguishable with the common colour-vision deficiencies and on grey EM images.
CLASS_COLORS: dict[float, str] = {6.0: "#56B4E9", 12.0: "#E69F00", 18.0: "#CC79A7"}
#: Colours for further classes, in order of increasing diameter (Okabe-Ito, continued).
EXTRA_COLORS: tuple[str, ...] = ("#009E73", "#F0E442", "#0072B2", "#D55E00")
#: ImageJ ROI group per class; further classes get 4, 5, ... by increasing diameter.
CLASS_GROUPS: dict[float, int] = {6.0: 1, 12.0: 2, 18.0: 3}

#: Stroke width of particle ovals in screen pixels, the same at every zoom (ImageJ's
#: "unscalable" stroke: a RoiSet ROI without the SCALE_STROKE_WIDTH option): a 6 nm oval at
#: 0.56 nm/px is 11 px across and would thin to nothing at 12-25 % zoom with a 1 px line.
#: Only the drawing changes: the geometry, masks and measurements do not.
PARTICLE_STROKE_WIDTH = 2.0

#: Image files read as region masks by `read_region` (non-zero = inside).
MASK_SUFFIXES = (".tif", ".tiff", ".png", ".bmp", ".gif")

_AREA_TYPES = (ROI_TYPE.RECT, ROI_TYPE.OVAL, ROI_TYPE.POLYGON, ROI_TYPE.FREEHAND,
               ROI_TYPE.TRACED)
_LINE_TYPES = (ROI_TYPE.LINE, ROI_TYPE.POLYLINE, ROI_TYPE.FREELINE)
_IJ_NUDGE = 1e-8
_RESAVE = "re-save it from Fiji's ROI Manager (More > Save...)"


# ---------------------------------------------------------------------------- reading ROIs
def load_rois(path: str | Path) -> list[ImagejRoi]:
    """Read the ROIs of an ImageJ ``.roi`` file or RoiSet ``.zip``.

    Entries of a zip that do not end in ``.roi`` are skipped (ImageJ does the same).

    Raises
    ------
    AnnotationError
        If the file is missing, not a zip / ROI file, corrupt, or holds no ROI; the message
        names the file (and the zip entry) and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: no such ROI file")
    suffix = path.suffix.lower()
    if suffix == ".zip":
        rois = _load_zip(path)
    elif suffix == ".roi":
        data = path.read_bytes()
        if not data:
            raise AnnotationError(f"{path}: the ROI file is empty; {_RESAVE}")
        rois = [_decode(data, path)]
    else:
        raise AnnotationError(f"{path}: not an ImageJ ROI file (expected .roi or .zip)")
    if not rois:
        raise AnnotationError(f"{path}: the ROI set holds no ROIs; {_RESAVE}")
    return rois


def _load_zip(path: Path) -> list[ImagejRoi]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            roi_names = [n for n in names if n.lower().endswith(".roi")]
            if names and not roi_names:
                shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
                raise AnnotationError(
                    f"{path}: not an ImageJ ROI set (the zip holds no .roi files, only "
                    f"{shown}); {_RESAVE}")
            rois = []
            for name in roi_names:
                info = zf.getinfo(name)
                if info.file_size > 64 * 2**20:
                    raise AnnotationError(f"{path}: entry {name!r} is implausibly large for "
                                          f"a ROI ({info.file_size} bytes); {_RESAVE}")
                rois.append(_decode(zf.read(name), path, name))
            return rois
    except zipfile.BadZipFile as exc:
        raise AnnotationError(f"{path}: not a readable zip file ({exc}); it may be truncated "
                              f"or not a ROI set; {_RESAVE}") from None
    except (OSError, EOFError, zipfile.LargeZipFile, NotImplementedError) as exc:
        raise AnnotationError(f"{path}: cannot read the zip ({exc}); {_RESAVE}") from None


def _decode(data: bytes, path: Path, entry: str | None = None) -> ImagejRoi:
    where = f"{path}" + (f", entry {entry!r}" if entry else "")
    if len(data) == 0:
        raise AnnotationError(f"{where}: the ROI is empty (0 bytes); {_RESAVE}")
    try:
        roi = ImagejRoi.frombytes(data)
    except Exception as exc:  # roifile raises ValueError/struct.error/... on foreign data
        raise AnnotationError(f"{where}: not an ImageJ ROI ({exc}); {_RESAVE}") from None
    if not roi.name and entry:
        roi.name = entry[:-4] if entry.lower().endswith(".roi") else entry
    return roi


def roi_slice(roi: ImagejRoi) -> int:
    """The 0-based stack slice of a ROI (0 when it has no position).

    ImageJ's plain stack ``position`` wins; for hyperstack positions the z, then t, then c
    index is used (Gold Digger stacks have one non-spatial axis).
    """
    for pos in (roi.position, roi.z_position, roi.t_position, roi.c_position):
        if pos and pos > 0:
            return int(pos) - 1
    return 0


def roi_to_geometry(roi: ImagejRoi):
    """The area of an ImageJ ROI as a shapely geometry in Gold Digger pixel coordinates.

    Returns ``None`` for ROIs without area (points, angles, thin lines, text).
    Lines with a stroke width > 1 become the band of that width around them.
    """
    from shapely import affinity
    from shapely.geometry import LineString, Polygon, box
    from shapely.validation import make_valid

    geom = None
    if roi.composite:
        geom = _composite_geometry(roi.multi_coordinates)
    elif roi.subtype == roifile.ROI_SUBTYPE.TEXT:
        return None
    elif roi.roitype == ROI_TYPE.RECT:
        x, y, w, h = _rect(roi)
        if w > 0 and h > 0:
            geom = box(x, y, x + w, y + h)
            arc = float(roi.rounded_rect_arc_size)
            if arc > 0:
                r = min(arc / 2.0, w / 2.0, h / 2.0)
                geom = box(x + r, y + r, x + w - r, y + h - r).buffer(r, quad_segs=16)
    elif roi.roitype == ROI_TYPE.OVAL:
        x, y, w, h = _rect(roi)
        if w > 0 and h > 0:
            geom = _oval_outline(int(x), int(y), int(w), int(h))
    elif roi.roitype in _AREA_TYPES:
        xy = np.asarray(roi.coordinates(), dtype=float)
        if len(xy) >= 3:
            geom = Polygon(xy)
    elif roi.roitype in _LINE_TYPES:
        width = float(roi.float_stroke_width or roi.stroke_width or 0)
        xy = np.asarray(roi.coordinates(), dtype=float)
        if width > 1 and len(xy) >= 2:
            geom = LineString(xy).buffer(width / 2.0, cap_style="flat", quad_segs=16)
    else:
        return None
    if geom is None:
        return None
    if not geom.is_valid:
        geom = make_valid(geom)
    # Region.to_mask breaks ties (pixel centres exactly on an edge) as ImageJ does; like
    # ImageJ's filler, nudge edges 1e-8 px right so that round-off (from make_valid's
    # noding of self-intersecting outlines, say) cannot move a centre across an edge
    return affinity.translate(geom, -0.5 + _IJ_NUDGE, -0.5)


def _rect(roi: ImagejRoi) -> tuple[float, float, float, float]:
    """A rectangle/oval ROI's bounds as ImageJ fills them: for sub-pixel bounds ImageJ
    (1.53t) fills the integer rectangle ``((int) x, (int) y, ceil(w), ceil(h))``."""
    if roi.subpixelrect:
        return (float(int(roi.xd)), float(int(roi.yd)), float(math.ceil(roi.widthd)),
                float(math.ceil(roi.heightd)))
    return (float(roi.left), float(roi.top), float(roi.right - roi.left),
            float(roi.bottom - roi.top))


def _oval_outline(x: int, y: int, w: int, h: int):
    """The pixel outline ImageJ fills for an oval ROI (bounds in ImageJ coordinates).

    ImageJ 1.53t fills the pixels whose centre is inside the ellipse inscribed in the
    bounds (checked for every size up to 100 x 100); the outline of those pixels, with
    vertices on pixel corners, has the same mask and no ties.
    """
    from shapely import box, union_all

    cols = np.arange(w, dtype=np.int64)
    rows = np.arange(h, dtype=np.int64)
    # centre offsets in half-pixels, so the test X^2/w^2 + Y^2/h^2 <= 1 is exact in integers
    xo = 2 * cols + 1 - w
    yo = 2 * rows + 1 - h
    inside = (xo[None, :] ** 2 * h * h + yo[:, None] ** 2 * w * w) <= w * w * h * h
    boxes = []
    for r in np.flatnonzero(inside.any(axis=1)):
        c = np.flatnonzero(inside[r])
        boxes.append(box(x + c[0], y + r, x + c[-1] + 1, y + r + 1))
    return union_all(boxes).simplify(0) if boxes else None


def _composite_geometry(path: np.ndarray | None):
    """A composite ROI's java.awt path (even-odd rule, as ImageJ's ShapeRoi) to shapely."""
    from shapely.geometry import Polygon
    from shapely.validation import make_valid

    if path is None or len(path) == 0:
        return None
    rings: list[list[tuple[float, float]]] = []
    ring: list[tuple[float, float]] = []
    p = [float(v) for v in np.asarray(path, dtype=float)]
    i = 0
    try:
        while i < len(p):
            op = int(p[i])
            if op == 0:  # MOVETO
                if len(ring) >= 3:
                    rings.append(ring)
                ring = [(p[i + 1], p[i + 2])]
                i += 3
            elif op == 1:  # LINETO
                ring.append((p[i + 1], p[i + 2]))
                i += 3
            elif op in (2, 3):  # QUADTO, CUBICTO: flatten
                k = 2 if op == 2 else 3
                ctrl = np.array([ring[-1]] + [(p[i + 1 + 2 * j], p[i + 2 + 2 * j])
                                              for j in range(k)])
                t = np.linspace(0, 1, 17)[1:, None]
                if op == 2:
                    pts = ((1 - t) ** 2 * ctrl[0] + 2 * (1 - t) * t * ctrl[1] + t ** 2 * ctrl[2])
                else:
                    pts = ((1 - t) ** 3 * ctrl[0] + 3 * (1 - t) ** 2 * t * ctrl[1]
                           + 3 * (1 - t) * t ** 2 * ctrl[2] + t ** 3 * ctrl[3])
                ring.extend(map(tuple, pts))
                i += 1 + 2 * k
            elif op == 4:  # CLOSE
                if len(ring) >= 3:
                    rings.append(ring)
                ring = []
                i += 1
            else:
                raise ValueError(f"unknown path segment type {op}")
    except IndexError:
        raise ValueError("truncated composite ROI path") from None
    if len(ring) >= 3:
        rings.append(ring)
    geom = None
    for r in rings:
        poly = Polygon(r)
        if not poly.is_valid:
            poly = make_valid(poly)
        geom = poly if geom is None else geom.symmetric_difference(poly)
    return geom


# ---------------------------------------------------------------------------- regions
def read_region(path: str | Path, image_shape: Sequence[int] | None = None,
                index: int | None = None) -> Region:
    """Read a region (where to count particles) from an ImageJ ROI file or a mask image.

    Parameters
    ----------
    path : str or Path
        ``.roi`` / RoiSet ``.zip`` (rectangle, oval, polygon, freehand, traced, composite
        with holes, or a line with a stroke width > 1), or a mask image (TIFF, PNG, BMP,
        GIF; non-zero pixels are inside).
    image_shape : (rows, cols), optional
        Shape of the image the region belongs to. When given, a region that covers no pixel
        of the image is an error, and a mask must have this shape.
    index : int, optional
        For a zip with several area ROIs: use only this one (0-based, in file order,
        counting area ROIs only). Default: the union of all area ROIs.

    Returns
    -------
    Region
        Geometry in Gold Digger pixel coordinates (see the module docstring), or a mask.

    Raises
    ------
    AnnotationError
        Unreadable files, files with only point/line ROIs, empty or zero-area ROIs, an
        ``index`` out of range, or a region wholly outside the image.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in MASK_SUFFIXES:
        region = _read_mask(path, image_shape)
    elif suffix in (".roi", ".zip"):
        region = _region_from_rois(path, index)
    else:
        raise AnnotationError(
            f"{path}: cannot read a region from a {suffix or 'suffix-less'} file; give an "
            f"ImageJ .roi/.zip or a mask image ({', '.join(MASK_SUFFIXES)})")
    if image_shape is not None:
        h, w = int(image_shape[-2]), int(image_shape[-1])
        if not region.to_mask((h, w)).any():
            raise AnnotationError(
                f"{path}: the region covers no pixel of the {w} x {h} image (it lies outside "
                "it or is too thin); check that the ROI belongs to this image")
    return region


def _region_from_rois(path: Path, index: int | None) -> Region:
    from shapely import union_all

    rois = load_rois(path)
    geoms, names, kinds = [], [], []
    for roi in rois:
        kinds.append(_kind(roi))
        try:
            g = roi_to_geometry(roi)
        except ValueError as exc:
            raise AnnotationError(f"{path}: ROI {roi.name!r} is damaged ({exc}); "
                                  f"{_RESAVE}") from None
        if g is None:
            continue
        if g.is_empty or g.area <= 0:
            raise AnnotationError(f"{path}: ROI {roi.name!r} ({_kind(roi)}) has no area; "
                                  "draw the region with an area tool (polygon, freehand, "
                                  "rectangle, oval)")
        geoms.append(g)
        names.append(roi.name)
    if not geoms:
        raise AnnotationError(
            f"{path}: no area ROI (found only {', '.join(sorted(set(kinds)))}); a region must "
            "be drawn with an area tool (polygon, freehand, rectangle, oval), or given as a "
            "line with a width")
    if index is not None:
        if not -len(geoms) <= index < len(geoms):
            raise AnnotationError(f"{path}: ROI index {index} is out of range; the file has "
                                  f"{len(geoms)} area ROI(s) (0-based)")
        return Region(geometry=geoms[index], name=names[index])
    if len(geoms) > 1:
        log.info("%s: region is the union of %d area ROIs", path, len(geoms))
    geom = union_all(geoms) if len(geoms) > 1 else geoms[0]
    return Region(geometry=geom, name=names[0] if len(names) == 1 else path.stem)


def _kind(roi: ImagejRoi) -> str:
    if roi.composite:
        return "composite"
    try:
        return ROI_TYPE(roi.roitype).name.lower()
    except ValueError:
        return f"type {roi.roitype}"


def _read_mask(path: Path, image_shape: Sequence[int] | None) -> Region:
    if not path.is_file():
        raise AnnotationError(f"{path}: no such mask file")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            data = tifffile.imread(path)
        else:
            from PIL import Image

            with Image.open(path) as im:
                data = np.asarray(im)
    except Exception as exc:
        raise AnnotationError(f"{path}: cannot read the mask image ({exc})") from None
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[-1] in (3, 4) and data.shape[0] > 4:
        data = data[..., :3].any(axis=-1)  # RGB(A): any colour channel non-zero
    data = np.squeeze(data)
    if data.ndim != 2:
        raise AnnotationError(f"{path}: a region mask must be one 2D image, got shape "
                              f"{data.shape}; save a single-slice binary mask")
    mask = data != 0
    if image_shape is not None:
        h, w = int(image_shape[-2]), int(image_shape[-1])
        if mask.shape != (h, w):
            raise AnnotationError(f"{path}: the mask is {mask.shape[1]} x {mask.shape[0]} "
                                  f"px but the image is {w} x {h} px; make the mask from "
                                  "this image")
    if not mask.any():
        raise AnnotationError(f"{path}: the mask is empty (no non-zero pixel); the region "
                              "must be non-zero, the rest 0")
    return Region(mask=mask, name=path.stem)


def region_to_imagej_roi(region: Region, name: str | None = None) -> ImagejRoi:
    """An ImageJ ROI for a region: a polygon, or a composite ROI for holes / several parts.

    Mask regions are traced along pixel edges, so ImageJ's mask of the ROI equals the
    region's mask. Geometry vertices are shifted by +0.5 px into ImageJ's coordinates.
    """
    from shapely import affinity
    from shapely.geometry import MultiPolygon, Polygon

    from golddigger.io.regions import _polygons

    geom = _mask_to_geometry(region.mask) if region.mask is not None else region.geometry
    polys = [p for p in _polygons(geom) if p.area > 0]
    if not polys:
        raise AnnotationError("cannot write an empty region as an ImageJ ROI")
    geom = affinity.translate(MultiPolygon(polys) if len(polys) > 1 else polys[0], 0.5, 0.5)
    name = name if name is not None else (region.name or "region")
    if isinstance(geom, Polygon) and not geom.interiors:
        xy = np.asarray(geom.exterior.coords)[:-1]
        if np.allclose(xy, np.round(xy), atol=1e-6):
            xy = np.round(xy).astype(np.int32)
        roi = ImagejRoi.frompoints(xy, name=name)
        roi.roitype = ROI_TYPE.POLYGON
        roi.options &= ~(ROI_OPTIONS.OVERLAY_BACKGROUNDS | ROI_OPTIONS.OVERLAY_LABELS)
        roi.version = 228
        return roi
    path: list[float] = []
    rings = []
    for poly in _polygons(geom):
        rings.append(np.asarray(poly.exterior.coords))
        rings.extend(np.asarray(h.coords) for h in poly.interiors)
    for ring in rings:
        path += [0.0, float(ring[0, 0]), float(ring[0, 1])]
        for x, y in ring[1:-1]:
            path += [1.0, float(x), float(y)]
        path.append(4.0)
    xmin, ymin, xmax, ymax = geom.bounds
    roi = ImagejRoi(roitype=ROI_TYPE.RECT, version=228, name=name,
                    left=math.floor(xmin), top=math.floor(ymin),
                    right=math.ceil(xmax), bottom=math.ceil(ymax))
    roi.multi_coordinates = np.asarray(path, dtype=np.float32)
    roi.shape_roi_size = len(path)
    return roi


def _mask_to_geometry(mask: np.ndarray):
    """Union of the pixel squares of a mask (pixel (r, c) = [c-.5, c+.5] x [r-.5, r+.5])."""
    from shapely import box, union_all

    boxes = []
    for r in np.flatnonzero(mask.any(axis=1)):
        row = np.concatenate([[False], mask[r], [False]]).astype(np.int8)
        d = np.diff(row)
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        boxes.extend(box(s - 0.5, r - 0.5, e - 0.5, r + 0.5) for s, e in
                     zip(starts, ends, strict=True))
    if not boxes:
        return None
    return union_all(boxes).simplify(0)


# ---------------------------------------------------------------------------- writing
def class_colors(classes: Sequence[float],
                 colors: Mapping[float, str] | None = None) -> dict[float, str]:
    """Stroke colour (``#rrggbb``) per class: ``colors`` first, then `CLASS_COLORS`,
    then `EXTRA_COLORS` in order of increasing diameter."""
    out: dict[float, str] = {}
    extra = iter(EXTRA_COLORS * (1 + len(classes) // len(EXTRA_COLORS)))
    given = {float(k): v for k, v in (colors or {}).items()}
    for d in sorted({float(c) for c in classes}):
        out[d] = given.get(d) or _lookup(CLASS_COLORS, d) or next(extra)
    return out


def class_groups(classes: Sequence[float]) -> dict[float, int]:
    """ImageJ group per class: `CLASS_GROUPS`, then 4, 5, ... by increasing diameter."""
    out: dict[float, int] = {}
    nxt = max(CLASS_GROUPS.values()) + 1
    for d in sorted({float(c) for c in classes}):
        g = _lookup(CLASS_GROUPS, d)
        if g is None:
            g, nxt = nxt, nxt + 1
        out[d] = min(g, 255)
    return out


def _lookup(table: Mapping[float, object], d: float, tol: float = 0.5):
    for k, v in table.items():
        if abs(k - d) <= tol:
            return v
    return None


def _argb(color: str) -> bytes:
    c = color.strip().lstrip("#")
    if len(c) != 6:
        raise ValueError(f"colour {color!r} is not #rrggbb")
    try:
        return bytes([255, int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)])
    except ValueError:
        raise ValueError(f"colour {color!r} is not #rrggbb") from None


def write_roiset(path: str | Path, particles: ParticleTable, pixel_size_nm: float | None,
                 shape: str = "oval", name_prefix: str = "",
                 colors: Mapping[float, str] | None = None, groups: bool = True,
                 positions: bool | None = None,
                 properties: Mapping[str, str] | None = None) -> Path:
    """Write particles as an ImageJ RoiSet zip (open it in Fiji's ROI Manager).

    One ROI per particle, in table order, named ``{name_prefix}gold-{d}nm-{i:04d}`` with
    ``i`` the 1-based row of the table (so names are unique, sort in table order within a
    class, and point back to the CSV row). Each ROI carries the properties ``diameter_nm``
    and ``score`` (ImageJ: ``Roi.getProperty("score")``; roifile: ``roi.properties``).

    Parameters
    ----------
    path : str or Path
        Output ``.zip``; written atomically (a reader never sees half a file).
    particles : ParticleTable
        Particles in pixels of the image.
    pixel_size_nm : float
        nm per pixel, to draw ovals at the particle size (may be None for points).
    shape : {"oval", "point"}
        An oval of the particle's diameter centred on it, or a point.
    name_prefix : str
        Prepended to every ROI name (e.g. the image name).
    colors : dict, optional
        Stroke colour ``#rrggbb`` per diameter, overriding `CLASS_COLORS`.
    groups : bool
        Put each class in its ImageJ group (`CLASS_GROUPS`: 6 nm -> 1, 12 nm -> 2,
        18 nm -> 3, others 4, 5, ...). Note: ImageJ (1.53t) then draws each ROI in the
        group's colour (from its Glasbey LUT) instead of the stored stroke colour; pass
        ``groups=False`` to see `CLASS_COLORS` in ImageJ.
    positions : bool, optional
        Set each ROI's stack position (``slice + 1``). Default: only when some particle is
        beyond the first slice, so ROIs of a single image show on it whatever its slice.
    properties : dict of str, optional
        More properties given to every ROI (e.g. ``{"image": title}``).

    Returns
    -------
    Path
        ``path``.
    """
    from golddigger.io.images import validate_pixel_size

    path = Path(path)
    if path.suffix.lower() != ".zip":
        raise AnnotationError(f"{path}: an ImageJ ROI set must be a .zip file")
    if shape not in ("oval", "point"):
        raise ValueError(f"shape must be 'oval' or 'point', got {shape!r}")
    px = None
    if shape == "oval" or pixel_size_nm is not None:
        px = validate_pixel_size(pixel_size_nm, "ROI set")
    n = len(particles)
    if n == 0:
        log.warning("%s: no particles; writing an empty ROI set", path)
    if not (np.all(np.isfinite(particles.x)) and np.all(np.isfinite(particles.y))):
        raise ValueError("particle coordinates must be finite")
    if shape == "oval" and not np.all(particles.diameter_nm > 0):
        raise ValueError("oval ROIs need a positive diameter_nm for every particle")
    if positions is None:
        positions = bool(n and particles.slice.max() > 0)
    classes = particles.classes
    color_of = class_colors(classes, colors)
    group_of = class_groups(classes)
    width = max(4, len(str(n)))
    rois = []
    for i, (x, y, d, score, s) in enumerate(particles):
        d = float(d)
        name = f"{name_prefix}gold-{d:g}nm-{i + 1:0{width}d}"
        if shape == "oval":
            r_px = d / px / 2.0
            left, top = x + 0.5 - r_px, y + 0.5 - r_px
            roi = ImagejRoi(roitype=ROI_TYPE.OVAL, options=ROI_OPTIONS.SUB_PIXEL_RESOLUTION,
                            version=228, xd=left, yd=top, widthd=2 * r_px, heightd=2 * r_px,
                            left=int(left), top=int(top),
                            right=int(left) + math.ceil(2 * r_px),
                            bottom=int(top) + math.ceil(2 * r_px))
        else:
            roi = ImagejRoi.frompoints(np.array([[x, y]], dtype=np.float64))
            roi.roitype = ROI_TYPE.POINT
            roi.options = ROI_OPTIONS.SUB_PIXEL_RESOLUTION
            roi.version = 228
        roi.name = name
        roi.stroke_color = _argb(color_of[_key(color_of, d)])
        if shape == "oval":  # points keep ImageJ's markers, which do not scale with zoom
            roi.stroke_width = int(PARTICLE_STROKE_WIDTH)
            roi.float_stroke_width = float(PARTICLE_STROKE_WIDTH)
        if groups:
            roi.group = group_of[_key(group_of, d)]
        if positions:
            roi.position = int(s) + 1
        props = {"diameter_nm": f"{d:g}", "score": f"{float(score):.4f}"}
        props.update({str(k): str(v) for k, v in (properties or {}).items()})
        roi.properties = props
        rois.append(roi)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for roi in rois:
            zf.writestr(roi.name + ".roi", roi.tobytes())
    log.info("wrote %d ROIs to %s", n, path)
    return path


def _key(table: Mapping[float, object], d: float) -> float:
    return min(table, key=lambda k: abs(k - d))
