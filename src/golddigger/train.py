"""Training the conditional GAN on a lab's own annotations (and optionally synthetic images).

The generator learns per-class particle maps with a positive-weighted cross-entropy,
computed only inside each image's annotated region (gold outside it is unlabelled), plus a
PatchGAN adversarial term (LSGAN) whose weight is ``TrainConfig.adv_weight`` (0 turns the
GAN off). Inputs are resampled to the model's pixel size, so images of any magnification
train one model.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from golddigger.errors import GoldDiggerError
from golddigger.io.images import validate_pixel_size
from golddigger.io.regions import Region
from golddigger.model.config import ModelConfig
from golddigger.model.networks import PatchDiscriminator, UNetGenerator, count_parameters
from golddigger.model.preprocess import normalise_tensor, resample_plane, robust_stats
from golddigger.model.specimen import specimen_mask
from golddigger.model.targets import render_targets
from golddigger.particles import ParticleTable
from golddigger.recipes import RECIPES, SHIPPED_RECIPE, Recipe, TrainConfig

__all__ = ["RECIPES", "Recipe", "SHIPPED_RECIPE", "TrainConfig", "TrainingPair", "Trainer",
           "prepare_pair", "tune_threshold", "tune_class_thresholds",
           "filter_by_class_thresholds"]

logger = logging.getLogger(__name__)

#: Score thresholds tried when tuning (validation, cross-validation).
THRESHOLD_GRID: tuple[float, ...] = tuple(round(0.1 + 0.02 * i, 2) for i in range(41))

#: A class gets its own threshold only if validation holds at least this many of it.
MIN_PER_CLASS_FOR_TUNING = 15


@dataclass
class TrainingPair:
    """One training image at the model's scale, in several scale/intensity variants."""

    name: str
    variants: list[np.ndarray]  # normalised float32 (H, W), one per variant
    xy: list[np.ndarray]  # (N, 2) particle centres per variant
    masks: list[np.ndarray]  # bool (H, W) loss region per variant
    class_index: np.ndarray  # (N,) class of each particle (its map, and its balance group)
    synthetic: bool = False
    weights: np.ndarray = field(default=None)  # type: ignore[assignment]
    diameter_nm: np.ndarray = field(default=None)  # type: ignore[assignment]  # (N,) labels
    scales: list[float] = field(default_factory=list)  # magnification of each variant


