"""Plugins > Gold Digger > Analyze Gold Distribution: `golddigger.analysis` on the particles
of the ROI Manager, inside the membrane region; tables into ImageJ, plots as images.

The particles are the ROI Manager's point and oval ROIs on the current slice (Gold Digger
detections and the user's own points; see `golddigger.imagej.backend.particles_from_roiset`
for how classes are told). The region follows `golddigger analyze`'s rules: the current
area selection; the ROI Manager's area ROIs (several differently named ones, such as
synapse / extrasynaptic / background, are analysed region by region); or (``hull``) the
Ripley-Rasson estimate from the particles (area and densities only: the tests run on it only
with ``convex_estimate``, convex membranes). The tables carry ``image`` and ``region``
columns and, with ``append`` (default), grow across images instead of being replaced.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from golddigger.errors import GoldDiggerError
from golddigger.imagej import backend
from golddigger.imagej.tables import rows_to_csv
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

__all__ = ["SHOWN_TABLES", "TABLE_TITLES", "analyze_particles", "run_from_files", "run_in_imagej",
           "table_title"]

logger = logging.getLogger(__name__)

#: The analysis tables shown in ImageJ (all of them are written as CSV).
SHOWN_TABLES = ("summary", "nnd_stats", "randomness", "clusters")


#: Oval ROIs at most this wide (pixels) are particle marks, never regions.
PARTICLE_OVAL_MAX_PX = 80

#: ImageJ window titles of the shown tables.
TABLE_TITLES = {"summary": "Gold Digger Analysis", "nnd_stats": "Gold Digger NND",
                "randomness": "Gold Digger Randomness", "clusters": "Gold Digger Clusters"}


def table_title(name: str) -> str:
    """The ImageJ window title of an analysis table (``"summary"`` -> ``"Gold Digger
    Analysis"``)."""
    return TABLE_TITLES.get(name, f"Gold Digger {name}")


def _options(values: Mapping[str, object]) -> dict:
    from golddigger.analysis.clusters import DEFAULT_CLUSTER_DISTANCE_NM, DEFAULT_MIN_CLUSTER_SIZE
    from golddigger.analysis.randomness import DEFAULT_N_SIM

    def num(key: str, default: float) -> float:
        v = values.get(key)
        return default if v is None or v == "" else float(v)

    convex = values.get("convex_estimate")
    convex = str(convex).lower() in ("1", "true", "yes") if isinstance(convex, str) else bool(
        convex)
    return {"n_sim": int(round(num("simulations", DEFAULT_N_SIM))),
            "estimate_region": "convex" if convex else None,
            "cluster_distance_nm": num("cluster_distance", DEFAULT_CLUSTER_DISTANCE_NM),
            "min_cluster_size": int(round(num("min_cluster_size", DEFAULT_MIN_CLUSTER_SIZE)))}


def analyze_particles(particles: ParticleTable, pixel_size_nm: float,
                      region: Region | list[Region] | None, plane: np.ndarray | None,
                      values: Mapping[str, object], name: str,
                      progress: Callable[[int, int], None] | None = None):
    """Run `golddigger.analysis.analyze` (or `analyze_regions` for several named regions)
    and write the outputs.

    Outputs go to ``<output>/<name>/`` (``output`` option; ``.../<region>/`` for several
    regions), else to a new temporary folder. Returns ``(results, written, outdir)``:
    lists of results and of their written files, and the folder.
    """
    from golddigger.analysis import analyze, write_outputs
    from golddigger.analysis.pipeline import analyze_regions

    if len(particles) == 0:
        raise GoldDiggerError("no particles to analyse: run Detect Gold, or mark particles "
                              "with point ROIs in the ROI Manager")
    opts = _options(values)
    if isinstance(region, list) and len(region) > 1:
        results = analyze_regions(particles, pixel_size_nm, region, name=name,
                                  progress=progress, **opts)
    else:
        region = region[0] if isinstance(region, list) else region
        results = [analyze(particles, pixel_size_nm, region, name=name, progress=progress,
                           **opts)]
    output = str(values.get("output", "") or "").strip()
    if output:
        outdir = Path(output) / backend.safe_stem(name)
    else:
        outdir = Path(tempfile.mkdtemp(prefix="golddigger-analysis-"))
    written = []
    for res in results:
        sub = outdir if len(results) == 1 else outdir / backend.safe_stem(res.region_name)
        written.append(write_outputs(res, sub, image=plane,
                                     overwrite=bool(values.get("overwrite")), plots=True))
    return results, written, outdir


def combined_rows(results) -> dict[str, list[dict]]:
    """The shown tables of all results (regions) stacked."""
    tables: dict[str, list[dict]] = {name: [] for name in SHOWN_TABLES}
    for res in results:
        t = res.tables()
        for name in SHOWN_TABLES:
            tables[name] += t[name]
    return tables


def named_area_regions(rois, to_region) -> list[Region] | None:
    """Several differently named area ROIs (not ``gold-*`` particles) as a list of
    Regions (``to_region(roi)``), or None when there are fewer than two names."""
    areas = [r for r in rois if not str(r.name or "").startswith("gold-")]
    names = [str(r.name or "") for r in areas]
    if len(areas) < 2 or len(set(names)) != len(names) or "" in names:
        return None
    return [to_region(r) for r in areas]


def _particles_and_region(imp, values, rm_zip: Path | None, current: int):
    """(Python-hosted path) particles of the current slice and the region."""
    from golddigger.imagej import convert

    w, h = int(imp.getWidth()), int(imp.getHeight())
    px = values["_px"]
    particles = backend.particles_from_roiset(rm_zip, px, float(values["default_class"]),
                                              current_slice=current)
    choice = str(values["region"])
    region = None
    if choice == "selection":
        roi = imp.getRoi()
        if (roi is not None and convert.is_area_roi(roi)
                and not str(roi.getName() or "").startswith("gold-")):
            region = convert.rois_to_region([roi], w, h, str(roi.getName() or "selection"))
    elif choice == "roi_manager":
        rm = convert.roi_manager()
        areas = [r for r in (rm.getRoisAsArray() if rm is not None else [])
                 if convert.is_area_roi(r) and not str(r.getName() or "").startswith("gold-")
                 and not (r.getType() == 1 and max(r.getBounds().width, r.getBounds().height)
                          <= PARTICLE_OVAL_MAX_PX)]  # 1: ImageJ's Roi.OVAL (a particle)
        names = [str(r.getName() or "") for r in areas]
        if len(areas) > 1 and "" not in names and len(set(names)) == len(names):
            return particles, [convert.rois_to_region([r], w, h, str(r.getName()))
                               for r in areas]
        region = convert.manager_region(w, h)
        if region is None:
            raise GoldDiggerError("region=roi_manager but the ROI Manager has no area ROI")
    return particles, region


def run_in_imagej(session, values: Mapping) -> dict:
    """The command in a Python-hosted ImageJ: tables shown, plots opened (``plots``)."""
    from ij import IJ

    from golddigger.imagej import convert, publish

    imp = session._image()
    values = dict(values)
    values["_px"] = px = session._pixel_size(imp, values)
    current = int(imp.getCurrentSlice()) - 1
    title = str(imp.getTitle())
    with tempfile.TemporaryDirectory(prefix="golddigger-") as tmp:
        zpath = convert.save_particle_rois(
            imp, tmp, "run Detect Gold first, or mark particles with point ROIs in the "
                      "ROI Manager")
        particles, region = _particles_and_region(imp, values, zpath, current)
    plane = convert.imageplus_to_array(imp, [current])
    IJ.showStatus("Gold Digger: analysing...")

    def tick(done: int, n: int) -> None:
        if n:
            IJ.showProgress(done, n)

    results, written, outdir = analyze_particles(particles, px, region, plane, values,
                                                 backend.safe_stem(title), tick)
    tables = combined_rows(results)
    append = bool(values.get("append", True))
    for name in SHOWN_TABLES:
        publish.fill_table(tables[name], table_title(name), append=append,
                           show=not session.headless)
    if values.get("plots") and not session.headless:
        for files in written:
            for key in ("map_plot", "nnd_plot", "l_plot"):
                if key in files:
                    plot = IJ.openImage(str(files[key]))
                    if plot is not None:
                        plot.show()
    IJ.log(f"Gold Digger: analysis of {title} written to {outdir}")
    for line in _log_lines(results):
        IJ.log(line)
    n = sum(len(r.cls) for r in results)
    IJ.showStatus(f"Gold Digger: {n} particles analysed; results in {outdir}")
    return {"outdir": outdir, "written": written, "results": results}


def _log_lines(results) -> list[str]:
    """One Log line per region: where the verdicts rest, and the significant tests."""
    lines = []
    for res in results:
        rule = res.settings.get("region_rule", "given")
        where = res.region_name if rule == "given" else (
            "area estimated from the particles (Ripley-Rasson, convex)")
        mc = res.monte_carlo
        text = f"  {res.name} [{where}]: {len(res.cls)} particles in {res.area_um2:.4g} um2"
        if mc is not None:
            sig = [t for t in mc.tests if t.p_adjusted <= mc.alpha
                   and not t.verdict.startswith("not valid")]
            text += f"; {len(sig)} of {len(mc.tests)} tests significant (Holm)"
            text += "".join(f"; {t.statistic} {t.relation} {t.verdict}" for t in sig)
        elif res.settings.get("tests_note"):
            text += f"; {res.settings['tests_note']}"
        lines.append(text)
    return lines


def run_from_files(args, values: Mapping) -> dict:
    """The command for the installed macro (``golddigger imagej --call analyze``): reads the
    temporary copies, writes the outputs, and copies the shown tables (``ij-<name>.csv``,
    plain CSV for the macro) and the plots into ``--out``."""
    from golddigger.io.images import read_image
    from golddigger.io.rois import read_region

    if not args.out:
        raise GoldDiggerError("--out is required")
    px_override = float(values.get("pixel_size", 0) or 0) or None
    image = read_image(args.image, pixel_size_nm=px_override)
    px = image.require_pixel_size()
    current = None if args.current_slice < 0 else int(args.current_slice)
    if not args.rois:
        raise GoldDiggerError("no particles: run Detect Gold first, or mark particles with "
                              "point ROIs in the ROI Manager")
    particles = backend.particles_from_roiset(args.rois, px, float(values["default_class"]),
                                              current_slice=current)
    region: Region | list[Region] | None = None
    choice = str(values.get("region"))
    if choice == "roi_manager" and args.rois and str(args.rois).lower().endswith(".zip"):
        from golddigger.io.rois import load_rois, roi_to_geometry

        def to_region(roi) -> Region:
            geom = Region(geometry=roi_to_geometry(roi), name=str(roi.name))
            return Region.from_mask(geom.to_mask(image.shape_yx), name=str(roi.name))

        from roifile import ROI_TYPE

        def is_mark(roi) -> bool:  # an oval particle mark, not a region
            return roi.roitype == ROI_TYPE.OVAL and max(
                roi.right - roi.left, roi.bottom - roi.top) <= PARTICLE_OVAL_MAX_PX

        areas = [r for r in load_rois(args.rois)
                 if not is_mark(r) and roi_to_geometry(r) is not None]
        region = named_area_regions(areas, to_region)
    if region is None and args.roi and choice != "hull":
        found = read_region(args.roi, image.shape_yx)
        region = Region.from_mask(found.to_mask(image.shape_yx), name=found.name)
    plane = image.slice(0) if image.is_stack else image.data
    name = backend.safe_stem(args.name or image.name)
    results, written, outdir = analyze_particles(particles, px, region, plane, values, name)
    out = Path(args.out)
    tables = combined_rows(results)
    for t in SHOWN_TABLES:
        rows_to_csv(tables[t], out / f"ij-{t}.csv", plain=True)
    plots = []
    for k, files in enumerate(written):
        for key in ("map_plot", "nnd_plot", "l_plot"):
            if key in files:
                dest = out / (files[key].name if len(written) == 1
                              else f"{k + 1}-{files[key].name}")
                if dest.resolve() != files[key].resolve():
                    shutil.copyfile(files[key], dest)
                plots.append(dest.name)
    log = [f"Gold Digger: analysis of {args.name or image.name} written to {outdir}",
           *_log_lines(results)]
    (out / "ij-log.txt").write_text("\n".join(log), encoding="utf-8")
    return {"particles": sum(len(r.cls) for r in results),
            "area_um2": f"{sum(r.area_um2 for r in results):.4g}",
            "regions": len(results), "plots": ",".join(plots) or "none"}
