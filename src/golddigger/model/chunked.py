"""Detection in chunks: images larger than memory (memory-mapped MRC/TIFF, SerialEM
montages) are processed window by window, each chunk's particles kept from its core.

The image is cut, at the model's pixel size, into square cores on a grid; each core is
detected from a window around it that holds everything its particles depend on:

* ``margin`` model pixels of probability maps around the core (peak window, sub-pixel
  centroid and the cross-class suppression radius of the largest class), and
* ``halo`` pixels of network input around those maps (the network's receptive radius);
* the pooling grid of every window is that of the whole image (window origins are
  multiples of ``2 ** depth`` in the whole image's padded frame), and the image's own
  edges are mirrored exactly as the whole-image pass mirrors them.

Resampling to the model's pixel size is done per window with the same antialiased
bilinear weights as the whole-image resampling. The specimen (`specimen_mask`: flat
canvas excluded) is known per window from the plane's canvas at block resolution
(`canvas_blocks`, one pass in strips): the normalisation uses the specimen's statistics
(`specimen_stats`, the strided sample `robust_stats` takes) and each window's canvas is
filled as the whole plane's is (`fill_canvas` on the whole plane's tile grid).

Post-processing is the detector's own: each chunk's maps go to
`Detector.find_candidates` as a window of the plane's maps (`DetectionMaps.origin`,
``full_size``, ``core``: the edge rule at the image's edges, the canvas rule with the
window's specimen), then `Detector.measure`; the caller runs
`Detector.one_per_particle` (free classes) and `Detector.apply_thresholds` over all
chunks. So the particles equal those of `Detector.predict` on the whole image, as tiled
equals untiled (same particles; centres equal to float round-off). Memory is bounded by
the chunk, not the image: a chunk reads only its window of the file.

Each chunk is independent (`detect_chunk`): a Dask task can run one.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from golddigger.errors import GoldDiggerError
from golddigger.io.images import CalibratedImage
from golddigger.io.montage import release_mmap_pages
from golddigger.io.regions import Region
from golddigger.model.preprocess import normalise_tensor, robust_stats
from golddigger.model.sizing import _TRUNCATE
from golddigger.model.specimen import (
    CanvasBlocks,
    canvas_blocks,
    fill_canvas,
    fill_context,
    specimen_window,
)
from golddigger.particles import ParticleTable

__all__ = ["DEFAULT_CHUNK", "CHUNK_ABOVE_PIXELS", "Chunk", "plan_chunks", "plane_stats",
           "specimen_stats", "detect_chunk", "predict_chunked", "predict_auto",
           "needs_chunks", "ChunkJob", "chunk_mapper"]

logger = logging.getLogger(__name__)

#: Chunk core side in model pixels (a window of about 2300 x 2300 with its context).
DEFAULT_CHUNK = 2048
#: Planes with more pixels than this are detected in chunks by the batch (64 Mpx).
CHUNK_ABOVE_PIXELS = 8192 * 8192


def needs_chunks(image: CalibratedImage) -> bool:
    """True when the image's planes are large, or not plain arrays (lazy montages)."""
    h, w = image.shape_yx
    return h * w > CHUNK_ABOVE_PIXELS or not isinstance(image.data, np.ndarray)


def predict_auto(detector, image: CalibratedImage, **kwargs) -> ParticleTable:
    """`Detector.predict`, or `predict_chunked` for images that `needs_chunks` (the same
    keyword arguments; ``progress`` is dropped for chunks)."""
    if needs_chunks(image):
        kwargs.pop("progress", None)
        return predict_chunked(detector, image, **kwargs)
    return detector.predict(image, **kwargs)


@dataclass(frozen=True)
class Chunk:
    """One chunk's core in model pixels: rows ``y0:y1``, columns ``x0:x1``."""

    y0: int
    y1: int
    x0: int
    x1: int


@dataclass(frozen=True)
class Frame:
    """The geometry shared by every chunk of one plane."""

    in_h: int
    in_w: int
    h: int  # at the model's pixel size
    w: int
    factor: float
    multiple: int
    halo: int
    edge: int
    margin: int

    @property
    def fx(self) -> float:
        return self.w / self.in_w

    @property
    def fy(self) -> float:
        return self.h / self.in_h