def prepare_pair(name: str, image: np.ndarray, pixel_size_nm: float, particles: ParticleTable,
                 config: ModelConfig, region: Region | None = None, buffer_nm: float = 30.0,
                 scale_jitter: float = 0.0, n_scales: int = 1, rng: np.random.Generator | None
                 = None, synthetic: bool = False, jpeg_variant: bool = True,
                 outside: str = "ignore", scales: Sequence[float] | None = None
                 ) -> TrainingPair:
    """Resample, normalise and label one image for training.

    The annotated region is ``region`` if given, else the hull of the particles grown by
    ``buffer_nm`` (the annotators labelled only their region). Outside it, gold may be
    unlabelled: with ``outside="ignore"`` the loss skips it; with ``"candidates"`` it is
    used as negative ground truth except for discs around every blob-like spot a lenient
    LoG finds (`outside_negatives`), so membrane edges, shadows and replica texture
    everywhere teach the model what is not gold, while possible unlabelled gold is left
    out. Particles whose diameter is not one of the model's classes raise a
    `GoldDiggerError`, except for a gold-map model (``config.output == "gold"``), which
    learns gold of any diameter (its classes only group particles for balancing).

    Each variant is the image magnified by one of ``scales`` (default: ``n_scales``
    values spread over ``1 +- scale_jitter``) on top of the model's pixel size, so gold
    of one labelled size is seen at several apparent sizes.

    The median and spread that normalise the image are those of its specimen
    (`golddigger.model.specimen.specimen_mask`), as at inference.
    """
    px = validate_pixel_size(pixel_size_nm, name)
    rng = rng or np.random.default_rng(0)
    image = np.asarray(image)
    if image.ndim != 2:
        raise GoldDiggerError(f"{name}: training images must be 2D planes")
    classes = np.asarray(config.classes_nm)
    if len(particles):
        dist = np.abs(particles.diameter_nm[:, None] - classes[None, :])
        ci = dist.argmin(axis=1)
        bad = dist.min(axis=1) > 0.25 * classes[ci]
        if bad.any() and config.output != "gold":
            raise GoldDiggerError(
                f"{name}: particles of {sorted(set(particles.diameter_nm[bad]))} nm are not "
                f"among the model's classes {list(config.classes_nm)}; pass --classes")
    else:
        ci = np.zeros(0, dtype=int)
    if region is None:
        if len(particles) == 0:
            raise GoldDiggerError(f"{name}: no particles and no region: nothing to learn from")
        region = Region.hull_of_points(particles.xy, buffer_nm / px)
    full_mask = region.to_mask(image.shape)
    if outside == "candidates":
        full_mask |= outside_negatives(image, px, config.classes_nm)
    elif outside != "ignore":
        raise ValueError(f"outside must be 'ignore' or 'candidates', got {outside!r}")
    stats = robust_stats(image, mask=specimen_mask(image, px))
    if scales is None:
        scales = ([1.0] if n_scales == 1 else
                  list(np.linspace(1 - scale_jitter, 1 + scale_jitter, n_scales)))
    variants, xys, masks = [], [], []
    for k, s in enumerate(scales):
        src = image
        if jpeg_variant and k % 2 == 1:
            src = _jpeg(image, int(rng.integers(55, 90)))
        factor = px / config.pixel_size_nm * s
        t = normalise_tensor(resample_plane(src, factor), stats)[0, 0].numpy()
        fy, fx = t.shape[0] / image.shape[0], t.shape[1] / image.shape[1]
        xy = np.stack([(particles.x + 0.5) * fx - 0.5, (particles.y + 0.5) * fy - 0.5], 1) \
            if len(particles) else np.zeros((0, 2))
        m = resample_plane(full_mask.astype(np.float32), factor)[0, 0].numpy() > 0.5
        variants.append(np.ascontiguousarray(t))
        xys.append(xy)
        masks.append(m)
    return TrainingPair(name, variants, xys, masks, ci, synthetic,
                        diameter_nm=np.asarray(particles.diameter_nm, dtype=float)
                        if len(particles) else np.zeros(0),
                        scales=[float(s) for s in scales])


def outside_negatives(image: np.ndarray, pixel_size_nm: float, classes_nm: Sequence[float],
                      threshold: float = 3.0, margin_nm: float = 4.0) -> np.ndarray:
    """Pixels safe to call "not gold" in an unannotated image: everything except discs
    (particle radius + ``margin_nm``) around blob-like spots a lenient LoG finds.

    The LoG threshold is far below the tuned one (3 vs about 5 noise units) and its
    roundness test lenient, so faint or unusual gold is spared; ridges (membrane edges)
    fail the roundness test and stay negative.
    """
    import hashlib

    from skimage.draw import disk

    from golddigger.baseline import LogParams, detect_log

    a = np.ascontiguousarray(image)
    key = (hashlib.sha1(a.tobytes()).hexdigest(), a.shape, float(pixel_size_nm),
           tuple(classes_nm), threshold, margin_nm)
    if key in _NEGATIVES_CACHE:
        return _NEGATIVES_CACHE[key].copy()
    params = LogParams(classes=tuple(float(c) for c in classes_nm), threshold=threshold,
                       overlap=0.5, min_roundness=0.3)
    blobs = detect_log(np.asarray(image), pixel_size_nm, params)
    mask = np.ones(np.asarray(image).shape, dtype=bool)
    for x, y, d, _s, _z in blobs:
        r = (0.5 * max(d, min(classes_nm)) + margin_nm) / pixel_size_nm
        rr, cc = disk((y, x), r, shape=mask.shape)
        mask[rr, cc] = False
    if len(_NEGATIVES_CACHE) > 64:
        _NEGATIVES_CACHE.clear()
    _NEGATIVES_CACHE[key] = mask
    return mask.copy()


_NEGATIVES_CACHE: dict = {}


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    a = np.asarray(image)
    if a.dtype != np.uint8:
        lo, hi = np.percentile(a, [0.1, 99.9])
        a = np.clip((a - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())))


