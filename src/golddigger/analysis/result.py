"""`AnalysisResult`: everything `analyze` found, and its tables (lists of dicts)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from golddigger.analysis.clusters import Cluster
from golddigger.analysis.density import density_rows
from golddigger.analysis.neighbours import nnd_stats
from golddigger.analysis.randomness import MonteCarloResult
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

__all__ = ["TABLE_NAMES", "AnalysisResult"]

#: The tables of a result, in the order they are written.
TABLE_NAMES = ("summary", "nnd", "nnd_stats", "clusters", "randomness", "l_function")


@dataclass
class AnalysisResult:
    """The spatial analysis of one image (or one stack slice).

    Attributes
    ----------
    name : str
        The image's name.
    pixel_size_nm : float
    region : Region
        The analysis region (pixels).
    geometry_nm : shapely geometry
        The region in nm.
    particles : ParticleTable
        The particles inside the region (pixels; diameters set to their class).
    input_rows : numpy.ndarray
        For each particle: its 0-based row in the input table.
    n_outside : int
        Input particles left out because they lie outside the region.
    n_outside_by_class : dict
        The same per class name, and ``"all"``.
    class_names : tuple of str
        ``("6", "12")``: class keys (`golddigger.evaluate.class_key`).
    diameters_nm : tuple of float
    cls : numpy.ndarray
        Class index of each particle.
    xy_nm : numpy.ndarray
        (N, 2) positions in nm.
    nearest : dict
        Per target class name: ``(dist_nm, index)`` arrays over all particles: the distance
        to (and index of) the nearest *other* particle of that class.
    cluster_labels : numpy.ndarray
        Cluster of each particle (0 = none).
    clusters : list of Cluster
    monte_carlo : MonteCarloResult or None
        The randomness tests (None when ``n_sim = 0``, too few particles, or no region
        given without ``estimate_region``).
    settings : dict
        The parameters used.
    edge_distance_nm : numpy.ndarray
        Distance of each particle to the region's boundary (nm).
    background_density : dict or None
        Non-specific density (per um², by class name and ``"all"``) measured in the
        image's background region(s), when there are any (`analyze_regions`).
    """

    name: str
    pixel_size_nm: float
    region: Region
    geometry_nm: object
    particles: ParticleTable
    input_rows: np.ndarray
    n_outside: int
    n_outside_by_class: dict[str, int]
    class_names: tuple[str, ...]
    diameters_nm: tuple[float, ...]
    cls: np.ndarray
    xy_nm: np.ndarray
    nearest: dict[str, tuple[np.ndarray, np.ndarray]]
    cluster_labels: np.ndarray
    clusters: list[Cluster]
    monte_carlo: MonteCarloResult | None
    settings: dict = field(default_factory=dict)
    edge_distance_nm: np.ndarray | None = None
    background_density: dict[str, float] | None = None

    # ------------------------------------------------------------------ convenience
    @property
    def area_nm2(self) -> float:
        return float(self.geometry_nm.area)

    @property
    def area_um2(self) -> float:
        return self.area_nm2 / 1e6

    def counts(self) -> dict[str, int]:
        """Particles per class name."""
        return {name: int(np.sum(self.cls == c)) for c, name in enumerate(self.class_names)}

    def nnd(self, source: str, target: str | None = None) -> np.ndarray:
        """NNDs (nm) from each particle of class ``source`` to the nearest other particle of
        class ``target`` (default: the same class)."""
        target = source if target is None else target
        c = self.class_names.index(source)
        return self.nearest[target][0][self.cls == c]

    @property
    def region_name(self) -> str:
        """The region's name as the tables give it."""
        return str(self.settings.get("region") or self.region.name or "given")

    def _keys(self) -> dict:
        return {"image": self.name, "region": self.region_name}

    # ------------------------------------------------------------------ tables
    def summary_rows(self) -> list[dict]:
        """Per class and all: counts, area, density, NND within the class, clustering, and
        the background (non-specific) density when the image has a background region."""
        rows = density_rows(self.cls, self.class_names, self.area_nm2)
        in_cluster = self.cluster_labels > 0
        for row in rows:
            if row["class"] == "all":
                sel = np.ones(len(self.cls), dtype=bool)
                from golddigger.analysis.neighbours import nnd

                d = nnd(self.xy_nm)[0]
            else:
                sel = self.cls == self.class_names.index(row["class"])
                d = self.nnd(row["class"])
            stats = nnd_stats(d)
            row["mean_nnd_nm"] = stats["mean_nm"]
            row["median_nnd_nm"] = stats["median_nm"]
            row["n_in_clusters"] = int(np.sum(in_cluster & sel))
            row["fraction_in_clusters"] = (float(np.mean(in_cluster[sel])) if sel.any()
                                           else float("nan"))
            row["n_clusters"] = (len(self.clusters) if row["class"] == "all" else
                                 sum(1 for c in self.clusters if c.counts[row["class"]] > 0))
            row["n_outside_region"] = self.n_outside_by_class.get(row["class"], 0)
            bg = (self.background_density or {}).get(row["class"], float("nan"))
            row["background_density_per_um2"] = bg
            row["specific_density_per_um2"] = row["density_per_um2"] - bg
            row["region_rule"] = str(self.settings.get("region_rule", "given"))
            row["tests_note"] = str(self.settings.get("tests_note", ""))
        return [{**self._keys(), **row} for row in rows]

    def nnd_rows(self) -> list[dict]:
        """One row per particle: position, class, cluster, and the distance to (and number
        of) the nearest other particle of each class."""
        rows = []
        px = self.pixel_size_nm
        for i in range(len(self.cls)):
            row = {**self._keys(), "particle": i + 1, "input_row": int(self.input_rows[i]) + 1,
                   "x_px": float(self.particles.x[i]), "y_px": float(self.particles.y[i]),
                   "x_nm": float(self.particles.x[i] * px), "y_nm": float(self.particles.y[i] * px),
                   "class": self.class_names[self.cls[i]],
                   "cluster": int(self.cluster_labels[i]),
                   "edge_distance_nm": (float(self.edge_distance_nm[i])
                                        if self.edge_distance_nm is not None else float("nan"))}
            for name in self.class_names:
                d, j = self.nearest[name]
                row[f"nnd_to_{name}_nm"] = float(d[i])
                row[f"nearest_{name}"] = int(j[i]) + 1  # 0: none
            rows.append(row)
        return rows

    def nnd_stats_rows(self) -> list[dict]:
        """Per relation (from class -> to class): n, mean, sd, median, min, max (nm)."""
        rows = []
        for a in self.class_names:
            for b in self.class_names:
                if self.counts()[a] == 0:
                    continue
                stats = nnd_stats(self.nnd(a, b))
                rows.append({**self._keys(), "from": a, "to": b, **stats})
        return rows

    def cluster_rows(self) -> list[dict]:
        """One row per cluster."""
        rows = []
        px = self.pixel_size_nm
        for c in self.clusters:
            cx, cy = c.centroid_nm
            row = {**self._keys(), "cluster": c.id, "n": c.n, "classes": c.classes}
            row.update({f"n_{k}": v for k, v in c.counts.items()})
            row.update({
                "hull_area_nm2": c.hull_area_nm2,
                "centroid_x_px": cx / px, "centroid_y_px": cy / px,
                "centroid_x_nm": cx, "centroid_y_nm": cy,
                "nearest_cluster_by_edge": c.nearest_edge_id,  # 0: no other cluster
                "edge_distance_nm": c.nearest_edge_nm,
                "nearest_cluster_by_centroid": c.nearest_centroid_id,
                "centroid_distance_nm": c.nearest_centroid_nm,
            })
            rows.append(row)
        return rows

    def randomness_rows(self) -> list[dict]:
        """One row per test (empty without Monte Carlo, e.g. with no region given:
        ``settings["tests_note"]`` says why)."""
        if self.monte_carlo is None:
            return []
        return [{**self._keys(), **t.to_row(self.monte_carlo.alpha)}
                for t in self.monte_carlo.tests]

    def l_function_rows(self) -> list[dict]:
        """L(r) - r of each relation and null model with its pointwise and global envelopes,
        and the pair correlation g(r) with its pointwise band, one row per r."""
        from golddigger.analysis.randomness import _split

        mc = self.monte_carlo
        if mc is None:
            return []
        rows = []
        r = mc.model.r
        for key, env in mc.envelopes.items():
            rel, null = _split(key)
            obs = mc.observed[f"L {key}"]
            mean, lo, hi = mc.pointwise(f"L {key}")
            g_obs = mc.observed.get(f"g {key}")
            if g_obs is not None:
                g_mean, g_lo, g_hi = mc.pointwise(f"g {key}")
            else:
                g_obs = g_mean = g_lo = g_hi = np.full(r.size, np.nan)
            for k in range(r.size):
                rows.append({**self._keys(), "relation": rel, "r_nm": float(r[k]),
                             "l_minus_r_nm": float(obs[k]), "sim_mean_nm": float(mean[k]),
                             "pointwise_lo_nm": float(lo[k]), "pointwise_hi_nm": float(hi[k]),
                             "global_lo_nm": float(env.lo[k]), "global_hi_nm": float(env.hi[k]),
                             "null_model": null, "g": float(g_obs[k]),
                             "g_sim_mean": float(g_mean[k]), "g_pointwise_lo": float(g_lo[k]),
                             "g_pointwise_hi": float(g_hi[k])})
        return rows

    def tables(self) -> dict[str, list[dict]]:
        """Every table by name (see `TABLE_NAMES`)."""
        return {"summary": self.summary_rows(), "nnd": self.nnd_rows(),
                "nnd_stats": self.nnd_stats_rows(), "clusters": self.cluster_rows(),
                "randomness": self.randomness_rows(), "l_function": self.l_function_rows()}

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} nm: {v}" for k, v in self.counts().items())
        return (f"AnalysisResult({self.name!r}: {len(self.cls)} particles ({counts}) in "
                f"{self.area_um2:.4g} um2, {len(self.clusters)} clusters, "
                f"{0 if self.monte_carlo is None else self.monte_carlo.n_sim} simulations)")
