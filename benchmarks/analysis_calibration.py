"""Calibration and power of `golddigger analyze`'s tests on simulated gold with a known truth.

Scenarios (membranes of 0.3 um², 50-150 particles of 6 nm; positions in nm, pixel size 1):

- ``random_rect``, ``random_L``, ``random_strip``: random 6 nm gold with a 6 nm hard core
  (sequential rejection, independent of the package's simulator) in a rectangle, an L shape
  and a thin curved strip (an 80 nm wide arc);
- ``thomas20``, ``thomas40``: clustered 6 nm gold (Thomas process: ~12 parents, Gaussian
  offspring with sigma 20 / 40 nm, overlapping gold thinned) in the rectangle;
- ``independent``: clustered 6 nm gold (Thomas, sigma 20 nm) and 5-25 independent random
  12 nm gold beside it (hard core to all gold), in the rectangle.

Each is analysed in three settings: ``given`` (the true outline, ``--roi``); ``default`` (no
region: counts and densities on the Ripley-Rasson window estimate, and *no* randomness tests,
so 0 % rejections by construction; the run checks that none is reported); and ``convex``
(no region, opt-in ``--estimate-region convex``: the tests on the Ripley-Rasson window; up to
the change that made this opt-in it was the default, labelled ``default`` in older JSON).
Reported per test (statistic, relation, null model): the rejection rate at 5 % of the raw
p-value and of the Holm-adjusted one; per image: the rate of at least one significant
verdict (Holm), and ``tests_run`` (images with any test). Run::

    nice -n 10 python benchmarks/analysis_calibration.py --patterns 200 \\
        > benchmarks/results/analysis_calibration.log 2>&1 &

Results: ``benchmarks/results/analysis_calibration.json``. ``--old-code DIR`` runs the same
patterns through an older checkout's ``src`` (its ``analyze``) for a before/after table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
ALPHA = 0.05
AREA_NM2 = 0.3e6


def shapes():
    from shapely.geometry import Polygon, box

    rect = box(0, 0, 800, 375)
    # L: two arms 250 nm wide, outer sides s: area = 2 * 250 * s - 250^2 = 0.3e6
    s = (AREA_NM2 + 250 ** 2) / 500
    ell = Polygon([(0, 0), (s, 0), (s, 250), (250, 250), (250, s), (0, s)])
    # curved strip: a 80 nm wide annulus sector of mean radius R spanning angle phi
    width, radius = 80.0, 900.0
    phi = AREA_NM2 / (width * radius)
    ang = np.linspace(0, phi, 200)
    outer = [(np.cos(a) * (radius + width / 2), np.sin(a) * (radius + width / 2)) for a in ang]
    inner = [(np.cos(a) * (radius - width / 2), np.sin(a) * (radius - width / 2))
             for a in ang[::-1]]
    strip = Polygon(outer + inner)
    return {"rect": rect, "L": ell, "strip": strip}


def _inside(geom, pts):
    import shapely

    return shapely.contains_xy(geom, pts[:, 0], pts[:, 1])


def hard_core_random(geom, n, rng, dmin=6.0, fixed=None, fixed_dmin=None):
    """n points uniform in geom, no two closer than dmin (and none closer than fixed_dmin
    to ``fixed``), by one-at-a-time rejection."""
    from scipy.spatial import cKDTree

    xmin, ymin, xmax, ymax = geom.bounds
    out = []
    tree_fixed = cKDTree(fixed) if fixed is not None and len(fixed) else None
    while len(out) < n:
        cand = rng.uniform((xmin, ymin), (xmax, ymax), size=(64, 2))
        cand = cand[_inside(geom, cand)]
        for p in cand:
            if out and np.min(np.hypot(*(np.asarray(out) - p).T)) < dmin:
                continue
            if tree_fixed is not None and tree_fixed.query(p)[0] < fixed_dmin:
                continue
            out.append(p)
            if len(out) == n:
                break
    return np.asarray(out)


def thomas(geom, n_target, sigma, rng, dmin=6.0):
    """Thomas cluster process thinned by the hard core, about ``n_target`` points."""
    n_par = 12
    xmin, ymin, xmax, ymax = geom.bounds
    pts = np.empty((0, 2))
    while len(pts) < n_target:
        par = rng.uniform((xmin, ymin), (xmax, ymax), size=(n_par, 2))
        par = par[_inside(geom, par)]
        counts = rng.poisson(max(1.0, n_target / n_par), len(par))
        kids = np.repeat(par, counts, axis=0)
        kids = kids + rng.normal(0, sigma, kids.shape)
        kids = kids[_inside(geom, kids)]
        for p in kids:
            if len(pts) and np.min(np.hypot(*(pts - p).T)) < dmin:
                continue
            pts = np.vstack([pts, p])
    return pts[:n_target]


def make_pattern(scenario, geoms, rng):
    """(xy nm, diameter nm, region geometry)."""
    n = int(rng.integers(50, 151))
    if scenario.startswith("random_"):
        geom = geoms[scenario.split("_")[1]]
        xy = hard_core_random(geom, n, rng)
        return xy, np.full(len(xy), 6.0), geom
    geom = geoms["rect"]
    if scenario in ("thomas20", "thomas40"):
        xy = thomas(geom, n, float(scenario[6:]), rng)
        return xy, np.full(len(xy), 6.0), geom
    if scenario == "independent":
        six = thomas(geom, n, 20.0, rng)
        twelve = hard_core_random(geom, int(rng.integers(5, 26)), rng, dmin=12.0,
                                  fixed=six, fixed_dmin=9.0)
        return (np.vstack([six, twelve]),
                np.concatenate([np.full(len(six), 6.0), np.full(len(twelve), 12.0)]), geom)
    raise ValueError(scenario)


def analyse(xy, diam, geom, given, n_sim, seed, old, estimate=None):
    from golddigger.analysis import analyze
    from golddigger.particles import ParticleTable

    particles = ParticleTable(xy[:, 0], xy[:, 1], diam)
    classes = sorted(set(diam.tolist()))
    extra = {} if estimate is None else {"estimate_region": estimate}
    res = analyze(particles, 1.0, geom if given else None, classes=classes, n_sim=n_sim,
                  seed=seed, **extra)
    rows = res.randomness_rows()
    out = []
    for r in rows:
        key = f"{r['statistic']} {r['relation']} [{r.get('null_model', 'old: both random')}]"
        p_adj = r.get("p_adjusted", r["p_value"])
        if str(r["verdict"]).startswith("not valid"):
            p_adj = 1.0  # no verdict is drawn from a gated test
        out.append((key, r["p_value"], p_adj))
    return out


def summarise(records):
    """records: list (per image) of lists of (key, p, p_adj)."""
    per_test = defaultdict(lambda: [0, 0, 0])  # n, raw rejections, adjusted rejections
    any_raw = any_adj = any_cond = 0
    for rec in records:
        for key, p, pa in rec:
            t = per_test[key]
            if not (isinstance(p, float) and math.isnan(p)):
                t[0] += 1
                t[1] += p <= ALPHA
                t[2] += pa <= ALPHA
        any_raw += any(p <= ALPHA for _, p, _ in rec)
        any_adj += any(pa <= ALPHA for _, _, pa in rec)
        # a false association verdict: a conditional test significant after Holm (tests
        # gated as "not valid" count as no verdict)
        any_cond += any(pa <= ALPHA for key, _, pa in rec if "re-placed" in key)
    n = len(records)
    return {"n_images": n, "tests_run": sum(1 for rec in records if rec),
            "any_conditional_adjusted": any_cond / n if n else float("nan"),
            "any_test_raw": any_raw / n if n else float("nan"),
            "any_test_adjusted": any_adj / n if n else float("nan"),
            "per_test": {k: {"n": v[0], "raw": v[1] / v[0], "adjusted": v[2] / v[0]}
                         for k, v in sorted(per_test.items()) if v[0]}}


def markdown(report: dict) -> str:
    """The results as a Markdown table (per scenario and region: each test's raw and
    Holm-adjusted rejection rate, and the rate of images with any significant verdict)."""
    lines = ["| scenario | region | n_sim | test (null model) | raw p <= 0.05 | Holm <= 0.05 |",
             "|---|---|---|---|---|---|"]
    for key, summ in report["scenarios"].items():
        scen, region = key.split(" / region ")
        first = True
        if not summ["per_test"]:
            lines.append(f"| {scen} | {region} | - | no tests run (by design; "
                         f"{summ.get('tests_run', 0)} of {summ['n_images']} images with a test)"
                         " | 0 % | 0 % |")
            continue
        for test, v in summ["per_test"].items():
            lines.append(f"| {scen if first else ''} | {region if first else ''} | "
                         f"{summ['n_sim'] if first else ''} | {test} | {100 * v['raw']:.1f} % "
                         f"| {100 * v['adjusted']:.1f} % |")
            first = False
        lines.append(f"| | | | **any test, per image** | {100 * summ['any_test_raw']:.1f} % | "
                     f"**{100 * summ['any_test_adjusted']:.1f} %** |")
        if any("re-placed" in t for t in summ["per_test"]):
            lines.append(f"| | | | **any association verdict (conditional), per image** | | "
                         f"**{100 * summ['any_conditional_adjusted']:.1f} %** |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patterns", type=int, default=200)
    ap.add_argument("--n-sim", type=int, default=199,
                    help="simulations per test (calibration scenarios)")
    ap.add_argument("--power-n-sim", type=int, default=None,
                    help="simulations for thomas20 with the region given (default: the "
                         "package default)")
    ap.add_argument("--assoc-n-sim", type=int, default=199,
                    help="simulations per null model for the two-class scenario")
    ap.add_argument("--scenarios", nargs="+",
                    default=["random_rect", "random_L", "random_strip", "thomas20",
                             "thomas40", "independent"])
    ap.add_argument("--old-code", type=Path, default=None,
                    help="src folder of an older checkout to measure instead")
    ap.add_argument("--out", type=Path, default=RESULTS / "analysis_calibration.json")
    ap.add_argument("--skip", nargs="*", default=[], metavar="SCENARIO/REGION",
                    help="leave out these runs (e.g. random_L/given, done earlier)")
    ap.add_argument("--settings", nargs="+", default=["given", "default", "convex"],
                    choices=["given", "default", "convex"],
                    help="region settings to run (default: all three)")
    ap.add_argument("--markdown", action="store_true",
                    help="print the table of an earlier run's --out JSON and stop")
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())))
        return 0
    if args.old_code is not None:
        sys.path.insert(0, str(args.old_code))
    import golddigger.analysis.randomness as rnd

    power_n_sim = args.power_n_sim or rnd.DEFAULT_N_SIM
    geoms = shapes()
    report = {"settings": {"patterns": args.patterns, "n_sim": args.n_sim,
                           "assoc_n_sim": args.assoc_n_sim,
                           "power_n_sim": power_n_sim, "alpha": ALPHA,
                           "area_um2": AREA_NM2 / 1e6, "code": str(args.old_code or "new"),
                           "package_default_n_sim": rnd.DEFAULT_N_SIM},
              "scenarios": {}}
    t_all = time.time()
    for scenario in args.scenarios:
        rng = np.random.default_rng(sum(map(ord, scenario)))
        patterns = [make_pattern(scenario, geoms, rng) for _ in range(args.patterns)]
        settings = [("given", True, None), ("default", False, None),
                    ("convex", False, "convex")]
        if scenario == "independent":
            settings = [("given", True, None)]
        for label, given, estimate in settings:
            if f"{scenario}/{label}" in args.skip or label not in args.settings:
                continue
            n_sim = power_n_sim if (scenario == "thomas20" and given) else args.n_sim
            if scenario == "independent":
                n_sim = args.assoc_n_sim
            t0 = time.time()
            records = []
            for i, (xy, diam, geom) in enumerate(patterns):
                try:
                    records.append(analyse(xy, diam, geom, given, n_sim, i, args.old_code,
                                           estimate))
                except Exception as err:  # noqa: BLE001 (benchmark: count and go on)
                    print(f"{scenario} {label} {i}: {err}", file=sys.stderr)
            summ = summarise(records)
            summ["n_sim"] = n_sim
            summ["seconds"] = round(time.time() - t0, 1)
            report["scenarios"][f"{scenario} / region {label}"] = summ
            print(f"{scenario:14s} region {label:8s} n_sim {n_sim}: any raw "
                  f"{summ['any_test_raw']:.3f}, any Holm {summ['any_test_adjusted']:.3f} "
                  f"({summ['seconds']} s)", flush=True)
            for k, v in summ["per_test"].items():
                print(f"    {k:55s} raw {v['raw']:.3f}  adjusted {v['adjusted']:.3f}",
                      flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1) + "\n")
    report["seconds_total"] = round(time.time() - t_all, 1)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
