"""Size classes measured from the image at each detection.

The generator's class maps find particles well, but the score of a rare class's map is
a poor judge of size: a model that has seen a few dozen 12 nm particles readily calls a
crisp 6 nm particle "12 nm". Size is also something the image shows directly: a dark
disc of radius ``r`` gives the strongest scale-normalised Laplacian-of-Gaussian response
at ``sigma = r / sqrt(2)``. `measure_classes` compares that response at each class's
scale around each detection and picks the strongest, with no tuned parameter.

Only small windows around detections are read (mirrored at the image edges), so the cost
grows with the number of particles, not the image size, and tiling cannot change the
result.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

__all__ = ["measure_classes", "measure_diameters", "measure_particles", "SIZING_MODES",
           "SIZE_STEP"]

logger = logging.getLogger(__name__)

SIZING_MODES = ("maps", "image")


def measure_classes(plane: np.ndarray, x: np.ndarray, y: np.ndarray,
                    diameters_nm: list[float] | tuple[float, ...], pixel_size_nm: float,
                    search_nm: float = 1.5) -> np.ndarray:
    """The class (diameter) whose dark-disc response is strongest at each position.

    Parameters
    ----------
    plane : ndarray
        2D grey image, gold dark on a lighter background (any dtype; memmaps are read
        window by window).
    x, y : array
        Particle centres in pixels of ``plane`` (x = column, y = row).
    diameters_nm : sequence of float
        Candidate diameters (the model's classes).
    pixel_size_nm : float
        nm per pixel of ``plane``.
    search_nm : float
        The response is taken as the maximum within this distance of the centre (the
        detection's centre and the response's peak need not coincide exactly).

    Returns
    -------
    ndarray of float
        One diameter from ``diameters_nm`` per position.
    """
    return measure_particles(plane, x, y, diameters_nm, pixel_size_nm, search_nm)[0]


def measure_particles(plane: np.ndarray, x: np.ndarray, y: np.ndarray,
                      diameters_nm: list[float] | tuple[float, ...], pixel_size_nm: float,
                      search_nm: float = 1.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Size class and refined centre of each particle, measured from the image.

    As `measure_classes`; the centre is moved to the sub-pixel peak of the winning
    class's response within ``search_nm`` of the given one (a parabola through the peak
    and its neighbours on each axis), and kept inside the image.

    Returns
    -------
    diameter_nm, x, y : arrays
    """
    plane = np.asarray(plane) if not isinstance(plane, np.memmap) else plane
    if plane.ndim != 2:
        raise ValueError(f"expected a 2D plane, got shape {plane.shape}")
    if pixel_size_nm <= 0:
        raise ValueError(f"pixel size must be positive, got {pixel_size_nm}")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in shape: {x.shape} vs {y.shape}")
    diameters = np.asarray(sorted(float(d) for d in diameters_nm))
    if diameters.size == 0:
        raise ValueError("no candidate diameters")
    x, y = x.ravel(), y.ravel()
    if x.size == 0:
        return np.full(0, diameters[0]), x.copy(), y.copy()
    cores = _scale_responses(plane, x, y, diameters, pixel_size_nm, search_nm)
    side = cores.shape[-1]
    search = (side - 1) // 2
    cx = np.round(x).astype(np.int64)
    cy = np.round(y).astype(np.int64)
    h, w = plane.shape
    flat = cores.reshape(diameters.size, x.size, -1)
    best = np.argmax(flat.max(axis=2), axis=0)
    n = np.arange(x.size)
    win_core = cores[best, n]  # (N, side, side)
    peak = win_core.reshape(x.size, -1).argmax(axis=1)
    py, px = np.divmod(peak, side)
    dy = _parabola(win_core, py, px, axis=0)
    dx = _parabola(win_core, py, px, axis=1)
    return (diameters[best], np.clip(cx + px - search + dx, 0, w - 1),
            np.clip(cy + py - search + dy, 0, h - 1))


#: Ratio between neighbouring diameters tried by `measure_diameters`
SIZE_STEP = 1.06


def measure_diameters(plane: np.ndarray, x: np.ndarray, y: np.ndarray, pixel_size_nm: float,
                      min_nm: float = 3.0, max_nm: float = 40.0, search_nm: float = 1.5,
                      sphere: bool = True) -> np.ndarray:
    """Each particle's diameter (nm), measured on the image, on a continuous scale.

    The dark-disc (scale-normalised LoG) response of `measure_particles` is taken at
    diameters from ``min_nm`` to ``max_nm`` in steps of `SIZE_STEP`; the diameter is the
    strongest one, refined by a parabola through it and its neighbours (in log
    diameter). For an ideal disc the strongest response is at its diameter; gold is a
    blurred absorbing sphere, which reads smaller when large (about 6 % at 15-25 nm)
    and larger when small (blur): with ``sphere`` (default) the reading is converted to
    the diameter of the sphere that reads so (`SPHERE_K_PER_NM`, `SPHERE_BLUR_NM`,
    computed once per pixel size).

    Returns
    -------
    ndarray of float, one diameter per position (``min_nm`` or ``max_nm`` when the
    response is strongest at an end of the range).
    """
    plane = np.asarray(plane) if not isinstance(plane, np.memmap) else plane
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if not 0 < min_nm < max_nm:
        raise ValueError(f"need 0 < min_nm < max_nm, got {min_nm}, {max_nm}")
    if x.size == 0:
        return np.empty(0)
    n = int(np.ceil(np.log(max_nm / min_nm) / np.log(SIZE_STEP))) + 1
    logd = np.linspace(np.log(min_nm), np.log(max_nm), n)
    cores = _scale_responses(plane, x, y, np.exp(logd), pixel_size_nm, search_nm)
    resp = cores.reshape(n, x.size, -1).max(axis=2)  # (S, N)
    best = resp.argmax(axis=0)
    idx = np.arange(x.size)
    inner = (best > 0) & (best < n - 1)
    lo, hi = np.clip(best - 1, 0, n - 1), np.clip(best + 1, 0, n - 1)
    a, b, c = resp[lo, idx], resp[best, idx], resp[hi, idx]
    denom = a - 2 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(inner & (denom < 0), 0.5 * (a - c) / denom, 0.0)
    step = logd[1] - logd[0]
    raw = np.exp(logd[best] + np.clip(off, -0.5, 0.5) * step)
    if not sphere:
        return raw
    true_d, read_d = _sphere_table(round(float(pixel_size_nm), 4))
    return _invert(raw, true_d, read_d)


#: How gold looks, for `measure_diameters`'s correction: an absorbing sphere
#: (transmission ``exp(-k t)``, ``k`` as fitted by `golddigger.synth` to the real
#: replicas) blurred by a Gaussian of this sigma (nm, the middle of synth's range)
SPHERE_K_PER_NM = 0.153
SPHERE_BLUR_NM = 1.3


def _invert(raw: np.ndarray, true_d: np.ndarray, read_d: np.ndarray) -> np.ndarray:
    """True diameters whose sphere reads ``raw`` (linear in between; beyond the table,
    the nearest end's ratio)."""
    out = np.interp(raw, read_d, true_d)
    lo, hi = raw < read_d[0], raw > read_d[-1]
    out[lo] = raw[lo] * true_d[0] / read_d[0]
    out[hi] = raw[hi] * true_d[-1] / read_d[-1]
    return out


@functools.lru_cache(maxsize=16)
def _sphere_table(pixel_size_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """What `measure_diameters` (uncorrected) reads for ideal blurred absorbing
    spheres of diameters 3..48 nm at ``pixel_size_nm``: (true, read), read increasing."""
    from scipy import ndimage as ndi

    true_d = np.exp(np.linspace(np.log(3.0), np.log(48.0), 25))
    read = np.empty_like(true_d)
    for i, d in enumerate(true_d):
        half = int(np.ceil((d + 8 * SPHERE_BLUR_NM) / pixel_size_nm))
        yy, xx = np.mgrid[-half:half + 1, -half:half + 1] * pixel_size_nm
        t = 2 * np.sqrt(np.clip((d / 2) ** 2 - (xx**2 + yy**2), 0, None))
        img = ndi.gaussian_filter(np.exp(-SPHERE_K_PER_NM * t),
                                  SPHERE_BLUR_NM / pixel_size_nm)
        read[i] = measure_diameters(img, np.array([float(half)]), np.array([float(half)]),
                                    pixel_size_nm, 0.6 * d, 1.7 * d, sphere=False)[0]
    read = np.maximum.accumulate(read)  # monotone for the inversion
    return true_d, read


def _scale_responses(plane: np.ndarray, x: np.ndarray, y: np.ndarray, diameters: np.ndarray,
                     pixel_size_nm: float, search_nm: float) -> np.ndarray:
    """Scale-normalised dark-disc (LoG) responses ``(S, N, side, side)``: one per
    diameter and position, on the ``side`` x ``side`` core around each position."""
    sigmas = diameters / 2 / np.sqrt(2) / pixel_size_nm
    search = max(1, int(round(search_nm / pixel_size_nm)))
    cx = np.round(x).astype(np.int64)
    cy = np.round(y).astype(np.int64)
    h, w = plane.shape
    side = 2 * search + 1
    cores = np.empty((sigmas.size, x.size, side, side))
    for k, sigma in enumerate(sigmas):
        # windows around every detection, (N, W, W), mirrored at the image edges; the
        # separable LoG is evaluated only on the (2 search + 1)^2 core of each window, as
        # two small matrix products per window
        reach = int(np.ceil(_TRUNCATE * sigma)) + search
        offsets = np.arange(-reach, reach + 1)
        rows = _reflect(cy[:, None] + offsets, h)
        cols = _reflect(cx[:, None] + offsets, w)
        g0, g2 = _kernels(sigma, reach, search)
        for start in range(0, x.size, _CHUNK):
            sl = slice(start, start + _CHUNK)
            win = np.asarray(plane[rows[sl, :, None], cols[sl, None, :]], dtype=np.float64)
            # gold is dark: -sigma^2 LoG of the inverted image = sigma^2 LoG(image)
            cores[k, sl] = sigma**2 * (g2 @ win @ g0.T + g0 @ win @ g2.T)
    return cores


def _parabola(core: np.ndarray, py: np.ndarray, px: np.ndarray, axis: int) -> np.ndarray:
    """Sub-pixel offset of each core's peak along ``axis`` (0 at the core's border)."""
    side = core.shape[1]
    n = np.arange(core.shape[0])
    i = py if axis == 0 else px
    inside = (i > 0) & (i < side - 1)
    lo, hi = np.clip(i - 1, 0, side - 1), np.clip(i + 1, 0, side - 1)
    if axis == 0:
        a, b, c = core[n, lo, px], core[n, py, px], core[n, hi, px]
    else:
        a, b, c = core[n, py, lo], core[n, py, px], core[n, py, hi]
    denom = a - 2 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(inside & (denom < 0), 0.5 * (a - c) / denom, 0.0)
    return np.clip(off, -0.5, 0.5)


_TRUNCATE = 3.5  # Gaussian kernels are cut at this many sigmas
_CHUNK = 512  # windows per batch (bounds memory for many detections)


def _kernels(sigma: float, reach: int, search: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of shifted 1D Gaussian (``g0``) and second-derivative (``g2``) kernels: row
    ``i`` evaluates the filter at core offset ``i - search`` of a ``2 reach + 1`` window."""
    t = np.arange(-reach, reach + 1)[None, :] - np.arange(-search, search + 1)[:, None]
    g = np.exp(-0.5 * (t / sigma) ** 2)
    g[np.abs(t) > _TRUNCATE * sigma] = 0.0
    g0 = g / g.sum(axis=1, keepdims=True)
    g2 = g0 * (t**2 / sigma**4 - 1 / sigma**2)
    # zero sum: a flat background gives no response
    support = g0 > 0
    g2 -= support * (g2.sum(axis=1, keepdims=True) / support.sum(axis=1, keepdims=True))
    return g0, g2


def _reflect(index: np.ndarray, n: int) -> np.ndarray:
    """Mirror indices into ``[0, n)`` (as ``np.pad(mode="symmetric")``)."""
    if n == 1:
        return np.zeros_like(index)
    period = 2 * n
    index = np.mod(index, period)
    return np.where(index < n, index, period - 1 - index)
