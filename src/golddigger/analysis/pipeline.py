"""`analyze`: the whole spatial analysis of one image's particles."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
from scipy.spatial import cKDTree

from golddigger.analysis.clusters import (
    DEFAULT_CLUSTER_DISTANCE_NM,
    DEFAULT_MIN_CLUSTER_SIZE,
    cluster_labels,
    describe_clusters,
)
from golddigger.analysis.geometry import (
    default_region,
    distance_to_edge,
    polygons_of,
    region_geometry_nm,
)
from golddigger.analysis.neighbours import cross_nnd, nnd
from golddigger.analysis.randomness import (
    DEFAULT_ALPHA,
    DEFAULT_N_SIM,
    N_R,
    NullModel,
    default_r_max,
    run_monte_carlo,
)
from golddigger.analysis.result import AnalysisResult
from golddigger.errors import GoldDiggerError
from golddigger.evaluate import assign_classes, class_key
from golddigger.io.images import validate_pixel_size
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

__all__ = ["analyze", "analyze_regions", "check_classes", "nearest_by_class"]

#: Region names (lower case, contained) taken as the non-specific labelling reference.
BACKGROUND_WORDS = ("background", "non-specific", "nonspecific")

logger = logging.getLogger(__name__)

#: The values of ``estimate_region``: without a region, run the tests on a convex estimate.
ESTIMATE_REGION_CHOICES = ("convex",)

#: Why the tests are not run on a region estimated from the particles (one line, shown in
#: the summary, the CLI and the Fiji Log).
NO_TESTS_NOTE = (
    "randomness tests not run: no region was given, and a window estimated from the "
    "particles is convex, which misleads for L-shaped or curved membranes; give the membrane "
    "outline (--roi, or a selection in Fiji), or for a convex membrane patch opt in with "
    "--estimate-region convex (Fiji: Convex_estimate)")


def nearest_by_class(xy: np.ndarray, cls: np.ndarray, n_classes: int
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each class ``b``: distance from every point to the nearest *other* point of
    class ``b``, and its index (into ``xy``); NaN / -1 when there is none."""
    out = []
    for b in range(n_classes):
        members = np.flatnonzero(cls == b)
        dist = np.full(len(xy), np.nan)
        idx = np.full(len(xy), -1, dtype=np.int64)
        if members.size:
            d, j = nnd(xy[members])
            dist[members] = d
            idx[members] = np.where(j >= 0, members[np.clip(j, 0, None)], -1)
            others = np.flatnonzero(cls != b)
            d, j = cross_nnd(xy[others], xy[members])
            dist[others] = d
            idx[others] = members[j]
        out.append((dist, idx))
    return out


def _warn_overlaps(xy: np.ndarray, cls: np.ndarray, classes: Sequence[float],
                   hard_core: float, name: str) -> None:
    """Log when observed particles overlap more than the random patterns may."""
    from golddigger.analysis.simulate import hard_core_distances

    if hard_core <= 0 or len(xy) < 2:
        return
    dmin = hard_core_distances(classes, hard_core)
    pairs = cKDTree(xy).query_pairs(float(dmin.max()), output_type="ndarray")
    if len(pairs):
        d = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T)
        n_bad = int(np.sum(d < dmin[cls[pairs[:, 0]], cls[pairs[:, 1]]]))
        if n_bad:
            logger.warning(
                "%s: %d particle pair(s) are closer than touching gold spheres; the random "
                "patterns never are, which biases the tests towards 'clustered' at short "
                "range (check for duplicate detections, or use hard_core=0)",
                name or "analyze", n_bad)


def _as_region(region) -> Region | None:
    if region is None or isinstance(region, Region):
        return region
    arr = np.asarray(region)
    if arr.ndim == 2 and arr.dtype == bool:
        return Region.from_mask(arr)
    try:
        from shapely.geometry.base import BaseGeometry
    except ImportError:  # pragma: no cover
        BaseGeometry = ()  # noqa: N806
    if isinstance(region, BaseGeometry):
        return Region(geometry=region)
    raise TypeError("region must be a Region, a shapely geometry (pixels) or a bool mask")


