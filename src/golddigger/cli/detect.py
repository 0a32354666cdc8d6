"""``golddigger detect``: find gold in images and write particle lists and ImageJ ROIs."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from golddigger.cli._common import CliError, expand_images, new_parser, progress
from golddigger.io.conventions import display_name

logger = logging.getLogger(__name__)

EXAMPLES = """\
  golddigger detect synapse.tif -o results/
  golddigger detect images/ -o results/ --pixel-size 0.5587 --overlay
  golddigger detect S1.jpg -o results/ --pixel-size 0.5587 --roi S1_membrane.roi
  golddigger detect stack.tif -o results/ --threshold 0.4 --classes 6 12
  golddigger detect images/ -o results/ --resume       # continue an interrupted batch
  golddigger detect montage.mrc -o results/            # SerialEM montage (.mrc + .mdoc)
  golddigger detect images/ -o results/ --scheduler tcp://10.0.0.5:8786   # Dask cluster

outputs per image: <stem>.csv (x,y,diameter_nm,score,slice; x = column, y = row, in pixels),
<stem>_RoiSet.zip (ImageJ ROI Manager: ovals named, grouped and coloured by class),
<stem>_overlay.png (with --overlay); per run: summary.csv (counts, area, density per um2).
"""


def add_parser(sub) -> None:
    p = new_parser(sub, "detect", help="find gold particles in images",
                   description="Find immunogold particles in micrographs (files, folders, "
                               "stacks) with a trained model.", examples=EXAMPLES)
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR",
                   help="TIFF/PNG/JPEG, DM3/DM4, MRC (SerialEM montages with their .mdoc), "
                        "TIA .ser or Velox EMD files, or folders of them")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR",
                   help="folder for the results (created if needed)")
    p.add_argument("--pixel-size", type=float, metavar="NM",
                   help="nm per pixel (overrides the files' calibration)")
    p.add_argument("--roi", type=Path, metavar="FILE_OR_DIR",
                   help="count only inside this ImageJ ROI (.roi/.zip) or mask image; a "
                        "folder gives one per image (<stem>.roi, <stem>.zip, ...)")
    p.add_argument("--whole-image-if-no-roi", action="store_true",
                   help="with a --roi folder: count an image that has no region file there "
                        "in the whole image (default: that image fails, saying so)")
    p.add_argument("--model", default=None, metavar="NAME_OR_DIR",
                   help="a model folder or a shipped model's name (default: the shipped one)")
    p.add_argument("--threshold", type=float, metavar="T",
                   help="score threshold in (0, 1); lower finds more (default: the model's "
                        "tuned one)")
    p.add_argument("--classes", nargs="+", metavar="NM",
                   help="report only these particle diameters, e.g. --classes 6 12; any "
                        "diameters (each takes particles measured within 25 %% or 2.5 nm) or "
                        "ranges "
                        "(5-8) work: sizes are then measured on the image and binned")
    p.add_argument("--sizing", choices=("maps", "image"), default=None,
                   help="size class from the model's class maps, or measured from the image "
                        "at each particle (default: the model's setting)")
    p.add_argument("--tta", type=int, choices=(1, 2, 4, 8), default=1, metavar="N",
                   help="test-time augmentation: average the maps over N flips/rotations "
                        "(1, 2, 4 or 8; N times slower; default 1)")
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                   help="network arithmetic; auto = bfloat16 on CPUs that do it natively "
                        "(about 2x faster, scores within ~0.01), else float32")
    p.add_argument("--channel", type=int, metavar="N",
                   help="0-based channel of multi-channel images")
    p.add_argument("--points", action="store_true",
                   help="write point ROIs instead of ovals of the particle size")
    p.add_argument("--overlay", action="store_true", help="also write <stem>_overlay.png")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: all)")
    p.add_argument("--tile-size", type=int, default=-1, metavar="PX",
                   help="tile size in model pixels (smaller uses less memory)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--resume", action="store_true",
                   help="skip images whose <stem>.csv already exists in OUTDIR")
    dist = p.add_mutually_exclusive_group()
    dist.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                      help="run on an existing Dask cluster (one task per image, per chunk "
                           "for huge images); workers must read the images and the model at "
                           "the same paths; needs golddigger[dask]")
    dist.add_argument("--workers", type=int, metavar="N",
                      help="run on a local Dask cluster of N worker processes")
    p.set_defaults(func=run)


def run(args) -> int:
    from golddigger.batch import BatchOptions, run_batch
    from golddigger.errors import GoldDiggerError
    from golddigger.model.detector import Detector

    # options that would fail every image: refused once, before any work
    try:
        options = BatchOptions(pixel_size_nm=args.pixel_size, roi=args.roi,
                               whole_image_if_no_roi=args.whole_image_if_no_roi,
                               threshold=args.threshold,
                               classes=tuple(args.classes) if args.classes else None,
                               channel=args.channel, shape="point" if args.points else "oval",
                               overlay=args.overlay, overwrite=args.overwrite,
                               resume=args.resume, tile_size=args.tile_size,
                               sizing=args.sizing, tta=args.tta)
    except GoldDiggerError as err:  # a flag that would fail every image
        raise CliError(str(err)) from None
    paths = expand_images(args.inputs)
    detector = Detector.from_pretrained(args.model, threads=args.threads,
                                        precision=args.precision)
    if options.classes:
        detector._check_classes(options.classes)
    bar = progress(range(len(paths)), total=len(paths), desc="detect", quiet=args.quiet,
                   unit="image")

    def tick(i, n, path):
        bar.n = i
        bar.total = n
        if path is not None:
            bar.set_postfix_str(display_name(path))
        bar.refresh()

    try:
        if args.scheduler or args.workers is not None:
            from golddigger.distributed import dask_client, run_batch_dask

            with dask_client(args.scheduler, args.workers) as client:
                result = run_batch_dask(paths, detector, args.output, options,
                                        client=client, progress=tick)
        else:
            result = run_batch(paths, detector, args.output, options, progress=tick)
    finally:
        bar.close()
    if not args.quiet:
        for r in result.results:
            if r.particles is not None:
                counts = ", ".join(f"{len(r.particles.of_class(d))} x {d:g} nm"
                                   for d in r.classes)
                print(f"{r.name}: {len(r.particles)} particles ({counts})")
            elif r.skipped:
                print(f"{r.name}: skipped (done before; --resume)")
        if result.summary_path:
            print(f"results in {args.output}/ (summary: {result.summary_path.name})")
    if result.failed:
        print(f"golddigger detect: {len(result.failed)} of {len(result.results)} image(s) "
              "failed:", file=sys.stderr)
        for r in result.failed:
            print(f"  {r.error}", file=sys.stderr)
        return 1
    return 0
