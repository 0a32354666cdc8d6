"""The training recipe lives in the library: the shipped model's recipe is named, is what
``golddigger train`` does by default, and the benchmarks import the package."""

from __future__ import annotations

import ast
import json

import numpy as np
import pytest
from tests.conftest import REPO

from golddigger.cli.main import build_parser
from golddigger.cli.train import train_config
from golddigger.model.config import ModelConfig
from golddigger.recipes import RECIPES, SHIPPED_RECIPE, TrainConfig


@pytest.mark.parametrize("name", ["fril-gold-v3", "fril-gold-v4"])
def test_recipes_are_the_shipped_models(name):
    metrics = REPO / "models" / name / "metrics.json"
    if not metrics.is_file():
        pytest.skip(f"{name} is not in models/")
    m = json.loads(metrics.read_text())
    recipe = RECIPES[name]
    # fields added to TrainConfig later take their defaults
    # every stage of the recipe, in order (the last one's config is the model's own)
    done = [TrainConfig(**s["train_config"]) for s in m.get("earlier_stages", [])]
    assert done + [TrainConfig(**m["train_config"])] == list(recipe.stages)
    assert bool(m.get("fine_tuned_from")) == bool(recipe.fine_tune)
    assert recipe.train.steps == 4500 and recipe.train.adv_weight == 0.0
    assert recipe.synth_images == m["synthetic_images"]
    config = ModelConfig(**json.loads((metrics.parent / "config.json").read_text()))
    for key, value in recipe.model_fields_for_config().items():
        assert getattr(config, key) == value, key
    assert RECIPES["fril-gold-v3"] is SHIPPED_RECIPE


def test_gold_recipe_scales():
    tcfg = RECIPES["fril-gold-v4"].train
    scales = tcfg.scales()
    assert len(scales) == tcfg.n_scales
    assert scales[0] == pytest.approx(0.7) and scales[-1] == pytest.approx(1.75)
    ratios = np.diff(np.log(scales))
    np.testing.assert_allclose(ratios, ratios[0])
    assert SHIPPED_RECIPE.train.scales() is None
    with pytest.raises(ValueError, match="scale_range"):
        TrainConfig(scale_range=(2.0, 1.0))


def test_train_defaults_are_the_recipe(tmp_path):
    args = build_parser().parse_args(["train", str(tmp_path), "-o", str(tmp_path / "m")])
    recipe = RECIPES[args.recipe]
    assert recipe is SHIPPED_RECIPE
    n_synth = recipe.synth_images if args.synth is None else args.synth
    assert n_synth == 8
    assert train_config(recipe, args, n_synth) == SHIPPED_RECIPE.train


def test_flags_override_the_recipe(tmp_path):
    args = build_parser().parse_args(["train", str(tmp_path), "-o", str(tmp_path / "m"),
                                      "--steps", "10", "--adv-weight", "0.05", "--synth", "0"])
    tcfg = train_config(RECIPES[args.recipe], args, 0)
    assert (tcfg.steps, tcfg.adv_weight, tcfg.synth_fraction) == (10, 0.05, 0.0)
    assert isinstance(tcfg, TrainConfig)


def test_benchmarks_import_the_package_not_each_other():
    names = {p.stem for p in (REPO / "benchmarks").glob("*.py")}
    for path in (REPO / "benchmarks").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in names, (path.name, node.module)
            if isinstance(node, ast.Import):
                for a in node.names:
                    assert a.name.split(".")[0] not in names, (path.name, a.name)