def check_classes(classes: Sequence[float] | None) -> list[float] | None:
    """Sorted size classes, or None; duplicates, non-finite or non-positive sizes raise."""
    if classes is None:
        return None
    vals = [float(c) for c in classes]
    if not vals:
        raise GoldDiggerError("no size classes given (--classes needs at least one size)")
    bad = [c for c in vals if not np.isfinite(c) or c <= 0]
    if bad:
        raise GoldDiggerError(f"size classes must be positive diameters in nm, got {bad[0]:g}")
    rounded = [round(c, 3) for c in vals]
    dup = sorted({c for c in rounded if rounded.count(c) > 1})
    if dup:
        raise GoldDiggerError(f"size class {dup[0]:g} nm is given twice; give each class once "
                              "(--classes 6 12)")
    return sorted(vals)


def analyze(particles: ParticleTable, pixel_size_nm: float, region=None, *,
            classes: Sequence[float] | None = None,
            cluster_distance_nm: float = DEFAULT_CLUSTER_DISTANCE_NM,
            min_cluster_size: int = DEFAULT_MIN_CLUSTER_SIZE,
            n_sim: int = DEFAULT_N_SIM, seed: int | None = 0, alpha: float = DEFAULT_ALPHA,
            hard_core: float = 1.0, r_max_nm: float | None = None,
            buffer_nm: float | None = None, estimate_region: str | None = None,
            slice: int | None = None, name: str = "", association: bool = True,
            progress: Callable[[int, int], None] | None = None) -> AnalysisResult:
    """Density, nearest neighbours, clusters and randomness tests of one image's particles.

    Parameters
    ----------
    particles : ParticleTable
        Particle centres in pixels (as `detect` writes them, or labels).
    pixel_size_nm : float
        nm per pixel; every distance and area is reported in nm / um².
    region : Region, shapely geometry or bool mask, optional
        Where to analyse, in pixels of the same image. Particles outside are left out.
        Default: the Ripley-Rasson estimate of the (convex) window from the particles
        (`geometry.ripley_rasson_window`), for the area and densities (labelled as an
        estimate); the randomness and association tests are then *not* run (a convex
        estimate misleads for non-convex membranes; see ``estimate_region``), and
        ``settings["tests_note"]`` says why.
    classes : sequence of float, optional
        Size classes (nm); each particle gets the nearest. Default: the diameters present.
    cluster_distance_nm : float
        Particles at most this far apart (centre to centre) are linked into a cluster.
    min_cluster_size : int
        Smallest linked group reported as a cluster.
    n_sim : int
        Random patterns per null model (0 skips the tests). P-values are Holm-adjusted
        over the image's tests (`randomness`).
    seed : int or None
        Seed of the simulations.
    alpha : float
        Level of the envelopes and verdicts.
    hard_core : float
        In the random patterns, no two particles closer than ``hard_core`` times the mean
        of their diameters (1: touching gold spheres; 0: plain CSR).
    r_max_nm : float, optional
        Largest distance of the L function. Default: a quarter of the shorter side of the
        region's bounding box.
    buffer_nm : float, optional
        Instead of the Ripley-Rasson window, use the old default: the particles' hull grown
        by this much (biased towards "clustered"; for comparisons only).
    slice : int, optional
        For particles of a stack: the 0-based slice to analyse (required when the table
        holds several slices).
    name : str
        The image's name, for titles and tables.
    association : bool
        Also test association between classes (conditional and random-labelling nulls).
    progress : callable, optional
        ``progress(done, total)`` after each simulation.

    Returns
    -------
    AnalysisResult

    Raises
    ------
    GoldDiggerError
        No particles and no region, particles of several slices without ``slice``, or a
        region that cannot hold the particles' random patterns.
    """
    px = validate_pixel_size(pixel_size_nm, name or "analyze")
    if min_cluster_size < 1:
        raise ValueError(f"the minimum cluster size must be >= 1, got {min_cluster_size}")
    if cluster_distance_nm <= 0:
        raise ValueError(f"the cluster distance must be > 0 nm, got {cluster_distance_nm}")
    if n_sim < 0:
        raise ValueError(f"n_sim must be >= 0, got {n_sim}")
    rows = np.arange(len(particles))
    if slice is not None:
        keep = particles.slice == int(slice)
        particles, rows = particles[keep], rows[keep]
    elif len(particles) and np.unique(particles.slice).size > 1:
        raise GoldDiggerError(
            f"{name or 'the particles'}: particles of {np.unique(particles.slice).size} stack "
            "slices; analyse one slice at a time (slice=...)")
    region = _as_region(region)
    classes = check_classes(classes)
    if estimate_region is not None and estimate_region not in ESTIMATE_REGION_CHOICES:
        raise ValueError(f"estimate_region must be one of {ESTIMATE_REGION_CHOICES} or None, "
                         f"got {estimate_region!r}")
    given = region is not None
    if region is None:
        if len(particles) == 0:
            raise GoldDiggerError(f"{name or 'analyze'}: no particles and no region; give a "
                                  "region to analyse an empty image")
        try:
            region = default_region(particles.xy, px, buffer_nm)
        except GoldDiggerError as err:
            raise GoldDiggerError(f"{name or 'analyze'}: {err}") from None
    geom = region_geometry_nm(region, px)
    if classes is None:
        classes = sorted({float(np.round(d, 3)) for d in particles.diameter_nm})
    if len(particles) and not classes:
        raise ValueError("no size classes")
    class_names = tuple(class_key(c) for c in classes)
    diam = assign_classes(particles.diameter_nm, classes) if len(particles) else np.empty(0)
    particles = ParticleTable(particles.x, particles.y, diam, particles.score, particles.slice)
    cls_all = (np.argmin(np.abs(diam[:, None] - np.asarray(classes)[None, :]), axis=1)
               if len(particles) else np.empty(0, dtype=np.int64)).astype(np.int64)
    inside = region.contains(particles.x, particles.y)
    n_outside = int(np.sum(~inside))
    outside_by_class = {name: int(np.sum(~inside & (cls_all == c)))
                        for c, name in enumerate(class_names)}
    outside_by_class["all"] = n_outside
    if n_outside:
        logger.info("%s: %d of %d particles lie outside the region and are left out",
                    name or "analyze", n_outside, len(particles))
    particles, rows, cls = particles[inside], rows[inside], cls_all[inside]
    xy = particles.xy * px

    nearest = dict(zip(class_names, nearest_by_class(xy, cls, len(classes)), strict=True))
    labels = cluster_labels(xy, cluster_distance_nm, min_cluster_size)
    clusters = describe_clusters(xy, cls, labels, class_names)

    r_max = float(r_max_nm) if r_max_nm is not None else default_r_max(geom)
    if r_max <= 0:
        raise ValueError(f"r_max must be > 0 nm, got {r_max}")
    tests_note = ""
    if given:
        rule = "given"
    elif buffer_nm is None:
        rule = ("estimated from the particles: Ripley-Rasson convex window (hull scaled by "
                "sqrt(n/(n-m))); area and densities are estimates")
        if estimate_region == "convex":
            rule += "; tests on it by request (convex membranes only)"
        elif n_sim > 0:
            tests_note = NO_TESTS_NOTE
    else:
        rule = f"estimated from the particles: convex hull + {buffer_nm:g} nm (biased)"
    settings = {"name": name, "pixel_size_nm": px, "region": region.name or "given",
                "region_rule": rule,
                "cluster_distance_nm": float(cluster_distance_nm),
                "min_cluster_size": int(min_cluster_size), "n_sim": int(n_sim), "seed": seed,
                "alpha": float(alpha), "hard_core": float(hard_core), "r_max_nm": r_max,
                "buffer_nm": None if buffer_nm is None else float(buffer_nm), "slice": slice,
                "association": bool(association),
                "estimate_region": None if given else estimate_region,
                "tests_note": tests_note,
                "multiple_testing": "Holm over all tests of this image and region"}
    _warn_overlaps(xy, cls, classes, hard_core, name)
    mc = None
    if tests_note:
        logger.info("%s: %s", name or "analyze", tests_note)
    elif n_sim > 0 and len(particles) >= 2:
        model = NullModel(geom, class_names, tuple(classes),
                          tuple(int(np.sum(cls == c)) for c in range(len(classes))),
                          hard_core=hard_core, r=np.linspace(0.0, r_max, N_R),
                          cluster_distance_nm=float(cluster_distance_nm),
                          min_cluster_size=int(min_cluster_size), association=association)
        mc = run_monte_carlo(xy, cls, model, n_sim=n_sim, seed=seed, alpha=alpha,
                             progress=progress)
    elif n_sim > 0:
        logger.info("%s: fewer than 2 particles; no randomness tests", name or "analyze")
    return AnalysisResult(
        name=name, pixel_size_nm=px, region=region, geometry_nm=geom, particles=particles,
        input_rows=rows, n_outside=n_outside, n_outside_by_class=outside_by_class,
        class_names=class_names,
        diameters_nm=tuple(classes), cls=cls, xy_nm=xy, nearest=nearest,
        cluster_labels=labels, clusters=clusters, monte_carlo=mc, settings=settings,
        edge_distance_nm=distance_to_edge(geom, xy))


