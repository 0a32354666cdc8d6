"""`golddigger train` end to end: synthetic images with their CSVs and region ROIs -> a
model folder that `golddigger detect --model DIR` and `Detector.from_folder` load."""

from __future__ import annotations

import json

import pytest
import torch

from golddigger.cli.main import main
from golddigger.model.detector import Detector
from golddigger.particles import ParticleTable


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train-cli")
    data = tmp / "data"
    assert main(["synth", "-o", str(data), "-n", "3", "--size", "320", "320", "--seed", "7",
                 "-q"]) == 0
    model = tmp / "my-model"
    code = main(["train", str(data), "-o", str(model), "--steps", "12", "--batch-size", "2",
                 "--val", "synth_0009", "--threads", "1", "--synth", "0", "-q"])
    assert code == 0
    return data, model


def test_model_folder_is_complete(trained):
    _, model = trained
    config = json.loads((model / "config.json").read_text())
    assert config["name"] == "my-model"
    assert config["sizing"] == "image"  # new models measure size classes
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["steps_done"] == 12
    assert metrics["trained_on"] == ["synth_0007", "synth_0008"]
    assert metrics["validation"]["images"] == ["synth_0009"]
    thresholds = json.loads((model / "thresholds.json").read_text())
    assert 0.0 < thresholds["threshold"] < 1.0
    det = Detector.from_folder(model)  # checksums verified
    assert det.config.sizing == "image"


def test_detect_with_the_trained_model(trained, tmp_path):
    data, model = trained
    out = tmp_path / "out"
    assert main(["detect", str(data / "synth_0009.tif"), "-o", str(out), "--model",
                 str(model), "--threshold", "0.05", "-q"]) == 0
    found = ParticleTable.from_csv(out / "synth_0009.csv")
    # 12 steps teach little; the contract is the output, not the accuracy
    assert set(found.diameter_nm) <= {6.0, 12.0, 18.0}
    assert (out / "synth_0009_RoiSet.zip").is_file()


def test_existing_model_folder_is_not_replaced(trained, capsys):
    data, model = trained
    before = (model / "weights.pt").read_bytes()
    assert main(["train", str(data), "-o", str(model), "--steps", "12", "-q"]) != 0
    assert "--overwrite" in capsys.readouterr().err
    assert (model / "weights.pt").read_bytes() == before


def test_fine_tune_with_dark_synthetic_images(trained, tmp_path):
    """--init-model starts from a model (at the lower fine-tuning learning rate) and the
    synthetic images can carry dark bands with gold on them."""
    data, model = trained
    tuned = tmp_path / "tuned"
    assert main(["train", str(data), "-o", str(tuned), "--init-model", str(model),
                 "--steps", "4", "--batch-size", "2", "--no-val", "--threads", "1",
                 "--synth", "1", "--synth-dark-bands", "8", "--synth-dark-gold", "0.3",
                 "-q"]) == 0
    metrics = json.loads((tuned / "metrics.json").read_text())
    assert metrics["train_config"]["lr"] == pytest.approx(5e-4)
    assert metrics["synthetic_images"] == 1
    Detector.from_folder(tuned)


@pytest.mark.parametrize("flags, message", [
    (["--synth-dark-gold", "1.5"], "--synth-dark-gold"),
    (["--synth-dark-bands", "-1"], "--synth-dark-bands"),
    (["--lr", "0"], "--lr"),
])
def test_bad_training_flags_are_one_line(trained, tmp_path, capsys, flags, message):
    data, _ = trained
    assert main(["train", str(data), "-o", str(tmp_path / "m"), "--steps", "1", "-q"]
                + flags) != 0
    assert message in capsys.readouterr().err


def test_checkpoint_of_an_earlier_run_is_not_deleted(trained, tmp_path, capsys):
    """A checkpoint this run did not write survives a run without --resume/--overwrite."""
    data, _ = trained
    model = tmp_path / "m"
    ckpt = tmp_path / "m.ckpt"
    ckpt.write_bytes(b"an earlier run's weeks of training")
    code = main(["train", str(data), "-o", str(model), "--steps", "1", "-q"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "--overwrite" in err and "m.ckpt" in err
    assert ckpt.read_bytes() == b"an earlier run's weeks of training"


def test_a_recipe_with_later_stages_runs_them_all(trained, tmp_path, monkeypatch):
    """A recipe's later stages (fril-gold-v4's 1500 steps at lr 5e-4, then at 2.5e-4) run
    each from the weights of the stage before; the model records them all."""
    from golddigger import recipes
    from golddigger import train as train_module

    data, _ = trained
    tiny = recipes.GOLD_ANY_SIZE_RECIPE.model_copy(update={
        "name": "tiny-three-stage", "synth_images": 0,
        "train": recipes.TrainConfig(steps=3, batch_size=2, n_scales=2, scale_range=(0.8, 1.2)),
        "fine_tune": tuple(recipes.TrainConfig(steps=2, batch_size=2, lr=lr, n_scales=2,
                                               scale_range=(0.8, 1.2)) for lr in (5e-4, 1e-4))})
    monkeypatch.setitem(recipes.RECIPES, "fril-gold-v4", tiny)
    # each stage starts from the weights the stage before ended with
    starts, ends = [], []
    real = train_module.train_model

    def spying(*args, init=None, **kwargs):
        def init_and_record(trainer):
            if init is not None:
                init(trainer)
            starts.append({k: v.clone() for k, v in trainer.G.state_dict().items()})
        out = real(*args, init=init_and_record, **kwargs)
        ends.append({k: v.clone() for k, v in out[0].G.state_dict().items()})
        return out

    monkeypatch.setattr(train_module, "train_model", spying)
    out = tmp_path / "three-stage"
    assert main(["train", str(data), "-o", str(out), "--recipe", "fril-gold-v4",
                 "--no-val", "--threads", "1", "-q"]) == 0
    assert len(starts) == len(ends) == 3
    for before, start in zip(ends[:-1], starts[1:], strict=True):
        assert all(torch.equal(before[k], start[k]) for k in before)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps_done"] == 2 and metrics["train_config"]["lr"] == pytest.approx(1e-4)
    assert [s["train_config"]["steps"] for s in metrics["earlier_stages"]] == [3, 2]
    assert metrics["earlier_stages"][1]["train_config"]["lr"] == pytest.approx(5e-4)
    assert Detector.from_folder(out).config.output == "gold"
    assert not list(tmp_path.glob("*.ckpt")), "every stage's checkpoint is removed"
