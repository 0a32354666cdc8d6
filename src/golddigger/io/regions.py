"""Regions of interest: where particles are counted (the membrane outline a user drew,
a mask, or the hull of the annotated points grown by a buffer).

Coordinates are ImageJ's: x = column, y = row, pixel centres at integer coordinates.
A pixel (row r, column c) is inside a polygon region when its centre (c, r) is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golddigger.errors import InputError

__all__ = ["Region"]


@dataclass
class Region:
    """A region in pixel coordinates, held as a shapely geometry or a boolean mask.

    Build it with `Region.from_polygon`, `Region.from_mask` or `Region.hull_of_points`
    (ImageJ ROI files: `golddigger.io.rois.read_region`).
    """

    geometry: object | None = None  # shapely geometry (Polygon/MultiPolygon)
    mask: np.ndarray | None = None  # bool (Y, X)
    name: str = ""

    def __post_init__(self) -> None:
        if (self.geometry is None) == (self.mask is None):
            raise InputError("a Region needs exactly one of geometry or mask")
        if self.mask is not None:
            self.mask = np.asarray(self.mask, dtype=bool)
            if self.mask.ndim != 2:
                raise InputError(f"a region mask must be 2D, got shape {self.mask.shape}")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_polygon(cls, xy, name: str = "") -> Region:
        """A polygon from an (N, 2) array of (x, y) vertices (N >= 3)."""
        from shapely.geometry import Polygon
        from shapely.validation import make_valid

        xy = np.asarray(xy, dtype=float)
        if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) < 3:
            raise InputError(f"a polygon needs at least 3 (x, y) vertices, got {xy.shape}")
        geom = Polygon(xy)
        if not geom.is_valid:
            geom = make_valid(geom)
        return cls(geometry=geom, name=name)

    @classmethod
    def from_mask(cls, mask: np.ndarray, name: str = "") -> Region:
        """A region from a boolean (or non-zero) 2D mask."""
        return cls(mask=np.asarray(mask) != 0, name=name)

    @classmethod
    def hull_of_points(cls, xy, buffer_px: float, name: str = "") -> Region:
        """The convex hull of points grown by ``buffer_px`` (the evaluation default).

        One or two points give a disc or a capsule of that radius.
        """
        from shapely.geometry import MultiPoint

        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if len(xy) == 0:
            raise InputError("cannot build a hull region from no points")
        if buffer_px < 0:
            raise InputError(f"buffer must be >= 0, got {buffer_px}")
        hull = MultiPoint([tuple(p) for p in xy]).convex_hull
        return cls(geometry=hull.buffer(buffer_px, quad_segs=16), name=name)

    # ------------------------------------------------------------------ queries
    def contains(self, x, y) -> np.ndarray:
        """Boolean array: which points (x, y) lie inside (boundary counts as inside)."""
        x = np.asarray(x, dtype=float).reshape(-1)
        y = np.asarray(y, dtype=float).reshape(-1)
        if x.size == 0:
            return np.zeros(0, dtype=bool)
        if self.mask is not None:
            h, w = self.mask.shape
            c = np.rint(x).astype(np.int64)
            r = np.rint(y).astype(np.int64)
            ok = (c >= 0) & (c < w) & (r >= 0) & (r < h)
            out = np.zeros(x.size, dtype=bool)
            out[ok] = self.mask[r[ok], c[ok]]
            return out
        import shapely

        return shapely.intersects_xy(self.geometry, x, y)

    def to_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """Boolean mask of ``shape`` (rows, cols): pixels whose centre is inside."""
        h, w = int(shape[0]), int(shape[1])
        if self.mask is not None:
            out = np.zeros((h, w), dtype=bool)
            mh, mw = min(h, self.mask.shape[0]), min(w, self.mask.shape[1])
            out[:mh, :mw] = self.mask[:mh, :mw]
            return out
        rings = []
        for poly in _polygons(self.geometry):
            rings.append(np.asarray(poly.exterior.coords, dtype=float))
            rings.extend(np.asarray(hole.coords, dtype=float) for hole in poly.interiors)
        return fill_rings(rings, (h, w))

    def area_px(self) -> float:
        """Area in square pixels."""
        if self.mask is not None:
            return float(self.mask.sum())
        return float(self.geometry.area)

    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in pixels."""
        if self.mask is not None:
            rows, cols = np.nonzero(self.mask)
            if rows.size == 0:
                return (0.0, 0.0, 0.0, 0.0)
            return (float(cols.min()), float(rows.min()), float(cols.max()), float(rows.max()))
        return tuple(float(v) for v in self.geometry.bounds)  # type: ignore[return-value]

    def is_empty(self) -> bool:
        return self.area_px() <= 0

    def scaled(self, factor: float) -> Region:
        """The region in coordinates multiplied by ``factor`` (geometry only; masks are
        resampled by nearest neighbour)."""
        if self.geometry is not None:
            from shapely import affinity

            return Region(geometry=affinity.scale(self.geometry, factor, factor,
                                                  origin=(0, 0)), name=self.name)
        from skimage.transform import resize

        h, w = self.mask.shape
        shape = (max(1, round(h * factor)), max(1, round(w * factor)))
        return Region(mask=resize(self.mask, shape, order=0, anti_aliasing=False) > 0,
                      name=self.name)


