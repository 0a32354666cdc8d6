"""Measure real and synthetic FRIL micrographs the same way; draw docs/synthetic_vs_real.png.

Run from the project root (needs the real set at ../shared/data/mpfi-fril, which is never
copied into the repository):

    .venv/bin/python docs/synthetic_vs_real.py

Prints a Markdown table of the statistics quoted in docs/synthetic.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

from golddigger.synth import SynthConfig, generate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mpfi-fril"
PX = 0.5587
STEMS = ("S1", "S4", "S7", "S13", "S15", "S27")
#: The real crop shown in the figure: S27, columns 600-1111, rows 700-1211 (6 and 12 nm gold)
REAL_CROP = ("S27", 600, 700)
SYNTH_SEED = 3  # the bundled examples/synthetic_fril.tif


def body(a: np.ndarray) -> np.ndarray:
    """The image without a 100 px margin (drops the scale-bar band of the real images)."""
    return a[100:-100, 100:-100]


def radial_psd(p: np.ndarray) -> np.ndarray:
    p = p - p.mean()
    w = np.hanning(p.shape[0])[:, None] * np.hanning(p.shape[1])[None, :]
    f = np.abs(np.fft.fftshift(np.fft.fft2(p * w))) ** 2 / (w ** 2).sum()
    n = p.shape[0]
    yy, xx = np.mgrid[:n, :n] - n // 2
    r = np.hypot(xx, yy).astype(int)
    return (np.bincount(r.ravel(), f.ravel()) / np.bincount(r.ravel()))[: n // 2]


def flat_patches(a: np.ndarray, n: int = 128, k: int = 6) -> list[np.ndarray]:
    """The k n x n patches with the least low-frequency structure and no dark objects."""
    dark = ndi.binary_dilation(ndi.gaussian_filter(a, 1.5) < np.median(a) - 50, iterations=12)
    cands = []
    for y in range(100, a.shape[0] - 100 - n, n // 2):
        for x in range(100, a.shape[1] - 100 - n, n // 2):
            if dark[y:y + n, x:x + n].any():
                continue
            cands.append((ndi.gaussian_filter(a[y:y + n, x:x + n], 6).std(), y, x))
    cands.sort()
    return [a[y:y + n, x:x + n] for _, y, x in cands[:k]]


def texture_stats(a: np.ndarray) -> dict[str, float]:
    pats = flat_patches(a)
    rows = []
    for p in pats:
        g1, g4 = ndi.gaussian_filter(p, 1.0), ndi.gaussian_filter(p, 4.0)
        rows.append((p.mean(), p.std(), (p - g1).std(), (g1 - g4).std(), g4.std()))
    m = np.mean(rows, axis=0)
    b = body(a)
    med = np.median(b)
    pc = np.percentile(b, [1, 5, 95, 99]) / med
    return {"flat_mean": m[0], "flat_std": m[1], "hf": m[2], "mid": m[3], "lf": m[4],
            "p1": pc[0], "p5": pc[1], "p95": pc[2], "p99": pc[3],
            "psd": np.mean([radial_psd(p) for p in pats], axis=0)}


def particle_profiles(a: np.ndarray, xs, ys, ds, recentre: bool) -> dict[int, list]:
    """Radial profiles (1 px bins) normalised by the local background, per class."""
    out: dict[int, list] = {}
    R = 25
    yy, xx = np.mgrid[-R:R + 1, -R:R + 1]
    for x, y, d in zip(xs, ys, ds, strict=True):
        x0, y0 = int(round(x)), int(round(y))
        if not (R <= x0 < a.shape[1] - R and R <= y0 < a.shape[0] - R):
            continue
        p = a[y0 - R:y0 + R + 1, x0 - R:x0 + R + 1]
        cx, cy = x - x0, y - y0
        r = np.hypot(xx - cx, yy - cy)
        bg = np.median(p[(r > 18) & (r < 25)])
        if recentre:  # the annotators' points are ~1 px off: use the darkness centroid
            w = np.clip(bg - p, 0, None) * (r < d / PX * 0.8)
            cx, cy = (w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()
            r = np.hypot(xx - cx, yy - cy)
        prof = np.array([p[(r >= b) & (r < b + 1)].mean() for b in range(R)]) / bg
        out.setdefault(int(round(d)), []).append((bg, prof))
    return out


def profile_stats(profiles: list) -> dict[str, float]:
    P = np.array([p for _, p in profiles])
    med = np.median(P, axis=0)
    core = P[:, 0]
    diam = []
    for prof in P:
        depth = 1 - prof[0]
        k = int(np.argmax(1 - prof < depth / 2))
        rh = 0.0 if k == 0 else k - 1 + ((1 - prof[k - 1]) - depth / 2) / (
            (1 - prof[k - 1]) - (1 - prof[k]))
        diam.append(2 * (rh + 0.5) * PX)
    # edge width: radius span from 90 % to 10 % of the depth on the median profile
    depth = 1 - med[0]
    r90 = np.interp(0.9 * depth, (1 - med)[::-1], np.arange(len(med))[::-1])
    r10 = np.interp(0.1 * depth, (1 - med)[::-1], np.arange(len(med))[::-1])
    return {"n": len(P), "core": float(np.median(core)), "core_p10": float(np.percentile(core, 10)),
            "core_p90": float(np.percentile(core, 90)), "diam": float(np.median(diam)),
            "edge_nm": float((r10 - r90) * PX), "median": med}


def load_real():
    imgs, prof = [], {}
    for s in STEMS:
        a = np.asarray(Image.open(DATA / "images" / f"{s}.jpg"), dtype=float)
        lab = np.loadtxt(DATA / "labels" / f"{s}.csv", delimiter=",", skiprows=1, ndmin=2)
        imgs.append(a)
        for d, v in particle_profiles(a, lab[:, 0], lab[:, 1], lab[:, 2], True).items():
            prof.setdefault(d, []).extend(v)
    return imgs, prof


def load_synthetic(n: int = 6):
    imgs, prof = [], {}
    for seed in range(n):
        res = generate(SynthConfig(shape=(2048, 2048)), seed=seed)
        a = res.image.astype(float)
        imgs.append(a)
        p = res.particles
        for d, v in particle_profiles(a, p.x, p.y, p.diameter_nm, False).items():
            prof.setdefault(d, []).extend(v)
    return imgs, prof


def summarise(imgs, prof):
    tex = [texture_stats(a) for a in imgs]
    keys = ("flat_mean", "flat_std", "hf", "mid", "lf", "p1", "p5", "p95", "p99")
    t = {k: (min(x[k] for x in tex), float(np.median([x[k] for x in tex])),
             max(x[k] for x in tex)) for k in keys}
    t["psd"] = np.mean([x["psd"] for x in tex], axis=0)
    g = {d: profile_stats(v) for d, v in sorted(prof.items()) if len(v) >= 3}
    return t, g


def table(real, synth) -> str:
    (rt, rg), (st, sg) = real, synth
    names = {
        "flat_mean": "flat replica grey level", "flat_std": "flat patch std (grey levels)",
        "hf": "fine noise std (< 1 px)", "mid": "grain std (1-4 px)",
        "lf": "smooth std (> 4 px)", "p1": "1st percentile / median",
        "p5": "5th percentile / median", "p95": "95th percentile / median",
        "p99": "99th percentile / median",
    }
    lines = ["| statistic | real (min / median / max of 6) | synthetic (6 x 2048^2) |",
             "|---|---|---|"]
    for k, label in names.items():
        fmt = "{:.0f}" if k == "flat_mean" else "{:.2f}" if k.startswith("p") else "{:.1f}"
        r = " / ".join(fmt.format(v) for v in rt[k])
        s = " / ".join(fmt.format(v) for v in st[k])
        lines.append(f"| {label} | {r} | {s} |")
    for d in sorted(set(rg) | set(sg)):
        for key, label in (("core", "core / background (median)"),
                           ("core_p10", "core / background (10th pct)"),
                           ("core_p90", "core / background (90th pct)"),
                           ("diam", "half-depth diameter (nm)"),
                           ("edge_nm", "edge width 90-10 % (nm)")):
            r = f"{rg[d][key]:.2f}" if d in rg else "n/a (not labelled)"
            s = f"{sg[d][key]:.2f}" if d in sg else "-"
            lines.append(f"| {d} nm gold: {label} | {r} | {s} |")
        r = rg[d]["n"] if d in rg else 0
        s = sg[d]["n"] if d in sg else 0
        lines.append(f"| {d} nm gold: particles measured | {r} | {s} |")
    return "\n".join(lines)


def scale_bar(ax, nm: float = 50.0) -> None:
    L = nm / PX
    ax.plot([20, 20 + L], [490, 490], color="white", lw=3, solid_capstyle="butt")
    ax.text(20 + L / 2, 478, f"{nm:g} nm", color="white", ha="center", va="bottom",
            fontsize=9)


def figure(real, synth, out: Path) -> None:
    (rt, rg), (st, sg) = real, synth
    stem, x0, y0 = REAL_CROP
    a = np.asarray(Image.open(DATA / "images" / f"{stem}.jpg"))[y0:y0 + 512, x0:x0 + 512]
    ex = generate(SynthConfig(), seed=SYNTH_SEED)
    p = ex.particles
    cx, cy = int(np.median(p.x)), int(np.median(p.y))
    sx, sy = int(np.clip(cx - 256, 0, 512)), int(np.clip(cy - 256, 0, 512))
    b = ex.image[sy:sy + 512, sx:sx + 512]

    fig, axes = plt.subplots(2, 2, figsize=(10.2, 10.6), dpi=100,
                             gridspec_kw={"height_ratios": [1.0, 0.62]})
    for ax, img, title in ((axes[0, 0], a, f"real FRIL ({stem}, MPFI set), 0.5587 nm/px"),
                           (axes[0, 1], b, f"synthetic (seed {SYNTH_SEED}), 0.5587 nm/px")):
        ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        scale_bar(ax)
    ax = axes[1, 0]
    r = np.arange(25) * PX + 0.5 * PX
    for d, color in ((6, "tab:blue"), (12, "tab:red"), (18, "tab:green")):
        if d in rg:
            ax.plot(r, rg[d]["median"], color=color, lw=2, label=f"{d} nm real (n={rg[d]['n']})")
        if d in sg:
            ax.plot(r, sg[d]["median"], color=color, lw=1.5, ls="--",
                    label=f"{d} nm synthetic (n={sg[d]['n']})")
    ax.set_xlabel("distance from particle centre (nm)")
    ax.set_ylabel("grey / local background")
    ax.set_title("gold radial profile (median)", fontsize=10)
    ax.legend(fontsize=8)
    ax.set_ylim(0, 1.1)
    ax = axes[1, 1]
    f = np.arange(len(rt["psd"])) / 128.0
    ax.semilogy(f[1:], rt["psd"][1:], color="k", lw=2, label="real")
    ax.semilogy(f[1:], st["psd"][1:], color="tab:orange", lw=1.5, ls="--", label="synthetic")
    ax.set_xlabel("spatial frequency (cycles / px)")
    ax.set_ylabel("power (grey levels$^2$)")
    ax.set_title("texture power spectrum, flat 128 px patches", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main() -> int:
    if not DATA.is_dir():
        print(f"real data not found at {DATA}", file=sys.stderr)
        return 1
    real = summarise(*load_real())
    synth = summarise(*load_synthetic())
    print(table(real, synth))
    out = ROOT / "docs" / "synthetic_vs_real.png"
    figure(real, synth, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
