"""Scoring detections against labels: the field's protocol.

A prediction is a true positive when it is matched one-to-one to a labelled particle of the
same class within ``radius_nm`` (5 nm by default) in the same stack slice; the matching is
optimal (Hungarian, `scipy.optimize.linear_sum_assignment`): it first maximises the number
of matches and then minimises their total distance. Unmatched predictions are false
positives, unmatched labels false negatives.

Only an *evaluation region* counts: the region given, or else the convex hull of the
labelled points grown by ``buffer_nm`` (30 nm by default), because annotators label only
the structure they study. Predictions and labels outside it are ignored. With no labels and
no region, the whole image is the region and every prediction is a false positive.

Classes. Every prediction and label is assigned the class (diameter) nearest its own
diameter, among ``classes`` if given, else the diameters present in the labels (in
`evaluate_many`: in all the labels), else the predictions' own diameters. Each class is
matched on its own; the class-agnostic score ``"all"`` matches ignoring class and also
reports ``class_accuracy``: the fraction of those matches whose classes agree.

Zero-division conventions (consistent everywhere)::

    precision = TP / (TP + FP), and 1.0 when there are no predictions
    recall    = TP / (TP + FN), and 1.0 when there are no labels
    F1        = 2 TP / (2 TP + FP + FN), and 1.0 when there are neither

So no labels and no predictions scores precision = recall = F1 = 1 (nothing to find, nothing
wrongly found); labels but no predictions scores precision 1, recall 0, F1 0. Localisation
errors and class accuracy are ``None`` (JSON ``null``) when nothing was matched.

Pooling over images (`evaluate_many`, `Report`) sums TP/FP/FN (micro average) and pools the
localisation errors of all matches.

Examples
--------
>>> from golddigger.particles import ParticleTable
>>> labels = ParticleTable([10, 50], [10, 50], [6, 12])
>>> preds = ParticleTable([11, 50], [10, 90], [6, 12])
>>> score = evaluate_image(labels, preds, pixel_size_nm=1.0)
>>> score.scores["6"].f1, score.scores["12"].f1
(1.0, 0.0)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from golddigger.errors import OptionError, RegionError
from golddigger.io.images import validate_pixel_size
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

__all__ = [
    "EvalPair",
    "ImageScore",
    "Report",
    "Score",
    "assign_classes",
    "class_key",
    "evaluate_image",
    "evaluate_many",
    "match_points",
]

logger = logging.getLogger(__name__)

#: Default matching radius (nm) and evaluation-region buffer (nm).
DEFAULT_RADIUS_NM = 5.0
DEFAULT_BUFFER_NM = 30.0

ALL = "all"


def class_key(diameter_nm: float) -> str:
    """The key of a class in results and JSON: ``f"{d:g}"`` (6.0 -> ``"6"``)."""
    return f"{float(diameter_nm):g}"


# ---------------------------------------------------------------------------- scores
@dataclass
class Score:
    """Counts and errors of one class (or of the class-agnostic matching).

    Attributes
    ----------
    tp, fp, fn : int
        True positives (matched predictions), false positives, false negatives.
    errors_nm : numpy.ndarray
        Distance (nm) of every matched pair.
    class_agree : int or None
        For the class-agnostic score only: how many matches have agreeing classes.
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0
    errors_nm: np.ndarray = field(default_factory=lambda: np.empty(0))
    class_agree: int | None = None

    @property
    def precision(self) -> float:
        return 1.0 if self.tp + self.fp == 0 else self.tp / (self.tp + self.fp)

    @property
    def recall(self) -> float:
        return 1.0 if self.tp + self.fn == 0 else self.tp / (self.tp + self.fn)

    @property
    def f1(self) -> float:
        den = 2 * self.tp + self.fp + self.fn
        return 1.0 if den == 0 else 2 * self.tp / den

    @property
    def loc_error_nm(self) -> float | None:
        """Mean distance of matched pairs (nm); None without matches."""
        return float(np.mean(self.errors_nm)) if self.errors_nm.size else None

    @property
    def loc_error_median_nm(self) -> float | None:
        """Median distance of matched pairs (nm); None without matches."""
        return float(np.median(self.errors_nm)) if self.errors_nm.size else None

    @property
    def class_accuracy(self) -> float | None:
        """Fraction of matches whose classes agree (class-agnostic score only)."""
        if self.class_agree is None or self.tp == 0:
            return None
        return self.class_agree / self.tp

    def __add__(self, other: Score) -> Score:
        if not isinstance(other, Score):
            return NotImplemented
        agree = (None if self.class_agree is None and other.class_agree is None
                 else (self.class_agree or 0) + (other.class_agree or 0))
        return Score(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn,
                     np.concatenate([self.errors_nm, other.errors_nm]), agree)

    def to_dict(self) -> dict:
        """``tp, fp, fn, precision, recall, f1, loc_error_nm`` (mean), ``loc_error_median_nm``
        and, for the class-agnostic score, ``class_accuracy``."""
        out = {"tp": int(self.tp), "fp": int(self.fp), "fn": int(self.fn),
               "precision": self.precision, "recall": self.recall, "f1": self.f1,
               "loc_error_nm": self.loc_error_nm,
               "loc_error_median_nm": self.loc_error_median_nm}
        if self.class_agree is not None:
            out["class_accuracy"] = self.class_accuracy
        return out


