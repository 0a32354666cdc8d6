"""Which pixels of a micrograph are specimen: not a flat padded canvas.

Stitched montages, rotated or registered images and masked regions put the micrograph on
a constant canvas (black corners, grey padding, saturated areas). A canvas is not
specimen: it must not count in the normalisation's median and spread, nor hold
detections, nor count in the area that densities are divided by.

A micrograph's own pixels are never constant over a block of many pixels (shot noise),
while a canvas is exactly constant. `specimen_mask` finds exactly-constant blocks of
``block`` x ``block`` pixels, keeps the connected groups that cover at least
``min_area_px`` (a saturated gold particle or a few clipped pixels are far smaller), and
extends them, pixel by pixel, over the neighbouring pixels that hold one of the
canvas's values (the block grid rarely aligns with the canvas's edge). Non-finite pixels
(NaN, inf) are never specimen. The cost is one pass over the image.
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
        The canvas's values (those of its blocks).
    non_finite : bool
        The plane holds NaN or inf pixels (never specimen).
    """

    shape: tuple[int, int]
    block: int
    core: np.ndarray
    values: np.ndarray
    non_finite: bool

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
    non_finite = False
    flat = np.zeros((hb, wb), dtype=bool)
    flat_values = []
    rows = max(1, strip_px // max(1, w * block)) * block  # whole blocks per strip
    for r0 in range(0, h, rows):
        strip = np.asarray(a[r0:min(h, r0 + rows)])
        if floating and not non_finite:
            non_finite = not np.isfinite(strip).all()
        b0, b1 = r0 // block, min(hb, (r0 + strip.shape[0]) // block)
        if b1 <= b0 or not wb:
            continue
        blocks = strip[:(b1 - b0) * block, :wb * block].reshape(b1 - b0, block, wb, block)
        # candidates first (four corners equal: rare in a micrograph), then every pixel
        # of the candidates only
        first = blocks[:, 0, :, 0]
        f = ((first == blocks[:, 0, :, -1]) & (first == blocks[:, -1, :, 0])
             & (first == blocks[:, -1, :, -1]))
        bi, bj = np.nonzero(f)
        if bi.size:
            cand = blocks[bi, :, bj, :]  # (n, block, block)
            f[bi, bj] = (cand == cand[:, :1, :1]).all(axis=(1, 2))
        if floating:  # NaN blocks compare unequal; they are excluded anyway
            f &= np.isfinite(first)
        flat[b0:b1] = f
        flat_values.append(first[f])
    core = np.zeros((hb, wb), dtype=bool)
    values = np.empty(0, dtype=a.dtype)
    if flat.any():
        labels, n = ndi.label(flat)
        sizes = np.bincount(labels.ravel(), minlength=n + 1) * block * block
        big = sizes >= min_area_px
        big[0] = False
        core = big[labels]
        if core.any():
            # the flat blocks' values in row-major order, as np.nonzero(flat) lists them
            values = np.unique(np.concatenate(flat_values)[core[flat]])
    return CanvasBlocks((h, w), block, core, values, bool(non_finite))


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
        canvas[rr, cc] = np.isin(win[rr, cc], blocks.values)
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
