"""``golddigger analyze``: density, nearest neighbours, clusters and randomness tests."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from golddigger.cli._common import CliError, new_parser, progress

logger = logging.getLogger(__name__)

EXAMPLES = """\
  golddigger analyze results/S4.csv -o analysis/ --image images/S4.jpg --pixel-size 0.5587
  golddigger analyze results/ -o analysis/ --image images/ --roi rois/   # a folder of CSVs
  golddigger analyze S4.csv -o analysis/ --pixel-size 0.5587 --roi S4_membrane.roi \\
      --cluster-distance 30 --min-cluster-size 3 --n-sim 999 --seed 1

  golddigger analyze synapses/ -o analysis/ --pixel-size 0.5587 --roi rois/ \
      --groups genotype.csv                  # many synapses, pooled L, WT vs KO

inputs: particle CSVs as 'detect' writes them (or labels x,y,diameter_nm, pixels), ImageJ
ROI sets or Results tables; a folder gives its particle CSVs. --roi and --image take a file
(used for every input) or a folder holding <stem>.roi/.zip/_mask.png/_region.csv and
<stem>.tif/.png/.jpg. A ROI set with several named area ROIs (synapse, extrasynaptic,
background) is analysed region by region; a region named 'background' gives the
non-specific density. Without --roi the area is estimated from the particles (Ripley-
Rasson: their convex hull enlarged by sqrt(n/(n-m))) for counts, densities, NND and
clusters, but the randomness/association tests are not run (a convex estimate misleads for
L-shaped or curved membranes): give --roi, or for a convex membrane patch opt in with
--estimate-region convex.

