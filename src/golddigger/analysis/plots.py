"""Figures of an analysis (matplotlib, Agg canvas, no pyplot state).

- `plot_nnd`: nearest-neighbour distance histograms with the random-pattern envelope;
- `plot_l`: L(r) - r with its pointwise and global envelopes;
- `plot_map`: the particles and clusters on the image crop (or on the region).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from golddigger.analysis.geometry import polygons_of
from golddigger.analysis.result import AnalysisResult
from golddigger.io.safe import atomic_path

__all__ = ["plot_l", "plot_map", "plot_nnd"]

logger = logging.getLogger(__name__)

_DPI = 120
_ENV_COLOR = "0.6"
_OBS_COLOR = "#0072B2"
_GLOBAL_COLOR = "#D55E00"


def _colors(result: AnalysisResult) -> dict[str, str]:
    from golddigger.io.rois import class_colors

    cols = class_colors(result.diameters_nm)
    return {name: cols[d] for name, d in zip(result.class_names, result.diameters_nm,
                                             strict=True)}


def _figure(n_panels: int, width: float = 4.2, height: float = 3.4):
    from matplotlib.figure import Figure

    ncols = min(n_panels, 2) or 1
    nrows = max(1, -(-n_panels // ncols))
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes


def _save(fig, path: str | Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=_DPI, format="png")
    return path


def _nice_width(upper: float, n_bins: int = 20) -> float:
    raw = upper / n_bins
    mag = 10 ** np.floor(np.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return float(m * mag)
    return float(10 * mag)


def _rel_label(rel: str) -> str:
    if " | " in rel:
        rel, null = rel.split(" | ", 1)
        return f"{_rel_label(rel)}, {null}"
    if "->" in rel:
        a, b = rel.split("->")
        return f"{a} nm -> nearest {b} nm"
    if "x" in rel:
        a, b = rel.split("x")
        return f"{a} nm x {b} nm (cross)"
    return "all particles" if rel == "all" else f"{rel} nm"


def plot_nnd(result: AnalysisResult, path: str | Path) -> Path | None:
    """NND histograms, one panel per relation (within each class, between classes), with
    the mean and pointwise 95 % band of the simulated patterns' histograms.

    Returns the path, or None when there is nothing to plot.
    """
    mc = result.monte_carlo
    if mc is not None:
        rels = [k[4:] for k in mc.observed if k.startswith("nnd ")]
    else:
        rels = [k for k in result.class_names if result.counts()[k] >= 2]
    if not rels:
        return None
    fig, axes = _figure(len(rels))
    for ax, rel in zip(axes, rels, strict=False):
        if mc is not None:
            obs = np.asarray(mc.observed[f"nnd {rel}"], dtype=float)
            sims = np.asarray(mc.simulated[f"nnd {rel}"], dtype=float)
        else:
            src, _, dst = rel.partition("->")
            obs, sims = result.nnd(src, dst or None), None
        obs = obs[np.isfinite(obs)]
        upper = float(obs.max()) if obs.size else 1.0
        if sims is not None and sims.size:
            upper = max(upper, float(np.nanquantile(sims, 0.995)))
        width = _nice_width(upper)
        edges = np.arange(0.0, upper + width, width)
        counts, _ = np.histogram(obs, edges)
        title = f"{_rel_label(rel)}: mean {obs.mean():.1f} nm" if obs.size else _rel_label(rel)
        if sims is not None and sims.size:
            hists = np.array([np.histogram(s[np.isfinite(s)], edges)[0] for s in sims])
            lo, hi = np.quantile(hists, [mc.alpha / 2, 1 - mc.alpha / 2], axis=0)
            ax.fill_between(edges, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post",
                            color=_ENV_COLOR, alpha=0.5, lw=0, zorder=1,
                            label=f"random, {100 * (1 - mc.alpha):g}% band")
            mean = hists.mean(axis=0)
            ax.stairs(mean, edges, color="k", lw=1.2, zorder=3, label="random, mean")
            test = mc.test("mean_nnd", rel)
            title += (f"\n(null {test.sim_mean:.1f} nm, p = {test.p_value:.3g}, "
                      f"Holm {test.p_adjusted:.3g})")
        ax.stairs(counts, edges, color=_OBS_COLOR, lw=2.0, zorder=2, label="observed")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("nearest-neighbour distance (nm)")
        ax.set_ylabel("particles")
        if ax is axes[0]:
            ax.legend(fontsize=7, frameon=False)
    fig.suptitle(_suptitle(result, "Nearest-neighbour distances"), fontsize=10)
    return _save(fig, path)


def _suptitle(result: AnalysisResult, what: str) -> str:
    counts = ", ".join(f"{v} x {k} nm" for k, v in result.counts().items())
    head = f"{result.name}: " if result.name else ""
    if result.region_name not in ("", "given"):
        head += f"[{result.region_name}] "
    mc = result.monte_carlo
    sims = f"; {mc.n_sim} random patterns" if mc is not None else ""
    return f"{head}{what} ({counts} in {result.area_um2:.3g} um²{sims})"


def plot_l(result: AnalysisResult, path: str | Path) -> Path | None:
    """Per relation and null model: L(r) - r with the simulations' mean, pointwise band and
    global MAD envelope (left), and the pair correlation g(r) with its pointwise band
    (right). Returns the path, or None without randomness tests."""
    mc = result.monte_carlo
    if mc is None or not mc.envelopes:
        return None
    keys = list(mc.envelopes)
    fig, axes = _figure(2 * len(keys))
    r = mc.model.r
    level = f"{100 * (1 - mc.alpha):g}%"
    for k, key in enumerate(keys):
        ax, gx = axes[2 * k], axes[2 * k + 1]
        env = mc.envelopes[key]
        mean, lo, hi = mc.pointwise(f"L {key}")
        ax.fill_between(r, lo, hi, color=_ENV_COLOR, alpha=0.45, lw=0,
                        label=f"null, pointwise {level}")
        ax.plot(r, mean, color="k", lw=1, ls="--", label="null, mean")
        ax.plot(r, env.lo, color=_GLOBAL_COLOR, lw=1, ls=":")
        ax.plot(r, env.hi, color=_GLOBAL_COLOR, lw=1, ls=":", label=f"global {level} envelope")
        ax.plot(r, mc.observed[f"L {key}"], color=_OBS_COLOR, lw=2, label="observed")
        ax.axhline(0, color="0.3", lw=0.5)
        test = mc.test("L_mad", key)
        ax.set_title(f"{_rel_label(key)}\nL test p = {test.p_value:.3g}, Holm "
                     f"{test.p_adjusted:.3g} ({test.verdict})", fontsize=8)
        ax.set_xlabel("r (nm)")
        ax.set_ylabel("L(r) - r (nm)")
        ax.set_xlim(0, r.max())
        if k == 0:
            ax.legend(fontsize=7, frameon=False)
        g_obs = mc.observed.get(f"g {key}")
        if g_obs is None:
            gx.set_visible(False)
            continue
        g_mean, g_lo, g_hi = mc.pointwise(f"g {key}")
        gx.fill_between(r, g_lo, g_hi, color=_ENV_COLOR, alpha=0.45, lw=0)
        gx.plot(r, g_mean, color="k", lw=1, ls="--")
        gx.plot(r, g_obs, color=_OBS_COLOR, lw=2)
        gx.axhline(1, color="0.3", lw=0.5)
        gx.set_title(f"{_rel_label(key)}\npair correlation g(r) (descriptive)", fontsize=8)
        gx.set_xlabel("r (nm)")
        gx.set_ylabel("g(r)")
        gx.set_xlim(0, r.max())
    fig.suptitle(_suptitle(result, "Besag's L and pair correlation g"), fontsize=10)
    return _save(fig, path)


def plot_map(result: AnalysisResult, path: str | Path, image=None) -> Path:
    """The region, the particles (circles of their size, coloured by class) and the
    clusters (hull of their centres, numbered), in nm, over the image crop if given.

    Parameters
    ----------
    image : CalibratedImage or numpy.ndarray, optional
        The image the particles belong to (the analysed slice is used for stacks).
    """
    from matplotlib.patches import Circle
    from matplotlib.patches import Polygon as MplPolygon
    from shapely.geometry import MultiPoint

    px = result.pixel_size_nm
    geom = result.geometry_nm
    xmin, ymin, xmax, ymax = geom.bounds
    margin = 0.05 * max(xmax - xmin, ymax - ymin)
    xmin, ymin, xmax, ymax = xmin - margin, ymin - margin, xmax + margin, ymax + margin
    from matplotlib.figure import Figure

    aspect = (ymax - ymin) / max(xmax - xmin, 1e-9)
    fig = Figure(figsize=(7.0, min(12.0, 6.1 * aspect) + 1.4), layout="constrained")
    ax = fig.subplots()
    data = _image_plane(image, result.settings.get("slice"))
    if data is not None:
        h, w = data.shape
        c0, c1 = max(0, int(np.floor(xmin / px))), min(w, int(np.ceil(xmax / px)) + 1)
        r0, r1 = max(0, int(np.floor(ymin / px))), min(h, int(np.ceil(ymax / px)) + 1)
        crop = np.asarray(data[r0:r1, c0:c1], dtype=float)
        if crop.size:
            vlo, vhi = np.percentile(crop, [1, 99])
            ax.imshow(crop, cmap="gray", vmin=vlo, vmax=vhi, interpolation="nearest",
                      extent=((c0 - 0.5) * px, (c1 - 0.5) * px, (r1 - 0.5) * px,
                              (r0 - 0.5) * px))
    for poly in polygons_of(geom):
        for ring in [poly.exterior, *poly.interiors]:
            xy = np.asarray(ring.coords)
            ax.add_patch(MplPolygon(xy, closed=True, fill=data is None and ring is poly.exterior,
                                    facecolor="0.93", edgecolor="#009E73", lw=1.2,
                                    zorder=1))
            if data is None and ring is not poly.exterior:
                ax.add_patch(MplPolygon(xy, closed=True, facecolor="white", edgecolor="none",
                                        zorder=1))
    colors = _colors(result)
    for c, name in enumerate(result.class_names):
        sel = np.flatnonzero(result.cls == c)
        for i in sel:
            x, y = result.xy_nm[i]
            ax.add_patch(Circle((x, y), result.diameters_nm[c] / 2, fill=False,
                                edgecolor=colors[name], lw=1.0, zorder=3))
        ax.plot([], [], "o", mfc="none", mec=colors[name], label=f"{name} nm ({sel.size})")
    for cl in result.clusters:
        pts = result.xy_nm[cl.members]
        outline = MultiPoint([tuple(p) for p in pts]).convex_hull.buffer(
            max(result.diameters_nm), quad_segs=4)
        ax.add_patch(MplPolygon(np.asarray(outline.exterior.coords), closed=True, fill=False,
                                edgecolor="#F0E442" if data is not None else "#CC79A7",
                                lw=1.0, ls="--", zorder=2))
        ax.text(*np.asarray(outline.exterior.coords).max(axis=0), str(cl.id), fontsize=7,
                color="#F0E442" if data is not None else "#CC79A7", zorder=4)
    if result.clusters:
        ax.plot([], [], ls="--", color="#F0E442" if data is not None else "#CC79A7",
                label=f"clusters ({len(result.clusters)}; link "
                      f"{result.settings.get('cluster_distance_nm', 0):g} nm, "
                      f">= {result.settings.get('min_cluster_size', 0)})")
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymax, ymin)  # image orientation: y down
    ax.set_aspect("equal")
    ax.set_xlabel("x (nm)")
    ax.set_ylabel("y (nm)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3,
              frameon=False)
    fig.suptitle(_suptitle(result, "Particles and clusters"), fontsize=10)
    return _save(fig, path)


def _image_plane(image, slice_index) -> np.ndarray | None:
    if image is None:
        return None
    data = getattr(image, "data", image)
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[-1] in (3, 4) and data.shape[0] > 4:
        data = data[..., :3].mean(axis=-1)
    if data.ndim == 3:
        data = data[int(slice_index or 0)]
    if data.ndim != 2:
        raise ValueError(f"the image must be 2D or a stack, got shape {data.shape}")
    return data
