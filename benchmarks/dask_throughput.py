"""Images per minute on a local Dask cluster of 1, 2 and 4 workers, the overhead per task,
and the data moved per image.

For each worker count: a ``LocalCluster`` of that many processes (one thread, one torch
thread each) is started, the model is loaded on every worker (timed apart: once per
worker), then ``golddigger.distributed.run_batch_dask`` detects N synthetic micrographs
with the shipped model into a fresh folder; images per minute = N / that wall time. The
same images through the local engine (``golddigger.batch.run_batch``, one torch thread)
give the baseline. Overhead per task: the round trip of 200 empty tasks on the 1-worker
cluster. Data per image: the pickled size of the task's arguments and of the
``ImageResult`` that comes back.

    nice -n 10 python benchmarks/dask_throughput.py --images 8 --size 1024
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def make_images(folder: Path, n: int, size: int, px: float) -> list[Path]:
    from golddigger.io.images import write_tiff

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    paths = []
    for i in range(n):
        img = rng.normal(150, 12, (size, size))
        for _ in range(size * size // 4000):
            cx, cy = rng.uniform(0, size, 2)
            r = rng.choice([6, 12, 18]) / 2 / px
            d = np.hypot(xx - cx, yy - cy)
            img -= 90 * np.clip(r + 0.5 - d, 0, 1)
        path = folder / f"img{i:02d}.tif"
        write_tiff(path, np.clip(img, 0, 255).astype(np.uint8), px)
        paths.append(path)
    return paths


def _noop(i):
    return i


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from distributed import Client, LocalCluster

    from golddigger.batch import BatchOptions, detect_one, run_batch
    from golddigger.distributed import ModelKey, _check_model, run_batch_dask
    from golddigger.model.detector import Detector

    scratch = Path(tempfile.mkdtemp(prefix="golddigger-dask-bench-"))
    out: dict = {"images": args.images, "size_px": args.size, "cpu_note":
                 "2 shared CPU cores; more workers than cores compete for them"}
    try:
        paths = make_images(scratch, args.images, args.size, 0.5587)
        det = Detector.from_pretrained(args.model, threads=1, precision="float32")
        opts = BatchOptions()
        t = time.perf_counter()
        run_batch(paths, det, scratch / "local", opts)
        local_s = time.perf_counter() - t
        out["local_1_thread"] = {"s": round(local_s, 1),
                                 "images_per_min": round(args.images / local_s * 60, 2)}
        print(json.dumps(out["local_1_thread"]), flush=True)
        # data moved per image
        key = ModelKey.of(det)
        res = detect_one(paths[0], det, opts, stem=paths[0].stem)
        out["bytes_to_worker_per_image"] = len(pickle.dumps(
            (str(paths[0]), key, opts, paths[0].stem, [])))
        out["bytes_back_per_image"] = len(pickle.dumps(res))
        out["particles_per_image"] = len(res.particles)
        for k in args.workers:
            with LocalCluster(n_workers=k, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                t = time.perf_counter()
                client.run(_check_model, key)
                load_s = time.perf_counter() - t
                if k == args.workers[0]:
                    t = time.perf_counter()
                    client.gather(client.map(_noop, range(200), pure=False))
                    out["overhead_ms_per_empty_task"] = round(
                        (time.perf_counter() - t) / 200 * 1000, 2)
                t = time.perf_counter()
                result = run_batch_dask(paths, det, scratch / f"dask{k}", opts, client=client)
                run_s = time.perf_counter() - t
                assert not result.failed, [r.error for r in result.failed]
                same = all((scratch / "local" / f"{p.stem}.csv").read_bytes() ==
                           (scratch / f"dask{k}" / f"{p.stem}.csv").read_bytes()
                           for p in paths)
                out[f"workers_{k}"] = {"model_load_s": round(load_s, 1), "s": round(run_s, 1),
                                       "images_per_min": round(args.images / run_s * 60, 2),
                                       "csv_identical_to_local": same}
                print(k, json.dumps(out[f"workers_{k}"]), flush=True)
        print(json.dumps(out, indent=1))
        if args.json:
            args.json.write_text(json.dumps(out, indent=1) + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
