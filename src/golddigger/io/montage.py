"""SerialEM montages: the pieces of an MRC stack placed by the ``PieceCoordinates`` of
its ``.mdoc`` and read as one image.

Where pieces overlap, each keeps its part up to the middle of the overlap (no blending:
IMOD's ``blendmont`` does that, and its output is a plain MRC Gold Digger reads too). A
montage that fits in memory is assembled into an array; a larger one stays a
`MontageArray`, which reads only the pieces under the rows and columns asked for, so
chunked detection (`golddigger.model.chunked`) never holds the whole image.
"""

from __future__ import annotations

import logging
import mmap
import re
from pathlib import Path

import numpy as np

from golddigger.errors import ImageReadError

__all__ = ["MontageArray", "mdoc_path", "open_montage", "read_mdoc", "release_mmap_pages"]

logger = logging.getLogger(__name__)


def mdoc_path(path: Path) -> Path | None:
    """The ``.mdoc`` beside an MRC file (``x.mrc.mdoc`` as SerialEM names it, or
    ``x.mdoc``), or None."""
    for cand in (path.with_name(path.name + ".mdoc"), path.with_suffix(".mdoc")):
        if cand.is_file():
            return cand
    return None


def read_mdoc(path: str | Path) -> dict:
    """The pieces of a SerialEM ``.mdoc``: ``{"pieces": [(z, x, y, section)], "pixel_nm"}``.

    ``z`` is the MRC plane (``[ZValue = z]``), ``x, y`` the piece's origin in the montage
    (``PieceCoordinates``, pixels) and ``section`` its montage (the third coordinate).
    """
    pieces: list[tuple[int, int, int, int]] = []
    pixel_nm = None
    z = None
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"\[\s*ZValue\s*=\s*(\d+)\s*\]", line)
        if m:
            z = int(m.group(1))
            continue
        if line.startswith("["):
            z = None
            continue
        if "=" not in line:
            continue
        key, _, value = (s.strip() for s in line.partition("="))
        if key == "PixelSpacing" and pixel_nm is None:
            try:
                pixel_nm = float(value.split()[0]) / 10.0
            except (ValueError, IndexError):
                pass
        elif key == "PieceCoordinates" and z is not None:
            parts = value.split()
            try:
                x, y = int(float(parts[0])), int(float(parts[1]))
                sec = int(float(parts[2])) if len(parts) > 2 else 0
            except (ValueError, IndexError):
                raise ImageReadError(f"{path}: bad PieceCoordinates in [ZValue = {z}]: "
                                     f"{value!r}") from None
            pieces.append((z, x, y, sec))
    return {"pieces": pieces, "pixel_nm": pixel_nm}