class _PatchSampler:
    """Random training patches with targets, loss masks and augmentation."""

    def __init__(self, pairs: Sequence[TrainingPair], config: ModelConfig, tcfg: TrainConfig,
                 rng: np.random.Generator) -> None:
        self.real = [p for p in pairs if not p.synthetic]
        self.synth = [p for p in pairs if p.synthetic]
        if not self.real and not self.synth:
            raise GoldDiggerError("no training images")
        self.config, self.tcfg, self.rng = config, tcfg, rng
        self.sigma = np.array([config.target_sigma_factor * 0.5 * d / config.pixel_size_nm
                               for d in config.classes_nm])
        # rare classes (12 nm: a few dozen labels) are centred on more often
        n_cls = len(config.classes_nm)
        counts = {False: np.zeros(n_cls), True: np.zeros(n_cls)}
        for p in pairs:
            counts[p.synthetic] += np.bincount(p.class_index, minlength=n_cls)
        self._particle_p = {}
        for p in pairs:
            c = np.maximum(counts[p.synthetic], 1.0)
            w = c[p.class_index] ** -tcfg.class_balance
            self._particle_p[id(p)] = w / w.sum() if w.size else w

    def _pick_pair(self) -> TrainingPair:
        use_synth = self.synth and (not self.real or self.rng.random() < self.tcfg.synth_fraction)
        pool = self.synth if use_synth else self.real
        # weight images by particle count (plus one) so dense images are seen more
        w = np.array([len(p.class_index) + 20.0 for p in pool])
        return pool[self.rng.choice(len(pool), p=w / w.sum())]

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        P = self.tcfg.patch_size
        pair = self._pick_pair()
        v = int(self.rng.integers(len(pair.variants)))
        img, xy, mask = pair.variants[v], pair.xy[v], pair.masks[v]
        h, w = img.shape
        if len(xy) and self.rng.random() < self.tcfg.particle_fraction:
            i = self.rng.choice(len(xy), p=self._particle_p[id(pair)])
            cx, cy = xy[i] + self.rng.uniform(-P / 3, P / 3, 2)
        else:
            rows, cols = np.nonzero(mask[::8, ::8])
            if rows.size:
                k = self.rng.integers(rows.size)
                cy, cx = rows[k] * 8.0, cols[k] * 8.0
            else:
                cy, cx = self.rng.uniform(0, h), self.rng.uniform(0, w)
        y0 = int(np.clip(round(cy - P / 2), 0, max(0, h - P)))
        x0 = int(np.clip(round(cx - P / 2), 0, max(0, w - P)))
        patch = np.zeros((P, P), np.float32)
        pm = np.zeros((P, P), bool)
        sub = img[y0:y0 + P, x0:x0 + P]
        patch[:sub.shape[0], :sub.shape[1]] = sub
        pm[:sub.shape[0], :sub.shape[1]] = mask[y0:y0 + P, x0:x0 + P]
        n_maps = self.config.n_maps
        if len(xy):
            near = (xy[:, 0] > x0 - 40) & (xy[:, 0] < x0 + P + 40) & \
                   (xy[:, 1] > y0 - 40) & (xy[:, 1] < y0 + P + 40)
            if self.config.output == "gold":
                # one map; each particle's Gaussian follows its size as seen in this variant
                sigma = (self.config.target_sigma_factor * 0.5 * pair.diameter_nm[near]
                         * pair.scales[v] / self.config.pixel_size_nm)
                index = np.zeros(int(near.sum()), dtype=int)
            else:
                sigma, index = self.sigma[pair.class_index[near]], pair.class_index[near]
            tgt = render_targets((P, P), xy[near, 0] - x0, xy[near, 1] - y0, index, n_maps,
                                 sigma)
        else:
            tgt = np.zeros((n_maps, P, P), np.float32)
        patch, tgt, pm = self._augment(patch, tgt, pm)
        return patch, tgt, pm

    def _augment(self, patch, tgt, pm):
        rng = self.rng
        k = int(rng.integers(4))
        patch, tgt, pm = np.rot90(patch, k), np.rot90(tgt, k, axes=(1, 2)), np.rot90(pm, k)
        if rng.random() < 0.5:
            patch, tgt, pm = patch[:, ::-1], tgt[:, :, ::-1], pm[:, ::-1]
        patch = np.ascontiguousarray(patch)
        # intensity: contrast, offset, gamma-like bend, blur, noise
        a = float(np.exp(rng.uniform(np.log(0.6), np.log(1.5))))
        patch = patch * a + rng.uniform(-0.4, 0.4)
        if rng.random() < 0.3:
            g = rng.uniform(-0.04, 0.04)
            patch = patch + g * patch * np.abs(patch)
        if rng.random() < 0.3:
            from scipy.ndimage import gaussian_filter

            patch = gaussian_filter(patch, rng.uniform(0.3, 0.9))
        if rng.random() < 0.5:
            patch = patch + rng.normal(0, rng.uniform(0.05, 0.4), patch.shape)
        return (np.clip(patch, -20, 20).astype(np.float32), np.ascontiguousarray(tgt),
                np.ascontiguousarray(pm))

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        items = [self.sample() for _ in range(self.tcfg.batch_size)]
        x = torch.from_numpy(np.stack([i[0] for i in items]))[:, None]
        y = torch.from_numpy(np.stack([i[1] for i in items]))
        m = torch.from_numpy(np.stack([i[2] for i in items]))[:, None].float()
        return x, y, m


