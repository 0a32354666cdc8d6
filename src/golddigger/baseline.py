"""A Laplacian-of-Gaussian blob detector: the classical baseline for benchmarks.

The image is resampled to a working pixel size (about 1.1 nm/px), inverted and normalised
to units of its pixel noise (``(median - image) / noise``, so gold is bright; the noise is
measured on the fine-scale residual, see `_normalise`),
and searched for blobs in the scale-normalised LoG scale space, exactly as
`skimage.feature.blob_log` builds it (``-sigma**2 * gaussian_laplace(image, sigma)`` for
log-spaced sigmas spanning the classes, maxima over 3 x 3 x 3 neighbourhoods). Two
differences from `blob_log`, both for the benchmarks' sake:

- each blob keeps its LoG response (blob_log returns none), so a threshold can be swept
  without recomputing the scale space (`tune_log`), and
- overlapping blobs are suppressed greedily by response (the stronger blob wins; blob_log
  keeps the larger one), which is order-independent. Overlap is the fraction of the smaller
  blob's area, as in blob_log.

And one addition: blobs on ridges (the dark edges of fractured membranes, which the LoG
answers strongly at the 12 nm scale) are dropped by the ratio of the Hessian's eigenvalues
at the blob's scale (``min_roundness``, the edge test of SIFT-like detectors).

Positions are refined to sub-pixel by a parabola through the response, and mapped back to
the input image's pixels. A blob's diameter is ``2 sqrt(2) sigma`` (in nm); its class is the
class whose size range contains it (``class_cutoffs_nm``: the boundaries between
consecutive classes, by default the midpoints).

`tune_log` picks the threshold and overlap (and any other `LogParams` field given in the
grid) that maximise the pooled class-agnostic F1 on training images, then the class
cut-offs that maximise the mean per-class F1, so benchmarks can tune per fold.

On the six MPFI FRIL development images (0.5587 nm/px), tuning on five and testing on the
sixth (leave one image out, pooled over the six folds) scored F1 0.975 (6 nm), 0.927
(12 nm) and 0.972 (class-agnostic), about 10 s of tuning per fold.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from golddigger.errors import OptionError
from golddigger.evaluate import (
    DEFAULT_BUFFER_NM,
    DEFAULT_RADIUS_NM,
    EvalPair,
    Report,
    class_key,
    evaluate_many,
)
from golddigger.io.images import CalibratedImage, validate_pixel_size
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

__all__ = ["LogCandidates", "LogParams", "LogTuning", "detect_log", "log_candidates",
           "select_blobs", "tune_log"]

logger = logging.getLogger(__name__)

_SQRT2 = math.sqrt(2.0)

#: `LogParams` fields that change the scale space (candidates are recomputed for them).
SCALE_FIELDS = ("working_pixel_size_nm", "num_sigma", "sigma_margin", "classes")


@dataclass(frozen=True)
class LogParams:
    """Parameters of the LoG baseline.

    Attributes
    ----------
    classes : tuple of float
        Particle diameters (nm) to detect.
    threshold : float
        Smallest scale-normalised LoG response of a blob, in units of the image's
        pixel noise.
    overlap : float
        Blobs whose shared area exceeds this fraction of the smaller one are suppressed
        (the weaker goes), in [0, 1].
    working_pixel_size_nm : float
        The image is resampled to this pixel size before the search.
    num_sigma : int
        Number of log-spaced scales.
    sigma_margin : float
        The scales span the classes' sizes widened by this fraction each way.
    class_cutoffs_nm : tuple of float, optional
        Diameter boundaries between consecutive classes (one fewer than classes);
        None: midpoints between classes (nearest class).
    min_diameter_nm, max_diameter_nm : float, optional
        Blobs outside this diameter range are dropped.
    class_thresholds : tuple of float, optional
        A stricter threshold per class (one per class); None: ``threshold`` for all.
    min_roundness : float
        Smallest ratio of the Hessian's eigenvalues at the blob's scale (1: round,
        0: a ridge such as a dark membrane edge); blobs below it are dropped before
        suppression; 0 drops only saddles, -1 nothing.
    """

    classes: tuple[float, ...] = (6.0, 12.0)
    threshold: float = 5.2
    overlap: float = 0.1
    working_pixel_size_nm: float = 1.1
    num_sigma: int = 8
    sigma_margin: float = 0.35
    class_cutoffs_nm: tuple[float, ...] | None = None
    min_diameter_nm: float | None = None
    max_diameter_nm: float | None = None
    class_thresholds: tuple[float, ...] | None = None
    min_roundness: float = 0.5

    def __post_init__(self) -> None:
        classes = tuple(sorted(float(c) for c in self.classes))
        if not classes or min(classes) <= 0:
            raise OptionError(f"classes must be positive diameters in nm, got {self.classes}")
        object.__setattr__(self, "classes", classes)
        if not 0 <= self.overlap <= 1:
            raise OptionError(f"overlap must be in [0, 1], got {self.overlap}")
        validate_pixel_size(self.working_pixel_size_nm, "working_pixel_size_nm")
        if int(self.num_sigma) < 1:
            raise OptionError(f"num_sigma must be >= 1, got {self.num_sigma}")
        if self.sigma_margin < 0:
            raise OptionError(f"sigma_margin must be >= 0, got {self.sigma_margin}")
        for name, n in (("class_cutoffs_nm", len(classes) - 1),
                        ("class_thresholds", len(classes))):
            value = getattr(self, name)
            if value is not None:
                value = tuple(float(v) for v in value)
                if len(value) != n:
                    raise OptionError(f"{name} needs {n} value(s) for classes {classes}, "
                                     f"got {value}")
                object.__setattr__(self, name, value)

    @property
    def cutoffs_nm(self) -> tuple[float, ...]:
        """The class boundaries in use (the midpoints unless set)."""
        if self.class_cutoffs_nm is not None:
            return self.class_cutoffs_nm
        c = self.classes
        return tuple((a + b) / 2 for a, b in zip(c[:-1], c[1:], strict=True))

    def sigmas(self) -> np.ndarray:
        """The scales searched, in working pixels."""
        lo = min(self.classes) / (2 * _SQRT2) / self.working_pixel_size_nm
        hi = max(self.classes) / (2 * _SQRT2) / self.working_pixel_size_nm
        lo, hi = max(0.5, lo * (1 - self.sigma_margin)), hi * (1 + self.sigma_margin)
        return np.geomspace(lo, hi, int(self.num_sigma))

    def to_dict(self) -> dict:
        """A JSON-friendly dict (`from_dict` reads it back)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping) -> LogParams:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise OptionError(f"unknown LoG parameter(s): {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass
class LogCandidates:
    """Every scale-space maximum above a floor, before suppression and classing.

    Coordinates are in the input image's pixels; ``radius_px`` is the blob radius
    (``sqrt(2) sigma``) in input pixels.
    """

    x: np.ndarray
    y: np.ndarray
    diameter_nm: np.ndarray
    radius_px: np.ndarray
    response: np.ndarray
    slice: np.ndarray
    roundness: np.ndarray
    floor: float

    def __len__(self) -> int:
        return int(self.x.size)


# ---------------------------------------------------------------------------- detection
def _normalise(image: np.ndarray, noise_sigma_px: float = 2.0) -> np.ndarray:
    """``(median - image) / noise``: gold bright, in units of the pixel noise.

    The noise is 1.4826 x the MAD of the image minus its Gaussian blur (``noise_sigma_px``),
    which measures the grain of the micrograph rather than its structures (membranes,
    shadows), so one threshold suits micrographs of different contrast.
    """
    from scipy import ndimage as ndi

    a = np.asarray(image, dtype=np.float32)
    step = max(1, int(np.sqrt(a.size / 1_000_000)))
    med = float(np.median(a[::step, ::step]))
    resid = (a - ndi.gaussian_filter(a, noise_sigma_px))[::step, ::step]
    noise = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    if not np.isfinite(noise) or noise < 1e-6:
        noise = float(a.std()) or 1.0
    return (np.float32(med) - a) / np.float32(noise)


def _parabola_offset(left: np.ndarray, mid: np.ndarray, right: np.ndarray) -> np.ndarray:
    den = left - 2 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(den < 0, 0.5 * (left - right) / den, 0.0)
    return np.clip(np.nan_to_num(off), -0.5, 0.5)


def _candidates_2d(plane: np.ndarray, pixel_size_nm: float, params: LogParams, floor: float
                   ) -> tuple[np.ndarray, ...]:
    from scipy import ndimage as ndi
    from skimage.transform import rescale

    factor = pixel_size_nm / params.working_pixel_size_nm
    img = np.asarray(plane, dtype=np.float32)
    if abs(factor - 1) > 1e-3:
        img = rescale(img, factor, order=1, anti_aliasing=factor < 1, preserve_range=True)
        img = img.astype(np.float32, copy=False)
    fy = img.shape[0] / plane.shape[0]
    fx = img.shape[1] / plane.shape[1]
    z = _normalise(img)
    sigmas = params.sigmas()
    # Rolling scale space: three layers in memory, not the whole cube. A layer holds the
    # scale-normalised second derivatives (-Hxx, -Hyy, -Hxy) times sigma^2; their trace is
    # the LoG response of skimage's blob_log.
    cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def layer(i: int):
        if i not in cache:
            s = float(sigmas[i])
            w = np.float32(-s * s)
            hxx = ndi.gaussian_filter(z, s, order=(0, 2)) * w
            hyy = ndi.gaussian_filter(z, s, order=(2, 0)) * w
            hxy = ndi.gaussian_filter(z, s, order=(1, 1)) * w
            log = hxx + hyy
            cache[i] = (log, ndi.maximum_filter(log, size=3, mode="nearest"), hxx, hyy, hxy)
        return cache[i]

    out_r, out_c, out_s, out_v, out_round = [], [], [], [], []
    for i in range(len(sigmas)):
        lo, hi = max(0, i - 1), min(len(sigmas) - 1, i + 1)
        cur, _, hxx, hyy, hxy = layer(i)
        neighbourhood = np.maximum(np.maximum(layer(lo)[1], layer(i)[1]), layer(hi)[1])
        r, c = np.nonzero((cur >= neighbourhood) & (cur > floor))
        if r.size:
            rr = np.clip(r, 1, cur.shape[0] - 2)
            cc = np.clip(c, 1, cur.shape[1] - 2)
            dy = _parabola_offset(cur[rr - 1, cc], cur[rr, cc], cur[rr + 1, cc])
            dx = _parabola_offset(cur[rr, cc - 1], cur[rr, cc], cur[rr, cc + 1])
            dy[(r == 0) | (r == cur.shape[0] - 1)] = 0
            dx[(c == 0) | (c == cur.shape[1] - 1)] = 0
            out_r.append(r + dy)
            out_c.append(c + dx)
            out_s.append(np.full(r.size, sigmas[i]))
            out_v.append(cur[r, c].astype(np.float64))
            out_round.append(_roundness(hxx[r, c], hyy[r, c], hxy[r, c]))
        cache.pop(i - 1, None)  # no longer needed
    if not out_r:
        e = np.empty(0)
        return e, e, e, e, e, e
    r, c, s, v, rnd = (np.concatenate(a) for a in (out_r, out_c, out_s, out_v, out_round))
    # back to the input's pixels (pixel centres at integers, half-pixel convention)
    x = (c + 0.5) / fx - 0.5
    y = (r + 0.5) / fy - 0.5
    diameter_nm = 2 * _SQRT2 * s * params.working_pixel_size_nm
    radius_px = _SQRT2 * s / math.sqrt(fx * fy)
    return x, y, diameter_nm, radius_px, v, rnd


def _roundness(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Smaller over larger eigenvalue of the (negated) Hessian ``[[a, c], [c, b]]``:
    1 for a round blob, near 0 for a ridge or an edge, negative for a saddle."""
    a, b, c = (np.asarray(v, dtype=np.float64) for v in (a, b, c))
    mean = (a + b) / 2
    half = np.sqrt(((a - b) / 2) ** 2 + c ** 2)
    big, small = mean + half, mean - half
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(big > 0, small / big, -1.0)
    return np.clip(out, -1.0, 1.0)


def log_candidates(image: np.ndarray | CalibratedImage, pixel_size_nm: float | None = None,
                   params: LogParams | None = None, floor: float | None = None
                   ) -> LogCandidates:
    """All LoG scale-space maxima with response above ``floor`` (default
    ``params.threshold``). The costly step; `select_blobs` then applies the rest."""
    params = params or LogParams()
    data, px = _image_and_pixel_size(image, pixel_size_nm)
    floor = params.threshold if floor is None else float(floor)
    planes = data[None] if data.ndim == 2 else data
    if planes.ndim != 3:
        raise OptionError(f"expected a 2D image or a (Z, Y, X) stack, got shape {data.shape}")
    parts = []
    for k, plane in enumerate(planes):
        x, y, d, r, v, rnd = _candidates_2d(plane, px, params, floor)
        parts.append((x, y, d, r, v, np.full(x.size, k, dtype=np.int64), rnd))
    cat = [np.concatenate([p[j] for p in parts]) for j in range(7)]
    return LogCandidates(*cat, floor=floor)


def _overlap_fraction(d: np.ndarray, r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """Intersection area of two circles over the smaller one's area."""
    rmin = np.minimum(r1, r2)
    out = np.zeros(d.shape)
    inside = d <= np.abs(r1 - r2)
    out[inside] = 1.0
    part = ~inside & (d < r1 + r2)
    if part.any():
        d_, a, b = d[part], r1[part], r2[part]
        c1 = np.clip((d_ ** 2 + a ** 2 - b ** 2) / (2 * d_ * a), -1, 1)
        c2 = np.clip((d_ ** 2 + b ** 2 - a ** 2) / (2 * d_ * b), -1, 1)
        tri = (-d_ + a + b) * (d_ + a - b) * (d_ - a + b) * (d_ + a + b)
        area = a ** 2 * np.arccos(c1) + b ** 2 * np.arccos(c2) - 0.5 * np.sqrt(
            np.clip(tri, 0, None))
        out[part] = area / (math.pi * rmin[part] ** 2)
    return out


def _suppress(c: LogCandidates, idx: np.ndarray, overlap: float) -> np.ndarray:
    """Greedy suppression by response among candidates ``idx``; returns kept indices."""
    from scipy.spatial import cKDTree

    if idx.size <= 1:
        return idx
    order = idx[np.argsort(-c.response[idx], kind="stable")]
    xy = np.stack([c.x[order], c.y[order]], axis=1)
    sl = c.slice[order].astype(float) * 1e9  # slices never interact
    xy = xy + sl[:, None]
    r = c.radius_px[order]
    pairs = cKDTree(xy).query_pairs(2 * float(r.max()), output_type="ndarray")
    if pairs.size == 0:
        return order
    i, j = pairs[:, 0], pairs[:, 1]
    d = np.hypot(*(xy[i] - xy[j]).T)
    bad = _overlap_fraction(d, r[i], r[j]) > overlap
    i, j = i[bad], j[bad]
    if i.size == 0:
        return order
    lo, hi = np.minimum(i, j), np.maximum(i, j)  # lo is the stronger (earlier in order)
    conflicts: dict[int, list[int]] = {}
    for a, b in zip(hi.tolist(), lo.tolist(), strict=True):
        conflicts.setdefault(a, []).append(b)
    keep = np.ones(order.size, dtype=bool)
    for k in range(order.size):
        stronger = conflicts.get(k)
        if stronger and any(keep[s] for s in stronger):
            keep[k] = False
    return order[keep]


def select_blobs(candidates: LogCandidates, params: LogParams,
                 region: Region | None = None) -> ParticleTable:
    """Threshold, suppress overlaps, class and size-filter candidates.

    Returns a ParticleTable sorted by decreasing response; ``score`` is the response
    mapped to [0, 1) by ``r / (1 + r)``.
    """
    c = candidates
    if params.threshold < c.floor - 1e-12:
        raise OptionError(f"threshold {params.threshold} is below the candidates' floor "
                         f"{c.floor}; compute candidates with a lower floor")
    idx = np.flatnonzero((c.response > params.threshold)
                         & (c.roundness >= params.min_roundness))
    if region is not None and idx.size:
        idx = idx[region.contains(c.x[idx], c.y[idx])]
    idx = _suppress(c, idx, params.overlap)
    d = c.diameter_nm[idx]
    ok = np.ones(idx.size, dtype=bool)
    if params.min_diameter_nm is not None:
        ok &= d >= params.min_diameter_nm
    if params.max_diameter_nm is not None:
        ok &= d <= params.max_diameter_nm
    classes = np.asarray(params.classes)
    cls = classes[np.searchsorted(np.asarray(params.cutoffs_nm), d, side="right")]
    if params.class_thresholds is not None:
        need = np.asarray(params.class_thresholds)[np.searchsorted(classes, cls)]
        ok &= c.response[idx] > need
    idx, cls = idx[ok], cls[ok]
    v = c.response[idx]
    return ParticleTable(c.x[idx], c.y[idx], cls, v / (1 + v), c.slice[idx])


def detect_log(image: np.ndarray | CalibratedImage, pixel_size_nm: float | None = None,
               params: LogParams | None = None, region: Region | None = None
               ) -> ParticleTable:
    """Find gold particles with the LoG baseline.

    Parameters
    ----------
    image : numpy.ndarray or CalibratedImage
        2D image or (Z, Y, X) stack, gold dark on a lighter background.
    pixel_size_nm : float, optional
        nm per pixel; needed unless ``image`` is a calibrated `CalibratedImage`.
    params : LogParams, optional
        Default `LogParams()` (untuned; use `tune_log`).
    region : Region, optional
        Keep only blobs inside.

    Returns
    -------
    ParticleTable
        Centres in the input's pixels, diameters set to the assigned class.
    """
    params = params or LogParams()
    return select_blobs(log_candidates(image, pixel_size_nm, params), params, region)


def _image_and_pixel_size(image, pixel_size_nm) -> tuple[np.ndarray, float]:
    if isinstance(image, CalibratedImage):
        px = pixel_size_nm if pixel_size_nm is not None else image.require_pixel_size()
        return np.asarray(image.data), validate_pixel_size(px, str(image.path or "image"))
    if pixel_size_nm is None:
        raise OptionError("pixel_size_nm is needed for a bare array image")
    return np.asarray(image), validate_pixel_size(pixel_size_nm, "pixel_size_nm")


# ---------------------------------------------------------------------------- tuning
#: The default search grid of `tune_log`.
DEFAULT_GRID: dict[str, Sequence] = {
    "threshold": tuple(float(t) for t in np.round(np.geomspace(2.5, 10.0, 31), 3)),
    "overlap": (0.1, 0.3, 0.5),
    "min_roundness": (0.0, 0.25, 0.4, 0.5, 0.6, 0.7),
}


@dataclass
class LogTuning:
    """The result of `tune_log`.

    Attributes
    ----------
    params : LogParams
        The chosen parameters.
    report : Report
        Their scores on the training images.
    trials : list of dict
        Every grid point tried: its parameter values and pooled class-agnostic F1.
    """

    params: LogParams
    report: Report
    trials: list[dict] = field(default_factory=list)


def tune_log(images: Sequence[np.ndarray | CalibratedImage], labels: Sequence[ParticleTable],
             pixel_size_nm: float | Sequence[float | None] | None = None,
             grid: Mapping[str, Sequence] | None = None, base: LogParams | None = None,
             regions: Sequence[Region | None] | None = None,
             radius_nm: float = DEFAULT_RADIUS_NM, buffer_nm: float = DEFAULT_BUFFER_NM,
             tune_cutoffs: bool = True, cutoff_step_nm: float = 0.5,
             tune_class_thresholds: bool = False, names: Sequence[str] | None = None
             ) -> LogTuning:
    """Choose LoG parameters on training images.

    1. Every combination in ``grid`` (fields of `LogParams`, default `DEFAULT_GRID`:
       threshold and overlap) is scored by pooled class-agnostic F1 (`evaluate_many`);
       the best wins (ties: the first in grid order).
    2. If ``tune_cutoffs``: each boundary between consecutive classes is moved in steps
       of ``cutoff_step_nm`` between the two classes to maximise the mean per-class F1.
    3. If ``tune_class_thresholds``: each class's own threshold is raised from the global
       one to maximise that class's F1.

    The scale space of each image is computed once per combination of scale fields
    (`SCALE_FIELDS`), so thresholds and overlaps are cheap to sweep.

    Parameters
    ----------
    images : sequence
        Training images (arrays or CalibratedImages).
    labels : sequence of ParticleTable
        Their labels.
    pixel_size_nm : float or sequence, optional
        One for all images, one per image, or None to use each CalibratedImage's own.
    grid : mapping, optional
        Field name to candidate values.
    base : LogParams, optional
        Values of the fields not in the grid. Default: `LogParams` with the labels'
        classes.
    regions : sequence of Region or None, optional
        Evaluation regions (default: each image's labels' hull grown by ``buffer_nm``).
    radius_nm, buffer_nm : float
        As in `golddigger.evaluate.evaluate_image`.
    tune_cutoffs, cutoff_step_nm, tune_class_thresholds
        Steps 2 and 3 above.
    names : sequence of str, optional
        Image names for the report (default ``image0``, ``image1``, ...).

    Returns
    -------
    LogTuning
    """
    n = len(images)
    if n == 0 or len(labels) != n:
        raise OptionError(f"need images and labels of equal, non-zero length "
                         f"(got {n} and {len(labels)})")
    if pixel_size_nm is None or np.isscalar(pixel_size_nm):
        pxs = [pixel_size_nm] * n
    else:
        pxs = list(pixel_size_nm)  # type: ignore[arg-type]
        if len(pxs) != n:
            raise OptionError(f"{len(pxs)} pixel sizes for {n} images")
    data_px = [_image_and_pixel_size(im, p) for im, p in zip(images, pxs, strict=True)]
    if base is None:
        classes = sorted({float(d) for t in labels for d in t.diameter_nm})
        base = LogParams(classes=tuple(classes)) if classes else LogParams()
    grid = dict(DEFAULT_GRID if grid is None else grid)
    unknown = set(grid) - {f.name for f in fields(LogParams)}
    if unknown:
        raise OptionError(f"unknown grid field(s): {', '.join(sorted(unknown))}")
    empty = [k for k, v in grid.items() if len(v) == 0]
    if empty:
        raise OptionError(f"grid field(s) with no values: {', '.join(empty)}")
    if regions is None:
        regions = [None] * n
    regions = [r if r is not None else (
        Region.hull_of_points(t.xy, buffer_nm / px) if len(t) else None)
        for r, t, (_, px) in zip(regions, labels, data_px, strict=True)]
    names = list(names) if names is not None else [f"image{k}" for k in range(n)]
    if len(names) != n:
        raise OptionError(f"{len(names)} names for {n} images")

    def score(params: LogParams, cands: list[LogCandidates]) -> Report:
        pairs = [EvalPair(names[k], labels[k], select_blobs(cands[k], params, regions[k]),
                          data_px[k][1], regions[k]) for k in range(n)]
        return evaluate_many(pairs, radius_nm=radius_nm, buffer_nm=buffer_nm,
                             classes=params.classes)

    scale_keys = [k for k in grid if k in SCALE_FIELDS]
    other_keys = [k for k in grid if k not in SCALE_FIELDS]
    best: tuple[float, LogParams, list[LogCandidates]] | None = None
    trials: list[dict] = []
    for scale_vals in itertools.product(*(grid[k] for k in scale_keys)):
        scale_params = replace(base, **dict(zip(scale_keys, scale_vals, strict=True)))
        floor = min([scale_params.threshold] + list(grid.get("threshold", [])))
        cands = [log_candidates(d, px, scale_params, floor=floor) for d, px in data_px]
        for vals in itertools.product(*(grid[k] for k in other_keys)):
            params = replace(scale_params, **dict(zip(other_keys, vals, strict=True)))
            f1 = score(params, cands).pooled["all"].f1
            trials.append({**{k: getattr(params, k) for k in grid}, "f1": f1})
            if best is None or f1 > best[0]:
                best = (f1, params, cands)
    f1, params, cands = best  # type: ignore[misc]  # the grid has at least one point
    logger.info("LoG tuning: agnostic F1 %.4f with %s", f1,
                {k: getattr(params, k) for k in grid})

    def class_mean_f1(p: LogParams) -> float:
        pooled = score(p, cands).pooled
        return float(np.mean([pooled[class_key(c)].f1 for c in p.classes]))

    if tune_cutoffs and len(params.classes) > 1:
        cuts = list(params.cutoffs_nm)
        for b in range(len(cuts)):
            lo, hi = params.classes[b], params.classes[b + 1]
            options = np.arange(lo + cutoff_step_nm, hi, cutoff_step_nm)
            results = []
            for v in options:
                trial = cuts.copy()
                trial[b] = float(v)
                results.append(class_mean_f1(replace(params, class_cutoffs_nm=tuple(trial))))
            if results:
                # the middle of the best plateau, not its edge
                top = np.flatnonzero(np.isclose(results, max(results)))
                cuts[b] = float(options[top[len(top) // 2]])
        params = replace(params, class_cutoffs_nm=tuple(cuts))
        logger.info("LoG tuning: class cut-offs %s nm", params.class_cutoffs_nm)

    if tune_class_thresholds:
        ths = [params.threshold] * len(params.classes)
        options = sorted({float(t) for t in grid.get("threshold", [params.threshold])
                          if t >= params.threshold})
        for k, c in enumerate(params.classes):
            results = []
            for t in options:
                trial = ths.copy()
                trial[k] = t
                pooled = score(replace(params, class_thresholds=tuple(trial)), cands).pooled
                results.append(pooled[class_key(c)].f1)
            ths[k] = options[int(np.argmax(results))]
        params = replace(params, class_thresholds=tuple(ths))
        logger.info("LoG tuning: class thresholds %s", params.class_thresholds)

    return LogTuning(params=params, report=score(params, cands), trials=trials)