def _cuts(starts: list[int], size: int) -> dict[int, tuple[int, int]]:
    """For pieces at ``starts`` (one grid axis) of length ``size``: the part of each
    piece kept, ``(first, stop)`` in piece pixels; overlaps are split at their middle."""
    u = sorted(set(starts))
    out = {}
    for i, s in enumerate(u):
        lo = 0 if i == 0 else max(0, (u[i - 1] + size + s) // 2 - s)
        hi = size if i == len(u) - 1 else min(size, (s + size + u[i + 1]) // 2 - s)
        out[s] = (lo, max(lo, hi))
    return out


#: one kept rectangle: (plane z, montage rows y0:y1, montage cols x0:x1, piece row, col)
_Part = tuple[int, int, int, int, int, int, int]


def release_mmap_pages(array) -> None:
    """Drop the file pages that a memory-mapped ``array`` (or a view of one) has read
    into this process (they stay in the page cache); nothing for other arrays."""
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if isinstance(base, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        try:
            base.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # pragma: no cover - platform specific
            pass


class MontageArray:
    """A montage (or a stack of montages) read lazily from its pieces.

    Supports what detection needs of an array: ``shape``, ``dtype``, ``ndim``, basic
    indexing with integers and slices (steps included), ``np.asarray``. Pixels no piece
    covers are 0.
    """

    def __init__(self, planes: np.ndarray, sections: list[list[_Part]],
                 shape_yx: tuple[int, int]) -> None:
        self._planes = planes
        self._sections = sections
        self._yx = (int(shape_yx[0]), int(shape_yx[1]))

    @property
    def shape(self) -> tuple[int, ...]:
        return self._yx if len(self._sections) == 1 else (len(self._sections),) + self._yx

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self) -> np.dtype:
        return self._planes.dtype

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"MontageArray(shape={self.shape}, dtype={self.dtype})"

    def release_pages(self) -> None:
        """Drop the pages of the pieces' file this process has read (they stay cached)."""
        release_mmap_pages(self._planes)

    def __getitem__(self, key) -> np.ndarray | MontageArray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1:]
        key = key + (slice(None),) * (self.ndim - len(key))
        if len(key) != self.ndim:
            raise IndexError(f"too many indices for a montage of shape {self.shape}")
        if self.ndim == 3:
            k0, rest = key[0], key[1:]
            if isinstance(k0, (int, np.integer)):
                sec = MontageArray(self._planes, [self._sections[int(k0)]], self._yx)
                return sec[rest] if rest != (slice(None), slice(None)) else sec
            idx = range(len(self._sections))[k0]
            return np.stack([self._read(self._sections[i], *rest) for i in idx])
        return self._read(self._sections[0], *key)

    def _read(self, parts: list[_Part], ky, kx) -> np.ndarray:
        h, w = self._yx
        ys, squeeze_y = _as_slice(ky, h)
        xs, squeeze_x = _as_slice(kx, w)
        y0, y1, sy = ys.indices(h)
        x0, x1, sx = xs.indices(w)
        if sy < 1 or sx < 1:
            raise IndexError("montages support positive steps only")
        ny = len(range(y0, y1, sy))
        nx = len(range(x0, x1, sx))
        out = np.zeros((ny, nx), dtype=self.dtype)
        for z, py0, py1, px0, px1, ry, rx in parts:
            # montage rows of this part on the step grid of the request
            a0, a1 = max(py0, y0), min(py1, y1)
            b0, b1 = max(px0, x0), min(px1, x1)
            if a0 >= a1 or b0 >= b1:
                continue
            a0 += (-(a0 - y0)) % sy
            b0 += (-(b0 - x0)) % sx
            if a0 >= a1 or b0 >= b1:
                continue
            src = self._planes[z, ry + a0 - py0:ry + a1 - py0:sy,
                               rx + b0 - px0:rx + b1 - px0:sx]
            oy, ox = (a0 - y0) // sy, (b0 - x0) // sx
            out[oy:oy + src.shape[0], ox:ox + src.shape[1]] = src
        if squeeze_y:
            out = out[0]
        if squeeze_x:
            out = out[..., 0]
        return out


def _as_slice(k, n: int) -> tuple[slice, bool]:
    if isinstance(k, (int, np.integer)):
        i = int(k) + (n if k < 0 else 0)
        if not 0 <= i < n:
            raise IndexError(f"index {k} out of range for size {n}")
        return slice(i, i + 1), True
    if isinstance(k, slice):
        return k, False
    raise IndexError(f"montages support integer and slice indices, got {type(k).__name__}")


def open_montage(path: Path, planes: np.ndarray,
                 pieces: list[tuple[int, int, int, int]]) -> np.ndarray | MontageArray:
    """One image per montage section from its pieces: an array when it fits in memory
    (`golddigger.io.images.MAX_PIXELS_IN_MEMORY`), else a lazy `MontageArray`."""
    from golddigger.io.images import MAX_PIXELS_IN_MEMORY

    n, ny, nx = planes.shape
    bad = [z for z, *_ in pieces if not 0 <= z < n]
    if bad:
        raise ImageReadError(f"{path}: the .mdoc lists piece {bad[0]} but the file has "
                             f"{n} planes; the .mdoc belongs to another file")
    if min(min(p[1] for p in pieces), min(p[2] for p in pieces)) < 0:
        raise ImageReadError(f"{path}: negative PieceCoordinates in the .mdoc")
    width = max(p[1] for p in pieces) + nx
    height = max(p[2] for p in pieces) + ny
    sections = []
    for sec in sorted({p[3] for p in pieces}):
        mine = [p for p in pieces if p[3] == sec]
        xcut = _cuts([p[1] for p in mine], nx)
        ycut = _cuts([p[2] for p in mine], ny)
        parts = []
        for z, x, y, _ in mine:
            (cx0, cx1), (cy0, cy1) = xcut[x], ycut[y]
            if cx1 > cx0 and cy1 > cy0:
                parts.append((z, y + cy0, y + cy1, x + cx0, x + cx1, cy0, cx0))
        sections.append(parts)
    montage = MontageArray(planes, sections, (height, width))
    logger.info("%s: montage of %d pieces -> %s", path, len(pieces), montage.shape)
    if montage.size > MAX_PIXELS_IN_MEMORY:
        return montage
    return np.asarray(montage)
