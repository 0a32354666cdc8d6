"""Peak memory and time of ``golddigger detect`` on large images and a long stack.

    python benchmarks/memory.py                      # all cases, shipped model if present
    python benchmarks/memory.py --cases 8192 --model models/fril-gold-v3 --threads 2

Each case is synthesised on the fly in a temporary folder (removed afterwards; nothing is
committed): an uncompressed uint8 ImageJ TIFF calibrated at ``--pixel-size`` (0.5587 nm/px,
the real data's), tiled from a few `golddigger.synth.generate` micrographs. Each detection
runs in a fresh Python process, which reports its peak resident memory (``VmHWM`` from
``/proc/self/status``; ``ru_maxrss`` as a cross-check) and the wall time of the CLI call.
The peak of the same process right after importing golddigger and torch is reported too,
so the figure attributable to the image is ``peak - baseline``.

Without a shipped model (``models/fril-gold-v3``) a model folder with random weights and
the default architecture (`ModelConfig()`) is made: time and memory are the same as the
trained model's, only the detections differ.

Cases: ``8192`` (8192 x 8192 px), ``16384`` (16384 x 16384 px), ``stack50``
(50 x 1024 x 1024 px), ``8192px1.2`` (8192 x 8192 at the model's own pixel size, so
no downsampling: the worst case for the probability maps).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

CASES = {
    "8192": {"shape": (8192, 8192), "px": None},
    "16384": {"shape": (16384, 16384), "px": None},
    "stack50": {"shape": (50, 1024, 1024), "px": None},
    "8192px1.2": {"shape": (8192, 8192), "px": 1.2},
}

CHILD = r"""
import json, os, resource, sys, time
def hwm():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
import torch  # noqa: F401
from golddigger.cli.main import main
baseline = hwm()
t0 = time.perf_counter()
rc = main(sys.argv[2:])
seconds = time.perf_counter() - t0
out = {"rc": rc, "seconds": seconds, "peak_bytes": hwm(), "baseline_bytes": baseline,
       "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
with open(sys.argv[1], "w") as fh:
    json.dump(out, fh)
"""


def synth_tiles(n: int, pixel_size_nm: float, size: int = 1024, seed: int = 0) -> list:
    """A few synthetic FRIL micrographs to tile big images from."""
    from golddigger.synth import SynthConfig, generate

    cfg = SynthConfig(shape=(size, size), pixel_size_nm=pixel_size_nm, scale_bar=False)
    return [generate(cfg, seed=seed + i).image for i in range(n)]


def write_big_tiff(path: Path, shape: tuple[int, ...], pixel_size_nm: float,
                   tiles: list) -> None:
    """An uncompressed, calibrated uint8 ImageJ TIFF filled band by band (never whole in
    memory), so the reader can memory-map it."""
    import tifffile

    kwargs = {"imagej": True, "resolution": (1 / pixel_size_nm, 1 / pixel_size_nm),
              "metadata": {"unit": "nm", "axes": "ZYX" if len(shape) == 3 else "YX"}}
    mm = tifffile.memmap(path, shape=shape, dtype=np.uint8, **kwargs)
    t = tiles[0].shape[0]
    planes = [mm] if len(shape) == 2 else [mm[z] for z in range(shape[0])]
    k = 0
    for plane in planes:
        h, w = plane.shape
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                tile = tiles[k % len(tiles)]
                k += 1
                if k % 2:
                    tile = tile[:, ::-1]
                plane[y0:y0 + t, x0:x0 + t] = tile[:min(t, h - y0), :min(t, w - x0)]
    mm.flush()
    del mm


def tiny_default_model(folder: Path) -> Path:
    """A model folder with random weights and the default architecture."""
    import torch

    from golddigger.model.config import ModelConfig
    from golddigger.model.folder import write_model_folder
    from golddigger.model.networks import UNetGenerator

    torch.manual_seed(0)
    cfg = ModelConfig(name="random-default")
    net = UNetGenerator(cfg.n_maps, cfg.base_channels, cfg.depth)
    with torch.no_grad():  # random weights light up everywhere: keep detections rare
        net.head.bias.fill_(-5.0)
    return write_model_folder(folder, cfg, net.state_dict(), {"threshold": 0.5},
                              {"note": "random weights, for benchmarking only"})


def run_case(name: str, image: Path, model: Path, threads: int, workdir: Path,
             extra: list[str] | None = None) -> dict:
    out = workdir / f"out_{name}"
    result = workdir / f"result_{name}.json"
    cmd = [sys.executable, "-c", CHILD, str(result), "detect", str(image), "-o", str(out),
           "--model", str(model), "--threads", str(threads), "-q", "--overwrite", *(extra or [])]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run(cmd, check=True, env=env)
    res = json.loads(result.read_text())
    res["case"] = name
    res["image_mb"] = image.stat().st_size / 2**20
    csvs = [p for p in out.glob("*.csv") if p.name != "summary.csv"]
    res["particles"] = sum(max(0, len(p.read_text().splitlines()) - 1) for p in csvs)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--model", type=Path, default=None,
                    help="model folder (default: models/fril-gold-v3 if present, else a "
                         "random model of the default architecture)")
    ap.add_argument("--pixel-size", type=float, default=0.5587)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tile-size", type=int, default=None,
                    help="passed to detect (default: the model's)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="gd-membench-") as tmp:
        work = Path(tmp)
        model = args.model
        if model is None:
            shipped = REPO / "models" / "fril-gold-v3"
            model = shipped if (shipped / "config.json").is_file() else \
                tiny_default_model(work / "random-default")
        print(f"model: {model}", flush=True)
        tiles = synth_tiles(4, args.pixel_size)
        rows = []
        for name in args.cases:
            spec = CASES[name]
            px = spec["px"] or args.pixel_size
            image = work / f"{name}.tif"
            t0 = time.perf_counter()
            write_big_tiff(image, spec["shape"], px, tiles)
            made = time.perf_counter() - t0
            extra = ["--tile-size", str(args.tile_size)] if args.tile_size else []
            res = run_case(name, image, model, args.threads, work, extra)
            res.update(shape=list(spec["shape"]), pixel_size_nm=px, synth_seconds=made,
                       tile_size=args.tile_size)
            rows.append(res)
            image.unlink()
            print(f"{name:>10}: {' x '.join(map(str, spec['shape']))} px at {px:g} nm/px, "
                  f"{res['image_mb']:.0f} MB file: peak RSS {res['peak_bytes'] / 2**20:.0f} MB "
                  f"(baseline {res['baseline_bytes'] / 2**20:.0f} MB), "
                  f"{res['seconds']:.1f} s, {res['particles']} particles, rc {res['rc']}",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": str(model), "threads": args.threads,
                                         "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
