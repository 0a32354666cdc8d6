"""The analysis region as a shapely geometry in nm, and what is computed once per region.

A `golddigger.io.regions.Region` is in pixels and holds either a shapely geometry or a
boolean mask. The analysis works in nm on a geometry: masks are traced into polygons
(with holes) by `mask_to_geometry`, then everything is scaled by the pixel size.

`SetCovariance` tabulates the set covariance ``gamma(h) = area(W ∩ (W + h))`` of the region
``W`` on a grid of lags (by FFT of a fine rasterisation) for the translation edge correction
of Ripley's K function; it is valid for any region, concave and holed ones included.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from golddigger.errors import GoldDiggerError
from golddigger.io.regions import Region

__all__ = [
    "DEFAULT_BUFFER_NM",
    "SetCovariance",
    "default_region",
    "distance_to_edge",
    "ripley_rasson_window",
    "mask_to_geometry",
    "polygons_of",
    "region_geometry_nm",
    "uniform_points",
]

logger = logging.getLogger(__name__)

#: The old default region (before 0.x): the convex hull grown by this much (nm). It is
#: biased (the margin holds no particles, so random gold looks clustered); kept only as an
#: explicit choice (``buffer_nm=30``) and for the calibration benchmark.
DEFAULT_BUFFER_NM = 30.0
#: Fewest distinct particles for the Ripley-Rasson window estimate.
MIN_POINTS_FOR_WINDOW = 10


def polygons_of(geom) -> list:
    """The polygons of a Polygon, MultiPolygon or GeometryCollection (others dropped)."""
    from shapely.geometry import GeometryCollection, MultiPolygon, Polygon

    if isinstance(geom, Polygon):
        return [] if geom.is_empty else [geom]
    if isinstance(geom, (MultiPolygon, GeometryCollection)):
        return [p for part in geom.geoms for p in polygons_of(part)]
    return []


def mask_to_geometry(mask: np.ndarray):
    """Trace a boolean mask into a (Multi)Polygon with holes, in pixel coordinates.

    The outline runs half-way between inside and outside pixel centres (the 0.5 iso-line
    of the mask), so the polygon's area is close to the pixel count. Nested outlines are
    combined by the even-odd rule, which makes holes (and islands inside holes) right.

    Parameters
    ----------
    mask : numpy.ndarray
        2D, non-zero = inside.

    Returns
    -------
    shapely geometry (x = column, y = row)
    """
    import shapely
    from shapely.geometry import Polygon
    from skimage.measure import find_contours

    mask = np.asarray(mask) != 0
    if mask.ndim != 2:
        raise ValueError(f"a region mask must be 2D, got shape {mask.shape}")
    if not mask.any():
        raise GoldDiggerError("the region mask is empty (no pixel inside)")
    padded = np.pad(mask.astype(np.float32), 1)
    rings = []
    for contour in find_contours(padded, 0.5):
        if len(contour) < 4:
            continue
        xy = contour[:, ::-1] - 1.0  # (row, col) -> (x, y), undo the padding
        poly = Polygon(xy)
        if not poly.is_valid:
            poly = poly.buffer(0)
        if poly.area > 0:
            rings.append(poly)
    if not rings:
        raise GoldDiggerError("the region mask has no traceable outline")
    geom = rings[0]
    for ring in rings[1:]:  # even-odd: (pairwise; shapely's symmetric_difference_all is buggy)
        geom = geom.symmetric_difference(ring)
    return shapely.make_valid(geom)


def region_geometry_nm(region: Region, pixel_size_nm: float):
    """The region's geometry in nm (masks traced first), validated.

    Raises
    ------
    GoldDiggerError
        If the region is empty.
    """
    from shapely import affinity
    from shapely.geometry import MultiPolygon

    geom = mask_to_geometry(region.mask) if region.geometry is None else region.geometry
    polys = polygons_of(geom)
    if not polys:
        raise GoldDiggerError(f"the region {region.name or ''} has no area".replace("  ", " "))
    geom = polys[0] if len(polys) == 1 else MultiPolygon(polys)
    geom = affinity.scale(geom, pixel_size_nm, pixel_size_nm, origin=(0, 0))
    if geom.area <= 0:
        raise GoldDiggerError("the analysis region has no area")
    return geom


def ripley_rasson_window(xy: np.ndarray):
    """The Ripley-Rasson estimate of a convex window from the points it holds.

    For ``n`` points uniform in a convex set ``W``, the convex hull ``H`` of the points is
    too small: Efron's identity gives ``E|W \\ H_n| = |W| E[m_{n+1}] / (n + 1)`` with ``m``
    the number of hull vertices, so ``|H| n / (n - m)`` estimates ``|W|`` without bias
    (to first order). Ripley and Rasson (1977) therefore enlarge the hull about its centroid
    by the linear factor ``sqrt(n / (n - m))``::

        W_hat = c + sqrt(n / (n - m)) * (H - c),     c = centroid(H)

    Parameters
    ----------
    xy : numpy.ndarray
        (N, 2) positions (any unit; the window is in the same unit).

    Returns
    -------
    shapely Polygon

    Raises
    ------
    GoldDiggerError
        Fewer than `MIN_POINTS_FOR_WINDOW` distinct points, points on a line, or every
        point a hull vertex: the window cannot be estimated (outline the region instead).
    """
    from shapely import affinity
    from shapely.geometry import MultiPoint, Polygon

    xy = np.unique(np.asarray(xy, dtype=float).reshape(-1, 2), axis=0)
    n = len(xy)
    if n < MIN_POINTS_FOR_WINDOW:
        raise GoldDiggerError(
            f"{n} distinct particle(s) are too few to estimate the region from the particles "
            f"(at least {MIN_POINTS_FOR_WINDOW}); outline the membrane and give it as the "
            "region (--roi)")
    hull = MultiPoint([tuple(p) for p in xy]).convex_hull
    if not isinstance(hull, Polygon) or hull.area <= 0:
        raise GoldDiggerError("the particles lie on a line; cannot estimate the region from "
                              "them (give the region, --roi)")
    m = len(hull.exterior.coords) - 1
    if n - m < 1:
        raise GoldDiggerError(
            f"all {n} particles are corners of their convex hull; cannot estimate the region "
            "from them (give the region, --roi)")
    factor = math.sqrt(n / (n - m))
    return affinity.scale(hull, factor, factor, origin=hull.centroid)


def default_region(xy_px: np.ndarray, pixel_size_nm: float,
                   buffer_nm: float | None = None) -> Region:
    """The default analysis region of particles at ``xy_px`` (a Region in pixels).

    ``buffer_nm`` None (default): the Ripley-Rasson window estimate
    (`ripley_rasson_window`), named ``"ripley-rasson"``. A number: the old rule, the convex
    hull grown by ``buffer_nm`` (biased; named ``"hull+<buffer> nm"``).
    """
    if buffer_nm is None:
        return Region(geometry=ripley_rasson_window(xy_px), name="ripley-rasson")
    return Region.hull_of_points(xy_px, buffer_nm / pixel_size_nm,
                                 name=f"hull+{buffer_nm:g} nm")


def distance_to_edge(geom, xy: np.ndarray) -> np.ndarray:
    """Distance (same unit as ``geom``) from each point to the region's boundary."""
    import shapely

    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if len(xy) == 0:
        return np.empty(0)
    return shapely.distance(geom.boundary, shapely.points(xy[:, 0], xy[:, 1]))


