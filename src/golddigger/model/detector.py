"""The detector: a trained generator plus everything around it (scale, tiling,
post-processing), behind one call, `Detector.predict`."""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from golddigger.errors import GoldDiggerError
from golddigger.io.images import CalibratedImage, validate_pixel_size
from golddigger.io.regions import Region
from golddigger.model.classes import (
    SizeClass,
    assign_classes,
    parse_classes,
    scale_passes,
    size_match_factor,
)
from golddigger.model.config import ModelConfig
from golddigger.model.folder import (
    gold_validated,
    models_covering,
    read_model_folder,
    resolve_model,
)
from golddigger.model.networks import UNetGenerator
from golddigger.model.postprocess import maps_to_particles, suppress_across_classes
from golddigger.model.preprocess import normalise_tensor, resample_plane, robust_stats
from golddigger.model.sizing import SIZING_MODES, measure_diameters, measure_particles
from golddigger.model.specimen import excluded_near, fill_canvas, specimen_mask
from golddigger.particles import ParticleTable

__all__ = ["EDGE_MARGIN_PX", "PRECISIONS", "SPECIMEN_MARGIN_NM", "TTA_CHOICES",
           "DetectionMaps", "Detector", "native_bfloat16", "tiled_forward"]

logger = logging.getLogger(__name__)

#: Detections closer than this (nm, and at least 2 px) to non-specimen pixels (flat
#: canvas) are dropped: a particle there is cut by the canvas's edge, or not one at all.
SPECIMEN_MARGIN_NM = 3.0

#: Peaks closer than this to the image's edge (model pixels: 1.2 nm for fril-gold-v3)
#: are dropped (see `Detector.find_candidates`).
EDGE_MARGIN_PX = 1.0


@dataclass
class DetectionMaps:
    """The network's maps for one plane (`Detector.compute_maps`), reusable by the
    later steps of `Detector.predict` without running the network again.

    Attributes
    ----------
    maps : (C, h, w) float32 array or None
        Probability per class at the model's pixel size; None when the plane holds no
        specimen (constant, or all canvas).
    scale : (fx, fy)
        Factors from input pixels to map pixels.
    pixel_size_nm : float
        nm per pixel of the input plane.
    shape : (H, W)
        The input plane's shape.
    specimen : (H, W) bool array or None
        True on specimen pixels; None when every pixel is.
    slice_index : int
        The plane's 0-based stack index.
    """

    maps: np.ndarray | None
    scale: tuple[float, float]
    pixel_size_nm: float
    shape: tuple[int, int]
    specimen: np.ndarray | None = None
    slice_index: int = 0
    #: where ``maps[:, 0, 0]`` lies in the whole plane's maps (map pixels, y, x), the
    #: whole plane's map size (h, w; None: that of ``maps``), and where
    #: ``specimen[0, 0]`` lies in the whole input plane (y, x): a window of a plane
    #: (`golddigger.model.chunked`) is then judged by the whole plane's edges
    origin: tuple[int, int] = (0, 0)
    full_size: tuple[int, int] | None = None
    specimen_origin: tuple[int, int] = (0, 0)
    #: peaks kept only in this box of the whole plane's maps (y0, y1, x0, x1; a pixel
    #: ``p`` is in when ``p0 - 0.5 <= p < p1 - 0.5``); None: everywhere
    core: tuple[int, int, int, int] | None = None

    @property
    def excluded_px(self) -> int:
        """Non-specimen pixels of the input plane."""
        if self.specimen is None:
            return 0
        return int(self.specimen.size - np.count_nonzero(self.specimen))

    @property
    def excluded_fraction(self) -> float:
        """Fraction of the input plane that is not specimen."""
        return self.excluded_px / float(self.shape[0] * self.shape[1])


