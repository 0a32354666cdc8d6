"""Synthetic freeze-fracture replica (FRIL) micrographs with exact gold ground truth.

The images are built the way a replica is made, in physical units (nm), so that they look
the same at any pixel size:

1. A surface height map (nm): cell domains and vesicles as cushions (plateaus or basins
   with rounded edges; some with a bumpy, cross-fractured surface), intramembrane
   patches (P-face/E-face, where the gold is) bounded by low fracture steps, membrane
   folds, intramembrane particles (IMPs: flat-topped bumps, densely clustered in some
   patches) and a smooth undulation.
2. Platinum shadowing from one direction at an elevation angle: the platinum thickness
   seen from above is ``max(0, sin(e) + cos(e) * slope)``, with cast shadows behind tall
   relief. Slopes facing the source collect platinum (dark streaks along fracture edges),
   slopes and shadows facing away get little (bright rims), IMPs become bright/dark
   crescents.
3. Platinum grain (correlated noise with the real replica's spectrum) and a small grey
   offset per patch.
4. Gold particles, added *after* replication as in FRIL (no platinum shadow on them):
   spheres whose transmission is ``exp(-k * thickness)``, blurred a little. Their centres
   are the ground truth.
5. Hard negatives: faint or elongated dark blobs 4-15 nm (debris, thick platinum grains)
   and gold-like dark spots on the dark side of fracture edges.
6. A global point-spread function, gamma, Poisson-like noise, 8-bit quantisation and
   optionally JPEG compression and a scale bar.

The defaults were fitted to the MPFI FRIL set (0.5587 nm/px; the measurements are in
``docs/synthetic.md``): flat replica grey 145-212, grain std ~4.6 grey levels over a
white-noise floor of ~5.3, power flat down to ~4.3 nm periods; 6 nm gold core at ~47 %
and 12 nm at ~16-21 % of the background, edge blur ~1.3 nm, no bright halo; 18 nm gold
nearly black.

Coordinates follow ImageJ and `golddigger.particles`: x is the column, y the row, pixel
centres at integer coordinates.

Examples
--------
>>> from golddigger.synth import SynthConfig, generate
>>> result = generate(SynthConfig(shape=(512, 512)), seed=1)
>>> result.image.dtype, result.image.shape
(dtype('uint8'), (512, 512))
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from scipy import ndimage as ndi

from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

__all__ = [
    "DEFAULT_APPARENT_DIAMETER_NM",
    "DEFAULT_DENSITY_PER_UM2",
    "SynthConfig",
    "SynthResult",
    "generate",
    "example_paths",
    "write_example",
]

logger = logging.getLogger(__name__)

#: Labelled gold per square micron of image, per class, when no density is given
#: (about 50 particles in a 1024 x 1024 image at 0.5587 nm/px).
DEFAULT_DENSITY_PER_UM2 = {6.0: 90.0, 12.0: 50.0, 18.0: 8.0}
#: Density for a class not in `DEFAULT_DENSITY_PER_UM2`.
OTHER_CLASS_DENSITY_PER_UM2 = 30.0

#: How large gold of a nominal class looks in the real replicas (sphere diameter fitted to
#: the radial profiles of the MPFI set: "6 nm" gold images as a ~7 nm sphere, "12 nm" as
#: ~12 nm, "18 nm" as ~16.8 nm). Other classes are drawn at their nominal size.
DEFAULT_APPARENT_DIAMETER_NM = {6.0: 7.0, 12.0: 12.2, 18.0: 16.8}

#: Gold absorption: transmission ``exp(-k * thickness_nm)``, fitted to the real profiles.
GOLD_K_PER_NM = 0.153

Range = tuple[float, float]


def _check_range(value: Range, name: str, lo: float | None = None,
                 hi: float | None = None) -> Range:
    a, b = float(value[0]), float(value[1])
    if not (math.isfinite(a) and math.isfinite(b)) or a > b:
        raise ValueError(f"{name} must be a (low, high) pair with low <= high, got {value}")
    if lo is not None and a < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")
    if hi is not None and b > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value}")
    return (a, b)


class SynthConfig(BaseModel):
    """Everything that shapes a synthetic FRIL image. Pairs are (low, high) ranges: each
    image draws one value uniformly between them (give equal values to fix it).

    Attributes
    ----------
    shape : (int, int)
        Image (rows, columns).
    pixel_size_nm : float
        nm per pixel; all structures are specified in nm and scale with it.
    classes : tuple of float
        Gold diameters (nm) to draw; the labels carry these nominal values.
    counts : dict, optional
        Exact number of particles per class (``{6: 30, 12: 10}``); classes missing from it
        get none. Overrides ``density_per_um2``.
    density_per_um2 : dict, optional
        Mean particles per square micron of image, per class (Poisson per image).
        Default `DEFAULT_DENSITY_PER_UM2`.
    size_cv : float
        Coefficient of variation of the drawn particle diameters (default 8 %).
    apparent_diameter_nm : dict
        Sphere diameter drawn for a nominal class (default: fitted to real replicas).
    in_patch_fraction : float
        Fraction of gold placed inside membrane patches; the rest anywhere else.
    cluster_fraction : float
        Fraction of in-patch gold placed in clusters (sigma ``cluster_sigma_nm``).
    label_outside : bool
        If False, gold outside the patches is drawn but not labelled (like the real
        annotations, which only cover the studied membrane).
    min_gap_nm : float
        Extra clearance between particle edges (centre spacing >= r1 + r2 + gap).
    patch_coverage : float
        Patches are added until they cover at least this fraction of the image (the
        last one usually overshoots: 0.35 gives 35-65 %).
    patch_radius_nm, patch_step_nm, patch_grey : ranges
        Patch size, the height of its fracture step, and its grey offset (optical density).
    domain_density_per_um2, domain_radius_nm, domain_height_nm, domain_edge_nm
        Cell profiles and vesicles: cushion-shaped plateaus (or basins) whose rounded
        edges give the dark platinum streaks, bright rims and cast shadows of the
        replica. ``domain_edge_nm`` is the rounding width of the edge.
    rough_fraction : float
        Fraction of domains (those under 350 nm radius) with a mottled, bumpy
        (cross-fractured) surface.
    ridge_density_per_um2 : float
        Membrane folds (long low ridges) per square micron.
    imp_density_per_um2, imp_cluster_density_per_um2 : float
        Intramembrane particles: density in the patches and inside IMP clusters.
    imp_shadows : bool
        Draw IMPs as the replicas show them: a thin platinum cap facing the source and
        a bright cast shadow behind (default). False draws the look of releases up to
        fril-gold-v3 (the bump's full slope collects platinum, no cast shadow: dark
        caps that look like small gold); the rest of an image is the same either way.
    dark_blob_density_per_um2 : float
        Hard negatives: small dark roundish or elongated blobs that are not gold.
    edge_artefact_density_per_um2 : float
        Hard negatives: gold-like dark spots on the shadowed side of fracture edges.
    dark_band_density_per_um2, dark_band_width_nm, dark_band_strength : float, range, range
        Heavy platinum bands (thick dark streaks along steep fracture faces, as in real
        replicas) per square micron, their width and optical density; 0 draws none (and
        draws exactly as before).
    dark_gold_fraction : float
        Share of the gold placed on the darkest tenth of the replica (the heavy platinum
        streaks along fracture edges), where real gold is easily missed; 0 places gold
        without regard to darkness (and draws exactly as before).
    shadow_elevation_deg, shadow_azimuth_deg : range, range
        Platinum shadowing angle above the surface, and its direction in the image.
    platinum_contrast : range
        Optical density of the platinum layer (contrast of all relief).
    undulation_nm : range
        Amplitude (nm) of the smooth low-frequency surface undulation.
    background_grey : range
        Grey level of a flat replica (0-255).
    gamma : range
        Display gamma applied to the whole image.
    grain_period_nm, grain_strength : float, range
        Platinum grain: the shortest period (nm) it has power at (its spectrum is flat
        below ``1 / grain_period_nm`` and falls off steeply above), and its amplitude
        (optical density std).
    psf_sigma_nm, gold_blur_nm : range
        Global blur and the total edge blur of gold particles (Gaussian sigma, nm).
    gold_darkness : range
        Per-image factor on the gold absorption; each particle also varies by ~20 %.
    noise_gain, read_noise : range
        Poisson-like noise variance per grey level, and additive noise std (grey levels).
    jpeg_quality : int or (int, int), optional
        Compress with JPEG at this quality (or one drawn from the range); None: no JPEG.
    scale_bar : bool
        Draw a black band with a 200 nm scale bar at the bottom, as microscopes do
        (gold and region stay out of it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    shape: tuple[int, int] = (1024, 1024)
    pixel_size_nm: Annotated[float, Field(gt=0.01, le=50.0)] = 0.5587
    classes: tuple[float, ...] = (6.0, 12.0, 18.0)
    counts: dict[float, Annotated[int, Field(ge=0)]] | None = None
    density_per_um2: dict[float, Annotated[float, Field(ge=0)]] | None = None
    size_cv: Annotated[float, Field(ge=0, le=0.3)] = 0.08
    apparent_diameter_nm: dict[float, Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: dict(DEFAULT_APPARENT_DIAMETER_NM))
    in_patch_fraction: Annotated[float, Field(ge=0, le=1)] = 0.85
    cluster_fraction: Annotated[float, Field(ge=0, le=1)] = 0.5
    cluster_sigma_nm: Annotated[float, Field(gt=0)] = 35.0
    label_outside: bool = True
    min_gap_nm: Annotated[float, Field(ge=0)] = 0.5

    patch_coverage: Annotated[float, Field(ge=0, le=0.9)] = 0.35
    patch_radius_nm: Range = (110.0, 320.0)
    patch_step_nm: Range = (1.0, 3.5)
    patch_grey: Range = (-0.07, 0.07)
    domain_density_per_um2: Annotated[float, Field(ge=0)] = 12.0
    domain_radius_nm: Range = (50.0, 700.0)
    domain_height_nm: Range = (4.0, 35.0)
    domain_edge_nm: Range = (5.0, 30.0)
    rough_fraction: Annotated[float, Field(ge=0, le=1)] = 0.3
    ridge_density_per_um2: Annotated[float, Field(ge=0)] = 1.0
    imp_density_per_um2: Annotated[float, Field(ge=0)] = 400.0
    imp_cluster_density_per_um2: Annotated[float, Field(ge=0)] = 3500.0
    imp_shadows: bool = True
    dark_blob_density_per_um2: Annotated[float, Field(ge=0)] = 45.0
    edge_artefact_density_per_um2: Annotated[float, Field(ge=0)] = 12.0
    dark_band_density_per_um2: Annotated[float, Field(ge=0)] = 0.0
    dark_band_width_nm: Range = (15.0, 60.0)
    dark_band_strength: Range = (0.25, 0.9)
    dark_gold_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0

    shadow_elevation_deg: Range = (35.0, 65.0)
    shadow_azimuth_deg: Range = (0.0, 360.0)
    platinum_contrast: Range = (0.35, 0.65)
    undulation_nm: Range = (3.0, 12.0)
    background_grey: Range = (145.0, 212.0)
    gamma: Range = (0.85, 1.2)
    grain_period_nm: Annotated[float, Field(gt=0)] = 4.3
    grain_strength: Range = (0.035, 0.058)
    psf_sigma_nm: Range = (0.15, 0.4)
    gold_blur_nm: Range = (1.15, 1.5)
    gold_darkness: Range = (0.85, 1.15)
    noise_gain: Range = (0.1, 0.25)
    read_noise: Range = (0.5, 2.0)
    jpeg_quality: int | tuple[int, int] | None = None
    scale_bar: bool = False

    @field_validator("shape")
    @classmethod
    def _shape_ok(cls, v: tuple[int, int]) -> tuple[int, int]:
        if min(v) < 32 or max(v) > 16384:
            raise ValueError(f"shape must be between 32 and 16384 pixels a side, got {v}")
        return v

    @field_validator("classes")
    @classmethod
    def _classes_ok(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v:
            raise ValueError("classes must name at least one gold diameter (nm)")
        if any(not (1.0 <= d <= 100.0) for d in v):
            raise ValueError(f"gold diameters must be 1-100 nm, got {v}")
        if len(set(v)) != len(v):
            raise ValueError(f"classes has duplicates: {v}")
        return tuple(float(d) for d in v)

    @field_validator("jpeg_quality")
    @classmethod
    def _jpeg_ok(cls, v):
        if v is None:
            return v
        lo, hi = (v, v) if isinstance(v, int) else v
        if not 1 <= lo <= hi <= 100:
            raise ValueError(f"jpeg_quality must be 1-100 (or a low, high pair), got {v}")
        return v

    @model_validator(mode="after")
    def _ranges_ok(self) -> SynthConfig:
        limits = {
            "patch_radius_nm": (1.0, None), "patch_step_nm": (0.0, None),
            "patch_grey": (-1.0, 1.0), "domain_radius_nm": (1.0, None),
            "domain_height_nm": (0.0, None), "domain_edge_nm": (0.1, None),
            "dark_band_width_nm": (1.0, None), "dark_band_strength": (0.0, 5.0),
            "shadow_elevation_deg": (5.0, 90.0), "shadow_azimuth_deg": (-360.0, 720.0),
            "platinum_contrast": (0.0, 3.0), "undulation_nm": (0.0, None),
            "background_grey": (1.0, 255.0), "gamma": (0.2, 5.0),
            "grain_strength": (0.0, 1.0), "psf_sigma_nm": (0.0, None),
            "gold_blur_nm": (0.0, None), "gold_darkness": (0.0, 10.0),
            "noise_gain": (0.0, None), "read_noise": (0.0, None),
        }
        for name, (lo, hi) in limits.items():
            _check_range(getattr(self, name), name, lo, hi)
        for name in ("counts", "density_per_um2"):
            table = getattr(self, name)
            if table:
                unknown = [k for k in table if not any(abs(k - c) < 1e-6 for c in self.classes)]
                if unknown:
                    raise ValueError(f"{name} names classes {unknown} not in classes "
                                     f"{list(self.classes)}")
        return self

    # ------------------------------------------------------------------ helpers
    @property
    def area_um2(self) -> float:
        """Image area in square microns."""
        return self.shape[0] * self.shape[1] * (self.pixel_size_nm / 1000.0) ** 2

    def apparent_diameter(self, nominal_nm: float) -> float:
        """The sphere diameter drawn for a nominal class."""
        for k, v in self.apparent_diameter_nm.items():
            if abs(k - nominal_nm) < 1e-6:
                return float(v)
        return float(nominal_nm)


@dataclass
class SynthResult:
    """One synthetic micrograph and its truth.

    Attributes
    ----------
    image : numpy.ndarray
        uint8 (Y, X).
    particles : ParticleTable
        Labelled gold: true sub-pixel centres, nominal class diameter (nm).
    region : Region
        Union of the membrane patches (where the gold is concentrated and, with
        ``label_outside=False``, the only place it is labelled).
    pixel_size_nm : float
    negatives : ParticleTable
        Centres and sizes (nm) of the drawn hard negatives (dark blobs, edge artefacts);
        a detector should not report these.
    seed : int or None
    """

    image: np.ndarray
    particles: ParticleTable
    region: Region
    pixel_size_nm: float
    negatives: ParticleTable
    seed: int | None = None


# ============================================================================ geometry
def _star_polygon(rng: np.random.Generator, cx: float, cy: float, r: float,
                  roughness: float = 0.18, n: int = 96) -> np.ndarray:
    """A smooth random blob: (n, 2) vertices (x, y) around (cx, cy), mean radius r."""
    phi = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rad = np.ones(n)
    for k in range(2, 7):
        rad += rng.normal(0, roughness / k) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
    rad = np.clip(rad, 0.35, None) * r
    aspect = rng.uniform(0.55, 1.0)
    rot = rng.uniform(0, np.pi)
    x, y = rad * np.cos(phi), rad * np.sin(phi) * aspect
    c, s = np.cos(rot), np.sin(rot)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def _valid_polygon(xy: np.ndarray):
    from shapely.geometry import Polygon
    from shapely.validation import make_valid

    poly = Polygon(xy)
    if not poly.is_valid:
        poly = make_valid(poly)
    return poly


def _fill_polygon(out: np.ndarray, xy: np.ndarray, value: float, scale: float = 1.0) -> None:
    """Add ``value`` to the pixels of ``out`` inside polygon ``xy`` (full-res x, y).

    ``scale`` maps full-resolution coordinates to the grid of ``out`` (e.g. 0.25).
    Rasterised by PIL within the polygon's bounding box (fast).
    """
    from PIL import Image, ImageDraw

    h, w = out.shape
    # grid point j of a grid downscaled by f sits at full-res (j + 0.5) / f - 0.5
    gx = (xy[:, 0] + 0.5) * scale - 0.5
    gy = (xy[:, 1] + 0.5) * scale - 0.5
    c0, c1 = max(int(np.floor(gx.min())), 0), min(int(np.ceil(gx.max())) + 1, w)
    r0, r1 = max(int(np.floor(gy.min())), 0), min(int(np.ceil(gy.max())) + 1, h)
    if c0 >= c1 or r0 >= r1:
        return
    canvas = Image.new("L", (c1 - c0, r1 - r0), 0)
    ImageDraw.Draw(canvas).polygon(list(zip((gx - c0).tolist(), (gy - r0).tolist(),
                                            strict=True)), fill=1)
    mask = np.asarray(canvas, dtype=bool)
    out[r0:r1, c0:c1][mask] += value


def _wavy_path(rng: np.random.Generator, w: float, h: float, length: float,
               n: int = 120) -> np.ndarray:
    """A gently curved path (x, y) of about ``length`` pixels, as (n, 2)."""
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    ang = rng.uniform(0, np.pi)
    t = np.linspace(-0.5, 0.5, n) * length
    bend = np.zeros(n)
    for k in range(1, 4):
        bend += rng.normal(0, 0.08 / k) * length * np.sin(k * np.pi * (t / length + 0.5)
                                                         + rng.uniform(0, np.pi))
    x = cx + t * np.cos(ang) - bend * np.sin(ang)
    y = cy + t * np.sin(ang) + bend * np.cos(ang)
    return np.stack([x, y], axis=1)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; large sigmas use three box passes (within ~1 % of a Gaussian and
    far faster on big images)."""
    if sigma <= 0:
        return a
    if sigma < 3.0:
        return ndi.gaussian_filter(a, sigma, mode="nearest", truncate=3.5)
    size = int(round(math.sqrt(12.0 * sigma * sigma / 3.0 + 1.0)))
    size += 1 - size % 2
    out = a
    for _ in range(3):
        out = ndi.uniform_filter(out, size, mode="nearest")
    return out


def _resize_to(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a smooth field to ``shape`` (pixel centres aligned), separable."""
    if a.shape == tuple(shape):
        return a.astype(np.float32, copy=False)

    def axis_weights(n_in: int, n_out: int):
        pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        i0 = np.clip(np.floor(pos).astype(np.int64), 0, n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        wgt = np.clip(pos - i0, 0.0, 1.0).astype(np.float32)
        return i0, i1, wgt

    a = a.astype(np.float32, copy=False)
    x0, x1, wx = axis_weights(a.shape[1], shape[1])
    rows = a[:, x0] * (1 - wx) + a[:, x1] * wx  # (h_in, W)
    y0, y1, wy = axis_weights(a.shape[0], shape[0])
    out = rows[y0] * (1 - wy)[:, None]
    out += rows[y1] * wy[:, None]
    return out


# ============================================================================ stamps
def _bumps(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, sigma_px: np.ndarray,
           amp: np.ndarray, flat_top: bool = False) -> np.ndarray:
    """Sum of bumps (vectorised splatting through ``np.bincount``): Gaussian, or with
    ``flat_top`` the super-Gaussian ``exp(-(r^2 / 2 sigma^2)^2)`` (a mesa with steep
    sides: shadowed, it shows as a bright and a dark crescent around a grey top)."""
    h, w = shape
    if x.size == 0:
        return np.zeros(shape, dtype=np.float32)
    m = int(math.ceil(3.0 * float(sigma_px.max())))
    off = np.arange(-m, m + 1)
    cx, cy = np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)
    cols = cx[:, None, None] + off[None, None, :]
    rows = cy[:, None, None] + off[None, :, None]
    dx = cols - x[:, None, None]
    dy = rows - y[:, None, None]
    q = (dx * dx + dy * dy) / (2 * sigma_px[:, None, None] ** 2)
    val = amp[:, None, None] * np.exp(-(q * q if flat_top else q))
    rows, cols = np.broadcast_arrays(rows, cols)
    ok = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    flat = np.bincount(rows[ok] * w + cols[ok], weights=val[ok], minlength=h * w)
    return flat.reshape(shape).astype(np.float32)


def _absorb_stamp(img: np.ndarray, x: float, y: float, d_px: float, k_px: float,
                  blur_px: float, aspect: float = 1.0, angle: float = 0.0,
                  subblobs: tuple = ()) -> None:
    """Multiply ``img`` in place by the transmission of a blurred absorbing ellipsoid.

    Thickness is that of a sphere of diameter ``d_px`` (stretched by ``aspect`` along
    ``angle``), transmission ``exp(-k_px * thickness)``; the absorbance ``1 - T`` is
    blurred by ``blur_px`` and applied as ``img *= 1 - A``. ``subblobs`` adds further
    (dx, dy, d_px) spheres (irregular debris).
    """
    h, w = img.shape
    parts = [(0.0, 0.0, d_px)] + list(subblobs)
    reach = max(math.hypot(dx, dy) + dd * aspect / 2 for dx, dy, dd in parts)
    m = int(math.ceil(reach + 3.5 * blur_px + 1))
    cx, cy = int(round(x)), int(round(y))
    r0, r1 = max(cy - m, 0), min(cy + m + 1, h)
    c0, c1 = max(cx - m, 0), min(cx + m + 1, w)
    if r0 >= r1 or c0 >= c1:
        return
    ss = 4 if d_px < 24 else 2
    sub = (np.arange(ss) + 0.5) / ss - 0.5  # supersamples around each pixel centre
    ys = (np.arange(cy - m, cy + m + 1)[:, None] + sub[None, :]).reshape(-1) - y
    xs = (np.arange(cx - m, cx + m + 1)[:, None] + sub[None, :]).reshape(-1) - x
    ca, sa = math.cos(angle), math.sin(angle)
    thick = np.zeros((ys.size, xs.size), dtype=np.float32)
    for dx, dy, dd in parts:
        xx = xs[None, :] - dx
        yy = ys[:, None] - dy
        u = (xx * ca + yy * sa) / aspect
        v = -xx * sa + yy * ca
        r2 = (dd / 2) ** 2 - (u * u + v * v)
        thick = np.maximum(thick, 2 * np.sqrt(np.clip(r2, 0, None)).astype(np.float32))
    absorb = 1.0 - np.exp(-k_px * thick)
    n = 2 * m + 1
    absorb = absorb.reshape(n, ss, n, ss).mean(axis=(1, 3))
    if blur_px > 0:
        absorb = ndi.gaussian_filter(absorb, blur_px, mode="constant")
    absorb = absorb[r0 - (cy - m): r1 - (cy - m), c0 - (cx - m): c1 - (cx - m)]
    img[r0:r1, c0:c1] *= (1.0 - absorb).astype(np.float32)


# ============================================================================ placement
class _Placer:
    """Non-overlapping discs: centre spacing >= r1 + r2 + gap."""

    def __init__(self, gap_px: float) -> None:
        self.gap = gap_px
        self.x: list[float] = []
        self.y: list[float] = []
        self.r: list[float] = []

    def fits(self, x: float, y: float, r: float) -> bool:
        if not self.r:
            return True
        d2 = (np.asarray(self.x) - x) ** 2 + (np.asarray(self.y) - y) ** 2
        return bool(np.all(d2 >= (np.asarray(self.r) + r + self.gap) ** 2))

    def add(self, x: float, y: float, r: float) -> None:
        self.x.append(x)
        self.y.append(y)
        self.r.append(r)


# ============================================================================ generator
def _u(rng: np.random.Generator, pair: Range) -> float:
    lo, hi = pair
    return float(lo) if lo == hi else float(rng.uniform(lo, hi))


def _lookup(table: dict[float, float] | dict[float, int], cls: float, default):
    return next((v for k, v in table.items() if abs(float(k) - cls) < 1e-6), default)


def _class_counts(cfg: SynthConfig, rng: np.random.Generator) -> dict[float, int]:
    if cfg.counts is not None:
        return {c: int(_lookup(cfg.counts, c, 0)) for c in cfg.classes}
    out = {}
    for c in cfg.classes:
        if cfg.density_per_um2 is not None:
            lam = float(_lookup(cfg.density_per_um2, c, 0.0))
        else:
            lam = DEFAULT_DENSITY_PER_UM2.get(c, OTHER_CLASS_DENSITY_PER_UM2)
        out[c] = int(rng.poisson(lam * cfg.area_um2))
    return out


@dataclass
class _Scene:
    """Geometry shared by the rendering steps (pixel coordinates)."""

    H: int
    W: int
    Hv: int  # rows above the scale bar
    px: float
    frame: object
    patches_xy: list
    patch_polys: list
    region_geom: object
    imp_clusters: list  # (x, y, radius)
    edge_xy: list  # outlines of domains and patches (for edge artefacts)


def _plan_patches(cfg: SynthConfig, rng, W: int, Hv: int, px: float):
    from shapely import union_all
    from shapely.geometry import box

    frame = box(-0.5, -0.5, W - 0.5, Hv - 0.5)
    patches_xy: list[np.ndarray] = []
    polys = []
    covered = 0.0
    target = cfg.patch_coverage * frame.area
    for _ in range(80):
        if covered >= target:
            break
        r = _u(rng, cfg.patch_radius_nm) / px
        xy = _star_polygon(rng, rng.uniform(0.05, 0.95) * W, rng.uniform(0.05, 0.95) * Hv, r)
        poly = _valid_polygon(xy).intersection(frame)
        if poly.is_empty or poly.area < 0.1 * math.pi * r * r:
            continue
        patches_xy.append(xy)
        polys.append(poly)
        covered = union_all(polys).area
    region_geom = union_all(polys) if polys else frame
    return frame, patches_xy, polys, region_geom


def _relief(cfg: SynthConfig, rng, sc: _Scene, f: int):
    """Height maps (nm): (low-res smooth relief, full-res fine relief, low-res patch grey).

    Low resolution is ``f`` times coarser (cells of ~2 nm).
    """
    H, W, px = sc.H, sc.W, sc.px
    hl, wl = -(-H // f), -(-W // f)
    cell = px * f
    h_low = np.zeros((hl, wl), dtype=np.float32)
    # domains: cushions (plateaus with rounded edges) or basins
    n_dom = int(rng.poisson(cfg.domain_density_per_um2 * cfg.area_um2))
    lo_r, hi_r = cfg.domain_radius_nm
    for _ in range(n_dom):
        # log-uniform radius: many small vesicles, a few large cell profiles
        r_nm = float(np.exp(rng.uniform(math.log(lo_r), math.log(hi_r)))) if lo_r > 0 else hi_r
        xy = _star_polygon(rng, rng.uniform(-0.15, 1.15) * W, rng.uniform(-0.15, 1.15) * H,
                           r_nm / px, roughness=0.2)
        mask = np.zeros((hl, wl), dtype=np.float32)
        _fill_polygon(mask, xy, 1.0, 1.0 / f)
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        if rows.size == 0:
            continue
        height = _u(rng, cfg.domain_height_nm) * (1 if rng.uniform() < 0.7 else -1)
        edge = min(_u(rng, cfg.domain_edge_nm), 0.6 * r_nm) / cell  # cells
        sigma = max(edge, 1.5)
        # work in the domain's bounding box plus a margin for the blur
        m = int(math.ceil(3 * sigma)) + 2
        r0, r1 = max(rows[0] - m, 0), min(rows[-1] + m + 1, hl)
        c0, c1 = max(cols[0] - m, 0), min(cols[-1] + m + 1, wl)
        # cushion: 0 outside, rising steeply at the outline to a plateau inside. Built from
        # the blurred mask (smooth: no staircase from the rasterisation shows in the shading)
        u = np.clip(2.0 * _blur(mask[r0:r1, c0:c1], sigma) - 1.0, 0.0, 1.0)
        cushion = (1.0 - np.exp(-3.0 * u)) / (1.0 - math.exp(-3.0))
        win = h_low[r0:r1, c0:c1]
        win += (height * cushion).astype(np.float32)
        if rng.uniform() < cfg.rough_fraction and r_nm < 350:
            # cross-fractured cytoplasm: a mottled, bumpy surface
            bumps = _blur(rng.standard_normal(u.shape).astype(np.float32),
                          rng.uniform(2.5, 6.0) / cell)
            bumps *= rng.uniform(1.0, 3.0) / max(float(bumps.std()), 1e-6)
            win += (bumps * cushion).astype(np.float32)
        sc.edge_xy.append(xy)
    # membrane folds
    n_ridge = int(rng.poisson(cfg.ridge_density_per_um2 * cfg.area_um2))
    if n_ridge:
        from PIL import Image, ImageDraw

        canvas = Image.new("F", (wl, hl), 0.0)
        draw = ImageDraw.Draw(canvas)
        for _ in range(n_ridge):
            path = _wavy_path(rng, W, H, rng.uniform(150, 900) / px) / f
            width = max(1, int(round(rng.uniform(4.0, 12.0) / cell)))
            draw.line([tuple(p) for p in path], fill=float(rng.uniform(2.0, 8.0)),
                      width=width, joint="curve")
        h_low += _blur(np.asarray(canvas, dtype=np.float32), rng.uniform(2.0, 5.0) / cell)
    # undulation
    und = rng.standard_normal((max(4, hl // 24), max(4, wl // 24))).astype(np.float32)
    und = _blur(und, 1.2)
    und = _blur(_resize_to(und, (hl, wl)), max(1.0, hl / und.shape[0] / 2))  # no facets
    und *= _u(rng, cfg.undulation_nm) / max(float(und.std()), 1e-6)
    h_low += und
    h_low = ndi.gaussian_filter(h_low, 1.0)  # no staircase edges from the rasterisation

    # patches: low fracture steps (full res) and a grey offset (low res)
    h_full = np.zeros((H, W), dtype=np.float32)
    grey_low = np.zeros((hl, wl), dtype=np.float32)
    for xy in sc.patches_xy:
        _fill_polygon(h_full, xy, rng.choice([-1.0, 1.0]) * _u(rng, cfg.patch_step_nm))
        _fill_polygon(grey_low, xy, _u(rng, cfg.patch_grey), 1.0 / f)
        sc.edge_xy.append(xy)
    if sc.patches_xy:
        h_full = _blur(h_full, rng.uniform(1.2, 2.5) / px)
        grey_low = _blur(grey_low, 1.0)

    # intramembrane particles
    xs, ys = [], []
    import shapely

    def scatter(n: int, poly, centre=None, radius=None) -> None:
        if n <= 0:
            return
        if centre is not None:
            rr = radius * np.sqrt(rng.uniform(0, 1, n))
            th = rng.uniform(0, 2 * np.pi, n)
            x, y = centre[0] + rr * np.cos(th), centre[1] + rr * np.sin(th)
        else:
            x0, y0, x1, y1 = poly.bounds if poly is not None else (0, 0, W, sc.Hv)
            x, y = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
        if poly is not None:
            keep = shapely.contains_xy(poly, x, y)
            x, y = x[keep], y[keep]
        xs.append(x)
        ys.append(y)

    um2 = (px / 1000.0) ** 2
    scatter(int(rng.poisson(cfg.imp_density_per_um2 * 0.3 * cfg.area_um2)), None)
    for poly in sc.patch_polys:
        scatter(int(rng.poisson(cfg.imp_density_per_um2 * poly.area * um2)), poly)
        if rng.uniform() < 0.6:
            c = poly.representative_point()
            rad = math.sqrt(poly.area / math.pi) * rng.uniform(0.3, 0.6)
            scatter(int(rng.poisson(cfg.imp_cluster_density_per_um2 * math.pi * rad * rad
                                    * um2)), poly, centre=(c.x, c.y), radius=rad)
            sc.imp_clusters.append((c.x, c.y, rad))
    if xs:
        x, y = np.concatenate(xs), np.concatenate(ys)
        sig = rng.uniform(1.8, 3.8, x.size) / px  # 6-12 nm across
        amp = rng.uniform(1.5, 4.0, x.size)
        # a third are lumpy: a second, smaller bump beside the first
        two = rng.uniform(size=x.size) < 0.35
        ang = rng.uniform(0, 2 * np.pi, int(two.sum()))
        x2 = x[two] + sig[two] * 1.2 * np.cos(ang)
        y2 = y[two] + sig[two] * 1.2 * np.sin(ang)
        h_imp = _bumps((H, W), np.concatenate([x, x2]), np.concatenate([y, y2]),
                       np.concatenate([sig, 0.7 * sig[two]]),
                       np.concatenate([amp, 0.8 * amp[two]]), flat_top=True)
        if not cfg.imp_shadows:
            h_full += h_imp
            h_imp = None
    else:
        h_imp = None
    return h_low, h_full, grey_low, h_imp


def _gold_position(rng, cfg: SynthConfig, sc: _Scene, clusters: list, r_px: float,
                   in_patch: bool | None = None) -> tuple[float, float] | None:
    """One candidate centre (x, y) with the disc inside the image, or None."""
    import shapely

    polys = sc.patch_polys
    if in_patch is None:
        in_patch = bool(polys) and rng.uniform() < cfg.in_patch_fraction
    lo_x, hi_x, lo_y, hi_y = r_px, sc.W - 1 - r_px, r_px, sc.Hv - 1 - r_px
    if hi_x <= lo_x or hi_y <= lo_y:
        return None
    for _ in range(30):
        if in_patch and polys:
            u = rng.uniform()
            if u < cfg.cluster_fraction:
                # gold clusters: join one (or start one, 1 in 4)
                if not clusters or rng.uniform() < 0.25:
                    pos = _gold_position(rng, cfg.model_copy(update={"cluster_fraction": 0.0}),
                                         sc, [], r_px, in_patch=True)
                    if pos is None:
                        continue
                    clusters.append(pos)
                cx, cy = clusters[int(rng.integers(len(clusters)))]
                s = cfg.cluster_sigma_nm / cfg.pixel_size_nm
                x, y = cx + rng.normal(0, s), cy + rng.normal(0, s)
                ok = any(shapely.contains_xy(p, x, y) for p in polys)
            elif sc.imp_clusters and u < cfg.cluster_fraction + 0.5 * (1 - cfg.cluster_fraction):
                cx, cy, rad = sc.imp_clusters[int(rng.integers(len(sc.imp_clusters)))]
                rr, th = rad * math.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
                x, y = cx + rr * math.cos(th), cy + rr * math.sin(th)
                ok = any(shapely.contains_xy(p, x, y) for p in polys)
            else:
                areas = np.array([p.area for p in polys])
                poly = polys[int(rng.choice(len(polys), p=areas / areas.sum()))]
                x0, y0, x1, y1 = poly.bounds
                x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
                ok = bool(shapely.contains_xy(poly, x, y))
        else:
            x, y = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
            ok = not (polys and any(shapely.contains_xy(p, x, y) for p in polys))
        if ok and lo_x <= x <= hi_x and lo_y <= y <= hi_y:
            return float(x), float(y)
    return None


def _dark_bands(cfg: SynthConfig, rng: np.random.Generator, H: int, W: int, f: int
                ) -> np.ndarray:
    """Optical density of heavy platinum bands: soft-edged curved stripes."""
    from PIL import Image, ImageDraw

    px = cfg.pixel_size_nm
    h, w = -(-H // f), -(-W // f)
    out = np.zeros((h, w), np.float32)
    for _ in range(int(rng.poisson(cfg.dark_band_density_per_um2 * cfg.area_um2))):
        width = _u(rng, cfg.dark_band_width_nm) / (px * f)
        xy = _wavy_path(rng, w, h, rng.uniform(0.3, 1.0) * max(w, h))
        canvas = Image.new("F", (w, h), 0.0)
        ImageDraw.Draw(canvas).line([tuple(p) for p in xy], fill=1.0,
                                    width=max(1, int(round(width))))
        band = _blur(np.asarray(canvas, dtype=np.float32), max(0.5, 0.2 * width))
        out += _u(rng, cfg.dark_band_strength) * band
    return _resize_to(out, (H, W))


def _darkest(pt: np.ndarray, quantile: float, step: int = 3) -> np.ndarray:
    """(N, 2) row/column coordinates, on a grid of ``step``, where the platinum is in its
    top ``1 - quantile`` (the darkest replica)."""
    sub = pt[::step, ::step]
    rows, cols = np.nonzero(sub >= np.quantile(sub, quantile))
    return np.column_stack([rows, cols]) * step


def _dark_position(rng: np.random.Generator, dark_yx: np.ndarray | None, r_px: float,
                   W: int, Hv: int) -> tuple[float, float] | None:
    """A centre on the darkest replica with the disc inside the image, or None."""
    if dark_yx is None or not len(dark_yx):
        return None
    for _ in range(30):
        yy, xx = dark_yx[int(rng.integers(len(dark_yx)))] + rng.uniform(-1.5, 1.5, 2)
        if r_px <= xx <= W - 1 - r_px and r_px <= yy <= Hv - 1 - r_px:
            return float(xx), float(yy)
    return None


def generate(config: SynthConfig | None = None, seed: int | np.random.Generator | None = None
             ) -> SynthResult:
    """Make one synthetic FRIL micrograph with its ground truth.

    Parameters
    ----------
    config : SynthConfig, optional
        What to draw (default `SynthConfig()`: 1024 x 1024 px at 0.5587 nm/px).
    seed : int or numpy.random.Generator, optional
        All random choices come from this; the same seed gives the same image.

    Returns
    -------
    SynthResult
    """
    import shapely

    cfg = config or SynthConfig()
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    px = cfg.pixel_size_nm
    H, W = cfg.shape
    bar_rows = _scale_bar_rows(cfg) if cfg.scale_bar else 0
    Hv = H - bar_rows

    # per-image draws
    elev = math.radians(_u(rng, cfg.shadow_elevation_deg))
    azim = math.radians(_u(rng, cfg.shadow_azimuth_deg))
    sdx, sdy = math.cos(azim), math.sin(azim)  # platinum travel direction (x, y)
    se, ce = math.sin(elev), math.cos(elev)
    k_pt = _u(rng, cfg.platinum_contrast)
    bg = _u(rng, cfg.background_grey)
    gamma = _u(rng, cfg.gamma)
    psf = _u(rng, cfg.psf_sigma_nm)
    gold_blur = _u(rng, cfg.gold_blur_nm)
    gold_blur_px = math.sqrt(max(gold_blur ** 2 - psf ** 2, 0.0)) / px
    darkness = _u(rng, cfg.gold_darkness)

    # ------------------------------------------------------------ scene and relief
    frame, patches_xy, patch_polys, region_geom = _plan_patches(cfg, rng, W, Hv, px)
    sc = _Scene(H, W, Hv, px, frame, patches_xy, patch_polys, region_geom, [], [])
    f = max(1, int(round(2.0 / px)))  # low-res cells of ~2 nm
    h_low, h_full, grey_low, h_imp = _relief(cfg, rng, sc, f)

    # ------------------------------------------------------------ platinum shading
    gy, gx = np.gradient(h_low)
    slope = _resize_to((gx * sdx + gy * sdy) / (px * f), (H, W))
    gy, gx = np.gradient(h_full)
    slope += (gx * sdx + gy * sdy) / px  # rise per nm along the platinum travel
    del gx, gy
    # a surface rising along the travel direction faces the source: more platinum
    pt = np.clip(se + ce * slope, 0.0, 3.0)
    del slope
    pt *= 1.0 - _resize_to(_cast_shadow(h_low, sdx, sdy, math.tan(elev), px * f), (H, W))
    if h_imp is not None:
        # IMPs as the replicas show them: a thin platinum cap on the side facing the
        # source (slope capped: a 3-8 nm bump collects little), and behind it a
        # platinum-free cast shadow, the bright crescent that dominates their look
        gy, gx = np.gradient(h_imp)
        s_imp = (gx * sdx + gy * sdy) / px
        del gx, gy
        pt += ce * np.clip(s_imp, -se / ce, IMP_CAP_SLOPE)
        pt *= 1.0 - _imp_shadow(h_imp, sdx, sdy, math.tan(elev), px)
        np.clip(pt, 0.0, 3.0, out=pt)
        del s_imp, h_imp
    od = pt - se
    # shadows are less bright than the platinum law says: the carbon backing and
    # scattered platinum still absorb there
    od = k_pt * np.where(od > 0, od, 0.6 * od)
    od += _resize_to(grey_low, (H, W))
    if cfg.dark_band_density_per_um2 > 0:
        od += _dark_bands(cfg, rng, H, W, f)
    # where gold on the darkest replica goes (before grain: darkness of the replica, not
    # of its texture)
    dark_yx = _darkest(od[:Hv], 0.9) if cfg.dark_gold_fraction > 0 else None
    grain = _grain(rng, (H, W), cfg.grain_period_nm / px)
    grain *= _u(rng, cfg.grain_strength) / max(float(grain[::7, ::7].std()), 1e-9)
    od += grain
    del grain
    img = np.exp(-od)
    img *= bg
    del od

    # ------------------------------------------------------------ gold
    placer = _Placer(cfg.min_gap_nm / px)
    counts = _class_counts(cfg, rng)
    gold_x, gold_y, gold_d, gold_lab = [], [], [], []
    clusters: list[tuple[float, float]] = []
    for cls in sorted(counts, reverse=True):  # large first: the hardest to fit
        n, placed, attempts = counts[cls], 0, 0
        while placed < n and attempts < 100 * n:
            attempts += 1
            d_nm = cfg.apparent_diameter(cls) * max(0.5, 1 + cfg.size_cv * rng.standard_normal())
            r_px = d_nm / 2 / px
            if cfg.dark_gold_fraction > 0 and rng.uniform() < cfg.dark_gold_fraction:
                pos = _dark_position(rng, dark_yx, r_px, W, Hv)
            else:
                pos = _gold_position(rng, cfg, sc, clusters, r_px)
            if pos is None or not placer.fits(pos[0], pos[1], r_px):
                continue
            x, y = pos
            placer.add(x, y, r_px)
            k = GOLD_K_PER_NM * darkness * float(np.exp(rng.normal(0, 0.2))) * px
            _absorb_stamp(img, x, y, d_nm / px, k, gold_blur_px, 1.0 + abs(rng.normal(0, 0.04)),
                          rng.uniform(0, np.pi))
            inside = not patch_polys or bool(shapely.intersects_xy(region_geom, x, y))
            gold_x.append(x)
            gold_y.append(y)
            gold_d.append(cls)
            gold_lab.append(inside or cfg.label_outside)
            placed += 1
        if placed < n:
            logger.warning("placed only %d of %d particles of %g nm: the image is too full",
                           placed, n, cls)

    # ------------------------------------------------------------ hard negatives
    neg = _hard_negatives(cfg, rng, sc, img, pt, se, placer, darkness, gold_blur_px)
    del pt

    # ------------------------------------------------------------ optics and detector
    if psf > 0:
        img = ndi.gaussian_filter(img, psf / px, truncate=3.0)
    np.clip(img, 0, None, out=img)
    if gamma != 1.0:
        img = 255.0 * (img / 255.0) ** gamma
        img *= bg / (255.0 * (bg / 255.0) ** gamma)  # keep the background level
    noise = rng.standard_normal((H, W), dtype=np.float32)
    noise *= np.sqrt(_u(rng, cfg.noise_gain) * img + _u(rng, cfg.read_noise) ** 2)
    img += noise
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if bar_rows:
        _draw_scale_bar(out, px, bar_rows)
    q = cfg.jpeg_quality
    if q is not None:
        out = _jpeg(out, q if isinstance(q, int) else int(rng.integers(q[0], q[1] + 1)))

    lab = np.asarray(gold_lab, dtype=bool)
    particles = ParticleTable(np.asarray(gold_x, dtype=float)[lab],
                              np.asarray(gold_y, dtype=float)[lab],
                              np.asarray(gold_d, dtype=float)[lab])
    particles = particles[np.lexsort((particles.x, particles.y))]
    region = Region(geometry=region_geom, name="synthetic membrane patches")
    return SynthResult(out, particles, region, px, neg, seed if isinstance(seed, int) else None)


def _hard_negatives(cfg: SynthConfig, rng, sc: _Scene, img: np.ndarray, pt: np.ndarray,
                    se: float, placer: _Placer, darkness: float, gold_blur_px: float
                    ) -> ParticleTable:
    """Draw the non-gold dark spots into ``img``; return where they are."""
    px = sc.px
    nx, ny, nd = [], [], []
    k_gold = GOLD_K_PER_NM * darkness * px
    n_blob = int(rng.poisson(cfg.dark_blob_density_per_um2 * cfg.area_um2))
    for _ in range(n_blob):
        d_nm = rng.uniform(4.0, 15.0)
        faint = rng.uniform() < 0.75
        aspect = rng.uniform(1.0, 1.25) if faint else rng.uniform(1.3, 2.0)
        rel = rng.uniform(0.15, 0.45) if faint else rng.uniform(0.3, 0.6)
        r_px = d_nm * aspect / 2 / px
        pos = _gold_position(rng, cfg.model_copy(update={"cluster_fraction": 0.0}), sc, [],
                             r_px, in_patch=bool(sc.patch_polys) and rng.uniform() < 0.5)
        if pos is None or not placer.fits(pos[0], pos[1], r_px):
            continue
        placer.add(pos[0], pos[1], r_px)
        subs = tuple((rng.normal(0, 0.25 * d_nm / px), rng.normal(0, 0.25 * d_nm / px),
                      d_nm / px * rng.uniform(0.4, 0.8))
                     for _ in range(int(rng.integers(0, 3))))
        _absorb_stamp(img, pos[0], pos[1], d_nm / px, k_gold * rel,
                      gold_blur_px * rng.uniform(1.0, 2.0), aspect, rng.uniform(0, np.pi), subs)
        nx.append(pos[0])
        ny.append(pos[1])
        nd.append(d_nm)
    # gold-like dark spots where platinum piled up along fracture edges
    n_edge = int(rng.poisson(cfg.edge_artefact_density_per_um2 * cfg.area_um2))
    if n_edge and sc.edge_xy:
        pts = np.concatenate(sc.edge_xy, axis=0)
        pts = pts[(pts[:, 0] >= 0) & (pts[:, 0] < sc.W) & (pts[:, 1] >= 0)
                  & (pts[:, 1] < sc.Hv)]
        if len(pts):
            cand = pts[rng.integers(0, len(pts), 30 * n_edge)] + rng.normal(0, 3.0 / px,
                                                                             (30 * n_edge, 2))
            ci = np.clip(np.rint(cand).astype(np.int64), 0, [sc.W - 1, sc.Hv - 1])
            cand = cand[pt[ci[:, 1], ci[:, 0]] > se * 1.25]
            made = 0
            for x, y in cand:
                if made >= n_edge:
                    break
                d_nm = rng.uniform(5.0, 14.0)
                aspect = rng.uniform(1.0, 1.7)
                r_px = d_nm * aspect / 2 / px
                if not (r_px <= x <= sc.W - 1 - r_px and r_px <= y <= sc.Hv - 1 - r_px):
                    continue
                if not placer.fits(x, y, r_px):
                    continue
                placer.add(x, y, r_px)
                _absorb_stamp(img, x, y, d_nm / px, k_gold * rng.uniform(0.45, 0.9),
                              gold_blur_px * rng.uniform(1.1, 1.8), aspect,
                              rng.uniform(0, np.pi))
                nx.append(float(x))
                ny.append(float(y))
                nd.append(d_nm)
                made += 1
    return ParticleTable(np.asarray(nx, dtype=float), np.asarray(ny, dtype=float),
                         np.asarray(nd, dtype=float), score=np.zeros(len(nx)))


def _grain(rng: np.random.Generator, shape: tuple[int, int], period_px: float) -> np.ndarray:
    """Correlated noise whose power is flat up to ``1 / period_px`` cycles per pixel and
    falls as a third-order Butterworth filter above (the real replica's spectrum)."""
    import scipy.fft

    h, w = shape
    fy = np.fft.fftfreq(h).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(w).astype(np.float32)[None, :]
    fc2 = np.float32(1.0 / period_px) ** 2
    gain = (1.0 / np.sqrt(1.0 + ((fy * fy + fx * fx) / fc2) ** 3)).astype(np.float32)
    spec = np.empty((h, w // 2 + 1), dtype=np.complex64)
    spec.real = rng.standard_normal(spec.shape, dtype=np.float32) * gain
    spec.imag = rng.standard_normal(spec.shape, dtype=np.float32) * gain
    return scipy.fft.irfft2(spec, s=(h, w), workers=1, overwrite_x=True).astype(np.float32)


#: Largest IMP slope (rise per nm along the platinum travel) that collects platinum
IMP_CAP_SLOPE = 0.3


def _imp_shadow(h: np.ndarray, sdx: float, sdy: float, tan_e: float, px: float
                ) -> np.ndarray:
    """Fraction (0-1) of each pixel in the cast shadow of the IMPs ``h`` (nm): points
    lower than the grazing ray from upstream IMP points, up to the tallest IMP's
    shadow length."""
    reach = int(np.ceil(float(h.max()) / tan_e / px)) + 1
    depth = np.zeros_like(h)
    for k in range(1, reach + 1):
        up = ndi.shift(h, (k * sdy, k * sdx), order=1, mode="constant", cval=0.0)
        np.maximum(depth, up - k * px * tan_e - h, out=depth)
    # soft-edged: a bump's shadow is an elongated blot, not a hard wedge
    return ndi.gaussian_filter(np.clip(depth / 0.5, 0.0, 1.0), 0.8 / px)


def _cast_shadow(h_low: np.ndarray, sdx: float, sdy: float, tan_e: float,
                 cell_nm: float) -> np.ndarray:
    """Fraction (0-1) of each low-res cell in the geometric shadow of upstream relief.

    A point is shadowed when some point upstream (against the platinum travel) is higher
    than the ray through it: ``max_{x'<x} (h(x') + x' tan e) > h(x) + x tan e``.
    """
    angle = math.degrees(math.atan2(sdy, sdx))
    # the surface is taken to continue beyond the image as its edge values
    rot = ndi.rotate(h_low, angle, reshape=True, order=1, mode="nearest")
    xs = np.arange(rot.shape[1], dtype=np.float32) * cell_nm * tan_e
    u = rot + xs[None, :]
    depth = np.maximum.accumulate(u, axis=1) - u  # nm below the grazing ray
    # shallow dips (undulation) would cast long thin streaks: only deep shadows count
    soft = ndi.gaussian_filter(np.clip((depth - 1.0) / 3.0, 0.0, 1.0), 1.5)
    back = ndi.rotate(soft, -angle, reshape=True, order=1, mode="constant", cval=0.0)
    r0 = (back.shape[0] - h_low.shape[0]) // 2
    c0 = (back.shape[1] - h_low.shape[1]) // 2
    out = back[r0:r0 + h_low.shape[0], c0:c0 + h_low.shape[1]]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("L")).copy()


def _scale_bar_rows(cfg: SynthConfig) -> int:
    return max(8, int(round(cfg.shape[0] * 67 / 2115)))


def _draw_scale_bar(img: np.ndarray, px: float, rows: int) -> None:
    """A black band with a white scale bar (200 nm, or what fits) and its label."""
    from PIL import Image, ImageDraw

    H, W = img.shape
    img[H - rows:] = 0
    length_nm = 200.0
    while length_nm / px > 0.4 * W and length_nm > 1:
        length_nm /= 2
    bar = int(round(length_nm / px))
    band = Image.fromarray(img[H - rows:])
    draw = ImageDraw.Draw(band)
    x0 = int(0.36 * W)
    y = rows // 2
    t = max(1, rows // 12)
    tick = max(1, rows // 5)
    draw.line([(x0, y), (x0 + bar, y)], fill=255, width=t)
    draw.line([(x0, y - tick), (x0, y + tick)], fill=255, width=t)
    draw.line([(x0 + bar, y - tick), (x0 + bar, y + tick)], fill=255, width=t)
    draw.text((x0 + bar + rows // 3, y - 5), f"{length_nm:g} nm", fill=255)
    img[H - rows:] = np.asarray(band)


# ============================================================================ output
def write_example(outdir: str | Path, stem: str, result: SynthResult,
                  overwrite: bool = False) -> list[Path]:
    """Write ``<stem>.tif`` (ImageJ TIFF calibrated in nm), ``<stem>.csv`` (the truth) and
    the region: ``<stem>_region.roi`` when `golddigger.io.rois` can write ImageJ ROIs,
    else ``<stem>_region.tif`` (a 0/255 mask).

    Returns the written paths. Raises `GoldDiggerError` if one exists and ``overwrite``
    is False; nothing is written then.
    """
    from golddigger.io.images import write_tiff
    from golddigger.io.safe import atomic_write_bytes, check_writable

    outdir = Path(outdir)
    roi_writer = _roi_writer()
    paths = example_paths(outdir, stem)
    tif, csv, reg = paths
    for p in paths:
        check_writable(p, overwrite)
    outdir.mkdir(parents=True, exist_ok=True)
    write_tiff(tif, result.image, result.pixel_size_nm)
    result.particles.to_csv(csv)
    if roi_writer is not None:
        data = roi_writer(result.region, f"{stem} membrane")
        atomic_write_bytes(reg, data if isinstance(data, (bytes, bytearray)) else data.tobytes())
    else:
        mask = result.region.to_mask(result.image.shape).astype(np.uint8) * 255
        write_tiff(reg, mask, result.pixel_size_nm)
    logger.info("wrote %s, %s, %s (%d particles)", tif, csv, reg, len(result.particles))
    return list(paths)


def example_paths(outdir: str | Path, stem: str) -> tuple[Path, Path, Path]:
    """The (image, truth CSV, region) paths `write_example` writes."""
    outdir = Path(outdir)
    suffix = "_region.roi" if _roi_writer() is not None else "_region.tif"
    return outdir / f"{stem}.tif", outdir / f"{stem}.csv", outdir / f"{stem}{suffix}"


def _roi_writer():
    """`golddigger.io.rois.region_to_imagej_roi` when it exists, else None."""
    try:
        from golddigger.io import rois
    except ImportError:
        return None
    fn = getattr(rois, "region_to_imagej_roi", None)
    if fn is None:
        return None

    def write(region: Region, name: str):
        try:
            return fn(region, name=name)
        except TypeError:
            return fn(region)

    return write