class Trainer:
    """Trains a generator (and discriminator) on prepared pairs.

    Parameters
    ----------
    config : ModelConfig
        The model to build.
    tcfg : TrainConfig
        Training settings.
    checkpoint : Path, optional
        File for periodic checkpoints; `Trainer.fit` resumes from it when it exists.
    """

    def __init__(self, config: ModelConfig, tcfg: TrainConfig,
                 checkpoint: Path | None = None) -> None:
        if tcfg.patch_size % 2**config.depth:
            raise GoldDiggerError(f"patch size must be a multiple of {2**config.depth}")
        self.config, self.tcfg, self.checkpoint = config, tcfg, checkpoint
        torch.manual_seed(tcfg.seed)
        if tcfg.threads:
            torch.set_num_threads(tcfg.threads)
        n = config.n_maps
        self.G = UNetGenerator(n, config.base_channels, config.depth)
        self.D = PatchDiscriminator(1 + n) if tcfg.adv_weight > 0 else None
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=tcfg.lr, betas=(0.5, 0.999))
        self.opt_d = (torch.optim.Adam(self.D.parameters(), lr=tcfg.lr_d, betas=(0.5, 0.999))
                      if self.D is not None else None)
        self.step = 0
        self.history: list[dict] = []
        logger.info("generator %d parameters, discriminator %d", count_parameters(self.G),
                    count_parameters(self.D) if self.D is not None else 0)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: Path) -> None:
        from golddigger.io.safe import atomic_path

        state = {"G": self.G.state_dict(), "opt_g": self.opt_g.state_dict(),
                 "step": self.step, "history": self.history}
        if self.D is not None:
            state |= {"D": self.D.state_dict(), "opt_d": self.opt_d.state_dict()}
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    def load_checkpoint(self, path: Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.G.load_state_dict(state["G"])
        self.opt_g.load_state_dict(state["opt_g"])
        if self.D is not None and "D" in state:
            self.D.load_state_dict(state["D"])
            self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        self.history = list(state.get("history", []))
        logger.info("resumed from %s at step %d", path, self.step)

    # ------------------------------------------------------------------ training
    def _lr_factor(self) -> float:
        # linear warm-up, then cosine decay to 5 %
        s, total = self.step, self.tcfg.steps
        if s < 100:
            return (s + 1) / 100
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))

    def fit(self, pairs: Sequence[TrainingPair], progress: bool = True,
            callback: Callable[[Trainer], None] | None = None) -> list[dict]:
        """Train until ``steps`` or ``max_minutes``; returns the loss history."""
        from tqdm.auto import tqdm

        if self.checkpoint is not None and self.checkpoint.is_file():
            self.load_checkpoint(self.checkpoint)
        rng = np.random.default_rng(self.tcfg.seed + self.step)
        sampler = _PatchSampler(pairs, self.config, self.tcfg, rng)
        t_end = (time.monotonic() + 60 * self.tcfg.max_minutes
                 if self.tcfg.max_minutes else None)
        bar = tqdm(total=self.tcfg.steps, initial=self.step, disable=not progress,
                   desc="training", leave=False)
        self.G.train()
        if self.D is not None:
            self.D.train()
        ema: dict[str, float] = {}
        while self.step < self.tcfg.steps:
            if t_end is not None and time.monotonic() > t_end:
                logger.info("stopping at step %d: --max-minutes reached", self.step)
                break
            x, y, m = sampler.batch()
            losses = self._train_step(x, y, m)
            self.step += 1
            for k, v in losses.items():
                ema[k] = v if k not in ema else 0.98 * ema[k] + 0.02 * v
            if self.step % 50 == 0:
                self.history.append({"step": self.step, **{k: round(v, 5) for k, v in
                                                           ema.items()}})
                bar.set_postfix({k: f"{v:.4f}" for k, v in ema.items()})
            bar.update(1)
            if self.checkpoint is not None and self.step % self.tcfg.checkpoint_every == 0:
                self.save_checkpoint(self.checkpoint)
            if callback is not None:
                callback(self)
        bar.close()
        if self.checkpoint is not None:
            self.save_checkpoint(self.checkpoint)
        self.G.eval()
        return self.history

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> dict[str, float]:
        for group in self.opt_g.param_groups:
            group["lr"] = self.tcfg.lr * self._lr_factor()
        logits = self.G(x)
        weight = m * (1.0 + self.tcfg.pos_weight * y)
        rec = (F.binary_cross_entropy_with_logits(logits, y, reduction="none") * weight).sum() \
            / weight.sum().clamp_min(1.0)
        out = {"rec": float(rec.detach())}
        loss = rec
        if self.D is not None:
            fake = torch.sigmoid(logits) * m
            real = y * m
            # discriminator step (LSGAN)
            for group in self.opt_d.param_groups:
                group["lr"] = self.tcfg.lr_d * self._lr_factor()
            d_real = self.D(x, real)
            d_fake = self.D(x, fake.detach())
            loss_d = 0.5 * ((d_real - 1) ** 2).mean() + 0.5 * (d_fake**2).mean()
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            adv = ((self.D(x, fake) - 1) ** 2).mean()
            loss = rec + self.tcfg.adv_weight * adv
            out |= {"adv": float(adv.detach()), "d": float(loss_d.detach())}
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        return out