def _frame(detector, shape_yx: tuple[int, int], pixel_size_nm: float) -> Frame:
    cfg = detector.config
    in_h, in_w = int(shape_yx[0]), int(shape_yx[1])
    factor = pixel_size_nm / detector.pixel_size_nm
    if abs(factor - 1.0) < 1e-9:
        h, w = in_h, in_w
    else:
        h, w = max(1, round(in_h * factor)), max(1, round(in_w * factor))
    multiple = 2 ** cfg.depth
    r_max = 0.5 * max(detector.classes) / detector.pixel_size_nm
    # peak window (round(r) px), centroid (1 px) and suppression radius (r) on each side
    margin = -(-(int(np.ceil(2 * r_max)) + 8) // multiple) * multiple
    return Frame(in_h, in_w, h, w, factor, multiple, cfg.halo_px, cfg.edge_pad_px, margin)


def plan_chunks(detector, shape_yx: tuple[int, int], pixel_size_nm: float,
                chunk_size: int = DEFAULT_CHUNK) -> list[Chunk]:
    """The chunk cores covering a plane of ``shape_yx`` input pixels."""
    fr = _frame(detector, shape_yx, pixel_size_nm)
    if chunk_size < fr.multiple or chunk_size % fr.multiple:
        raise GoldDiggerError(f"chunk size must be a positive multiple of {fr.multiple}, "
                              f"got {chunk_size}")
    # cores start on multiples of the pooling size in the padded frame (edge is one too)
    return [Chunk(y, min(y + chunk_size, fr.h), x, min(x + chunk_size, fr.w))
            for y in range(0, fr.h, chunk_size) for x in range(0, fr.w, chunk_size)]


def specimen_stats(plane, blocks: CanvasBlocks, max_samples: int = 1_000_000
                   ) -> tuple[tuple[float, float], int]:
    """`robust_stats` of a plane's specimen pixels (as `Detector.predict_maps` takes
    them, ``mask=specimen_mask(plane)``), read in strips of rows, and the number of
    specimen pixels."""
    h, w = plane.shape
    strip = max(1, (1 << 24) // max(1, w))
    n = 0
    for r0 in range(0, h, strip):
        n += int(np.count_nonzero(specimen_window(plane, blocks, r0, min(h, r0 + strip),
                                                  0, w)))
        _release(plane)
    if n == 0:
        return (0.0, 1.0), 0
    step = max(1, int(np.sqrt(n / max_samples)))
    span = max(1, strip // step) * step
    parts = []
    for r0 in range(0, h, span):
        r1 = min(h, r0 + span)
        mask = specimen_window(plane, blocks, r0, r1, 0, w)[::step, ::step]
        parts.append(np.asarray(plane[r0:r1:step, ::step], dtype=np.float32)[mask])
        _release(plane)
    sample = np.concatenate(parts)
    if sample.size == 0:  # as robust_stats: every specimen pixel
        sample = np.concatenate([
            np.asarray(plane[r0:min(h, r0 + strip)], dtype=np.float32)[
                specimen_window(plane, blocks, r0, min(h, r0 + strip), 0, w)]
            for r0 in range(0, h, strip)])
    # one row: robust_stats's own subsample step is then 1 (the sample holds fewer
    # than 4 x max_samples pixels)
    return robust_stats(sample[None, :], max(max_samples, sample.size)), n


def plane_stats(plane, max_samples: int = 1_000_000) -> tuple[float, float]:
    """`robust_stats` of a plane of any size, reading only its strided sample (in
    strips of rows, each strip's file pages released after it is read)."""
    h, w = plane.shape
    step = max(1, int(np.sqrt(h * w / max_samples)))
    # each strip spans at most ~64 MB of the file (its pages are read ahead whole)
    span = max(1, (1 << 26) // max(1, w * np.dtype(plane.dtype).itemsize)) // step
    span = max(1, span) * step
    strips = []
    for r0 in range(0, h, span):
        strips.append(np.asarray(plane[r0:min(h, r0 + span):step, ::step]))
        _release(plane)
    sample = np.concatenate(strips) if len(strips) > 1 else strips[0]
    return robust_stats(sample, max_samples)


# ---------------------------------------------------------------------------- resampling
def _weights(n_in: int, n_out: int, start: int, stop: int
             ) -> tuple[int, int, np.ndarray]:
    """Rows ``start:stop`` of the ``n_out x n_in`` resampling matrix of PyTorch's bilinear
    interpolation (antialiased when shrinking) as ``F.interpolate(size=n_out)`` computes
    it on the CPU, float32 roundings included: ``(first input index, stop, block)``."""
    f32 = np.float32
    scale = f32(n_in) / f32(n_out)
    i = np.arange(start, stop)
    if scale > 1.0:  # antialiased: a triangle of support `scale`, normalised
        center = scale * (i.astype(f32) + f32(0.5))
        lo = np.maximum((center - scale + f32(0.5)).astype(np.int64), 0)
        hi = np.minimum((center + scale + f32(0.5)).astype(np.int64), n_in)
        first, last = int(lo.min()), int(hi.max())
        j = np.arange(first, last)
        t = ((j[None, :] - center[:, None]).astype(np.float64) + 0.5) * float(f32(1) / scale)
        wts = np.where(np.abs(t) < 1.0, 1.0 - np.abs(t), 0.0).astype(f32)
        wts[(j[None, :] < lo[:, None]) | (j[None, :] >= hi[:, None])] = 0.0
        total = np.zeros(wts.shape[0], f32)
        for k in range(wts.shape[1]):  # summed in order, in float32, as PyTorch does
            total += wts[:, k]
        wts /= total[:, None]
    else:  # bilinear, align_corners=False, source index clamped at 0
        src = np.maximum((float(scale) * (i + 0.5) - 0.5).astype(f32), f32(0))
        i0 = np.minimum(src.astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        lam = np.clip(src - i0.astype(f32), f32(0), f32(1))
        first, last = int(i0.min()), int(i1.max()) + 1
        wts = np.zeros((i.size, last - first), f32)
        rows = np.arange(i.size)
        wts[rows, i0 - first] += f32(1) - lam
        wts[rows, i1 - first] += lam
    return first, last, wts


def _mirror_index(start: int, stop: int, n: int) -> np.ndarray:
    j = np.mod(np.arange(start, stop), 2 * n)
    return np.where(j >= n, 2 * n - 1 - j, j)


def _release(plane) -> None:
    """Drop the file pages a memory map has read from this process (they stay in the
    page cache), so the resident size stays bounded by the chunk."""
    if hasattr(plane, "release_pages"):  # a lazy montage
        plane.release_pages()
    else:
        release_mmap_pages(plane)


# ---------------------------------------------------------------------------- one chunk
def detect_chunk(detector, plane, pixel_size_nm: float, chunk: Chunk,
                 stats: tuple[float, float], floor: float, sizing: str,
                 classes: Sequence[float | str] | None = None, tile_size: int | None = -1,
                 blocks: CanvasBlocks | None = None, slice_index: int = 0,
                 match: float = 1.0, keep: Sequence[float] | None = None) -> ParticleTable:
    """Measured candidates of one chunk's core (input pixels), not yet thresholded.

    The detector's own steps on a window: `Detector.find_candidates` on the window's
    maps (judged by the whole plane's edges and its specimen, `DetectionMaps.origin`),
    then `Detector.measure` (without its one-per-particle step, which the caller runs
    over all chunks, as it runs `Detector.apply_thresholds`). ``blocks`` is the plane's
    canvas (`canvas_blocks`; None: no canvas): the window's specimen is computed from
    it, its canvas filled as `Detector.predict_maps` fills the whole plane's. ``match``
    and ``keep`` are one of `Detector.scale_passes`: the scale the network sees the
    plane at, and the class values kept from it (None: all).
    """
    from golddigger.model.detector import DetectionMaps, _sigmoid_inplace, tiled_forward

    fr = _frame(detector, plane.shape, pixel_size_nm / match)
    m, e = fr.multiple, fr.edge
    hp = -(-(fr.h + 2 * e) // m) * m
    wp = -(-(fr.w + 2 * e) // m) * m

    def span(c0: int, c1: int, n_p: int) -> tuple[int, int, int, int]:
        # maps region and network window in the padded frame (multiples of m)
        mp0 = max(0, (c0 + e - fr.margin) // m * m)
        mp1 = min(n_p, -(-(c1 + e + fr.margin) // m) * m)
        return mp0, mp1, max(0, mp0 - fr.halo), min(n_p, mp1 + fr.halo)

    mpy0, mpy1, wpy0, wpy1 = span(chunk.y0, chunk.y1, hp)
    mpx0, mpx1, wpx0, wpx1 = span(chunk.x0, chunk.x1, wp)
    rows = _mirror_index(wpy0 - e, wpy1 - e, fr.h)
    cols = _mirror_index(wpx0 - e, wpx1 - e, fr.w)
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    # the input pixels those model pixels depend on
    resampled = not (fr.h == fr.in_h and fr.w == fr.in_w)
    if resampled:
        ir0, ir1, wy = _weights(fr.in_h, fr.h, r0, r1)
        ic0, ic1, wx = _weights(fr.in_w, fr.w, c0, c1)
    else:
        ir0, ir1, ic0, ic1 = r0, r1, c0, c1
    specimen, s_origin = None, (0, 0)
    if blocks is not None and not blocks.everything_specimen:
        # the window's specimen, and its canvas filled as the whole plane's is
        band = fr.edge / fr.factor
        ctx = fill_context(band)
        sy0, sy1 = max(0, ir0 - ctx), min(fr.in_h, ir1 + ctx)
        sx0, sx1 = max(0, ic0 - ctx), min(fr.in_w, ic1 + ctx)
        specimen = specimen_window(plane, blocks, sy0, sy1, sx0, sx1)
        filled = fill_canvas(plane[sy0:sy1, sx0:sx1], specimen, stats[0], band,
                             origin=(sy0, sx0), shape=(fr.in_h, fr.in_w))
        source = filled[ir0 - sy0:ir1 - sy0, ic0 - sx0:ic1 - sx0]
        s_origin = (sy0, sx0)
    else:
        source = np.asarray(plane[ir0:ir1, ic0:ic1], dtype=np.float32)
    if resampled:
        # in float64: a float32 product's round-off depends on how many threads the BLAS
        # runs (a Dask worker with one gave centres 0.03 px off the local run's); in
        # float64 it stays below what the cast back to float32 keeps
        source = (wy.astype(np.float64) @ source.astype(np.float64)) @ wx.T.astype(np.float64)
    block = torch.from_numpy(np.ascontiguousarray(source, dtype=np.float32))
    del source
    normalise_tensor(block, stats)
    window = block.numpy()[np.ix_(rows - r0, cols - c0)]
    del block
    size = detector.config.tile_size if tile_size == -1 else tile_size
    with torch.autocast("cpu", dtype=torch.bfloat16,
                        enabled=detector.precision == "bfloat16"):
        logits = tiled_forward(detector._net, window, multiple=m, halo=fr.halo,
                               tile_size=size, edge_pad=0)
    del window
    # the maps region, clipped to the image (model pixels)
    my0, my1 = max(mpy0 - e, 0), min(mpy1 - e, fr.h)
    mx0, mx1 = max(mpx0 - e, 0), min(mpx1 - e, fr.w)
    maps = _sigmoid_inplace(np.ascontiguousarray(
        logits[:, my0 + e - wpy0:my1 + e - wpy0, mx0 + e - wpx0:mx1 + e - wpx0]))
    del logits
    window_maps = DetectionMaps(maps, (fr.fx, fr.fy), pixel_size_nm, (fr.in_h, fr.in_w),
                                specimen, slice_index, origin=(my0, mx0),
                                full_size=(fr.h, fr.w), specimen_origin=s_origin,
                                core=(chunk.y0, chunk.y1, chunk.x0, chunk.x1))
    candidates = detector.find_candidates(window_maps, floor=floor)
    del maps, window_maps
    free = detector._free_classes(classes)
    if len(candidates) == 0 or (sizing == "maps" and free is None):
        return candidates
    # measured on the input pixels around the core, with room for the sizing windows
    # (mirrored at the image's edges only, as on the whole plane)
    largest = max(detector.classes)
    if free is not None:
        largest = max(largest, 1.3 * max(c.hi for c in free))
    search = max(1, round(1.5 / pixel_size_nm))
    pad = int(np.ceil(_TRUNCATE * largest / 2 / np.sqrt(2) / pixel_size_nm)) + 2 * search + 4
    x, y = candidates.x, candidates.y
    iy0 = max(0, int(np.floor(y.min())) - pad)
    iy1 = min(fr.in_h, int(np.ceil(y.max())) + pad + 1)
    ix0 = max(0, int(np.floor(x.min())) - pad)
    ix1 = min(fr.in_w, int(np.ceil(x.max())) + pad + 1)
    crop = np.asarray(plane[iy0:iy1, ix0:ix1])
    local = ParticleTable(x - ix0, y - iy0, candidates.diameter_nm, candidates.score,
                          candidates.slice)
    measured = detector.measure(local, crop, pixel_size_nm, sizing, classes,
                                one_per_particle=False)
    measured.x += ix0
    measured.y += iy0
    return measured if keep is None else measured[np.isin(measured.diameter_nm, keep)]


@dataclass
class ChunkJob:
    """What every chunk of one plane shares; ``run(detector, chunk)`` detects one.

    It pickles without the plane (``source`` says how to open it again: ``(path,
    pixel_size_nm, channel, slice)``), so a Dask worker reads its own windows of the file.
    ``blocks`` is the plane's canvas at block resolution (`canvas_blocks`; None when it
    has none).
    """

    source: tuple[Any, float, int | None, int]
    pixel_size_nm: float
    stats: tuple[float, float]
    floor: float
    sizing: str
    classes: tuple[float | str, ...] | None = None
    tile_size: int | None = -1
    blocks: CanvasBlocks | None = None
    #: one of `Detector.scale_passes`: the scale the network sees the plane at, and the
    #: class values kept from this pass (None: all)
    match: float = 1.0
    keep: tuple[float, ...] | None = None
    plane: Any = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["plane"] = None
        return state

    def with_channel(self, channel: int | None) -> ChunkJob:
        path, px, _, s = self.source
        return replace(self, source=(path, px, channel, s))

    def open_plane(self):
        """The plane, opened from ``source`` when this job came over the wire."""
        if self.plane is None:
            from golddigger.io.images import read_image

            path, px, channel, s = self.source
            if path is None:
                raise GoldDiggerError("a chunk of an image without a file cannot be sent "
                                      "to another process")
            self.plane = read_image(Path(path), px, channel).slice(s)
        return self.plane

    def run(self, detector, chunk: Chunk) -> ParticleTable:
        """The measured candidates of one chunk's core (`detect_chunk`)."""
        plane = self.open_plane()
        try:
            return detect_chunk(detector, plane, self.pixel_size_nm, chunk, self.stats,
                                self.floor, self.sizing, self.classes, self.tile_size,
                                self.blocks, self.source[3], self.match, self.keep)
        finally:
            _release(plane)


_MAPPER: contextvars.ContextVar[Callable | None] = contextvars.ContextVar(
    "golddigger_chunk_mapper", default=None)


@contextlib.contextmanager
def chunk_mapper(mapper: Callable[[ChunkJob, list[Chunk]], list]) -> Iterator[None]:
    """Within this block, `predict_chunked` hands its chunks to ``mapper(job, chunks)``
    (e.g. to run them on a Dask cluster) instead of running them here."""
    token = _MAPPER.set(mapper)
    try:
        yield
    finally:
        _MAPPER.reset(token)


# ---------------------------------------------------------------------------- whole image
def predict_chunked(detector, image: CalibratedImage, pixel_size_nm: float | None = None,
                    region: Region | np.ndarray | None = None,
                    threshold: float | None = None,
                    classes: Sequence[float | str] | None = None,
                    slices: Iterable[int] | None = None, sizing: str | None = None,
                    chunk_size: int | None = None, tile_size: int | None = -1,
                    tta: int = 1, progress: bool = False,
                    map_chunks: Callable | None = None) -> ParticleTable:
    """`Detector.predict` chunk by chunk, in memory bounded by ``chunk_size``.

    Parameters are those of `Detector.predict`, plus ``chunk_size`` (core side in model
    pixels, a multiple of 16; default `DEFAULT_CHUNK`) and ``map_chunks``:
    ``map_chunks(job, chunks)`` returns ``[job.run(detector, c) for c in chunks]`` in
    order, run where it likes (a Dask cluster:
    `golddigger.distributed`); default: the `chunk_mapper` in effect, else one after the
    other here. Test-time augmentation is not done in chunks. The result's
    ``excluded_px`` is that of `Detector.predict`.
    """

    if tta != 1:
        raise GoldDiggerError("test-time augmentation (--tta) is not available for images "
                              "detected in chunks; use --tta 1")
    px, region, sizing, indices = detector.check_request(image, pixel_size_nm, region,
                                                         threshold, classes, sizing, slices)
    free = detector._free_classes(classes)
    floor = detector.candidate_floor(threshold, classes)
    passes = detector.scale_passes(classes)
    chunk_size = DEFAULT_CHUNK if chunk_size is None else int(chunk_size)
    tables = []
    excluded: dict[int, int] = {}
    for s in indices:
        plane = image.slice(s)
        h, w = plane.shape
        if _is_constant(plane):
            logger.info("%s: slice %d is constant; no particles", image.name, s)
            excluded[s] = h * w
            continue
        blocks = canvas_blocks(plane, px)
        _release(plane)
        if blocks.everything_specimen:
            stats, n_specimen, blocks = plane_stats(plane), h * w, None
        else:
            stats, n_specimen = specimen_stats(plane, blocks)
        _release(plane)
        excluded[s] = h * w - n_specimen
        if n_specimen == 0:
            logger.info("%s: slice %d holds no specimen; no particles", image.name, s)
            continue
        parts = []
        for match, keep in passes:
            chunks = plan_chunks(detector, plane.shape, px / match, chunk_size)
            logger.info("%s: slice %d in %d chunks of %d model px", image.name, s,
                        len(chunks), chunk_size)
            job = ChunkJob(source=(image.path, px, None, s), pixel_size_nm=px, stats=stats,
                           floor=floor, sizing=sizing,
                           classes=None if classes is None else tuple(classes),
                           tile_size=tile_size, blocks=blocks, match=match,
                           keep=None if keep is None else tuple(keep), plane=plane)
            mapper = map_chunks if map_chunks is not None else _MAPPER.get()
            if mapper is not None:
                parts += mapper(job, chunks)
            else:
                it: Iterable[Chunk] = chunks
                if progress:
                    from tqdm.auto import tqdm

                    it = tqdm(chunks, desc="chunks", leave=False)
                parts += [job.run(detector, c) for c in it]
        measured = ParticleTable.concat(parts) if parts else ParticleTable.empty()
        if free is not None:  # over all chunks, as `Detector.measure` does over the plane
            measured = detector.one_per_particle(measured, px)
        tables.append(detector.apply_thresholds(measured, threshold, classes, region))
    result = ParticleTable.concat(tables) if tables else ParticleTable.empty()
    result.excluded_px = excluded
    return result


def _is_constant(plane, chunk_px: int = 1 << 20) -> bool:
    first = np.asarray(plane[0:1, 0:1])[0, 0]
    h, w = plane.shape
    rows = max(1, chunk_px // max(1, w))
    return all(np.all(np.asarray(plane[r:r + rows]) == first) for r in range(0, h, rows))
