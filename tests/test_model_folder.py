"""Model folders are validated: each problem is one clear line (a `ModelError`), never a
traceback, and nothing odd is accepted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from golddigger.cli.main import main
from golddigger.errors import ModelError
from golddigger.model.config import ModelConfig
from golddigger.model.detector import Detector
from golddigger.model.folder import (
    DEFAULT_MODEL,
    available_models,
    read_model_folder,
    sha256_file,
)
from golddigger.model.networks import UNetGenerator

FILES = ("config.json", "weights.pt", "thresholds.json", "metrics.json")


@pytest.fixture(scope="module")
def model(tiny_model) -> Path:
    return tiny_model

def damaged(model: Path, tmp_path: Path, name: str, content) -> Path:
    folder = tmp_path / "m"
    shutil.copytree(model, folder)
    if name == "weights.pt":
        torch.save(content, folder / name)
    else:
        (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))
    sums = "\n".join(f"{sha256_file(folder / n)}  {n}" for n in FILES)
    (folder / "checksums.sha256").write_text(sums + "\n")
    return folder


def _config(**changes) -> str:
    cfg = json.loads(ModelConfig(name="tiny", base_channels=4, tile_size=128)
                     .model_dump_json())
    cfg.update(changes)
    return json.dumps(cfg)


@pytest.mark.parametrize("name, content, needles", [
    ("thresholds.json", [0.5], ("thresholds.json", "expected a JSON object, got list")),
    ("thresholds.json", {"threshold": "high"}, ("thresholds.json", "between 0 and 1")),
    ("thresholds.json", '{"threshold": NaN}', ("thresholds.json", "between 0 and 1")),
    ("thresholds.json", {"threshold": -0.2}, ("thresholds.json", "between 0 and 1")),
    ("thresholds.json", {"threshold": 0.4, "per_class": {"6": 1.5}},
     ("class 6", "between 0 and 1")),
    ("config.json", _config(halo_px=0), ("config.json", "halo_px")),
    ("config.json", _config(format_version=99), ("format 99", "update Gold Digger")),
    ("config.json", _config(base_channels="wide"), ("config.json", "base_channels")),
    ("metrics.json", "[1, 2]", ("metrics.json", "JSON object")),
    ("metrics.json", {"steps_done": "many"}, ("metrics.json", "steps_done")),
    ("weights.pt", [torch.zeros(3)], ("weights.pt", "not a state dict", "list")),
    ("weights.pt", UNetGenerator(3, 8, 4).state_dict(),
     ("weights.pt", "do not fit the config", "other shapes")),
    ("weights.pt", UNetGenerator(3, 4, 3).state_dict(),
     ("weights.pt", "do not fit the config", "missing")),
])
def test_bad_model_folder_is_one_line(model, tmp_path, capsys, name, content, needles):
    folder = damaged(model, tmp_path, name, content)
    with pytest.raises(ModelError) as info:
        read_model_folder(folder)
    message = str(info.value)
    assert "\n" not in message
    for n in needles:
        assert n in message, (n, message)
    code = main(["detect", str(tmp_path / "none.tif"), "-o", str(tmp_path / "o"), "--model",
                 str(folder), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1


class _Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_refusal_is_one_line(model, tmp_path):
    state = torch.load(model / "weights.pt", weights_only=True)
    state["x"] = _Payload()
    folder = damaged(model, tmp_path, "weights.pt", state)
    with pytest.raises(ModelError) as info:
        read_model_folder(folder)
    message = str(info.value)
    assert "\n" not in message and "weights_only" not in message
    assert "could run code" in message


@pytest.mark.skipif(DEFAULT_MODEL not in available_models(), reason="no shipped model")
def test_the_shipped_model_loads_unchanged():
    from golddigger.model.folder import resolve_model

    folder = resolve_model(None)
    config, state, thresholds, _ = read_model_folder(folder)
    assert thresholds == json.loads((folder / "thresholds.json").read_text())
    stored = json.loads((folder / "config.json").read_text())
    dumped = config.model_dump()
    assert {k: dumped[k] for k in stored} == stored
    # fields added after the folder was written keep their defaults (same behaviour)
    defaults = ModelConfig().model_dump()
    assert {k: v for k, v in dumped.items() if k not in stored} == \
        {k: defaults[k] for k in dumped if k not in stored}
    Detector.from_folder(folder)