outputs in OUTDIR/<stem>/ (OUTDIR/<stem>/<region>/ for several regions, .../slice<N>/ for
stacks): summary.csv (counts, area, density per um2), nnd.csv (per particle: nearest
distance to each class, distance to the region's edge), nnd_stats.csv, clusters.csv,
randomness.csv (Monte Carlo tests, Holm-adjusted p_adjusted and verdicts), l_function.csv
(L and g), settings.json, nnd_histograms.png, l_function.png, map.png. With several
images, regions or slices, also in OUTDIR: summary.csv, nnd_stats.csv and randomness.csv of
all of them (image and region columns), pooled_l.csv (K and L pooled over images, weighted
by n(n-1)) and with --groups groups.csv (permutation test between groups on the pooled L).
"""


def add_parser(sub) -> None:
    p = new_parser(sub, "analyze", help="spatial statistics of particles in a region",
                   description="Count particles per class in a region, measure nearest-"
                               "neighbour distances and clusters (in nm), and test the "
                               "pattern against random placement in the same region.",
                   examples=EXAMPLES)
    p.add_argument("inputs", nargs="+", metavar="PARTICLES",
                   help="particle CSV / ROI / Results files, or folders of particle CSVs")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR",
                   help="folder for the results (one subfolder per input)")
    p.add_argument("--roi", type=Path, metavar="FILE_OR_DIR",
                   help="the region: ImageJ .roi/.zip, mask image, or CSV of x,y polygon "
                        "vertices (pixels); a folder gives one per input")
    p.add_argument("--estimate-region", choices=["convex"], default=None,
                   help="without --roi: run the tests on the region estimated from the "
                        "particles (Ripley-Rasson convex window; convex membranes only). "
                        "Default: no tests without --roi")
    p.add_argument("--pixel-size", type=float, metavar="NM",
                   help="nm per pixel (default: the calibration of --image)")
    p.add_argument("--image", type=Path, metavar="FILE_OR_DIR",
                   help="the image (for its calibration and the map); a folder gives "
                        "<stem>.tif/.png/.jpg")
    p.add_argument("--cluster-distance", type=float, default=None, metavar="NM",
                   help="link particles at most this far apart into clusters (default 30)")
    p.add_argument("--min-cluster-size", type=int, default=None, metavar="N",
                   help="smallest linked group counted as a cluster (default 3)")
    p.add_argument("--n-sim", type=int, default=None, metavar="N",
                   help="random patterns per null model (default 499; 0 skips the tests)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="random seed of the simulations (default 0)")
    p.add_argument("--alpha", type=float, default=None, metavar="A",
                   help="significance level of envelopes and verdicts (default 0.05)")
    p.add_argument("--hard-core", type=float, default=1.0, metavar="F",
                   help="random particles keep F x their mean diameter apart (default 1: "
                        "touching spheres; 0: plain random)")
    p.add_argument("--r-max", type=float, default=None, metavar="NM",
                   help="largest distance of the L function (default: a quarter of the "
                        "region's shorter side)")
    p.add_argument("--classes", type=float, nargs="+", metavar="NM",
                   help="size classes (nm); each particle gets the nearest (default: the "
                        "diameters present)")
    p.add_argument("--groups", type=Path, metavar="CSV",
                   help="CSV with columns image,group: compare the groups' pooled L "
                        "functions by a permutation test (groups.csv)")
    p.add_argument("--n-perm", type=int, default=None, metavar="N",
                   help="permutations of the group test (default 999)")
    p.add_argument("--no-plots", action="store_true", help="write only the tables")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run)


def _expand_inputs(inputs: list[str]) -> list[Path]:
    from golddigger.io.annotations import ANNOTATION_SUFFIXES

    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower()
                           == ".csv" and not p.name.startswith(".") and _is_particle_csv(p))
            if not found:
                raise CliError(f"{path}: no particle CSVs (x,y,diameter_nm) in this folder")
            out.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in ANNOTATION_SUFFIXES:
                raise CliError(f"{path}: not a particle file (expected .csv, .zip, .roi, "
                               ".txt, .tsv or .xls)")
            out.append(path)
        else:
            raise CliError(f"{path}: no such file or folder")
    return out


def _is_particle_csv(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8-sig") as fh:
            header = [h.strip().lower() for h in fh.readline().split(",")]
    except (OSError, UnicodeDecodeError):
        return False
    return all(c in header for c in ("x", "y", "diameter_nm"))


def read_groups(path: Path) -> dict[str, str]:
    """``image -> group`` from a CSV with columns ``image,group``."""
    import csv

    if not path.is_file():
        raise CliError(f"{path}: no such groups file")
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError) as err:
        raise CliError(f"{path}: cannot read the groups file ({err})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if "image" not in header or "group" not in header:
        raise CliError(f"{path}: the groups file needs columns image,group (one image per "
                       "row, e.g. S4,WT)")
    ii, ig = header.index("image"), header.index("group")
    out: dict[str, str] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) <= max(ii, ig) or not row[ii].strip() or not row[ig].strip():
            raise CliError(f"{path}, line {lineno}: needs an image and a group")
        image = image_stem_of(row[ii].strip())
        if image in out and out[image] != row[ig].strip():
            raise CliError(f"{path}, line {lineno}: image {image} is in two groups")
        out[image] = row[ig].strip()
    return out


def image_stem_of(name: str) -> str:
    from golddigger.analysis.inputs import image_stem

    return image_stem(name) if "." in name or "_" in name else name


def _tick(bar, done: int, total: int) -> None:
    bar.total = total
    bar.n = done
    bar.refresh()


def _safe_name(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "region"


def run(args) -> int:
    import functools

    import numpy as np

    from golddigger.analysis import analyze, write_outputs
    from golddigger.analysis.clusters import DEFAULT_CLUSTER_DISTANCE_NM, DEFAULT_MIN_CLUSTER_SIZE
    from golddigger.analysis.inputs import (
        find_image,
        find_roi,
        image_stem,
        read_particle_file,
        read_regions,
    )
    from golddigger.analysis.pipeline import analyze_regions, check_classes
    from golddigger.analysis.randomness import DEFAULT_ALPHA, DEFAULT_N_SIM
    from golddigger.analysis.report import output_paths
    from golddigger.io.images import read_image, validate_pixel_size

    n_sim = DEFAULT_N_SIM if args.n_sim is None else args.n_sim
    if n_sim < 0:
        raise CliError("--n-sim must be >= 0")
    if args.pixel_size is not None:
        validate_pixel_size(args.pixel_size, "--pixel-size")
    if args.roi is not None and not args.roi.exists():
        raise CliError(f"{args.roi}: no such ROI file or folder")
    if args.image is not None and not args.image.exists():
        raise CliError(f"{args.image}: no such image file or folder")
    try:
        classes = check_classes(args.classes)
    except ValueError as err:
        raise CliError(f"--classes: {err}") from None
    if args.n_perm is not None and args.n_perm < 1:
        raise CliError("--n-perm must be >= 1")
    groups = read_groups(args.groups) if args.groups is not None else None
    paths = _expand_inputs(args.inputs)
    stems = [image_stem(p) for p in paths]
    dup = {s for s in stems if stems.count(s) > 1}
    if dup:
        raise CliError(f"several inputs belong to the same image name ({', '.join(sorted(dup))}"
                       "); analyse them in separate runs (outputs go to OUTDIR/<stem>/)")
    if args.pixel_size is None and args.image is None:
        raise CliError("the pixel size is unknown: give --pixel-size NM (nm per pixel), or "
                       "--image with a calibrated TIFF")
    # refuse before any work when outputs exist
    if not args.overwrite:
        for stem in stems:
            existing = [p for p in output_paths(args.output / stem).values() if p.exists()]
            if existing or (args.output / stem).is_dir() and any(
                    (args.output / stem).rglob("summary.csv")):
                raise CliError(f"{args.output / stem} already holds results; use --overwrite "
                               "to replace them")
    options = dict(
        cluster_distance_nm=(DEFAULT_CLUSTER_DISTANCE_NM if args.cluster_distance is None
                             else args.cluster_distance),
        min_cluster_size=(DEFAULT_MIN_CLUSTER_SIZE if args.min_cluster_size is None
                          else args.min_cluster_size),
        n_sim=n_sim, seed=args.seed, alpha=DEFAULT_ALPHA if args.alpha is None else args.alpha,
        hard_core=args.hard_core, r_max_nm=args.r_max, classes=classes,
        estimate_region=args.estimate_region)
    combined = [args.output / f for f in COMBINED_FILES]
    if not args.overwrite and len(paths) > 1:
        existing = [p for p in combined if p.exists()]
        if existing:
            raise CliError(f"{existing[0]} already exists; use --overwrite to replace it")

    failed: list[str] = []
    results = []
    for path, stem in zip(paths, stems, strict=True):
        try:
            image_path = find_image(stem, args.image)
            image = None
            if image_path is not None:
                image = read_image(image_path, pixel_size_nm=args.pixel_size)
            elif args.image is not None:
                logger.warning("%s: no image named %s.* in %s; the map is drawn without it",
                               path.name, stem, args.image)
            px = args.pixel_size
            if px is None:
                px = image.require_pixel_size() if image is not None else None
            if px is None:
                raise CliError(f"{path}: the pixel size is unknown (no image {stem}.* in "
                               f"{args.image}); give --pixel-size NM")
            particles = read_particle_file(path, px)
            roi_path = find_roi(stem, args.roi)
            regions = [None]
            if roi_path is not None:
                regions = read_regions(roi_path,
                                       image.shape_yx if image is not None else None)
            elif args.roi is not None:
                logger.warning("%s: no ROI for %s in %s; estimating the region from the "
                               "particles (Ripley-Rasson; no tests unless --estimate-region "
                               "convex)", path.name, stem, args.roi)
            slices = (np.unique(particles.slice).tolist() if len(particles) else [0])
            done = []
            for s in slices:
                name = stem if len(slices) == 1 else f"{stem} slice {s + 1}"
                outdir = args.output / stem if len(slices) == 1 else (
                    args.output / stem / f"slice{s + 1}")
                bar = progress(range(n_sim), total=None, desc=f"{name}: simulations",
                               quiet=args.quiet, unit="sim")
                try:
                    tick = functools.partial(_tick, bar)
                    if len(regions) > 1:
                        res = analyze_regions(particles, px, regions, slice=int(s), name=name,
                                              progress=tick, **options)
                        dirs = [outdir / _safe_name(r.region_name) for r in res]
                    else:
                        res = [analyze(particles, px, regions[0], slice=int(s), name=name,
                                       progress=tick, **options)]
                        dirs = [outdir]
                finally:
                    bar.close()
                done.extend(zip(res, dirs, strict=True))
            for result, outdir in done:  # write only once every slice and region worked
                write_outputs(result, outdir, image=image, overwrite=args.overwrite,
                              plots=not args.no_plots)
                if not args.quiet:
                    print(_one_line(result, outdir))
                if result.monte_carlo is not None:  # the combined tables need no curves
                    result.monte_carlo.simulated = {}
                results.append(result)
        except (ValueError, OSError, CliError) as err:  # GoldDiggerError is a ValueError
            failed.append(f"{path}: {err}" if str(path) not in str(err) else str(err))
            logger.debug("failed", exc_info=True)
    if failed:
        extra = " (no combined tables written)" if len(paths) > 1 else ""
        print(f"golddigger analyze: {len(failed)} of {len(paths)} input(s) failed{extra}:",
              file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        return 1
    if len(results) < 2:
        if groups is not None:
            print("golddigger analyze: --groups needs several images; no group test",
                  file=sys.stderr)
        return 0
    existing = [p for p in combined if p.exists()]
    if existing and not args.overwrite:  # several slices or regions of one input
        print(f"golddigger analyze: {existing[0]} already exists; the per-image results "
              "are written, the combined tables are not (use --overwrite)", file=sys.stderr)
        return 1
    from golddigger.analysis.replicates import DEFAULT_N_PERM
    from golddigger.analysis.report import write_combined

    written = write_combined(results, args.output, groups=groups,
                             n_perm=DEFAULT_N_PERM if args.n_perm is None else args.n_perm,
                             seed=args.seed)
    if not args.quiet:
        for line in written.get("_messages", []):
            print(line)
    return 0


#: The tables over all inputs, in OUTDIR.
COMBINED_FILES = ("summary.csv", "nnd_stats.csv", "randomness.csv", "pooled_l.csv",
                  "groups.csv")


def _one_line(result, outdir: Path) -> str:
    counts = ", ".join(f"{v} x {k} nm" for k, v in result.counts().items())
    density = len(result.cls) / result.area_um2
    where = result.region_name
    if result.settings.get("region_rule", "given") != "given":
        where = "area estimated from the particles (Ripley-Rasson, convex)"
    text = (f"{result.name} [{where}]: {len(result.cls)} particles ({counts}) in "
            f"{result.area_um2:.4g} um2 = {density:.4g}/um2; {len(result.clusters)} clusters")
    mc = result.monte_carlo
    if mc is not None:
        sig = [t for t in mc.tests if t.p_adjusted <= mc.alpha
               and not t.verdict.startswith("not valid")]
        text += (f"; {len(sig)} of {len(mc.tests)} tests significant after Holm"
                 + (": " + ", ".join(f"{t.statistic} {t.relation} {t.verdict} "
                                     f"(p_adj = {t.p_adjusted:.3g})" for t in sig)
                    if sig else ""))
    elif result.settings.get("tests_note"):
        text += f"; {result.settings['tests_note']}"
    return text + f" -> {outdir}/"
