"""``golddigger export-bioimageio``: a model as a BioImage.IO package (deepImageJ,
bioimageio.core, the BioImage Model Zoo)."""

from __future__ import annotations

from pathlib import Path

from golddigger.cli._common import CliError, new_parser

EXAMPLES = """\
  golddigger export-bioimageio fril-gold-v3 -o golddigger-fril-gold-v3.zip
  golddigger export-bioimageio my-model/ -o my-model.zip --weights torchscript onnx
  bioimageio test golddigger-fril-gold-v3.zip      # check it (needs golddigger[bioimageio])
"""


def add_parser(sub) -> None:
    from golddigger.export.bioimageio import WEIGHT_FORMATS

    p = new_parser(sub, "export-bioimageio", help="export a model as a BioImage.IO package",
                   description="Write a model (a shipped model's name or a model folder) as "
                               "a BioImage.IO model package (spec 0.5 zip) for deepImageJ "
                               "and bioimageio.core: the network's probability maps per "
                               "gold class, in state-dict, TorchScript and ONNX weights, "
                               "with a test tile and a model card. The package gives maps, "
                               "not particles: the model card says how Gold Digger turns "
                               "them into particles. Needs golddigger[bioimageio].",
                   examples=EXAMPLES)
    p.add_argument("model", nargs="?", default=None,
                   help="a shipped model's name (see 'golddigger models') or a model "
                        "folder (default: the default model)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.zip",
                   help="the package to write (.zip)")
    p.add_argument("--weights", nargs="+", choices=WEIGHT_FORMATS, default=list(WEIGHT_FORMATS),
                   metavar="FORMAT",
                   help=f"weight formats to include (default all: {' '.join(WEIGHT_FORMATS)})")
    p.add_argument("--overwrite", action="store_true", help="replace an existing package")
    p.set_defaults(func=run)


def run(args) -> int:
    from golddigger.export.bioimageio import export_bioimageio

    if args.output.exists() and not args.overwrite:
        raise CliError(f"{args.output} exists; give --overwrite to replace it")
    try:
        result = export_bioimageio(args.model, args.output,
                                   weight_formats=tuple(dict.fromkeys(args.weights)))
    except ImportError as err:
        raise CliError(str(err)) from None
    if not args.quiet:
        print(f"wrote {result.path} ({result.size_bytes / 1e6:.1f} MB, "
              f"{', '.join(result.weight_formats)}) in {result.seconds:.1f} s")
    return 0