def uniform_points(geom, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniformly distributed inside ``geom`` (rejection from its bounding box).

    Returns
    -------
    numpy.ndarray
        (n, 2) array of (x, y).
    """
    import shapely

    if n <= 0:
        return np.empty((0, 2))
    xmin, ymin, xmax, ymax = geom.bounds
    box_area = (xmax - xmin) * (ymax - ymin)
    frac = geom.area / box_area if box_area > 0 else 0.0
    if frac < 1e-4:
        raise GoldDiggerError(
            f"the region fills only {100 * frac:.3g}% of its bounding box; cannot sample "
            "points in it (is it a thin line?)")
    shapely.prepare(geom)
    out = []
    got = 0
    while got < n:
        m = int(math.ceil((n - got) / frac * 1.2)) + 16
        pts = np.column_stack([rng.uniform(xmin, xmax, m), rng.uniform(ymin, ymax, m)])
        pts = pts[shapely.contains_xy(geom, pts[:, 0], pts[:, 1])]
        out.append(pts)
        got += len(pts)
    return np.concatenate(out)[:n]


def _rasterise(geom, origin: tuple[float, float], cell: float, shape: tuple[int, int]
               ) -> np.ndarray:
    """0/1 float grid of ``shape``: cell (r, c) spans ``origin + cell * [c, c+1) x [r, r+1)``
    and is 1 when (about) its centre is inside ``geom`` (PIL's scanline fill: fast for
    outlines with many vertices, such as traced masks)."""
    from PIL import Image, ImageDraw

    ny, nx = shape
    img = Image.new("L", (nx, ny), 0)
    draw = ImageDraw.Draw(img)

    def ring_xy(ring) -> list[tuple[float, float]]:
        xy = (np.asarray(ring.coords) - origin) / cell - 0.5  # to cell-centre coordinates
        return [tuple(p) for p in xy]

    for poly in polygons_of(geom):
        draw.polygon(ring_xy(poly.exterior), fill=1)
        for hole in poly.interiors:
            draw.polygon(ring_xy(hole), fill=0)
    return np.asarray(img, dtype=np.float64)


class SetCovariance:
    """The set covariance ``gamma(h) = area(W ∩ (W + h))`` of a region, tabulated.

    The region is rasterised on a square grid (``cells`` cells across its larger side; a
    cell is inside when its centre is) and its autocorrelation computed by FFT for lags up
    to ``r_max``; `__call__` interpolates bilinearly. Ratios ``gamma(0) / gamma(h)`` (the
    translation-correction weights) are accurate to a fraction of a cell.

    Parameters
    ----------
    geom : shapely geometry
        The region (nm).
    r_max : float
        Largest lag needed (nm).
    cells : int
        Grid resolution across the larger side of the bounding box.
    """

    def __init__(self, geom, r_max: float, cells: int = 1024) -> None:
        xmin, ymin, xmax, ymax = geom.bounds
        extent = max(xmax - xmin, ymax - ymin)
        self.cell = extent / cells
        self.area = float(geom.area)
        ny = int(math.ceil((ymax - ymin) / self.cell)) + 1
        nx = int(math.ceil((xmax - xmin) / self.cell)) + 1
        grid = _rasterise(geom, (xmin, ymin), self.cell, (ny, nx))
        if grid.sum() == 0:
            raise GoldDiggerError("the region is too thin to rasterise for the edge correction")
        self.lag = int(math.ceil(r_max / self.cell)) + 2
        from scipy import fft as sfft

        # zero padding by at least the largest lag (no wrap-around), to a fast FFT size
        shape = (sfft.next_fast_len(ny + self.lag, real=True),
                 sfft.next_fast_len(nx + self.lag, real=True))
        spec = sfft.rfft2(grid, s=shape)
        ac = sfft.irfft2(spec * np.conj(spec), s=shape)
        idx_y = np.arange(-self.lag, self.lag + 1) % shape[0]
        idx_x = np.arange(-self.lag, self.lag + 1) % shape[1]
        # table[i, j] = number of cell pairs at lag (dy, dx) = (i - lag, j - lag)
        self.table = np.clip(ac[np.ix_(idx_y, idx_x)], 0.0, None)
        self.zero = float(self.table[self.lag, self.lag])

    def __call__(self, hx: np.ndarray, hy: np.ndarray) -> np.ndarray:
        """``gamma(h)`` in nm² for lags ``(hx, hy)`` (nm), scaled so ``gamma(0)`` is the
        exact area."""
        from scipy.ndimage import map_coordinates

        coords = np.vstack([np.asarray(hy, float) / self.cell + self.lag,
                            np.asarray(hx, float) / self.cell + self.lag])
        vals = map_coordinates(self.table, coords, order=1, mode="nearest")
        return vals * (self.area / self.zero)

    def weights(self, hx: np.ndarray, hy: np.ndarray) -> np.ndarray:
        """Translation-correction weights ``area / gamma(h)`` (>= 1).

        Lags at which the rasterised overlap vanishes (possible only within a cell of the
        boundary) are given the overlap of one cell.
        """
        g = self(hx, hy)
        floor = self.cell * self.cell * (self.area / self.zero)
        return self.area / np.maximum(g, floor)
