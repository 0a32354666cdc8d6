"""``golddigger demo``: detect gold on the bundled synthetic example and score it."""

from __future__ import annotations

from pathlib import Path

from golddigger.cli._common import CliError, new_parser

EXAMPLES = """\
  golddigger demo                 # writes ./golddigger-demo/
  golddigger demo -o /tmp/demo --overwrite
  golddigger demo --model fril-gold-v4 -o /tmp/demo-v4
"""


def example_dir() -> Path:
    """The repository's ``examples/`` folder."""
    return Path(__file__).resolve().parents[3] / "examples"


def add_parser(sub) -> None:
    p = new_parser(sub, "demo", help="run detection on the bundled example",
                   description="Detect gold on the bundled synthetic FRIL example with the "
                               "shipped model, write the results, and score them against "
                               "the example's ground truth.", examples=EXAMPLES)
    p.add_argument("-o", "--output", type=Path, default=Path("golddigger-demo"),
                   metavar="OUTDIR")
    p.add_argument("--overwrite", action="store_true", help="replace earlier demo results")
    p.add_argument("--model", default=None, metavar="NAME_OR_FOLDER",
                   help="a shipped model's name or a model folder (default: the default "
                        "shipped model)")
    p.set_defaults(func=run)


def run(args) -> int:
    import time

    from golddigger.batch import BatchOptions, run_batch
    from golddigger.evaluate import evaluate_many
    from golddigger.io.images import read_image
    from golddigger.io.rois import read_region
    from golddigger.model.detector import Detector
    from golddigger.particles import ParticleTable

    ex = example_dir()
    image_path = ex / "synthetic_fril.tif"
    truth_path = ex / "synthetic_fril.csv"
    if not image_path.is_file() or not truth_path.is_file():
        raise CliError(f"the bundled example is missing from {ex}")
    t0 = time.perf_counter()
    detector = Detector.from_pretrained(args.model)
    options = BatchOptions(overlay=True, overwrite=args.overwrite)
    result = run_batch([image_path], detector, args.output, options)
    if result.failed:
        raise CliError(result.failed[0].error or "detection failed")
    seconds = time.perf_counter() - t0
    found = result.results[0].particles
    truth = ParticleTable.from_csv(truth_path)
    image = read_image(image_path)
    region = None
    for suffix in ("_region.roi", "_region.zip", "_region.tif"):
        f = ex / f"synthetic_fril{suffix}"
        if f.is_file():
            region = read_region(f, image_shape=image.shape_yx)
            break
    report = evaluate_many([("synthetic_fril", truth, found, image.require_pixel_size(),
                             region)], classes=detector.classes)
    if not args.quiet:
        print(f"{detector}")
        print(f"{image_path.name}: {len(found)} particles found, {len(truth)} in the ground "
              f"truth ({seconds:.1f} s including model load)")
        print(report.to_table())
        print(f"results: {args.output}/synthetic_fril.csv, synthetic_fril_RoiSet.zip, "
              "synthetic_fril_overlay.png, summary.csv")
    return 0
