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

import numpy as np
from scipy import ndimage as ndi

__all__ = ["specimen_mask", "excluded_near", "fill_canvas", "MIN_CANVAS_AREA_NM2"]

#: Smallest flat area taken as canvas, in nm^2 (50 x 50 nm): over 3 times the area of
#: the largest gold (30 nm), so a saturated particle is never mistaken for canvas.
MIN_CANVAS_AREA_NM2 = 2500.0


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
    """
    a = np.asarray(plane) if not isinstance(plane, np.memmap) else plane
    if a.ndim != 2:
        raise ValueError(f"expected a 2D plane, got shape {a.shape}")
    if min_area_px is None:
        min_area_px = 1024
        if pixel_size_nm:
            min_area_px = max(min_area_px, int(MIN_CANVAS_AREA_NM2 / pixel_size_nm**2))
    h, w = a.shape
    bad = None
    if np.issubdtype(a.dtype, np.floating):
        finite = np.isfinite(a)
        if not finite.all():
            bad = ~finite
    hb, wb = h // block, w // block
    canvas = np.zeros((h, w), dtype=bool)
    if hb and wb:
        blocks = a[:hb * block, :wb * block].reshape(hb, block, wb, block)
        flat = blocks.max(axis=(1, 3)) == blocks.min(axis=(1, 3))
        if bad is not None:  # NaN blocks compare unequal; they are excluded below anyway
            flat &= np.isfinite(blocks[:, 0, :, 0])
        if flat.any():
            labels, n = ndi.label(flat)
            sizes = np.bincount(labels.ravel(), minlength=n + 1) * block * block
            big = sizes >= min_area_px
            big[0] = False
            core = big[labels]
            if core.any():
                values = np.unique(blocks[:, 0, :, 0][core])
                full = np.repeat(np.repeat(core, block, axis=0), block, axis=1)
                canvas[:hb * block, :wb * block] = full
                # the canvas's edge within partial blocks (and the bottom/right remainder):
                # grow over neighbouring pixels that hold a canvas value
                ring = ndi.binary_dilation(canvas, iterations=block + 1) & ~canvas
                rr, cc = np.nonzero(ring)
                same = np.isin(np.asarray(a[rr, cc]), values)
                grow = np.zeros_like(canvas)
                grow[rr[same], cc[same]] = True
                # only pixels connected to the canvas (not specimen pixels that happen
                # to equal the canvas's value)
                lab, _ = ndi.label(canvas | grow)
                keep = np.unique(lab[canvas])
                canvas = np.isin(lab, keep[keep > 0])
    if bad is not None:
        canvas |= bad
    if not canvas.any():
        return None
    return ~canvas


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
                band_px: float) -> np.ndarray:
    """``plane`` as float32 with its canvas painted over: mirrored specimen within
    ``band_px`` of the specimen, ``value`` beyond.

    This is what the network sees at an image's own edges (mirrored context, then an
    empty background), so a padded image is seen as the image alone: canvas pixels take
    the value of their mirror image across the nearest specimen pixel (as
    ``np.pad(mode="symmetric")`` does at a straight edge), or of that nearest pixel
    where the mirror image is not specimen.
    """
    out = np.asarray(plane, dtype=np.float32).copy()
    canvas = ~specimen
    if not canvas.any():
        return out
    out[canvas] = np.float32(value)
    if band_px <= 0 or not specimen.any():
        return out
    dist, (iy, ix) = ndi.distance_transform_edt(canvas, return_indices=True)
    band = canvas & (dist <= band_px)
    py, px = np.nonzero(band)
    qy, qx = iy[py, px], ix[py, px]
    del dist, iy, ix
    h, w = plane.shape
    ry = 2 * qy - py - np.sign(qy - py)
    rx = 2 * qx - px - np.sign(qx - px)
    ok = (ry >= 0) & (ry < h) & (rx >= 0) & (rx < w)
    ok[ok] = specimen[ry[ok], rx[ok]]
    src_y, src_x = np.where(ok, ry, qy), np.where(ok, rx, qx)
    out[py, px] = out[src_y, src_x]
    return out
