"""``golddigger synth``: write synthetic FRIL micrographs with their ground truth."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from golddigger.cli._common import CliError, new_parser, progress

logger = logging.getLogger(__name__)

EXAMPLES = """\
  golddigger synth -o synthetic/                      # one 1024 x 1024 image, seed 0
  golddigger synth -o train/ -n 200 --seed 1000       # 200 images, seeds 1000-1199
  golddigger synth -o big/ --size 2048 2048 --jpeg-quality 90 --scale-bar
  golddigger synth -o coarse/ --pixel-size 1.0 --classes 6 12

Each image writes synth_<seed>.tif (ImageJ TIFF calibrated in nm), synth_<seed>.csv (the true
particles: x,y,diameter_nm) and synth_<seed>_region.roi (or _region.tif, a mask): the
membrane patches where the gold is. The same seed always gives the same image.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = new_parser(
        sub, "synth",
        help="make synthetic FRIL images with known gold particles",
        description=("Generate synthetic freeze-fracture replica micrographs (membrane "
                     "patches, platinum shadowing, grain, noise) with immunogold particles "
                     "at known positions, for testing, demos and training."),
        examples=EXAMPLES,
    )
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                   help="folder to write the images into (created if missing)")
    p.add_argument("-n", "--count", type=int, default=1, metavar="COUNT",
                   help="number of images (default 1)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed of the first image; image i uses S + i (default 0)")
    p.add_argument("--size", type=int, nargs=2, default=(1024, 1024), metavar=("W", "H"),
                   help="image width and height in pixels (default 1024 1024)")
    p.add_argument("--pixel-size", type=float, default=0.5587, metavar="NM",
                   help="pixel size in nm (default 0.5587, the MPFI FRIL images)")
    p.add_argument("--classes", type=float, nargs="+", default=(6.0, 12.0, 18.0),
                   metavar="NM", help="gold diameters to draw, in nm (default 6 12 18)")
    p.add_argument("--jpeg-quality", type=int, default=None, metavar="Q",
                   help="add JPEG compression artefacts at quality Q (1-100; real "
                        "micrographs are often ~90); default none")
    p.add_argument("--scale-bar", action="store_true",
                   help="draw a black band with a scale bar at the bottom, as microscopes do")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing files (default: refuse)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from golddigger.io.images import validate_pixel_size
    from golddigger.synth import SynthConfig, example_paths, generate, write_example

    if args.count < 1:
        raise CliError(f"--count must be at least 1, got {args.count}")
    if args.seed < 0:
        raise CliError(f"--seed must be >= 0, got {args.seed}")
    px = validate_pixel_size(args.pixel_size, "--pixel-size")
    width, height = args.size
    try:
        config = SynthConfig(shape=(height, width), pixel_size_nm=px,
                             classes=tuple(args.classes), jpeg_quality=args.jpeg_quality,
                             scale_bar=args.scale_bar)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "options"
        raise CliError(f"invalid {where}: {first.get('msg', err)}") from None

    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise CliError(f"{outdir} exists and is not a folder")
    seeds = [args.seed + i for i in range(args.count)]
    stems = [f"synth_{s:04d}" for s in seeds]
    # refuse before writing anything
    existing = [path for stem in stems for path in example_paths(outdir, stem)
                if path.exists()]
    if existing and not args.overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise CliError(f"{existing[0]} already exists{more}; use --overwrite to replace, or "
                       "another --seed or -o folder")

    total = 0
    for seed, stem in progress(list(zip(seeds, stems, strict=True)), desc="synth",
                               quiet=args.quiet, unit="image"):
        result = generate(config, seed=seed)
        write_example(outdir, stem, result, overwrite=args.overwrite)
        total += len(result.particles)
    if not args.quiet:
        print(f"wrote {args.count} image(s) with {total} particles to {outdir}")
    return 0
