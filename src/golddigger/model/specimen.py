"""Which pixels of a micrograph are specimen: not a flat padded canvas.

Stitched montages, rotated or registered images and masked regions put the micrograph on
a constant canvas (black corners, grey padding, saturated areas). A canvas is not
specimen: it must not count in the normalisation's median and spread, nor hold
detections, nor count in the area that densities are divided by.

A micrograph's own pixels are never constant over a block of many pixels (shot noise),
while a canvas is exactly constant, or nearly: an export's dithering, a camera's dark
level or a registration's interpolation leave it a grey level or two of noise.
`specimen_mask` takes as canvas the blocks of ``block`` x ``block`` pixels that are

* exactly constant (any value: black, white or grey padding), or
* nearly flat at an end of the grey scale: a range under a fifth of what the image's
  textured blocks typically span (`NEAR_FLAT_FRACTION` of their 95th percentile), and
  wholly darker than the textured blocks' median lowest value, or brighter than their
  median highest, by more than that percentile (a smooth area of a denoised micrograph
  is mid-grey: it stays specimen);

keeps the connected groups that cover at least ``min_area_px`` (a saturated gold particle
or a few clipped pixels are far smaller), and extends them, pixel by pixel, over the
neighbouring pixels that hold one of the canvas's values (the block grid rarely aligns
with the canvas's edge). Non-finite pixels (NaN, inf) are never specimen. The cost is a
sparse look at every block (five pixels each) and one pass over the blocks that look flat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["CanvasBlocks", "canvas_blocks", "specimen_window", "specimen_mask",
           "excluded_near", "fill_canvas", "fill_context", "MIN_CANVAS_AREA_NM2"]

#: Smallest flat area taken as canvas, in nm^2 (50 x 50 nm): over 3 times the area of
#: the largest gold (30 nm), so a saturated particle is never mistaken for canvas.
MIN_CANVAS_AREA_NM2 = 2500.0
#: A nearly flat block spans at most this fraction of the 95th percentile of the textured
#: blocks' ranges (real FRIL blocks of 8 x 8 px: 1st percentile 19-31 grey levels, 95th
#: ~60-80; a canvas dithered by a grey level or two: 1-4).
NEAR_FLAT_FRACTION = 0.2
#: Blocks whose range is looked at to size "nearly flat" (a sample: rows of blocks).
_SAMPLE_BLOCKS = 1 << 20


@dataclass(frozen=True)
class CanvasBlocks:
    """The canvas of a plane at block resolution (`canvas_blocks`): enough to tell any
    window of the plane its specimen pixels (`specimen_window`) without the whole mask.

    Attributes
    ----------
    shape : (H, W)
        The plane's shape.
    block : int
        Block side (pixels).
    core : (H // block, W // block) bool array
        Blocks of the canvas (constant, in a group of at least the smallest canvas).
    values : array
        The canvas's values (those of its exactly constant blocks).
    non_finite : bool
        The plane holds NaN or inf pixels (never specimen).
    near_range : (lo, hi) or None
        The grey levels of its nearly flat blocks (None: it has none).
    """

    shape: tuple[int, int]
    block: int
    core: np.ndarray
    values: np.ndarray
    non_finite: bool
    near_range: tuple[float, float] | None = None

    def is_canvas_value(self, v: np.ndarray) -> np.ndarray:
        """True for values the canvas holds (at its edge, a pixel with one of them joins
        it)."""
        out = np.isin(v, self.values)
        if self.near_range is not None:
            out |= (v >= self.near_range[0]) & (v <= self.near_range[1])
        return out

    @property
    def everything_specimen(self) -> bool:
        """True when no pixel is canvas (`specimen_mask` returns None)."""
        return not self.non_finite and not self.core.any()


def canvas_blocks(plane: np.ndarray, pixel_size_nm: float | None = None, block: int = 8,
                  min_area_px: int | None = None, strip_px: int = 1 << 24) -> CanvasBlocks:
    """The canvas of ``plane`` at block resolution (see `specimen_mask` for the rule),
    read in strips of rows (a memory map is never read whole)."""
    a = plane
    if a.ndim != 2:
        raise ValueError(f"expected a 2D plane, got shape {a.shape}")
    if min_area_px is None:
        min_area_px = 1024
        if pixel_size_nm:
            min_area_px = max(min_area_px, int(MIN_CANVAS_AREA_NM2 / pixel_size_nm**2))
    h, w = a.shape
    hb, wb = h // block, w // block
    floating = np.issubdtype(a.dtype, np.floating)
    tol, dark, bright = _near_flat_rule(a, block)
    non_finite = False
    flat = np.zeros((hb, wb), dtype=bool)   # exactly constant
    near = np.zeros((hb, wb), dtype=bool)   # nearly flat, at an end of the grey scale
    flat_values, near_lo, near_hi = [], [], []
    rows = max(1, strip_px // max(1, w * block)) * block  # whole blocks per strip
    for r0 in range(0, h, rows):
        strip = np.asarray(a[r0:min(h, r0 + rows)])
        if floating and not non_finite:
            non_finite = not np.isfinite(strip).all()
        b0, b1 = r0 // block, min(hb, (r0 + strip.shape[0]) // block)
        if b1 <= b0 or not wb:
            continue
        blocks = strip[:(b1 - b0) * block, :wb * block].reshape(b1 - b0, block, wb, block)
        # candidates first (five pixels within `tol`: rare in a micrograph), then every
        # pixel of the candidates only
        lo, hi = _probe_range(blocks)
        f = _span(lo, hi) <= tol  # (in float: an int16 block's span can overflow)
        if floating:  # NaN blocks compare unequal; they are excluded anyway
            f &= np.isfinite(lo) & np.isfinite(hi)
        bi, bj = np.nonzero(f)
        g = np.zeros_like(f)
        if bi.size:
            cand = blocks[bi, :, bj, :]  # (n, block, block)
            cmin, cmax = cand.min(axis=(1, 2)), cand.max(axis=(1, 2))
            exact = cmin == cmax
            f[bi, bj] = exact
            if tol > 0:
                ok = ~exact & (_span(cmin, cmax) <= tol) & ((cmax < dark) | (cmin > bright))
                g[bi[ok], bj[ok]] = True
                near_lo.append(cmin[ok])
                near_hi.append(cmax[ok])
        flat[b0:b1] = f
        near[b0:b1] = g
        flat_values.append(blocks[:, 0, :, 0][f])
    core = np.zeros((hb, wb), dtype=bool)
    values = np.empty(0, dtype=a.dtype)
    near_range = None
    either = flat | near
    if either.any():
        labels, n = ndi.label(either)
        sizes = np.bincount(labels.ravel(), minlength=n + 1) * block * block
        big = sizes >= min_area_px
        big[0] = False
        core = big[labels]
        if core.any():
            # the flat blocks' values in row-major order, as np.nonzero(flat) lists them
            values = np.unique(np.concatenate(flat_values)[core[flat]])
            if near.any() and core[near].any():
                keep = core[near]
                near_range = (float(np.concatenate(near_lo)[keep].min()),
                              float(np.concatenate(near_hi)[keep].max()))
    return CanvasBlocks((h, w), block, core, values, bool(non_finite), near_range)


def _span(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return hi.astype(np.float64) - lo


def _probe_range(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest of five pixels (corners and centre) of each block of a
    ``(rows, block, cols, block)`` view."""
    b = blocks.shape[1]
    probes = [blocks[:, 0, :, 0], blocks[:, 0, :, -1], blocks[:, -1, :, 0],
              blocks[:, -1, :, -1], blocks[:, b // 2, :, b // 2]]
    return np.minimum.reduce(probes), np.maximum.reduce(probes)


def _near_flat_rule(a: np.ndarray, block: int) -> tuple[float, float, float]:
    """``(tol, dark, bright)``: a block spanning at most ``tol`` grey levels and below
    ``dark`` or above ``bright`` is nearly flat canvas (see the module's notes); sized on
    a sample of rows of blocks (a memory map is read only there). ``tol`` 0: exactly
    constant blocks only (too few textured blocks to tell)."""
    h, w = a.shape
    hb, wb = h // block, w // block
    if not hb or not wb:
        return 0.0, -np.inf, np.inf
    step = max(1, (hb * wb) // _SAMPLE_BLOCKS)
    lows, highs = [], []
    for i in range(0, hb, step):
        rows = np.asarray(a[i * block:(i + 1) * block, :wb * block])
        lo, hi = _probe_range(rows.reshape(1, block, wb, block))
        lows.append(lo.ravel())
        highs.append(hi.ravel())
    lo = np.concatenate(lows).astype(np.float64)
    hi = np.concatenate(highs).astype(np.float64)
    ok = np.isfinite(lo) & np.isfinite(hi)
    span = hi[ok] - lo[ok]
    textured = span > 0
    if np.count_nonzero(textured) < 64:
        return 0.0, -np.inf, np.inf
    typical = float(np.percentile(span[textured], 95))
    tol = NEAR_FLAT_FRACTION * typical
    rich = span > tol  # the specimen's blocks (and some astride a canvas's edge)
    if np.count_nonzero(rich) < 64:
        return 0.0, -np.inf, np.inf
    # the ends of the specimen's grey scale: its middle (medians: blocks astride a
    # canvas's edge may be many on a small specimen) and what a block spans
    return (tol, float(np.median(lo[ok][rich])) - typical,
            float(np.median(hi[ok][rich])) + typical)


def specimen_window(plane: np.ndarray, blocks: CanvasBlocks, r0: int, r1: int, c0: int,
                    c1: int) -> np.ndarray:
    """True where ``plane[r0:r1, c0:c1]`` is specimen: that window of the whole plane's
    `specimen_mask` (all True where it is None), reading only the window."""
    win = np.asarray(plane[r0:r1, c0:c1])
    canvas = np.zeros(win.shape, dtype=bool)
    hb, wb = blocks.core.shape
    b = blocks.block
    if blocks.core.any() and win.size:
        bi = np.arange(r0, r1) // b
        bj = np.arange(c0, c1) // b
        inr, inc = bi < hb, bj < wb
        canvas[np.ix_(inr, inc)] = blocks.core[np.ix_(bi[inr], bj[inc])]
        # the canvas's edge within partial blocks (and the bottom/right remainder):
        # pixels holding a canvas value within a block of the core (blocks past the
        # last whole one take its neighbourhood)
        cbi, cbj = np.minimum(bi, hb - 1), np.minimum(bj, wb - 1)
        i0, i1 = max(0, int(cbi.min()) - 1), min(hb, int(cbi.max()) + 2)
        j0, j1 = max(0, int(cbj.min()) - 1), min(wb, int(cbj.max()) + 2)
        near = ndi.binary_dilation(blocks.core[i0:i1, j0:j1], iterations=1)
        ring = near[np.ix_(cbi - i0, cbj - j0)] & ~canvas
        rr, cc = np.nonzero(ring)
        canvas[rr, cc] = blocks.is_canvas_value(win[rr, cc])
    if blocks.non_finite:
        canvas |= ~np.isfinite(win)
    return ~canvas


def specimen_mask(plane: np.ndarray, pixel_size_nm: float | None = None, block: int = 8,
                  min_area_px: int | None = None) -> np.ndarray | None:
    """True where ``plane`` is specimen; None when all of it is (the common case).

    Parameters
    ----------
    plane : (H, W) array
        A grey image, any dtype.
    pixel_size_nm : float, optional
        nm per pixel, to size the smallest canvas (`MIN_CANVAS_AREA_NM2`).
    block : int
        Side of the blocks tested for constancy (pixels).
    min_area_px : int, optional
        Smallest canvas in pixels (default: `MIN_CANVAS_AREA_NM2` at ``pixel_size_nm``,
        and at least 1024 px).

    Returns
    -------
    (H, W) bool array or None

    Notes
    -----
    Computed as `canvas_blocks` then `specimen_window` over the whole plane; detection
    in chunks computes the same mask window by window.
    """
    a = np.asarray(plane) if not isinstance(plane, np.memmap) else plane
    if a.ndim != 2:
        raise ValueError(f"expected a 2D plane, got shape {a.shape}")
    blocks = canvas_blocks(a, pixel_size_nm, block, min_area_px)
    if blocks.everything_specimen:
        return None
    mask = specimen_window(a, blocks, 0, a.shape[0], 0, a.shape[1])
    return None if mask.all() else mask


def _upsample(mask: np.ndarray, block: int) -> np.ndarray:
    return np.repeat(np.repeat(mask, block, axis=0), block, axis=1)


def excluded_near(specimen: np.ndarray | None, x: np.ndarray, y: np.ndarray,
                  margin_px: float) -> np.ndarray:
    """True for points ``(x, y)`` (pixels) outside the specimen or within ``margin_px``
    of a non-specimen pixel."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if specimen is None or x.size == 0:
        return np.zeros(x.shape, dtype=bool)
    # distance from each point's pixel to the nearest non-specimen pixel, read in a
    # window around the point only (the mask can be large and points are few)
    h, w = specimen.shape
    m = int(np.ceil(margin_px))
    cx = np.clip(np.rint(x).astype(np.int64), 0, w - 1)
    cy = np.clip(np.rint(y).astype(np.int64), 0, h - 1)
    offs = np.arange(-m, m + 1)
    dy, dx = np.meshgrid(offs, offs, indexing="ij")
    inside = (dy**2 + dx**2) <= margin_px**2
    dy, dx = dy[inside], dx[inside]
    rows = np.clip(cy[:, None] + dy[None, :], 0, h - 1)
    cols = np.clip(cx[:, None] + dx[None, :], 0, w - 1)
    return ~specimen[rows, cols].all(axis=1)


def fill_canvas(plane: np.ndarray, specimen: np.ndarray, value: float,
                band_px: float, origin: tuple[int, int] = (0, 0),
                shape: tuple[int, int] | None = None) -> np.ndarray:
    """``plane`` as float32 with its canvas painted over: mirrored specimen within
    ``band_px`` of the specimen, ``value`` beyond.

    This is what the network sees at an image's own edges (mirrored context, then an
    empty background), so a padded image is seen as the image alone: canvas pixels take
    the value of their mirror image across the nearest specimen pixel (as
    ``np.pad(mode="symmetric")`` does at a straight edge), or of that nearest pixel
    where the mirror image is not specimen.

    ``plane`` and ``specimen`` may be a window at ``origin`` (row, column) of a plane
    of ``shape``: the result equals that window of the whole plane's where the window
    reaches `fill_context` pixels beyond the part used (or the plane's edge).
    """
    out = np.asarray(plane, dtype=np.float32).copy()
    canvas = ~specimen
    if not canvas.any():
        return out
    out[canvas] = np.float32(value)
    if band_px <= 0 or not specimen.any():
        return out
    h, w = plane.shape
    oy, ox = origin
    big_h, big_w = (h, w) if shape is None else shape
    b = int(np.ceil(band_px)) + 1
    # tile by tile (tiles on the whole plane's grid), only where canvas meets specimen:
    # the nearest specimen pixel of a band pixel is within ``band_px``, so a tile plus
    # that margin holds it
    for gy0 in range(oy // _TILE * _TILE, oy + h, _TILE):
        for gx0 in range(ox // _TILE * _TILE, ox + w, _TILE):
            # the tile's part inside the window, and the window's part of its context
            y0, x0 = max(gy0, oy) - oy, max(gx0, ox) - ox
            y1, x1 = min(gy0 + _TILE, oy + h) - oy, min(gx0 + _TILE, ox + w) - ox
            core = canvas[y0:y1, x0:x1]
            if not core.any():
                continue
            wy0, wx0 = max(0, gy0 - b) - oy, max(0, gx0 - b) - ox
            wy1 = min(big_h, gy0 + _TILE + b) - oy
            wx1 = min(big_w, gx0 + _TILE + b) - ox
            wy0, wx0 = max(wy0, 0), max(wx0, 0)
            sub = specimen[wy0:wy1, wx0:wx1]
            if not sub.any():
                continue
            dist, (iy, ix) = ndi.distance_transform_edt(~sub, return_indices=True)
            ty, tx = y0 - wy0, x0 - wx0
            band = core & (dist[ty:ty + core.shape[0], tx:tx + core.shape[1]] <= band_px)
            py, px = np.nonzero(band)
            qy = iy[py + ty, px + tx] + wy0
            qx = ix[py + ty, px + tx] + wx0
            py, px = py + y0, px + x0
            ry = 2 * qy - py - np.sign(qy - py)
            rx = 2 * qx - px - np.sign(qx - px)
            ok = ((ry + oy >= 0) & (ry + oy < big_h) & (rx + ox >= 0) & (rx + ox < big_w)
                  & (ry >= 0) & (ry < h) & (rx >= 0) & (rx < w))
            ok[ok] = specimen[ry[ok], rx[ok]]
            out[py, px] = np.asarray(plane[np.where(ok, ry, qy), np.where(ok, rx, qx)],
                                     dtype=np.float32)
    return out


def fill_context(band_px: float) -> int:
    """Pixels of context a window needs around the part of it `fill_canvas` must get
    right (the tile grid's reach, plus the nearest specimen pixel and its mirror)."""
    return _TILE + 2 * (int(np.ceil(band_px)) + 2)


_TILE = 512
