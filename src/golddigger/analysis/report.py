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

__all__ = ["PLOT_FILES", "analysis_tables", "combined_tables", "output_paths", "table_to_csv",
           "write_combined", "write_outputs"]

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


def combined_tables(results: list[AnalysisResult], groups: dict[str, str] | None = None,
                    n_perm: int = 999, seed: int | None = 0) -> dict[str, list[dict]]:
    """The tables of many images and regions together.

    Returns ``summary``, ``nnd_stats``, ``randomness`` (the per-image tables stacked; their
    ``image`` and ``region`` columns tell the rows apart), ``pooled_l`` (K and L - r pooled
    over the images of each region name, per relation, weighted by ``n (n - 1)``; per group
    too with ``groups``) and ``groups`` (the permutation test between groups per region and
    relation; empty without ``groups``).
    """
    import numpy as np

    from golddigger.analysis.randomness import N_R
    from golddigger.analysis.replicates import group_test, pool, replicate_k
    from golddigger.analysis.ripley import l_function

    out: dict[str, list[dict]] = {"summary": [], "nnd_stats": [], "randomness": [],
                                  "pooled_l": [], "groups": []}
    for res in results:
        out["summary"] += res.summary_rows()
        out["nnd_stats"] += res.nnd_stats_rows()
        out["randomness"] += res.randomness_rows()
    if not results:
        return out
    r_max = min(float(res.settings.get("r_max_nm") or 0) for res in results)
    if not r_max > 0:
        return out
    r = np.linspace(0.0, r_max, N_R)
    reps = [k for res in results for k in replicate_k(res, r)]
    keys = sorted({(x.region, x.relation) for x in reps})
    for region, relation in keys:
        sel = [x for x in reps if x.region == region and x.relation == relation]
        parts = [("all", sel)]
        if groups:
            names = sorted({groups[x.image] for x in sel if x.image in groups})
            parts += [(g, [x for x in sel if groups.get(x.image) == g]) for g in names]
        for group, members in parts:
            k = pool(members)
            lr = l_function(k) - r
            for i in range(r.size):
                out["pooled_l"].append({
                    "region": region, "relation": relation, "group": group, "r_nm": float(r[i]),
                    "k_nm2": float(k[i]), "l_minus_r_nm": float(lr[i]),
                    "n_images": len(members), "n_particles": int(sum(x.n for x in members))})
        if groups:
            try:
                t = group_test(sel, groups, n_perm=n_perm, seed=seed)
            except ValueError as err:
                logger.info("group test %s %s: %s", region, relation, err)
                continue
            out["groups"].append({"region": region, "relation": relation,
                                  "groups": ";".join(t.groups),
                                  "n_images": ";".join(str(n) for n in t.n_images),
                                  "statistic": t.statistic, "p_value": t.p_value,
                                  "n_perm": t.n_perm})
    return out


def write_combined(results: list[AnalysisResult], outdir: str | Path,
                   groups: dict[str, str] | None = None, n_perm: int = 999,
                   seed: int | None = 0) -> dict:
    """Write `combined_tables` as ``<name>.csv`` into ``outdir`` (``groups.csv`` only with
    groups). Returns name to path, and ``"_messages"``: lines worth showing."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    tables = combined_tables(results, groups, n_perm, seed)
    written: dict = {"_messages": []}
    if groups:
        known = {res.name for res in results}
        missing = sorted(known - set(groups))
        if missing:
            written["_messages"].append(
                f"groups: {len(missing)} image(s) have no group and are left out of the "
                f"comparison ({', '.join(missing[:5])}{'...' if len(missing) > 5 else ''})")
    heads = {"pooled_l": ["region", "relation", "group", "r_nm", "k_nm2", "l_minus_r_nm",
                          "n_images", "n_particles"],
             "groups": ["region", "relation", "groups", "n_images", "statistic", "p_value",
                        "n_perm"]}
    for name, rows in tables.items():
        if name == "groups" and not groups:
            continue
        path = outdir / f"{name}.csv"
        atomic_write_text(path, table_to_csv(rows, heads.get(name, ["image", "region"])))
        written[name] = path
    for row in tables["groups"]:
        written["_messages"].append(
            f"groups {row['groups']} ({row['n_images']} images), {row['region']} "
            f"{row['relation']}: pooled L differs with p = {row['p_value']:.3g} "
            f"({row['n_perm']} permutations)")
    return written