def tune_threshold(score_fn: Callable[[float], float],
                   grid: Sequence[float] = THRESHOLD_GRID
                   ) -> tuple[float, float]:
    """The threshold in ``grid`` with the best ``score_fn`` (e.g. pooled class-agnostic F1);
    ties go to the middle of the best plateau. Returns (threshold, score)."""
    scores = np.array([score_fn(t) for t in grid])
    best = scores.max()
    near = np.flatnonzero(scores >= best - 1e-9)
    t = float(grid[near[len(near) // 2]])
    return t, float(best)


def filter_by_class_thresholds(particles: ParticleTable, thresholds: dict[float, float]
                               ) -> ParticleTable:
    """Keep particles whose score passes their class's threshold (``{diameter: t}``)."""
    t = np.array([thresholds.get(float(d), np.inf) for d in particles.diameter_nm])
    return particles[particles.score >= t]


def tune_class_thresholds(score_fn: Callable[[dict[float, float]], float],
                          classes: Sequence[float],
                          grid: Sequence[float] = THRESHOLD_GRID,
                          rounds: int = 2) -> tuple[dict[float, float], float]:
    """Per-class thresholds by coordinate ascent on ``score_fn`` (e.g. pooled
    class-agnostic F1 over *several* images: one class's threshold is never chosen on a
    handful of its particles alone). Starts from the best common threshold."""
    common, best = tune_threshold(lambda t: score_fn({float(c): t for c in classes}), grid)
    current = {float(c): common for c in classes}
    for _ in range(rounds):
        changed = False
        for c in current:
            def f(t, c=c):
                return score_fn(current | {c: t})

            t, score = tune_threshold(f, grid)
            if score > best + 1e-9:
                current[c], best, changed = t, score, True
        if not changed:
            break
    return current, best


@dataclass
class Sample:
    """An annotated image for training or validation."""

    name: str
    image: np.ndarray  # 2D plane
    pixel_size_nm: float
    particles: ParticleTable
    region: Region | None = None
    synthetic: bool = False


def train_model(train: Sequence[Sample], config: ModelConfig, tcfg: TrainConfig,
                checkpoint: Path | None = None, progress: bool = True,
                val: Sequence[Sample] = (), threshold: float | None = None,
                radius_nm: float = 5.0, init: Callable[[Trainer], None] | None = None
                ) -> tuple[Trainer, dict, dict]:
    """Train a model; tune its threshold on ``val`` (class-agnostic pooled F1).

    Returns
    -------
    trainer, thresholds, metrics
        ``thresholds`` is ``{"threshold": t, "source": ...}``; ``metrics`` records the
        training set, settings, loss history and validation scores.
    """
    rng = np.random.default_rng(tcfg.seed)
    pairs = [prepare_pair(s.name, s.image, s.pixel_size_nm, s.particles, config, s.region,
                          tcfg.buffer_nm, tcfg.scale_jitter, tcfg.n_scales, rng, s.synthetic,
                          outside="ignore" if s.synthetic else tcfg.outside,
                          scales=None if s.synthetic else tcfg.scales())
             for s in train]
    trainer = Trainer(config, tcfg, checkpoint)
    if init is not None and trainer.step == 0:
        init(trainer)
    t0 = time.monotonic()
    history = trainer.fit(pairs, progress=progress)
    minutes = (time.monotonic() - t0) / 60
    metrics: dict = {
        "trained_on": [s.name for s in train if not s.synthetic],
        "synthetic_images": sum(s.synthetic for s in train),
        "train_config": tcfg.model_dump(),
        "steps_done": trainer.step,
        "train_minutes": round(minutes, 2),
        "final_losses": history[-1] if history else {},
    }
    thresholds = {"threshold": 0.5 if threshold is None else float(threshold),
                  "source": "default" if threshold is None else "given"}
    if val:
        from golddigger.model.detector import Detector

        det = Detector(trainer.G, config, thresholds)
        preds = [det.predict(s.image, s.pixel_size_nm, threshold=0.05) for s in val]
        classes = [float(c) for c in config.classes_nm]

        def f1_at(thr: dict[float, float]) -> float:
            return pooled_f1(val, [filter_by_class_thresholds(p, thr) for p in preds],
                             radius_nm, tcfg.buffer_nm)["all"]["f1"]

        if threshold is None:
            common, _ = tune_threshold(lambda t: f1_at({c: t for c in classes}))
            thresholds = {"threshold": common,
                          "source": "validation: best pooled class-agnostic F1"}
            # per-class thresholds only when validation holds enough of every class
            n_val = {c: sum(len(s.particles.of_class(c)) for s in val) for c in classes}
            if all(n >= MIN_PER_CLASS_FOR_TUNING for n in n_val.values()):
                per, _ = tune_class_thresholds(f1_at, classes)
                thresholds["per_class"] = {f"{c:g}": t for c, t in per.items()}
        per = thresholds.get("per_class", {})
        chosen = {c: float(per.get(f"{c:g}", thresholds["threshold"])) for c in classes}
        metrics["validation"] = {
            "images": [s.name for s in val],
            "thresholds": {f"{c:g}": t for c, t in chosen.items()},
            "scores": pooled_f1(val, [filter_by_class_thresholds(p, chosen) for p in preds],
                                radius_nm, tcfg.buffer_nm),
        }
    return trainer, thresholds, metrics


def pooled_f1(samples: Sequence[Sample], predictions: Sequence[ParticleTable],
              radius_nm: float = 5.0, buffer_nm: float = 30.0) -> dict:
    """Pooled scores by the project's protocol (`golddigger.evaluate`)."""
    from golddigger.evaluate import evaluate_many

    report = evaluate_many([
        (s.name, s.particles, p, s.pixel_size_nm, s.region)
        for s, p in zip(samples, predictions, strict=True)], radius_nm=radius_nm,
        buffer_nm=buffer_nm)
    return report.to_dict()["pooled"]


def synthetic_samples(n: int, pixel_size_nm: float, classes_nm: Sequence[float],
                      seed: int = 10_000, shape: tuple[int, int] = (1024, 1024),
                      dark_band_density_per_um2: float = 0.0,
                      dark_gold_fraction: float = 0.0) -> list[Sample]:
    """``n`` synthetic training images (`golddigger.synth`), every particle labelled, so
    the loss region is the whole image. ``dark_band_density_per_um2`` and
    ``dark_gold_fraction`` add heavy platinum bands and put that share of the gold on the
    darkest replica (see `golddigger.synth.SynthConfig`)."""
    from golddigger.synth import SynthConfig, generate

    out = []
    for i in range(n):
        r = generate(SynthConfig(shape=shape, pixel_size_nm=pixel_size_nm,
                                 classes=tuple(classes_nm), label_outside=True,
                                 dark_band_density_per_um2=dark_band_density_per_um2,
                                 dark_gold_fraction=dark_gold_fraction), seed=seed + i)
        full = Region.from_mask(np.ones(r.image.shape, dtype=bool))
        out.append(Sample(f"synth{seed + i}", r.image, r.pixel_size_nm, r.particles, full,
                          synthetic=True))
    return out
