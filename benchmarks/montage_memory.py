"""Peak memory of detection in chunks on a huge SerialEM montage.

Writes a SerialEM-style montage (an MRC stack of overlapping uint8 pieces and its .mdoc,
PieceCoordinates on a grid) of SIZE x SIZE px to a scratch folder; then a fresh process
reads it as one lazy image (golddigger.io.montage) and detects particles in chunks
(golddigger.model.chunked) with the shipped model while a thread samples its resident
size. Prints the peak resident size (VmHWM, and the peaks of
anonymous and file-backed pages), the time per chunk (median) and the total; with
``--chunks N`` only the first N chunks are detected and the full run is extrapolated
from their median time, labelled as such. The montage is deleted afterwards.

    nice -n 10 python benchmarks/montage_memory.py --size 50000 --chunks 6
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def rss_kb() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0])
    return out


def write_montage(folder: Path, size: int, piece: int, px_nm: float) -> Path:
    """A size x size montage of piece x piece uint8 pieces (about 4 % overlap)."""
    import mrcfile

    from golddigger.io.em_formats import set_imod_unsigned_bytes

    n = max(2, int(np.ceil((size - piece) / (piece * 0.96))) + 1)
    step = (size - piece) / (n - 1)
    starts = [round(i * step) for i in range(n)]
    rng = np.random.default_rng(0)
    # one textured tile with dark discs (about 1 particle per 2000 px^2), shifted per piece
    yy, xx = np.mgrid[:piece, :piece]
    base = rng.normal(150, 12, (piece, piece)).astype(np.float32)
    for _ in range(piece * piece // 2000):
        cx, cy = rng.uniform(0, piece, 2)
        r = rng.choice([6, 12, 18]) / 2 / px_nm
        y0, y1 = int(max(0, cy - r - 2)), int(min(piece, cy + r + 3))
        x0, x1 = int(max(0, cx - r - 2)), int(min(piece, cx + r + 3))
        d = np.hypot(xx[y0:y1, x0:x1] - cx, yy[y0:y1, x0:x1] - cy)
        base[y0:y1, x0:x1] -= 90 * np.clip(r + 0.5 - d, 0, 1)
    base = np.clip(base, 0, 255).astype(np.uint8)
    path = folder / "montage.mrc"
    lines = [f"PixelSpacing = {px_nm * 10:g}", f"ImageSize = {piece} {piece}", "Montage = 1", ""]
    mrc = mrcfile.new_mmap(path, shape=(n * n, piece, piece), mrc_mode=0,
                           overwrite=True)
    try:
        z = 0
        for x in starts:
            for y in starts:
                mrc.data[z] = np.roll(base, (z * 977) % piece, axis=1).view(mrc.data.dtype)
                lines += [f"[ZValue = {z}]", f"PieceCoordinates = {x} {y} 0", ""]
                z += 1
        mrc.voxel_size = px_nm * 10
        set_imod_unsigned_bytes(mrc.header)  # unsigned bytes, as SerialEM writes them
        mrc.flush()
    finally:
        mrc.close()
    path.with_name(path.name + ".mdoc").write_text("\n".join(lines))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=50000)
    ap.add_argument("--piece", type=int, default=4096)
    ap.add_argument("--pixel-size", type=float, default=0.5587)
    ap.add_argument("--chunk", type=int, default=2048, help="chunk core, model px")
    ap.add_argument("--chunks", type=int, default=0, help="detect only the first N chunks "
                    "and extrapolate (0: all)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scratch", default=tempfile.gettempdir())
    ap.add_argument("--json", type=Path)
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--write-s", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        run(args.measure, args, args.write_s)
        return

    need = args.size * args.size * 1.1
    free = shutil.disk_usage(args.scratch).free
    if free < 2 * need:
        raise SystemExit(f"{args.scratch}: {free / 1e9:.1f} GB free, need {2 * need / 1e9:.1f}")
    folder = Path(tempfile.mkdtemp(prefix="golddigger-montage-", dir=args.scratch))
    try:
        t0 = time.perf_counter()
        path = write_montage(folder, args.size, args.piece, args.pixel_size)
        t_write = time.perf_counter() - t0
        print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in {t_write:.0f} s",
              flush=True)
        # measured in a fresh process: writing the file here touched all its pages
        argv = [sys.executable, __file__, "--measure", str(path), "--write-s",
                f"{t_write:.1f}"] + sys.argv[1:]
        subprocess.run(argv, check=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(path: Path, args, t_write: float) -> None:
    from golddigger.io.images import read_image
    from golddigger.model import chunked
    from golddigger.model.detector import Detector

    peaks = {"RssAnon": 0, "RssFile": 0, "VmRSS": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            now = rss_kb()
            for k in peaks:
                peaks[k] = max(peaks[k], now.get(k, 0))
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    det = Detector.from_pretrained(args.model, threads=args.threads)
    base = rss_kb()
    im = read_image(path)
    print(f"read {im.data!r}, {im.pixel_size_nm} nm/px", flush=True)
    times: list[float] = []
    n_planned = len(chunked.plan_chunks(det, im.shape_yx, im.pixel_size_nm, args.chunk))

    def map_chunks(job, chunks):
        todo = chunks[:args.chunks] if args.chunks else chunks
        out = []
        for i, c in enumerate(todo):
            t = time.perf_counter()
            out.append(job.run(det, c))
            times.append(time.perf_counter() - t)
            print(f"chunk {i + 1}/{len(todo)} of {n_planned}: {times[-1]:.1f} s, "
                  f"{len(out[-1][0])} particles, RSS {rss_kb()['VmRSS'] / 1024:.0f} MB",
                  flush=True)
        return out

    t0 = time.perf_counter()
    table = chunked.predict_chunked(det, im, chunk_size=args.chunk, map_chunks=map_chunks)
    total = time.perf_counter() - t0
    stop.set()
    sampler.join()
    end = rss_kb()
    med = statistics.median(times)
    result = {
        "size_px": args.size, "pixel_size_nm": im.pixel_size_nm, "chunk_model_px": args.chunk,
        "chunks_planned": n_planned, "chunks_run": len(times),
        "median_s_per_chunk": round(med, 2), "run_s": round(total, 1),
        "write_s": round(t_write, 1), "particles_found": len(table),
        "model_rss_mb": round(base["VmRSS"] / 1024, 1),
        "peak_rss_mb_VmHWM": round(end["VmHWM"] / 1024, 1),
        "peak_anon_mb": round(peaks["RssAnon"] / 1024, 1),
        "peak_file_mb": round(peaks["RssFile"] / 1024, 1),
        "threads": args.threads,
    }
    if len(times) < n_planned:
        result["EXTRAPOLATED_full_run_s"] = round(med * n_planned, 0)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
