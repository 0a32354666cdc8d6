"""Writing an analysis to disk (CSV tables, PNG plots) and handing its tables to ImageJ."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from pathlib import Path

from golddigger.analysis.result import TABLE_NAMES, AnalysisResult
from golddigger.io.safe import atomic_write_text, check_writable

__all__ = ["PLOT_FILES", "analysis_tables", "output_paths", "table_to_csv", "write_outputs"]

logger = logging.getLogger(__name__)

#: The PNG files `write_outputs` writes (when there is something to show), by name.
PLOT_FILES = {"nnd_plot": "nnd_histograms.png", "l_plot": "l_function.png",
              "map_plot": "map.png"}


def analysis_tables(result: AnalysisResult) -> dict[str, list[dict]]:
    """Every table of ``result`` as rows of ``{column: value}``, for ImageJ Results tables.

    Values are ``int``, ``float`` (NaN where undefined) or ``str``; every row of a table has
    the same columns in the same order. Tables: see `golddigger.analysis.TABLE_NAMES`
    (``summary, nnd, nnd_stats, clusters, randomness, l_function``); the last two are empty
    without randomness tests.
    """
    return result.tables()


def _cell(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        return f"{v:.6g}"
    if v is None:
        return ""
    return str(v)


def table_to_csv(rows: list[dict], columns: list[str] | None = None) -> str:
    """CSV text of a table (header from the first row, or ``columns`` when empty)."""
    columns = list(rows[0]) if rows else list(columns or [])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c, "")) for c in columns])
    return buf.getvalue()


def output_paths(outdir: str | Path) -> dict[str, Path]:
    """Every file `write_outputs` may write, by name."""
    outdir = Path(outdir)
    out = {name: outdir / f"{name}.csv" for name in TABLE_NAMES}
    out.update({name: outdir / file for name, file in PLOT_FILES.items()})
    out["settings"] = outdir / "settings.json"
    return out


def write_outputs(result: AnalysisResult, outdir: str | Path, image=None,
                  overwrite: bool = False, plots: bool = True) -> dict[str, Path]:
    """Write the tables (CSV), the settings (JSON) and the plots (PNG) into ``outdir``.

    Parameters
    ----------
    result : AnalysisResult
    outdir : str or Path
        Created if needed.
    image : CalibratedImage or numpy.ndarray, optional
        The image, to draw the particle map on its crop (else on the region).
    overwrite : bool
        Replace existing files (else a `GoldDiggerError` before writing anything).
    plots : bool
        Also write the PNGs.

    Returns
    -------
    dict
        Name to path of each file written.
    """
    outdir = Path(outdir)
    paths = output_paths(outdir)
    for p in paths.values():
        check_writable(p, overwrite)
    outdir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    tables = result.tables()
    headers = _empty_headers(result)
    for name in TABLE_NAMES:
        atomic_write_text(paths[name], table_to_csv(tables[name], headers.get(name)))
        written[name] = paths[name]
    settings = {k: v for k, v in result.settings.items()}
    settings.update({"classes_nm": list(result.diameters_nm), "area_um2": result.area_um2,
                     "n_particles": int(len(result.cls)), "n_outside_region": result.n_outside})
    atomic_write_text(paths["settings"], json.dumps(settings, indent=2, default=str) + "\n")
    written["settings"] = paths["settings"]
    if plots:
        from golddigger.analysis.plots import plot_l, plot_map, plot_nnd

        for name, fn in (("nnd_plot", plot_nnd), ("l_plot", plot_l)):
            p = fn(result, paths[name])
            if p is not None:
                written[name] = p
        written["map_plot"] = plot_map(result, paths["map_plot"], image=image)
    for name, p in paths.items():  # with overwrite: no stale file from an earlier run
        if name not in written and p.exists():
            p.unlink()
    logger.info("%s: wrote %d files to %s", result.name or "analysis", len(written), outdir)
    return written


def _empty_headers(result: AnalysisResult) -> dict[str, list[str]]:
    """Headers for tables that may be empty, so their CSV still has one."""
    from golddigger.analysis.randomness import quantile_names

    counts = [f"n_{k}" for k in result.class_names]
    lo, hi = quantile_names(float(result.settings.get("alpha", 0.05)))
    keys = ["image", "region"]
    heads = {
        "clusters": ["cluster", "n", "classes", *counts, "hull_area_nm2", "centroid_x_px",
                     "centroid_y_px", "centroid_x_nm", "centroid_y_nm",
                     "nearest_cluster_by_edge", "edge_distance_nm",
                     "nearest_cluster_by_centroid", "centroid_distance_nm"],
        "randomness": ["statistic", "relation", "observed", "sim_mean", lo, hi, "p_value",
                       "alternative", "n_sim", "verdict", "p_adjusted", "null_model"],
        "l_function": ["relation", "r_nm", "l_minus_r_nm", "sim_mean_nm", "pointwise_lo_nm",
                       "pointwise_hi_nm", "global_lo_nm", "global_hi_nm", "null_model", "g",
                       "g_sim_mean", "g_pointwise_lo", "g_pointwise_hi"],
        "nnd": ["particle", "input_row", "x_px", "y_px", "x_nm", "y_nm", "class", "cluster",
                "edge_distance_nm"],
        "nnd_stats": ["from", "to", "n", "mean_nm", "sd_nm", "median_nm", "min_nm", "max_nm"],
    }
    return {name: keys + cols for name, cols in heads.items()}
