"""``golddigger models``: list the installed models and what they were trained on."""

from __future__ import annotations

import json

from golddigger.cli._common import new_parser

EXAMPLES = """\
  golddigger models
  golddigger models --json
"""


def add_parser(sub) -> None:
    p = new_parser(sub, "models", help="list installed models",
                   description="List the shipped and installed models.", examples=EXAMPLES)
    p.add_argument("--json", action="store_true", help="print the models' metadata as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from golddigger.model.folder import (
        DEFAULT_MODEL,
        available_models,
        models_root,
        read_model_folder,
        validated_gold_nm,
    )

    out = {}
    for name in available_models():
        config, _, thresholds, metrics = read_model_folder(models_root() / name)
        out[name] = {"classes_nm": config.classes_nm, "output": config.output,
                     "gold_range_nm": config.gold_range_nm,
                     "pixel_size_nm": config.pixel_size_nm,
                     "threshold": thresholds.get("threshold"), "default": name == DEFAULT_MODEL,
                     "validated": metrics.get("validated"),
                     "validated_gold_nm": validated_gold_nm(models_root() / name),
                     "trained_on": metrics.get("trained_on"),
                     "cross_validation": metrics.get("cross_validation", {})}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if not out:
        print(f"no models in {models_root()}")
        return 0
    for name, m in out.items():
        cls = "/".join(f"{d:g}" for d in m["classes_nm"])
        star = " (default)" if m["default"] else ""
        if m["output"] == "gold":
            lo, hi = m["gold_range_nm"]
            what = (f"gold of any size {lo:g}-{hi:g} nm (sizes measured, default classes "
                    f"{cls} nm)")
        else:
            what = f"{cls} nm gold (other sizes shown to it at the scale of these)"
        if m["validated_gold_nm"]:
            what += "; validated on {:g}-{:g} nm gold".format(*m["validated_gold_nm"])
        print(f"{name}{star}: {what}, {m['pixel_size_nm']:g} nm/px, "
              f"threshold {m['threshold']}")
    return 0