def tiled_forward(net: nn.Module, image: np.ndarray | torch.Tensor, multiple: int,
                  halo: int, tile_size: int | None, channels_last: bool = True,
                  edge_pad: int | None = None) -> np.ndarray:
    """Run ``net`` over a 2D image in overlapping tiles; only tile centres are kept.

    The image is first mirrored by ``edge_pad`` pixels on every side (and on the bottom
    and right up to a multiple of ``multiple``, the network's pooling): that padded image
    is what the network sees, whole or tiled. Tiles of ``tile_size`` are cut on a grid of
    that padded image, each with ``halo`` pixels of context on every side that has any
    (tiles at the padded image's border are clipped there, where the whole-image pass is
    clipped too), and each tile's centre is written back. With ``halo`` at least the
    network's receptive radius the result equals one pass over the whole padded image,
    whatever ``tile_size``.

    Parameters
    ----------
    net : nn.Module
        Fully convolutional network, ``(1, 1, H, W) -> (1, C, H, W)``.
    image : (H, W) array or tensor
    multiple : int
        The network's input size divisor (``2 ** depth``).
    halo : int
        Context on each inner tile side, a multiple of ``multiple``.
    tile_size : int or None
        Tile core size; None runs one pass over the whole image.
    channels_last : bool
        Feed channels-last tensors (faster for a fused channels-last network).
    edge_pad : int, optional
        Mirrored context at the image's own edges (default ``halo``). Smaller is
        cheaper: the network was trained on patches with zero-padded borders, so it needs
        little; 16 px costs about 25 % less than 96 px on a 1000 px image.

    Returns
    -------
    (C, H, W) float32 array of the network's raw outputs.
    """
    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    a = np.asarray(a, dtype=np.float32).reshape(a.shape[-2:])
    h, w = a.shape
    e = halo if edge_pad is None else int(edge_pad)
    if e < 0 or halo < 0 or halo % multiple:
        raise ValueError(f"halo ({halo}) must be a non-negative multiple of {multiple} and "
                         f"edge_pad ({e}) non-negative")
    # the padded image spans rows/cols -e .. hp-e of the input (mirrored outside it)
    hp = -(-(h + 2 * e) // multiple) * multiple
    wp = -(-(w + 2 * e) // multiple) * multiple
    step_y = hp if tile_size is None else max(multiple, (tile_size // multiple) * multiple)
    step_x = wp if tile_size is None else step_y
    out: np.ndarray | None = None
    for y0 in range(0, hp, step_y):
        y1 = min(y0 + step_y, hp)
        ty0, ty1 = max(0, y0 - halo), min(hp, y1 + halo)
        for x0 in range(0, wp, step_x):
            x1 = min(x0 + step_x, wp)
            tx0, tx1 = max(0, x0 - halo), min(wp, x1 + halo)
            # cut without a padded copy of the whole image
            tile = torch.from_numpy(_mirrored_window(a, ty0 - e, ty1 - e,
                                                     tx0 - e, tx1 - e))[None, None]
            if channels_last:
                tile = tile.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                res = net(tile)[0].float().numpy()
            if out is None:
                out = np.empty((res.shape[0], h, w), dtype=np.float32)
            # this tile's core, in input coordinates, clipped to the input
            oy0, oy1 = max(y0 - e, 0), min(y1 - e, h)
            ox0, ox1 = max(x0 - e, 0), min(x1 - e, w)
            if oy1 > oy0 and ox1 > ox0:
                out[:, oy0:oy1, ox0:ox1] = res[:, oy0 + e - ty0:oy1 + e - ty0,
                                               ox0 + e - tx0:ox1 + e - tx0]
    if out is None:  # pragma: no cover - the loops run at least once for h, w >= 1
        raise RuntimeError("tiled_forward produced no tile")
    return out


def _mirror_index(start: int, stop: int, n: int) -> np.ndarray:
    """Indices ``start..stop-1`` reflected into ``0..n-1`` as ``np.pad(mode="symmetric")``
    does (repeatedly, for pads longer than ``n``)."""
    j = np.mod(np.arange(start, stop), 2 * n)
    return np.where(j >= n, 2 * n - 1 - j, j)


def _mirrored_window(a: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """``a[y0:y1, x0:x1]`` (C-contiguous) with out-of-range rows/columns mirrored."""
    h, w = a.shape
    if y0 >= 0 and x0 >= 0 and y1 <= h and x1 <= w:
        return np.ascontiguousarray(a[y0:y1, x0:x1])
    return np.ascontiguousarray(a[np.ix_(_mirror_index(y0, y1, h), _mirror_index(x0, x1, w))])


def _is_constant(plane: np.ndarray, chunk_px: int = 1 << 20) -> bool:
    """True when every pixel equals the first (read in strips; stops at the first
    difference, so ordinary images cost one strip)."""
    first = plane[0, 0]
    rows = max(1, chunk_px // max(1, plane.shape[1]))
    return all(np.all(plane[r:r + rows] == first) for r in range(0, plane.shape[0], rows))


def _fuse_for_inference(net: UNetGenerator) -> nn.Module:
    """A copy of ``net`` with conv+BN+ReLU fused and channels-last memory (about 2x faster
    on CPU)."""
    net = copy.deepcopy(net).eval()
    for module in net.modules():
        if isinstance(module, nn.Sequential) and len(module) == 6:
            torch.ao.quantization.fuse_modules(module, [["0", "1", "2"], ["3", "4", "5"]],
                                               inplace=True)
    return net.to(memory_format=torch.channels_last)


#: (quarter turns, mirror) pairs: the first 2, 4 or all 8 are used by ``tta``
_DIHEDRAL = ((0, False), (0, True), (2, False), (2, True),
             (1, False), (1, True), (3, False), (3, True))
TTA_CHOICES = (1, 2, 4, 8)
#: "auto" is bfloat16 where the CPU does it natively (AVX512-BF16/AMX), else float32
PRECISIONS = ("auto", "float32", "bfloat16")


def native_bfloat16() -> bool:
    """True when this CPU runs bfloat16 convolutions natively (oneDNN), about twice as
    fast as float32; elsewhere bfloat16 is emulated and slower."""
    try:
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        return bool(native and torch.backends.mkldnn.is_available())
    except (AttributeError, RuntimeError):  # pragma: no cover - other torch builds
        return False


def _sigmoid_inplace(a: np.ndarray) -> np.ndarray:
    """The logistic function in place: no whole-size temporaries (the maps are the
    largest arrays)."""
    np.negative(a, out=a)
    with np.errstate(over="ignore"):  # exp overflow -> inf -> probability 0: right
        np.exp(a, out=a)
    a += 1.0
    np.reciprocal(a, out=a)
    return a


class Detector:
    """Finds gold particles with a trained generator.

    Build one with `Detector.from_pretrained` (a shipped model) or `Detector.from_folder`
    (any model folder, e.g. one you trained).

    Parameters
    ----------
    generator : UNetGenerator
        The trained network (any mode; a fused inference copy is made).
    config : ModelConfig
        Classes, canonical pixel size, tiling.
    thresholds : dict
        ``{"threshold": t}`` and optionally ``{"per_class": {"6": t6, ...}}``.
    metrics : dict, optional
        What the model folder says about its training and accuracy.
    threads : int, optional
        CPU threads for torch (default: all cores, at most 8).
    """

    def __init__(self, generator: UNetGenerator, config: ModelConfig, thresholds: dict,
                 metrics: dict | None = None, folder: Path | None = None,
                 threads: int | None = None, precision: str = "auto") -> None:
        self.config = config
        self.thresholds = dict(thresholds)
        self.metrics = dict(metrics or {})
        self.folder = folder
        self.generator = generator
        self._net = _fuse_for_inference(generator)
        self.set_threads(threads)
        self.precision = precision

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_folder(cls, folder: str | os.PathLike, verify: bool = True,
                    threads: int | None = None, precision: str = "auto") -> Detector:
        """Load a model folder (checksums verified, weights loaded without pickle code)."""
        folder = Path(folder)
        config, state, thresholds, metrics = read_model_folder(folder, verify=verify)
        net = UNetGenerator(config.n_maps, config.base_channels, config.depth)
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise GoldDiggerError(f"{folder}: weights do not fit the config ({err})") from None
        logger.info("loaded model %s from %s", config.name, folder)
        return cls(net.eval(), config, thresholds, metrics, folder, threads, precision)

    @classmethod
    def from_pretrained(cls, name: str | None = None, threads: int | None = None,
                        precision: str = "auto") -> Detector:
        """A shipped model by name (default: `golddigger.model.folder.DEFAULT_MODEL`), or
        a model folder path."""
        return cls.from_folder(resolve_model(name), threads=threads, precision=precision)

    # ------------------------------------------------------------------ properties
    @property
    def precision(self) -> str:
        """Arithmetic of the network: "float32" or "bfloat16" (resolved from "auto")."""
        return self._precision

    @precision.setter
    def precision(self, value: str) -> None:
        if value not in PRECISIONS:
            raise GoldDiggerError(f"precision must be one of {PRECISIONS}, got {value!r}")
        if value == "auto":
            value = "bfloat16" if native_bfloat16() else "float32"
        self._precision = value

    @property
    def classes(self) -> tuple[float, ...]:
        """Particle diameters (nm) the model knows."""
        return tuple(self.config.classes_nm)

    @property
    def pixel_size_nm(self) -> float:
        """The model's canonical pixel size (nm/px); inputs are resampled to it."""
        return self.config.pixel_size_nm

    @property
    def threshold(self) -> float:
        """The default score threshold (tuned on validation data)."""
        return float(self.thresholds.get("threshold", 0.5))

    def class_thresholds(self, threshold: float | None = None) -> list[float]:
        """One threshold per class: ``threshold`` for all, else the tuned ones."""
        if threshold is not None:
            if not 0.0 < float(threshold) < 1.0:
                raise GoldDiggerError(f"threshold must be between 0 and 1, got {threshold}")
            return [float(threshold)] * len(self.classes)
        per = self.thresholds.get("per_class", {})
        return [float(per.get(f"{d:g}", self.threshold)) for d in self.classes]

    def set_threads(self, threads: int | None) -> None:
        """Set torch's CPU threads (None: all cores, at most 8)."""
        if threads is None:
            threads = min(8, os.cpu_count() or 1)
        if int(threads) < 1:
            raise GoldDiggerError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(int(threads))

    def __repr__(self) -> str:
        cls = "/".join(f"{d:g}" for d in self.classes)
        return (f"Detector({self.config.name!r}, classes {cls} nm, "
                f"{self.pixel_size_nm:g} nm/px, threshold {self.threshold:.2f})")

    # ------------------------------------------------------------------ inference
    def specimen_mask(self, plane: np.ndarray, pixel_size_nm: float) -> np.ndarray | None:
        """True where ``plane`` is specimen, None when all of it is: flat canvas
        (padding, black corners, saturated areas) is not
        (`golddigger.model.specimen.specimen_mask`). Detections are never reported on
        or near the canvas, and counting areas should leave it out."""
        return specimen_mask(plane, pixel_size_nm)

    def predict_maps(self, plane: np.ndarray, pixel_size_nm: float,
                     tile_size: int | None = -1, tta: int = 1,
                     specimen: np.ndarray | None | str = "auto",
                     ) -> tuple[np.ndarray, tuple[float, float]]:
        """Probability maps ``(C, h, w)`` at the model's pixel size for one 2D plane.

        ``tta`` > 1 averages the probabilities over that many flips/rotations of the
        image (2, 4 or 8; see `TTA_CHOICES`), at that many times the cost.

        ``specimen`` (bool, the plane's shape; "auto" finds it with `specimen_mask`,
        None uses every pixel) restricts the normalisation's median and spread to the
        specimen; the rest is shown to the network as that median (a flat, empty
        background), so a canvas of any size changes neither.

        Returns the maps and the ``(fx, fy)`` factors from input to map pixels.
        """
        plane = np.asarray(plane) if not isinstance(plane, np.memmap) else plane
        if plane.ndim != 2:
            raise ValueError(f"expected a 2D plane, got shape {plane.shape}")
        if tta not in TTA_CHOICES:
            raise ValueError(f"tta must be one of {TTA_CHOICES}, got {tta!r}")
        if isinstance(specimen, str):
            specimen = specimen_mask(plane, pixel_size_nm)
        factor = pixel_size_nm / self.pixel_size_nm
        stats = robust_stats(plane, mask=specimen)
        if specimen is not None:
            # mirrored specimen at its edges, then an empty background: what the
            # network sees at an image's own edges
            plane = fill_canvas(plane, specimen, stats[0],
                                band_px=self.config.edge_pad_px / factor)
        t = resample_plane(plane, factor)
        h, w = t.shape[-2:]
        if min(h, w) < 8:
            raise GoldDiggerError(
                f"the image is only {plane.shape[1]} x {plane.shape[0]} px, {w} x {h} "
                f"at the model's scale: too small to hold a particle")
        t = np.asarray(normalise_tensor(t, stats), dtype=np.float32).reshape(h, w)
        size = self.config.tile_size if tile_size == -1 else tile_size
        maps: np.ndarray | None = None
        for k, flip in _DIHEDRAL[:tta]:
            view = np.rot90(t, k)
            if flip:
                view = view[:, ::-1]
            with torch.autocast("cpu", dtype=torch.bfloat16,
                                enabled=self._precision == "bfloat16"):
                logits = tiled_forward(self._net, np.ascontiguousarray(view),
                                       multiple=2**self.config.depth,
                                       halo=self.config.halo_px, tile_size=size,
                                       edge_pad=self.config.edge_pad_px)
            _sigmoid_inplace(logits)
            if flip:  # back to the image's orientation
                logits = logits[:, :, ::-1]
            logits = np.rot90(logits, -k, axes=(1, 2))
            if maps is None:
                maps = np.ascontiguousarray(logits)
            else:
                maps += logits
            del logits, view
        del t
        if maps is None:  # pragma: no cover - tta >= 1
            raise RuntimeError("no pass ran")
        if tta > 1:
            maps /= tta
        fy, fx = h / plane.shape[0], w / plane.shape[1]
        return maps, (fx, fy)

    # --------------------------------------------------------- the steps of predict
    def compute_maps(self, plane: np.ndarray, pixel_size_nm: float,
                     tile_size: int | None = -1, tta: int = 1, slice_index: int = 0,
                     name: str = "image", match: float = 1.0) -> DetectionMaps:
        """Step 1 of `predict`: the network's maps for one 2D plane, with its specimen.

        The only step that runs the network; keep the result to re-threshold or
        re-measure without running it again (`find_candidates`, `measure`,
        `apply_thresholds`).

        Parameters
        ----------
        plane : (H, W) array
        pixel_size_nm : float
            nm per pixel of ``plane``.
        tile_size, tta
            As in `predict`.
        slice_index : int
            The plane's 0-based stack index (carried to the particles).
        name : str
            For log messages.
        match : float
            The network is told the plane's pixels are ``1 / match`` as large as they
            are, so ``d`` nm gold looks to it like ``d / match`` nm gold (one of
            `scale_passes`; 1: the plane's own scale).
        """
        px = validate_pixel_size(pixel_size_nm, name)
        shape = (int(plane.shape[0]), int(plane.shape[1]))
        if _is_constant(plane):
            # nothing to find, and normalising a flat plane would only amplify
            # resampling round-off into spurious peaks
            logger.info("%s: slice %d is constant; no particles", name, slice_index)
            return DetectionMaps(None, (1.0, 1.0), px, shape,
                                 np.zeros(shape, dtype=bool), slice_index)
        specimen = specimen_mask(plane, px)
        if specimen is not None:
            frac = 1.0 - np.count_nonzero(specimen) / specimen.size
            log = logger.warning if frac > 0.5 else logger.info
            log("%s: %.0f %% of slice %d is flat canvas (padding, black corners or "
                "saturated areas), not specimen; it is left out of the normalisation, the "
                "detections and the counting area", name, 100 * frac, slice_index)
            if not specimen.any():
                return DetectionMaps(None, (1.0, 1.0), px, shape, specimen, slice_index)
        maps, scale = self.predict_maps(plane, px / match, tile_size, tta, specimen=specimen)
        return DetectionMaps(maps, scale, px, shape, specimen, slice_index)

    def size_match_factor(self, classes: Sequence[float | str] | None = None) -> float:
        """How much larger the gold of ``classes`` is than the gold the network knows it
        as, one factor for all (`golddigger.model.classes.size_match_factor`): 1 for the
        model's own classes and for sizes inside a gold-map model's training range
        (``gold_range_nm``); for 10 and 20 nm gold asked of a model that knows 6, 12 and
        18 nm, 5/3. `scale_passes` uses it when it fits every size asked for."""
        if classes is None or self._free_classes(classes) is None:
            return 1.0
        return size_match_factor([c.value for c in parse_classes(classes)],
                                 **self._known_sizes())

    def _known_sizes(self) -> dict:
        """What the network knows, for size matching: a gold-map model's training range,
        else its classes."""
        if self.config.output == "gold" and self.config.gold_range_nm is not None:
            return {"model_range_nm": tuple(self.config.gold_range_nm)}
        return {"model_nm": self.classes}

    def scale_passes(self, classes: Sequence[float | str] | None = None
                     ) -> list[tuple[float, list[float] | None]]:
        """The network passes that find ``classes``: ``[(match, class values kept from
        that pass or None for all), ...]`` (`golddigger.model.classes.scale_passes`).
        One pass at the image's scale for the model's own classes, one at
        `size_match_factor` when it shows every asked size as a known one (10/20 nm
        gold as 6/12 nm), else one per group of sizes (5 and 25 nm gold: 5 nm shown as
        6 nm, 25 nm as 18 nm), each size kept from its own pass."""
        if classes is None or self._free_classes(classes) is None:
            return [(1.0, None)]
        asked = [c.value for c in parse_classes(classes)]
        passes = scale_passes(asked, **self._known_sizes())
        if len(passes) == 1:
            return [(passes[0][0], None)]
        return [(g, [asked[i] for i in idx]) for g, idx in passes]

    def measured_candidates(self, plane: np.ndarray, pixel_size_nm: float,
                            classes: Sequence[float | str] | None = None,
                            floor: float | None = None, sizing: str | None = None,
                            tile_size: int | None = -1, tta: int = 1, slice_index: int = 0,
                            name: str = "image") -> tuple[ParticleTable, int]:
        """Steps 1-3 of `predict` on one plane, over its `scale_passes`: every
        candidate above ``floor`` (default `candidate_floor`), measured, one per
        particle; and the plane's count of non-specimen pixels."""
        floor = self.candidate_floor(None, classes) if floor is None else floor
        parts, excluded = [], 0
        for match, keep in self.scale_passes(classes):
            maps = self.compute_maps(plane, pixel_size_nm, tile_size, tta,
                                     slice_index=slice_index, name=name, match=match)
            excluded = maps.excluded_px
            candidates = self.find_candidates(maps, floor=floor)
            del maps
            measured = self.measure(candidates, plane, pixel_size_nm, sizing, classes,
                                    one_per_particle=False)
            parts.append(measured if keep is None
                         else measured[np.isin(measured.diameter_nm, keep)])
        table = parts[0] if len(parts) == 1 else ParticleTable.concat(parts)
        if self._free_classes(classes) is not None:
            table = self.one_per_particle(table, pixel_size_nm)
        return table, excluded

    def find_candidates(self, maps: DetectionMaps, threshold: float | None = None,
                        floor: float | None = None) -> ParticleTable:
        """Step 2 of `predict`: peaks of the maps, one per particle, in input pixels.

        Every peak above ``floor`` (default: the lowest of the class thresholds that
        ``threshold`` gives, see `class_thresholds`) is kept, with the class of its
        strongest map. Dropped: peaks on or within `SPECIMEN_MARGIN_NM` of
        non-specimen pixels, and peaks within `EDGE_MARGIN_PX` model pixels of the
        image's edge (there the mirrored context turns anything dark cut by the edge
        into a whole disc centred on it). No network runs here.
        """
        if floor is None:
            floor = min(self.class_thresholds(threshold))
        if maps.maps is None:
            return ParticleTable.empty()
        diameters = self.config.map_diameters_nm
        x, y, d, score = maps_to_particles(maps.maps, diameters, self.pixel_size_nm,
                                           [float(floor)] * len(diameters))
        # a window of a larger plane's maps: into the whole plane's map pixels
        x, y = x + maps.origin[1], y + maps.origin[0]
        if maps.core is not None:
            cy0, cy1, cx0, cx1 = maps.core
            core = (y >= cy0 - 0.5) & (y < cy1 - 0.5) & (x >= cx0 - 0.5) & (x < cx1 - 0.5)
            x, y, d, score = x[core], y[core], d[core], score[core]
        # the network sees mirrored context at the image's edges, where anything dark cut
        # by the edge (a particle mostly outside, a bump, a stain) and its mirror image
        # make one whole disc centred on the edge: peaks within a model pixel of the
        # edge are such mirror images, not particles one can see
        h, w = maps.maps.shape[-2:] if maps.full_size is None else maps.full_size
        inside = (x >= EDGE_MARGIN_PX) & (y >= EDGE_MARGIN_PX) & \
            (x <= w - 1 - EDGE_MARGIN_PX) & (y <= h - 1 - EDGE_MARGIN_PX)
        x, y, d, score = x[inside], y[inside], d[inside], score[inside]
        fx, fy = maps.scale
        # map pixels -> input pixels (half-pixel convention)
        x = (x + 0.5) / fx - 0.5
        y = (y + 0.5) / fy - 0.5
        table = ParticleTable(x, y, d, score, np.full(x.size, maps.slice_index))
        if maps.specimen is not None:
            margin = max(2.0, SPECIMEN_MARGIN_NM / maps.pixel_size_nm)
            sy, sx = maps.specimen_origin
            table = table[~excluded_near(maps.specimen, table.x - sx, table.y - sy, margin)]
        return table

    def measure(self, candidates: ParticleTable, image: CalibratedImage | np.ndarray,
                pixel_size_nm: float | None = None, sizing: str | None = None,
                classes: Sequence[float | str] | None = None,
                one_per_particle: bool = True) -> ParticleTable:
        """Step 3 of `predict`: size class (and refined centre) of each candidate.

        With ``sizing`` "image" (see `predict`) both are measured on the image
        (`golddigger.model.sizing.measure_particles`); with "maps" the candidates are
        returned as they are. ``image`` is the plane the candidates were found in, or
        the stack (each candidate is measured in its slice).

        When ``classes`` asks for sizes the model does not have (any diameters or
        ranges, `golddigger.model.classes.parse_classes`), each candidate's diameter
        is measured on a continuous scale (`measure_diameters`, kept in
        ``measured_nm``) and binned into the nearest class within its tolerance, or
        NaN ("other"); ``sizing`` is then "image" whatever is asked. Several
        candidates then within one measured radius are one particle (the strongest is
        kept, `one_per_particle`; ``one_per_particle=False`` leaves that to the caller,
        as detection in chunks does over all chunks).
        """
        free = self._free_classes(classes)
        sizing = self.config.sizing if sizing is None else sizing
        if sizing not in SIZING_MODES:
            raise GoldDiggerError(f"sizing must be one of {SIZING_MODES}, got {sizing!r}")
        if (sizing == "maps" and free is None) or len(candidates) == 0:
            return candidates
        if not isinstance(image, CalibratedImage):
            image = CalibratedImage(np.asarray(image), pixel_size_nm)
        px = validate_pixel_size(pixel_size_nm if pixel_size_nm is not None
                                 else image.pixel_size_nm, str(image.path or "image"))
        x, y, d = candidates.x.copy(), candidates.y.copy(), candidates.diameter_nm.copy()
        measured = np.full(x.size, np.nan)
        for s in np.unique(candidates.slice):
            on = candidates.slice == s
            plane = image.slice(int(s)) if image.n_slices > 1 else image.slice(0)
            if free is None:
                d[on], x[on], y[on] = measure_particles(plane, x[on], y[on], self.classes, px)
            else:
                lo = max(1.0, 0.7 * min(c.lo for c in free))
                hi = 1.3 * max(c.hi for c in free)
                # the centre refined at the nearest class's scale, then the size measured
                _, x[on], y[on] = measure_particles(
                    plane, x[on], y[on], [c.value for c in free], px)
                measured[on] = measure_diameters(plane, x[on], y[on], px, lo, hi)
                d[on] = assign_classes(measured[on], free)
        table = ParticleTable(x, y, d, candidates.score.copy(), candidates.slice.copy(),
                              measured)
        if free is None or not one_per_particle:
            return table
        return self.one_per_particle(table, px)

    @staticmethod
    def one_per_particle(measured: ParticleTable, pixel_size_nm: float) -> ParticleTable:
        """The strongest of the measured candidates within each one's measured radius
        (gold larger than the model's classes gives several peaks). Order kept."""
        if len(measured) == 0:
            return measured
        t = measured
        radius = 0.5 * t.measured_nm / pixel_size_nm
        keep = [np.flatnonzero(t.slice == s)[suppress_across_classes(
            t.x[t.slice == s], t.y[t.slice == s], t.score[t.slice == s],
            radius[t.slice == s])] for s in np.unique(t.slice)]
        return t[np.sort(np.concatenate(keep))]

    def apply_thresholds(self, measured: ParticleTable, threshold: float | None = None,
                         classes: Sequence[float] | None = None,
                         region: Region | np.ndarray | None = None) -> ParticleTable:
        """Step 4 of `predict`: each particle held to its class's threshold, only the
        wanted ``classes`` and those inside ``region`` kept, sorted by slice, then row,
        then column. No network runs here: call it again with another threshold on the
        same measured candidates (found with a ``floor`` at or below it)."""
        free = self._free_classes(classes)
        if isinstance(region, np.ndarray):
            region = Region.from_mask(region)
        t = measured
        if free is None:
            wanted = self._check_classes(classes)
            thresholds = np.asarray(self.class_thresholds(threshold))
            idx = np.clip(np.searchsorted(self.classes, t.diameter_nm), 0,
                          len(self.classes) - 1)
            keep = t.score >= thresholds[idx]
            keep &= np.isin(t.diameter_nm, wanted)
        else:
            sized = t.diameter_nm[np.isfinite(t.diameter_nm)]
            if not np.isin(sized, [c.value for c in free]).all():
                raise GoldDiggerError(
                    f"these candidates were sized for other classes than "
                    f"{', '.join(c.label for c in free)}: find them with these classes "
                    "(Detector.measure, golddigger.live.find_candidates classes=...)")
            # classes the model has no thresholds for: its common threshold
            keep = t.score >= (self.threshold if threshold is None
                               else self.class_thresholds(threshold)[0])
            other = keep & ~np.isfinite(t.diameter_nm)
            if other.any():
                logger.info("%d detections fit none of the classes %s (other); not "
                            "reported", int(other.sum()),
                            ", ".join(c.label for c in free))
            keep &= np.isfinite(t.diameter_nm)
        if region is not None:
            keep &= region.contains(t.x, t.y)
        t = t[keep]
        return t[np.lexsort((t.x, t.y, t.slice))]

    def check_request(self, image: CalibratedImage, pixel_size_nm: float | None,
                      region: Region | np.ndarray | None, threshold: float | None,
                      classes: Sequence[float | str] | None, sizing: str | None,
                      slices: Iterable[int] | None
                      ) -> tuple[float, Region | None, str, list[int]]:
        """Check a detection request before any work (`predict`, and
        `golddigger.model.chunked.predict_chunked`): ``(pixel size, region, sizing,
        slice indices)``; bad values raise `GoldDiggerError` with the fix."""
        px = validate_pixel_size(pixel_size_nm if pixel_size_nm is not None
                                 else image.pixel_size_nm, str(image.path or "image"))
        if isinstance(region, np.ndarray):
            region = Region.from_mask(region)
        if region is not None and region.is_empty():
            raise GoldDiggerError("the region (ROI) is empty: draw an area selection")
        self._free_classes(classes)  # bad classes or threshold raise here, before work
        self.class_thresholds(threshold)
        self.check_limits(px, classes)
        for match, keep in self.scale_passes(classes):
            if match != 1.0 or keep is not None:
                logger.info("the network sees the image as if at %.3g nm/px (x%.3g), where "
                            "%s nm gold looks like gold %s knows", px / match, 1 / match,
                            "the asked" if keep is None else "/".join(f"{v:g}" for v in keep),
                            self.config.name)
        sizing = self.config.sizing if sizing is None else sizing
        if sizing not in SIZING_MODES:
            raise GoldDiggerError(f"sizing must be one of {SIZING_MODES}, got {sizing!r}")
        indices = list(range(image.n_slices)) if slices is None else [int(s) for s in slices]
        for s in indices:
            if not 0 <= s < image.n_slices:
                raise GoldDiggerError(f"slice {s} out of range (the image has "
                                      f"{image.n_slices})")
        return px, region, sizing, indices

    def predict(self, image: CalibratedImage | np.ndarray, pixel_size_nm: float | None = None,
                region: Region | np.ndarray | None = None, threshold: float | None = None,
                classes: Sequence[float] | None = None, slices: Iterable[int] | None = None,
                tile_size: int | None = -1, progress: bool = False,
                sizing: str | None = None, tta: int = 1) -> ParticleTable:
        """Find gold particles.

        The four steps `compute_maps`, `find_candidates`, `measure` and
        `apply_thresholds` in sequence, slice by slice.

        Parameters
        ----------
        image : CalibratedImage or ndarray
            A 2D image ``(Y, X)`` or a stack ``(Z, Y, X)``; any grey dtype.
        pixel_size_nm : float, optional
            nm per pixel; overrides the image's calibration (required for bare arrays).
        region : Region or bool array, optional
            Keep only particles whose centre is inside (e.g. the membrane outline).
        threshold : float, optional
            Score threshold in (0, 1) for all classes; default: the model's tuned one.
            Lower finds more particles (more false ones too).
        classes : sequence of float or str, optional
            Report only these diameters (nm); all classes still compete for each
            particle. Diameters the model does not have, and ranges (``"5-8"``), work
            too: each particle's diameter is then measured on the image
            (``measured_nm``) and binned into the nearest class within 25 % or 2.5 nm
            (a range: inside it); particles that fit none ("other") are not reported
            (`golddigger.model.classes`). The model's common threshold applies then,
            and the network sees the image at the scale where that gold looks like
            gold it knows (`scale_passes`: 10 and 20 nm gold as 6 and 12 nm in one
            pass; 5 and 25 nm gold in two).
        slices : iterable of int, optional
            0-based stack slices to process (default all).
        tile_size : int or None
            Tile core size in model pixels; -1 uses the model's, None runs untiled.
        progress : bool
            Show a progress bar over slices.
        sizing : {"maps", "image"}, optional
            How each particle's class is decided (default: the model's ``sizing``): the
            strongest class map, or measured from the image (`golddigger.model.sizing`;
            the centre is then refined on the image too). With "image" the class
            thresholds apply to the measured class.
        tta : {1, 2, 4, 8}
            Test-time augmentation: average the maps over this many flips/rotations
            of the image. Costs that many network passes; the model's threshold was
            tuned without it (``golddigger evaluate`` tells whether it helps on your
            images).

        Returns
        -------
        ParticleTable
            Centres in pixels of the input image, diameter = class, score = peak
            probability, slice = 0-based stack index, ``measured_nm`` = measured
            diameter (with classes the model does not have; else NaN). Nothing is
            reported within `EDGE_MARGIN_PX` model pixels of the image's edge, nor on or
            near flat canvas (`specimen_mask`). Its attribute ``excluded_px``
            maps each processed slice to its count of non-specimen pixels (flat canvas,
            see `specimen_mask`), which hold no detections and should not count in an
            area.
        """
        if not isinstance(image, CalibratedImage):
            arr = np.asarray(image)
            if arr.ndim not in (2, 3):
                raise GoldDiggerError(f"expected a 2D image or a stack, got shape {arr.shape}")
            image = CalibratedImage(arr, pixel_size_nm)
        if tta not in TTA_CHOICES:
            raise GoldDiggerError(f"tta must be one of {TTA_CHOICES}, got {tta!r}")
        px, region, sizing, indices = self.check_request(image, pixel_size_nm, region,
                                                         threshold, classes, sizing, slices)
        it = indices
        if progress and len(indices) > 1:
            from tqdm.auto import tqdm

            it = tqdm(indices, desc="slices", leave=False)
        tables = []
        excluded: dict[int, int] = {}
        for s in it:
            plane = image.slice(s)
            measured, excluded[s] = self.measured_candidates(
                plane, px, classes, self.candidate_floor(threshold, classes), sizing,
                tile_size, tta, slice_index=s, name=image.name)
            tables.append(self.apply_thresholds(measured, threshold, classes, region))
        result = ParticleTable.concat(tables)
        result.excluded_px = excluded
        return result

    def candidate_floor(self, threshold: float | None = None,
                        classes: Sequence[float | str] | None = None) -> float:
        """The score above which `predict` keeps candidates (`find_candidates`): the
        lowest class threshold; each is held to its own class's threshold once its class
        is final (`apply_thresholds`; equal to thresholding inside, for "maps")."""
        thresholds = self.class_thresholds(threshold)
        if self._free_classes(classes) is None:
            return min(thresholds)
        return self.threshold if threshold is None else thresholds[0]

    def validated_ranges(self) -> dict[str, tuple[float, float] | None]:
        """Pixel sizes (nm/px) and gold diameters (nm) the model was validated on, from
        its folder's ``metrics.json`` (``"validated"``); gold defaults to the model's
        classes, pixel size to unknown (None)."""
        v = self.metrics.get("validated") or {}
        px = v.get("pixel_size_nm")
        gold = gold_validated(self.metrics, self.config.gold_range_nm, self.classes)
        return {"pixel_size_nm": None if px is None else (float(px[0]), float(px[1])),
                "gold_nm": gold}

    def check_limits(self, pixel_size_nm: float,
                     classes: Sequence[float | str] | None = None) -> list[str]:
        """Warn (log, and return the messages) when the pixel size or a size class asked
        for lies outside what the model was validated on (`validated_ranges`)."""
        out = []
        ranges = self.validated_ranges()
        px = float(pixel_size_nm)
        sizes = ([c.value for c in parse_classes(classes)] if classes is not None
                 else list(self.classes))
        lo_px = ranges["pixel_size_nm"]
        if lo_px is not None and not lo_px[0] * 0.999 <= px <= lo_px[1] * 1.001:
            out.append(f"pixel size {px:.3g} nm is outside the {lo_px[0]:g}-{lo_px[1]:g} "
                       f"nm/px {self.config.name} was validated on; check its results "
                       "against a few labelled particles (golddigger evaluate)")
        gold = ranges["gold_nm"]
        outside = [d for d in sizes if not gold[0] * 0.999 <= d <= gold[1] * 1.001]
        if outside:
            others = models_covering(sizes, exclude=self.config.name)
            advice = (f"the model {others[0]} was validated on these sizes; choose it as "
                      "the model" if others else
                      "check its results against a few labelled particles")
            out.append(f"{', '.join(f'{d:g}' for d in outside)} nm gold is outside the "
                       f"{gold[0]:g}-{gold[1]:g} nm {self.config.name} was validated on; "
                       + advice)
        small = min(sizes)
        if px > 0.5 * small / 1.5:
            out.append(f"pixel size {px:.3g} nm is coarse for {small:g} nm gold (under 3 px "
                       "across); expect misses")
        for msg in out:
            logger.warning(msg)
        return out

    def _known_classes(self, classes: Sequence[float | str]) -> list[float] | None:
        """The model's classes matching ``classes`` (all of them), else None (always
        None for a gold-map model: its classes are only a default binning)."""
        if self.config.output == "gold":
            return None
        wanted = []
        for c in classes:
            try:
                value = float(c)
            except (TypeError, ValueError):
                return None  # a range
            match = [d for d in self.classes if abs(d - value) < 0.5]
            if not match:
                return None
            wanted.append(match[0])
        return wanted

    def _free_classes(self, classes: Sequence[float | str] | None) -> list[SizeClass] | None:
        """Parsed ``classes`` when they are not all the model's own (sizes then measured
        and binned), else None. A gold-map model always measures and bins: by default
        into its ``classes_nm``."""
        if classes is None:
            if self.config.output != "gold":
                return None
            classes = list(self.classes)
        parsed = parse_classes(classes)  # raises for bad ones
        return None if self._known_classes(classes) is not None else parsed

    def report_classes(self, classes: Sequence[float | str] | None = None) -> list[float]:
        """The diameters (nm) particles are reported as for ``classes`` asked for: the
        model's own classes, or the asked ones' values when the model does not have
        them (a range reports its midpoint)."""
        free = self._free_classes(classes)
        return list(self.classes) if free is None else [c.value for c in free]

    def _check_classes(self, classes: Sequence[float | str] | None) -> np.ndarray:
        """The model's classes asked for (all of them by default). Classes it does not
        have are valid too (any diameters or ranges): then the model's classes that
        may hold them are returned."""
        if classes is None:
            return np.asarray(self.classes)
        known = self._known_classes(classes)
        if known is None:
            parse_classes(classes)
            return np.asarray(self.classes)
        return np.asarray(known)
