"""Speed and memory of the detector, next to the original Gold Digger generator's cost.

    python benchmarks/speed.py [--model fril-gold-v3] [--threads 2] [--repeat 3]

Each case runs in a fresh subprocess, so its peak RSS (VmHWM) is its own:
- ``ours-2k`` / ``ours-8k``: `Detector.predict` on a 2048 x 2115 and an 8192 x 8192 uint8
  image at 0.5587 nm/px (median of ``--repeat`` runs after one warm-up; "model" is the
  generator alone, "total" includes resampling and peak finding);
- ``pix2pix-2k``: a pix2pix "unet_256" generator of the original size (ngf 64, 8 levels,
  random weights, 54 M parameters) over the same 2048 x 2115 image in 256 px tiles, as
  the original Gold Digger ran it;
- ``cli-2k``: the whole ``golddigger detect`` process on one 2048 x 2115 TIFF (wall time,
  start-up and model loading included).
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

PX = 0.5587


def peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def test_image(shape, seed=0) -> np.ndarray:
    """A synthetic FRIL image of the given shape, tiled from 1024 px synthetic images."""
    from golddigger.synth import SynthConfig, generate

    tile = generate(SynthConfig(shape=(1024, 1024), pixel_size_nm=PX), seed=seed).image
    reps = (-(-shape[0] // 1024), -(-shape[1] // 1024))
    return np.ascontiguousarray(np.tile(tile, reps)[: shape[0], : shape[1]])


def unet256(ngf: int = 64):
    """pix2pix's U-Net generator with 8 downsamplings (its "unet_256"), written anew."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, outer, inner, sub=None, outermost=False, innermost=False,
                     dropout=False, in_ch=None):
            super().__init__()
            in_ch = in_ch or outer
            self.outermost = outermost
            down = [nn.Conv2d(in_ch, inner, 4, 2, 1, bias=False)]
            if not outermost:
                down = [nn.LeakyReLU(0.2, True)] + down + ([] if innermost else
                                                            [nn.BatchNorm2d(inner)])
            up_in = inner if innermost else inner * 2
            up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=outermost)]
            up += [nn.Tanh()] if outermost else [nn.BatchNorm2d(outer)]
            if dropout:
                up.append(nn.Dropout(0.5))
            self.model = nn.Sequential(*down, *([sub] if sub else []), *up)

        def forward(self, x):
            y = self.model(x)
            return y if self.outermost else torch.cat([x, y], 1)

    b = Block(ngf * 8, ngf * 8, innermost=True)
    for _ in range(3):
        b = Block(ngf * 8, ngf * 8, b, dropout=True)
    b = Block(ngf * 4, ngf * 8, b)
    b = Block(ngf * 2, ngf * 4, b)
    b = Block(ngf, ngf * 2, b)
    return Block(3, ngf, b, outermost=True, in_ch=3).eval()


def case_ours(shape, model, threads, repeat, precision="auto") -> dict:
    import torch

    from golddigger.model.detector import Detector

    img = test_image(shape)
    det = Detector.from_pretrained(model, threads=threads, precision=precision)
    det.predict(img[:1024, :1024], PX)  # warm-up
    totals, models = [], []
    from golddigger.model.detector import tiled_forward
    from golddigger.model.preprocess import normalise_tensor, resample_plane, robust_stats

    factor = PX / det.pixel_size_nm
    for _ in range(repeat):
        t = normalise_tensor(resample_plane(img, factor), robust_stats(img))
        t1 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16,
                            enabled=det.precision == "bfloat16"):
            tiled_forward(det._net, t, 2**det.config.depth, det.config.halo_px,
                          det.config.tile_size, edge_pad=det.config.edge_pad_px)
        models.append(time.perf_counter() - t1)
        t2 = time.perf_counter()
        n = len(det.predict(img, PX))
        totals.append(time.perf_counter() - t2)
    return {"shape": list(shape), "precision": det.precision,
            "model_s": float(np.median(models)),
            "total_s": float(np.median(totals)), "particles": n, "peak_rss_mb": peak_rss_mb()}


def case_pix2pix(shape, threads, repeat) -> dict:
    import torch

    torch.set_num_threads(threads)
    net = unet256()
    n_params = sum(p.numel() for p in net.parameters())
    img = test_image(shape)
    h, w = (shape[0] // 256) * 256, (shape[1] // 256) * 256
    tiles = img[:h, :w].reshape(h // 256, 256, w // 256, 256).transpose(0, 2, 1, 3)
    tiles = torch.from_numpy(tiles.reshape(-1, 256, 256).astype(np.float32) / 127.5 - 1)
    x = tiles[:, None].expand(-1, 3, -1, -1)
    times = []
    with torch.inference_mode():
        net(x[:2])
        for _ in range(repeat):
            t0 = time.perf_counter()
            for i in range(0, len(x), 8):
                net(x[i:i + 8].contiguous())
            times.append(time.perf_counter() - t0)
    return {"shape": list(shape), "tiles": len(x), "params": n_params,
            "model_s": float(np.median(times)), "peak_rss_mb": peak_rss_mb()}


def case_cli(shape, model, threads, precision="auto") -> dict:
    from golddigger.io.images import write_tiff

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image.tif"
        write_tiff(path, test_image(shape), PX)
        exe = Path(sys.executable).parent / "golddigger"
        cmd = [str(exe), "detect", str(path), "-o", str(Path(tmp) / "out"), "--quiet",
               "--threads", str(threads), "--precision", precision]
        cmd += ["--model", model] if model else []
        times = []
        for _ in range(3):
            out = Path(tmp) / "out"
            if out.exists():
                for f in out.iterdir():
                    f.unlink()
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True)
            times.append(time.perf_counter() - t0)
    return {"shape": list(shape), "wall_s": float(np.median(times)), "runs": times}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"),
                    help="our network's arithmetic (auto: bfloat16 where native)")
    args = ap.parse_args(argv)
    cases = {"ours-2k": lambda: case_ours((2115, 2048), args.model, args.threads, args.repeat,
                                          args.precision),
             "ours-8k": lambda: case_ours((8192, 8192), args.model, args.threads, 1,
                                          args.precision),
             "pix2pix-2k": lambda: case_pix2pix((2115, 2048), args.threads, args.repeat),
             "cli-2k": lambda: case_cli((2115, 2048), args.model, args.threads, args.precision)}
    if args.case:
        print(json.dumps(cases[args.case]()))
        return 0
    results = {}
    for name in cases:
        cmd = [sys.executable, __file__, "--case", name, "--threads", str(args.threads),
               "--repeat", str(args.repeat), "--precision", args.precision]
        cmd += ["--model", args.model] if args.model else []
        out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        if out.returncode:
            results[name] = {"error": out.stderr.strip().splitlines()[-1:]}
        else:
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(name, results[name], flush=True)
    ours, ref = results.get("ours-2k", {}), results.get("pix2pix-2k", {})
    if "model_s" in ours and "model_s" in ref:
        results["speed-up (model, 2k)"] = round(ref["model_s"] / ours["model_s"], 1)
        print("speed-up of the generator over pix2pix unet_256:",
              results["speed-up (model, 2k)"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