@dataclass
class ImageScore:
    """The scores of one image.

    Attributes
    ----------
    name : str
        The image's name (file stem).
    classes : tuple of float
        The classes scored (nm).
    scores : dict
        `Score` by class key (``"6"``, ``"12"``, ...; see `class_key`) and ``"all"``.
    pixel_size_nm : float
    labels, predictions : ParticleTable
        The labels and predictions inside the evaluation region, with their diameters
        replaced by their assigned classes.
    label_matched, prediction_matched : numpy.ndarray
        For each row of ``labels`` / ``predictions``: the row of the other table it is
        matched to in the class-aware matching, or -1 (a false negative / positive).
    region : Region or None
        The evaluation region (None: the whole image).
    """

    name: str
    classes: tuple[float, ...]
    scores: dict[str, Score]
    pixel_size_nm: float
    labels: ParticleTable
    predictions: ParticleTable
    label_matched: np.ndarray
    prediction_matched: np.ndarray
    region: Region | None = None

    @property
    def all(self) -> Score:
        """The class-agnostic score."""
        return self.scores[ALL]

    def to_dict(self) -> dict:
        """``{class key: Score.to_dict(), ..., "all": ...}``."""
        return {k: s.to_dict() for k, s in self.scores.items()}


@dataclass
class Report:
    """Scores of many images, pooled (micro average) and per image.

    Attributes
    ----------
    images : dict
        `ImageScore` by image name, in evaluation order.
    settings : dict
        How the scores were computed (``radius_nm``, ``buffer_nm``, ``classes``, ...).
    """

    images: dict[str, ImageScore]
    settings: dict = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        """Class keys (sorted by diameter) then ``"all"``."""
        classes = sorted({c for s in self.images.values() for c in s.classes})
        return [class_key(c) for c in classes] + [ALL]

    @property
    def pooled(self) -> dict[str, Score]:
        """TP/FP/FN summed over images, by class key and ``"all"``."""
        out = {}
        for key in self.keys:
            total = Score(class_agree=0) if key == ALL else Score()
            for image in self.images.values():
                if key in image.scores:
                    total = total + image.scores[key]
            out[key] = total
        return out

    def to_dict(self) -> dict:
        """The JSON form (a contract other tools rely on)::

            {"pooled": {"6": {"tp", "fp", "fn", "precision", "recall", "f1",
                              "loc_error_nm", "loc_error_median_nm"},
                        "12": {...}, "all": {..., "class_accuracy"}},
             "images": {"<name>": {same shape}, ...},
             "settings": {"radius_nm", "buffer_nm", "classes", ...}}

        ``loc_error_nm`` is the mean distance of matched pairs; errors and class
        accuracy are ``None`` without matches.
        """
        keys = self.keys
        images = {}
        for name, image in self.images.items():
            d = image.to_dict()
            images[name] = {k: d[k] if k in d else Score(
                class_agree=0 if k == ALL else None).to_dict() for k in keys}
        return {"pooled": {k: s.to_dict() for k, s in self.pooled.items()},
                "images": images,
                "settings": dict(self.settings)}

    def to_json(self, indent: int = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent) + "\n"

    def to_table(self, per_image: bool = True) -> str:
        """A fixed-width text table: one row per image and class, then the pooled rows."""
        keys = self.keys
        name_w = max([len("pooled"), len("image")] + [len(n) for n in self.images]) if \
            per_image else len("pooled")
        head = (f"{'image':<{name_w}}  {'class':>6}  {'TP':>5}  {'FP':>5}  {'FN':>5}  "
                f"{'prec':>6}  {'recall':>6}  {'F1':>6}  {'loc nm':>6}  {'med nm':>6}  "
                f"{'cls acc':>7}")
        lines = [head, "-" * len(head)]

        def row(name: str, key: str, s: Score) -> str:
            label = "all" if key == ALL else f"{key} nm"
            return (f"{name:<{name_w}}  {label:>6}  {s.tp:>5d}  {s.fp:>5d}  {s.fn:>5d}  "
                    f"{s.precision:>6.3f}  {s.recall:>6.3f}  {s.f1:>6.3f}  "
                    f"{_fmt(s.loc_error_nm, 2):>6}  {_fmt(s.loc_error_median_nm, 2):>6}  "
                    f"{_fmt(s.class_accuracy, 3):>7}")

        if per_image:
            for name, image in self.images.items():
                for key in keys:
                    lines.append(row(name, key, image.scores.get(key, Score())))
            lines.append("-" * len(head))
        pooled = self.pooled
        for key in keys:
            lines.append(row("pooled", key, pooled[key]))
        s = self.settings
        foot = f"{len(self.images)} image(s)"
        if "radius_nm" in s:
            foot += f"; match radius {s['radius_nm']:g} nm"
        if "buffer_nm" in s:
            foot += f"; region buffer {s['buffer_nm']:g} nm"
        lines.append(foot)
        return "\n".join(lines) + "\n"

    @classmethod
    def from_scores(cls, scores: Iterable[ImageScore], settings: dict | None = None) -> Report:
        """A report from image scores (names must be unique)."""
        images: dict[str, ImageScore] = {}
        for s in scores:
            if s.name in images:
                raise OptionError(f"two images are named {s.name!r}; names must be unique")
            images[s.name] = s
        return cls(images=images, settings=dict(settings or {}))


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# ---------------------------------------------------------------------------- matching
def match_points(a_xy: np.ndarray, b_xy: np.ndarray, radius: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal one-to-one matching of points ``a`` to points ``b`` within ``radius``.

    Maximises the number of pairs closer than ``radius`` (inclusive), then minimises their
    summed distance. Work is split into connected groups of nearby points (k-d tree), so
    thousands of points are fast.

    Parameters
    ----------
    a_xy, b_xy : array_like
        (N, 2) and (M, 2) coordinates, in the same unit as ``radius``.
    radius : float
        Largest distance of a match.

    Returns
    -------
    ia, ib : numpy.ndarray
        Indices of matched pairs (``a[ia[k]]`` matched to ``b[ib[k]]``).
    dist : numpy.ndarray
        Their distances.
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    a = np.asarray(a_xy, dtype=float).reshape(-1, 2)
    b = np.asarray(b_xy, dtype=float).reshape(-1, 2)
    empty = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0))
    if len(a) == 0 or len(b) == 0:
        return empty
    pairs = cKDTree(a).sparse_distance_matrix(cKDTree(b), radius, output_type="ndarray")
    if pairs.size == 0:
        return empty
    pi, pj, pd = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64), pairs["v"]
    keep = pd <= radius
    pi, pj, pd = pi[keep], pj[keep], pd[keep]
    if pi.size == 0:
        return empty
    # Connected groups of the bipartite graph (nodes: a then b).
    na, nb = len(a), len(b)
    graph = coo_matrix((np.ones(pi.size), (pi, pj + na)), shape=(na + nb, na + nb))
    _, comp = connected_components(graph, directed=False)
    edge_comp = comp[pi]
    order = np.argsort(edge_comp, kind="stable")
    pi, pj, pd, edge_comp = pi[order], pj[order], pd[order], edge_comp[order]
    bounds = np.flatnonzero(np.diff(edge_comp)) + 1
    out_a, out_b, out_d = [], [], []
    for ei, ej, ed in zip(np.split(pi, bounds), np.split(pj, bounds), np.split(pd, bounds),
                          strict=True):
        if ei.size == 1:  # the common case: an isolated pair
            out_a.append(ei)
            out_b.append(ej)
            out_d.append(ed)
            continue
        ua, ra = np.unique(ei, return_inverse=True)
        ub, rb = np.unique(ej, return_inverse=True)
        # Infeasible pairs cost more than any feasible matching can sum to, so the
        # assignment first maximises the number of feasible pairs.
        big = radius * (min(ua.size, ub.size) + 1) + 1.0
        cost = np.full((ua.size, ub.size), big)
        cost[ra, rb] = ed
        rows, cols = linear_sum_assignment(cost)
        ok = cost[rows, cols] < big
        out_a.append(ua[rows[ok]])
        out_b.append(ub[cols[ok]])
        out_d.append(cost[rows[ok], cols[ok]])
    ia, ib, dist = np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_d)
    order = np.argsort(ia, kind="stable")
    return ia[order], ib[order], dist[order]


