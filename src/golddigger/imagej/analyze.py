"""Plugins > Gold Digger > Analyze Gold Distribution: `golddigger.analysis` on the particles
of the ROI Manager, inside the membrane region; tables into ImageJ, plots as images.

The particles are the ROI Manager's point and oval ROIs on the current slice (Gold Digger
detections and the user's own points; see `golddigger.imagej.backend.particles_from_roiset`
for how classes are told). The region is the current area selection, the ROI Manager's
area ROIs, or the particles' hull grown by 30 nm (`golddigger.analysis`'s default).
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


#: ImageJ window titles of the shown tables.
TABLE_TITLES = {"summary": "Gold Digger Analysis", "nnd_stats": "Gold Digger NND",
                "randomness": "Gold Digger Randomness", "clusters": "Gold Digger Clusters"}


def table_title(name: str) -> str:
    """The ImageJ window title of an analysis table (``"summary"`` -> ``"Gold Digger
    Analysis"``)."""
    return TABLE_TITLES.get(name, f"Gold Digger {name}")


def analyze_particles(particles: ParticleTable, pixel_size_nm: float, region: Region | None,
                      plane: np.ndarray | None, values: Mapping[str, object], name: str,
                      progress: Callable[[int, int], None] | None = None):
    """Run `golddigger.analysis.analyze` and write its outputs.

    Outputs go to ``<output>/<name>/`` (``output`` option), else to a new temporary
    folder. Returns ``(result, written, outdir)``.
    """
    from golddigger.analysis import analyze, write_outputs

    if len(particles) == 0:
        raise GoldDiggerError("no particles to analyse: run Detect Gold, or mark particles "
                              "with point ROIs in the ROI Manager")
    n_sim = int(round(float(values.get("simulations", 199) or 0)))
    result = analyze(particles, pixel_size_nm, region, n_sim=n_sim, name=name,
                     progress=progress)
    output = str(values.get("output", "") or "").strip()
    if output:
        outdir = Path(output) / backend.safe_stem(name)
    else:
        outdir = Path(tempfile.mkdtemp(prefix="golddigger-analysis-"))
    written = write_outputs(result, outdir, image=plane, overwrite=bool(values.get("overwrite")),
                            plots=True)
    return result, written, outdir


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

    result, written, outdir = analyze_particles(particles, px, region, plane, values,
                                                backend.safe_stem(title), tick)
    tables = result.tables()
    for name in SHOWN_TABLES:
        publish.fill_table(tables[name], table_title(name), show=not session.headless)
    if values.get("plots") and not session.headless:
        for key in ("map_plot", "nnd_plot", "l_plot"):
            if key in written:
                plot = IJ.openImage(str(written[key]))
                if plot is not None:
                    plot.show()
    IJ.log(f"Gold Digger: analysis of {title} written to {outdir}")
    IJ.showStatus(f"Gold Digger: {len(result.cls)} particles analysed in "
                  f"{result.area_um2:.3g} um2; results in {outdir}")
    return {"outdir": outdir, "written": written, "result": result}


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
    region = None
    if args.roi and str(values.get("region")) != "hull":
        found = read_region(args.roi, image.shape_yx)
        region = Region.from_mask(found.to_mask(image.shape_yx), name=found.name)
    plane = image.slice(0) if image.is_stack else image.data
    name = backend.safe_stem(args.name or image.name)
    result, written, outdir = analyze_particles(particles, px, region, plane, values, name)
    out = Path(args.out)
    tables = result.tables()
    for t in SHOWN_TABLES:
        rows_to_csv(tables[t], out / f"ij-{t}.csv", plain=True)
    plots = []
    for key in ("map_plot", "nnd_plot", "l_plot"):
        if key in written:
            dest = out / written[key].name
            if dest.resolve() != written[key].resolve():
                shutil.copyfile(written[key], dest)
            plots.append(dest.name)
    return {"particles": len(result.cls), "area_um2": f"{result.area_um2:.4g}",
            "plots": ",".join(plots) or "none"}