def fill_rings(rings, shape: tuple[int, int]) -> np.ndarray:
    """Scan-line fill of closed rings (even-odd rule) at pixel centres, as ImageJ fills.

    Pixel (r, c) is inside when its centre (c, r) is. A centre exactly on an edge counts
    as inside on the right and bottom edges and outside on the left and top ones, which
    is ImageJ 1.53t's rule (checked pixel for pixel against ``ImageProcessor.fill(Roi)``);
    so a ROI read with `golddigger.io.rois.read_region` gives ImageJ's own mask. The cost
    grows with the rows the edges span, not with pixels x vertices.

    Parameters
    ----------
    rings : sequence of (N, 2) arrays
        Closed rings of (x, y) vertices (the closing vertex may be repeated); exteriors and
        holes alike, for polygons whose parts do not overlap.
    shape : (rows, cols)
    """
    h, w = int(shape[0]), int(shape[1])
    out = np.zeros((h, w), dtype=bool)
    segs = [np.concatenate([r, np.roll(r, -1, axis=0)], axis=1) for r in rings
            if len(r) >= 3]
    if not segs or h == 0 or w == 0:
        return out
    e = np.concatenate(segs)
    x1, y1, x2, y2 = e[:, 0], e[:, 1], e[:, 2], e[:, 3]
    keep = (y1 != y2) & np.isfinite(e).all(axis=1)
    x1, y1, x2, y2 = x1[keep], y1[keep], x2[keep], y2[keep]
    swap = y1 > y2
    x1, x2 = np.where(swap, x2, x1), np.where(swap, x1, x2)
    y1, y2 = np.where(swap, y2, y1), np.where(swap, y1, y2)
    # an edge crosses the centres of rows r with y1 < r <= y2
    lo = np.maximum(np.floor(y1).astype(np.int64) + 1, 0)
    hi = np.minimum(np.floor(y2).astype(np.int64), h - 1)
    n = np.maximum(hi - lo + 1, 0)
    if n.sum() == 0:
        return out
    idx = np.repeat(np.arange(len(n)), n)
    rows = lo[idx] + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
    # multiply before dividing: exact crossings for integer / half-integer vertices
    xs = x1[idx] + (rows - y1[idx]) * (x2[idx] - x1[idx]) / (y2[idx] - y1[idx])
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    # crossings come in pairs per row (closed rings): fill left < c <= right
    left, right, r = xs[0::2], xs[1::2], rows[0::2]
    c0 = np.clip(np.floor(left) + 1, 0, w).astype(np.int64)
    c1 = np.clip(np.floor(right) + 1, 0, w).astype(np.int64)
    ok = c1 > c0
    acc = np.zeros((h, w + 1), dtype=np.int32)
    np.add.at(acc, (r[ok], c0[ok]), 1)
    np.add.at(acc, (r[ok], c1[ok]), -1)
    out[:] = np.cumsum(acc, axis=1)[:, :w] % 2 == 1
    return out


def _polygons(geom):
    from shapely.geometry import GeometryCollection, MultiPolygon, Polygon

    if isinstance(geom, Polygon):
        return [geom] if not geom.is_empty else []
    if isinstance(geom, (MultiPolygon, GeometryCollection)):
        return [g for part in geom.geoms for g in _polygons(part)]
    return []