def _is_background(name: str) -> bool:
    low = (name or "").lower()
    return any(w in low for w in BACKGROUND_WORDS)


def analyze_regions(particles: ParticleTable, pixel_size_nm: float, regions: Sequence[Region],
                    *, name: str = "", progress: Callable[[int, int], None] | None = None,
                    **kwargs) -> list[AnalysisResult]:
    """`analyze` in each of several named regions of one image (synapse, extrasynaptic,
    background).

    Each particle belongs to one region: where regions overlap (an extrasynaptic outline
    drawn around the synapse), the overlap belongs to the smaller region, and is cut out of
    the larger one (its area and density exclude it). A region whose name contains
    "background" gives the non-specific density, reported in every region's summary
    (``background_density_per_um2``, ``specific_density_per_um2`` = density - background).

    Parameters
    ----------
    particles : ParticleTable
    pixel_size_nm : float
    regions : sequence of Region
        Named area regions (pixels); names must differ.
    name : str
        The image's name.
    **kwargs
        Passed to `analyze` (``classes``, ``n_sim``, ...).

    Returns
    -------
    list of AnalysisResult
        In the order of ``regions``.
    """
    from shapely import affinity
    from shapely.geometry import MultiPolygon

    if not regions:
        raise GoldDiggerError(f"{name or 'analyze'}: no regions")
    names = [r.name or f"region {i + 1}" for i, r in enumerate(regions)]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise GoldDiggerError(f"{name or 'analyze'}: two regions are named {dup[0]!r}; give "
                              "each area ROI its own name (ImageJ: ROI Manager > Rename)")
    px = validate_pixel_size(pixel_size_nm, name or "analyze")
    geoms = [region_geometry_nm(r, 1.0) for r in regions]  # pixels, masks traced
    order = np.argsort([g.area for g in geoms], kind="stable")
    effective = list(geoms)
    for k, i in enumerate(order):
        for j in order[:k]:
            if effective[i].intersects(geoms[j]):
                effective[i] = effective[i].difference(geoms[j])
    results = []
    for i in range(len(regions)):
        polys = polygons_of(effective[i])
        if not polys or sum(p.area for p in polys) <= 0:
            raise GoldDiggerError(f"{name or 'analyze'}: region {names[i]!r} lies wholly "
                                  "inside smaller regions; nothing of it is left")
        geom = polys[0] if len(polys) == 1 else MultiPolygon(polys)
        sub = Region(geometry=affinity.scale(geom, 1.0, 1.0, origin=(0, 0)), name=names[i])
        res = analyze(particles, px, sub, name=name, progress=progress, **kwargs)
        res.settings["region"] = names[i]
        results.append(res)
    bg = [r for r, n in zip(results, names, strict=True) if _is_background(n)]
    if bg:
        area = sum(r.area_um2 for r in bg)
        dens = {cname: sum(r.counts()[cname] for r in bg) / area
                for cname in bg[0].class_names}
        dens["all"] = sum(len(r.cls) for r in bg) / area
        for r in results:
            r.background_density = dens
    return results