def _match_by_slice(a: ParticleTable, b: ParticleTable, radius_px: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`match_points` within each slice; indices into the full tables."""
    out_a, out_b, out_d = [np.empty(0, np.int64)], [np.empty(0, np.int64)], [np.empty(0)]
    for s in np.intersect1d(np.unique(a.slice), np.unique(b.slice)):
        ra = np.flatnonzero(a.slice == s)
        rb = np.flatnonzero(b.slice == s)
        ia, ib, d = match_points(a.xy[ra], b.xy[rb], radius_px)
        out_a.append(ra[ia])
        out_b.append(rb[ib])
        out_d.append(d)
    return np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_d)


# ---------------------------------------------------------------------------- classes
def assign_classes(diameters_nm: np.ndarray, classes: Sequence[float]) -> np.ndarray:
    """Each diameter replaced by the nearest class (ties go to the smaller class)."""
    d = np.asarray(diameters_nm, dtype=float).reshape(-1)
    c = np.asarray(sorted(float(x) for x in classes), dtype=float)
    if d.size == 0:
        return d.copy()
    if c.size == 0:
        raise OptionError("no classes to assign diameters to")
    return c[np.argmin(np.abs(d[:, None] - c[None, :]), axis=1)]


def _distinct(diameters: np.ndarray) -> tuple[float, ...]:
    d = np.asarray(diameters, dtype=float)
    d = d[np.isfinite(d)]
    return tuple(float(v) for v in np.unique(np.round(d, 3)))


def _with_diameters(t: ParticleTable, d: np.ndarray) -> ParticleTable:
    return ParticleTable(t.x, t.y, d, t.score, t.slice)


# ---------------------------------------------------------------------------- evaluation
def check_region(name: str, labels: ParticleTable, predictions: ParticleTable,
                 region: Region | None) -> None:
    """Refuse a given evaluation region that would score nothing: one with no area, or one
    holding none of the labelled and predicted particles (another image's, or outside
    this one), which would otherwise give precision = recall = F1 = 1.

    Raises
    ------
    RegionError
    """
    if region is None:
        return
    if region.is_empty():
        raise RegionError(f"{name}: the evaluation region ({region.name or 'given'}) has no "
                          "area; nothing can be scored in it")
    if (len(labels) or len(predictions)) and not (
            region.contains(labels.x, labels.y).any()
            or region.contains(predictions.x, predictions.y).any()):
        raise RegionError(
            f"{name}: the evaluation region ({region.name or 'given'}) holds none of the "
            f"{len(labels)} labelled and {len(predictions)} predicted particles; check that "
            "it belongs to this image (nothing would be scored)")


def evaluate_image(labels: ParticleTable, predictions: ParticleTable, pixel_size_nm: float,
                   region: Region | None = None, radius_nm: float = DEFAULT_RADIUS_NM,
                   buffer_nm: float = DEFAULT_BUFFER_NM,
                   classes: Sequence[float] | None = None, name: str = "") -> ImageScore:
    """Score the predictions of one image (or stack) against its labels.

    Parameters
    ----------
    labels, predictions : ParticleTable
        Coordinates in pixels of the same image.
    pixel_size_nm : float
        nm per pixel (distances are compared in nm).
    region : Region, optional
        Where to count. Default: the convex hull of the labels (all slices) grown by
        ``buffer_nm``; with no labels either, the whole image (every prediction is a
        false positive). Labels and predictions outside the region are ignored.
    radius_nm : float
        Largest prediction-label distance of a match (inclusive).
    buffer_nm : float
        Growth of the labels' hull when no region is given.
    classes : sequence of float, optional
        The classes (nm). Default: the diameters in the labels, else in the predictions.
    name : str
        The image's name, for reports.

    Returns
    -------
    ImageScore
    """
    px = validate_pixel_size(pixel_size_nm, name or "evaluate_image")
    if not (radius_nm > 0 and math.isfinite(radius_nm)):
        raise OptionError(f"the match radius must be a positive number of nm, got {radius_nm}")
    if not (buffer_nm >= 0 and math.isfinite(buffer_nm)):
        raise OptionError(f"the region buffer must be >= 0 nm, got {buffer_nm}")

    if region is None and len(labels):
        region = Region.hull_of_points(labels.xy, buffer_nm / px, name="labels hull")
    if region is not None:
        inside_l = region.contains(labels.x, labels.y)
        if not inside_l.all():
            logger.debug("%s: %d label(s) outside the evaluation region ignored",
                         name or "image", int((~inside_l).sum()))
        labels = labels[inside_l]
        predictions = predictions[region.contains(predictions.x, predictions.y)]

    if classes is not None:
        cls = tuple(sorted(float(c) for c in classes))
        if not cls:
            raise OptionError("classes is empty; give at least one diameter")
    else:
        cls = _distinct(labels.diameter_nm) or _distinct(predictions.diameter_nm)
    if cls:
        labels = _with_diameters(labels, assign_classes(labels.diameter_nm, cls))
        predictions = _with_diameters(predictions, assign_classes(predictions.diameter_nm, cls))

    radius_px = radius_nm / px
    scores: dict[str, Score] = {}
    label_matched = np.full(len(labels), -1, dtype=np.int64)
    pred_matched = np.full(len(predictions), -1, dtype=np.int64)
    for c in cls:
        rl = np.flatnonzero(labels.diameter_nm == c)
        rp = np.flatnonzero(predictions.diameter_nm == c)
        ip, il, d = _match_by_slice(predictions[rp], labels[rl], radius_px)
        pred_matched[rp[ip]] = rl[il]
        label_matched[rl[il]] = rp[ip]
        scores[class_key(c)] = Score(tp=ip.size, fp=rp.size - ip.size, fn=rl.size - il.size,
                                     errors_nm=d * px)
    ip, il, d = _match_by_slice(predictions, labels, radius_px)
    agree = int(np.sum(predictions.diameter_nm[ip] == labels.diameter_nm[il]))
    scores[ALL] = Score(tp=ip.size, fp=len(predictions) - ip.size, fn=len(labels) - il.size,
                        errors_nm=d * px, class_agree=agree)
    return ImageScore(name=name, classes=cls, scores=scores, pixel_size_nm=px, labels=labels,
                      predictions=predictions, label_matched=label_matched,
                      prediction_matched=pred_matched, region=region)


class EvalPair(NamedTuple):
    """One image to evaluate: its name, labels, predictions, pixel size and region."""

    name: str
    labels: ParticleTable
    predictions: ParticleTable
    pixel_size_nm: float
    region: Region | None = None


def evaluate_many(pairs: Iterable[EvalPair | tuple] | Mapping[str, tuple],
                  radius_nm: float = DEFAULT_RADIUS_NM, buffer_nm: float = DEFAULT_BUFFER_NM,
                  classes: Sequence[float] | None = None) -> Report:
    """Score many images and pool them.

    Parameters
    ----------
    pairs : iterable of EvalPair or tuple, or mapping
        ``(name, labels, predictions, pixel_size_nm[, region])`` per image, or a mapping
        ``name -> (labels, predictions, pixel_size_nm[, region])``. Names must be unique.
    radius_nm, buffer_nm : float
        As in `evaluate_image`.
    classes : sequence of float, optional
        The classes (nm). Default: every diameter present in any image's labels (so all
        images are scored on the same classes), else in the predictions.

    Returns
    -------
    Report
    """
    if isinstance(pairs, Mapping):
        items = [EvalPair(name, *rest) for name, rest in pairs.items()]
    else:
        items = [p if isinstance(p, EvalPair) else EvalPair(*p) for p in pairs]
    if classes is None:
        found = _distinct(np.concatenate([np.empty(0)] + [p.labels.diameter_nm for p in items]))
        if not found:
            found = _distinct(np.concatenate(
                [np.empty(0)] + [p.predictions.diameter_nm for p in items]))
        classes = found or None
    scores = [evaluate_image(p.labels, p.predictions, p.pixel_size_nm, region=p.region,
                             radius_nm=radius_nm, buffer_nm=buffer_nm, classes=classes,
                             name=p.name) for p in items]
    settings = {
        "radius_nm": float(radius_nm),
        "buffer_nm": float(buffer_nm),
        "classes": [float(c) for c in classes] if classes else [],
        "matching": "hungarian, one-to-one, same class and slice",
        "pooling": "micro (TP/FP/FN summed over images)",
        "region": {p.name: ("given" if p.region is not None else
                            ("labels hull + buffer" if len(p.labels) else "whole image"))
                   for p in items},
        "pixel_size_nm": {p.name: float(p.pixel_size_nm) for p in items},
    }
    return Report.from_scores(scores, settings)
