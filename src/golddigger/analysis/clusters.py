"""Clusters: particles closer than a distance joined (single linkage), all classes together.

Two particles are linked when their centres are at most ``distance_nm`` apart; a cluster is
a connected group of linked particles with at least ``min_size`` members. Smaller groups
are not clusters (their particles get cluster 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

__all__ = ["DEFAULT_CLUSTER_DISTANCE_NM", "DEFAULT_MIN_CLUSTER_SIZE", "Cluster",
           "cluster_labels", "describe_clusters", "fraction_clustered"]

#: Default linking distance (nm) and minimum cluster size. A heuristic, not a standard:
#: results depend strongly on the distance, so set it to your lab's criterion.
DEFAULT_CLUSTER_DISTANCE_NM = 30.0
DEFAULT_MIN_CLUSTER_SIZE = 3


def _components(n: int, pairs: np.ndarray) -> np.ndarray:
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if len(pairs) == 0:
        return np.arange(n, dtype=np.int64)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def cluster_labels(xy: np.ndarray, distance_nm: float, min_size: int = 2,
                   pairs: np.ndarray | None = None) -> np.ndarray:
    """Cluster number of each point: 1, 2, ... by decreasing size (ties: by first member),
    0 for points in groups smaller than ``min_size``.

    Parameters
    ----------
    xy : numpy.ndarray
        (N, 2) positions (nm).
    distance_nm : float
        Linking distance: points at most this far apart are joined.
    min_size : int
        Smallest group that counts as a cluster.
    pairs : numpy.ndarray, optional
        Precomputed (P, 2) index pairs at most ``distance_nm`` apart.
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if distance_nm < 0:
        raise ValueError(f"cluster distance must be >= 0 nm, got {distance_nm}")
    if min_size < 1:
        raise ValueError(f"minimum cluster size must be >= 1, got {min_size}")
    n = len(xy)
    if pairs is None:
        pairs = (cKDTree(xy).query_pairs(distance_nm, output_type="ndarray") if n
                 else np.empty((0, 2), dtype=np.int64))
    comp = _components(n, pairs)
    out = np.zeros(n, dtype=np.int64)
    if n == 0:
        return out
    sizes = np.bincount(comp)
    first = np.full(sizes.size, n)
    np.minimum.at(first, comp, np.arange(n))
    big = np.flatnonzero(sizes >= min_size)
    big = big[np.lexsort((first[big], -sizes[big]))]
    for k, c in enumerate(big, start=1):
        out[comp == c] = k
    return out


def fraction_clustered(xy: np.ndarray, distance_nm: float, min_size: int,
                       pairs: np.ndarray | None = None) -> float:
    """Fraction of points that belong to a cluster (NaN for no points)."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if len(xy) == 0:
        return float("nan")
    if pairs is None:
        pairs = cKDTree(xy).query_pairs(distance_nm, output_type="ndarray")
    comp = _components(len(xy), pairs)
    sizes = np.bincount(comp)
    return float(np.mean(sizes[comp] >= min_size))


@dataclass
class Cluster:
    """One cluster.

    Attributes
    ----------
    id : int
        1-based, by decreasing size.
    members : numpy.ndarray
        Indices of its particles.
    counts : dict
        Particles per class name.
    hull_area_nm2 : float
        Area of the convex hull of the centres (0 for fewer than 3 non-collinear points).
    centroid_nm : tuple of float
        Mean of the member centres (nm).
    nearest_edge_id, nearest_edge_nm
        The cluster whose closest member is nearest to a member of this one, and that
        centre-to-centre distance (0 / NaN when there is no other cluster).
    nearest_centroid_id, nearest_centroid_nm
        The cluster with the nearest centroid, and the centroid-to-centroid distance.
    """

    id: int
    members: np.ndarray
    counts: dict[str, int]
    hull_area_nm2: float
    centroid_nm: tuple[float, float]
    nearest_edge_id: int = 0
    nearest_edge_nm: float = float("nan")
    nearest_centroid_id: int = 0
    nearest_centroid_nm: float = float("nan")

    @property
    def n(self) -> int:
        return int(self.members.size)

    @property
    def classes(self) -> str:
        """Classes present, e.g. ``"6;12"``."""
        return ";".join(k for k, v in self.counts.items() if v > 0)


def describe_clusters(xy: np.ndarray, cls: np.ndarray, labels: np.ndarray,
                      class_names: Sequence[str]) -> list[Cluster]:
    """Describe each cluster of ``labels`` (from `cluster_labels`).

    Parameters
    ----------
    xy : numpy.ndarray
        (N, 2) positions (nm).
    cls : numpy.ndarray
        Class index of each point.
    labels : numpy.ndarray
        Cluster number of each point (0 = none).
    class_names : sequence of str
    """
    from shapely.geometry import MultiPoint

    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    clusters = []
    for k in range(1, int(labels.max(initial=0)) + 1):
        members = np.flatnonzero(labels == k)
        pts = xy[members]
        hull = MultiPoint([tuple(p) for p in pts]).convex_hull
        clusters.append(Cluster(
            id=k, members=members,
            counts={name: int(np.sum(cls[members] == c)) for c, name in enumerate(class_names)},
            hull_area_nm2=float(hull.area),
            centroid_nm=(float(pts[:, 0].mean()), float(pts[:, 1].mean()))))
    if len(clusters) < 2:
        return clusters
    cents = np.array([c.centroid_nm for c in clusters])
    for a in clusters:
        others = [b for b in clusters if b.id != a.id]
        tree_a = cKDTree(xy[a.members])
        gaps = [float(tree_a.query(xy[b.members], k=1)[0].min()) for b in others]
        j = int(np.argmin(gaps))
        a.nearest_edge_id, a.nearest_edge_nm = others[j].id, gaps[j]
        dc = np.hypot(*(cents[[b.id - 1 for b in others]] - cents[a.id - 1]).T)
        j = int(np.argmin(dc))
        a.nearest_centroid_id, a.nearest_centroid_nm = others[j].id, float(dc[j])
    return clusters
