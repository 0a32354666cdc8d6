"""BioImage.IO export: the package passes bioimageio.core's own test offline, and its
weights give exactly Detector's maps."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from golddigger.cli.main import main
from golddigger.model.detector import Detector, tiled_forward
from golddigger.model.networks import MapsGenerator, UNetGenerator
from golddigger.model.preprocess import normalise

MODEL = "fril-gold-v3"
SRC = Path(__file__).resolve().parents[1] / "src"


# ------------------------------------------------------------------ without bioimageio
def test_maps_generator_equals_detector_forward():
    """MapsGenerator (the exported network) = tiled_forward + sigmoid, edges included."""
    torch.manual_seed(0)
    net = MapsGenerator(3, base=4, depth=2, edge_pad=8).eval()
    img = np.random.default_rng(1).normal(size=(40, 56)).astype(np.float32)
    img[:, :5] += 3.0  # an edge that mirroring and zero padding treat differently
    with torch.no_grad():
        got = net(torch.from_numpy(img)[None, None])[0].numpy()
    unet = UNetGenerator(3, base=4, depth=2).eval()
    unet.load_state_dict(net.state_dict())  # same keys
    want = 1.0 / (1.0 + np.exp(-tiled_forward(unet, img, multiple=4, halo=16, tile_size=None,
                                              channels_last=False, edge_pad=8)))
    assert got.shape == (3, 40, 56)
    np.testing.assert_allclose(got, want, atol=1e-5)
    plain = MapsGenerator(3, base=4, depth=2, edge_pad=0).eval()
    plain.load_state_dict(net.state_dict())
    with torch.no_grad():
        unpadded = plain(torch.from_numpy(img)[None, None])[0].numpy()
    assert np.abs(unpadded - got)[:, :, :3].max() > 1e-3  # the mirroring matters


def test_maps_generator_rejects_bad_edge_pad():
    with pytest.raises(ValueError, match="multiple of 4"):
        MapsGenerator(3, base=4, depth=2, edge_pad=6)


def test_package_normalisation_approximates_median_mad():
    """For a symmetric histogram the declared percentile normalisation is Gold Digger's
    median/MAD one; with dark gold added the median stays exact."""
    from golddigger.export.bioimageio import normalise_for_package

    rng = np.random.default_rng(0)
    img = rng.normal(150.0, 12.0, (300, 300)).astype(np.float32)
    np.testing.assert_allclose(normalise_for_package(img), normalise(img), atol=0.05)
    img[::10, ::10] = 20.0  # 1 % dark "gold"
    pkg = normalise_for_package(img)
    assert abs(np.median(pkg)) < 1e-3
    assert pkg.min() == pytest.approx(normalise(img).min(), rel=0.1)


def test_cli_does_not_import_bioimageio():
    """The command is registered without importing bioimageio (only running it does)."""
    code = ("import sys; from golddigger.cli.main import build_parser; "
            "h = build_parser().format_help(); assert 'export-bioimageio' in h; "
            "bad = [m for m in sys.modules if m.startswith(('bioimageio', 'onnx'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={**os.environ, "PYTHONPATH": str(SRC)})


def test_cli_rejects_bad_output_names(tmp_path, capsys):
    assert main(["export-bioimageio", MODEL, "-o", str(tmp_path / "out.yaml")]) == 2
    assert ".zip" in capsys.readouterr().err
    existing = tmp_path / "old.zip"
    existing.write_bytes(b"x")
    assert main(["export-bioimageio", MODEL, "-o", str(existing)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export-bioimageio", "no-such-model", "-o", str(tmp_path / "a.zip")]) == 2
    assert "not found" in capsys.readouterr().err
    assert existing.read_bytes() == b"x"


# ------------------------------------------------------------------ the package
@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    """The shipped model exported once (about 2 s after the imports)."""
    pytest.importorskip("bioimageio.spec")
    from golddigger.export.bioimageio import export_bioimageio

    out = tmp_path_factory.mktemp("bioimageio") / f"{MODEL}.zip"
    try:
        result = export_bioimageio(MODEL, out)
    except ImportError as err:  # bioimageio is there, but not as the extra pins it
        pytest.fail(str(err))
    assert result.path == out and result.size_bytes == out.stat().st_size
    return out


@pytest.fixture(scope="module")
def unpacked(package, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("unpacked")
    with zipfile.ZipFile(package) as zf:
        zf.extractall(folder)
    return folder


@pytest.fixture
def offline(monkeypatch):
    """No network: every connection attempt fails."""
    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _need_onnxruntime():
    """bioimageio.core runs ONNX weights with onnxruntime (in the bioimageio extra)."""
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.fail("onnxruntime is not installed: pip install 'golddigger[bioimageio]'")
    import onnxruntime

    return onnxruntime


@pytest.mark.slow
def test_bioimageio_test_passes_offline(package, offline):
    """bioimageio.core's own test (what `bioimageio test OUT.zip` runs), every format."""
    from bioimageio.core import test_description

    _need_onnxruntime()
    summary = test_description(package)
    failed = [(d.name, d.errors) for d in summary.details if d.status == "failed"]
    assert summary.status == "passed", failed
    tested = " ".join(d.name for d in summary.details)
    for fmt in ("pytorch_state_dict", "torchscript", "onnx"):
        assert f"Reproduce test outputs from test inputs ({fmt})" in tested


def _detector_maps(tile: np.ndarray) -> np.ndarray:
    det = Detector.from_pretrained(MODEL, precision="float32", threads=1)
    maps, (fx, fy) = det.predict_maps(tile, det.pixel_size_nm)
    assert fx == fy == 1.0
    return maps


@pytest.mark.parametrize("fmt", ["pytorch_state_dict", "torchscript", "onnx"])
def test_weights_give_detector_maps(unpacked, fmt):
    """Each weight format, fed Gold Digger's own normalisation, gives Detector's maps
    (the test tile and a larger, non-square crop of it mirrored)."""
    tile = np.load(unpacked / "test_input.npy")[0, 0]
    big = np.pad(tile, ((0, 64), (0, 128)), mode="reflect")  # 320 x 384
    if fmt == "onnx":
        ort = _need_onnxruntime()
        session = ort.InferenceSession(str(unpacked / "weights.onnx"),
                                       providers=["CPUExecutionProvider"])

        def run(x):
            return session.run(None, {"image": x})[0]
    else:
        if fmt == "torchscript":
            net = torch.jit.load(str(unpacked / "weights_torchscript.pt"))
        else:  # the architecture file in the package, on its own
            source = unpacked / "golddigger_networks.py"
            assert "golddigger" not in "".join(
                line for line in source.read_text().splitlines() if "import" in line)
            spec = importlib.util.spec_from_file_location("packaged_networks", source)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            net = module.MapsGenerator(n_classes=3, base=12, depth=4, edge_pad=16)
            net.load_state_dict(torch.load(unpacked / "weights_state_dict.pt",
                                           weights_only=True))
            net.eval()

        def run(x):
            with torch.no_grad():
                return net(torch.from_numpy(x)).numpy()
    for img in (tile, big):
        got = run(normalise(img)[None, None])[0]
        want = _detector_maps(img)
        assert got.shape == want.shape
        assert np.abs(got - want).max() < 1e-4


def test_package_contents(package, unpacked):
    from bioimageio.spec import load_model_description

    descr = load_model_description(package, perform_io_checks=False)
    assert str(descr.license) == "BSD-2-Clause"
    assert str(descr.cite[0].doi) == "10.1038/s41598-021-87015-2"
    inp, out = descr.inputs[0], descr.outputs[0]
    assert [a.scale for a in inp.axes[2:]] == [1.2, 1.2]
    assert [a.unit for a in out.axes[2:]] == ["nanometer", "nanometer"]
    assert [str(n) for n in out.axes[1].channel_names] == ["gold_6nm", "gold_12nm",
                                                            "gold_18nm"]
    assert [a.halo for a in out.axes[2:]] == [96, 96]
    ops = [p.id for p in inp.preprocessing]
    assert ops == ["ensure_dtype", "scale_range", "scale_linear", "clip", "ensure_dtype"]
    assert out.data.range == (0.0, 1.0)
    assert set(descr.weights.available_formats) == {"pytorch_state_dict", "torchscript",
                                                     "onnx"}
    # the test output is the sigmoid's: probabilities, with particles in every class
    maps = np.load(unpacked / "test_output.npy")
    assert maps.shape == (1, 3, 256, 256) and maps.dtype == np.float32
    assert 0.0 <= maps.min() and maps.max() <= 1.0
    assert (maps.reshape(3, -1).max(axis=1) > 0.5).all()
    card = (unpacked / "README.md").read_text()
    for needed in ("1.2 nm/px", "sigmoid", "gold_18nm", "approximation", "0.38",
                   "10.1038/s41598-021-87015-2", "BSD-2-Clause", "## Validation"):
        assert needed in card


def test_cli_writes_chosen_weights(tmp_path, capsys):
    pytest.importorskip("bioimageio.spec")
    out = tmp_path / "ts.zip"
    folder = SRC.parent / "models" / MODEL  # a model folder, not a name
    rc = main(["export-bioimageio", str(folder), "-o", str(out), "--weights", "torchscript"])
    assert rc == 0, capsys.readouterr().err
    names = zipfile.ZipFile(out).namelist()
    assert "weights_torchscript.pt" in names and "weights.onnx" not in names
    assert "weights_state_dict.pt" not in names and "rdf.yaml" in names
    assert main(["export-bioimageio", MODEL, "-o", str(out), "--weights", "torchscript",
                 "--overwrite", "-q"]) == 0


@pytest.mark.slow
def test_export_of_a_trained_model_folder(tmp_path):
    """Any model folder exports: other classes, depth and the smallest halo; the package passes
    bioimageio.core's test."""
    pytest.importorskip("bioimageio.spec")
    from bioimageio.core import test_description

    from golddigger.export.bioimageio import export_bioimageio
    from golddigger.model.config import ModelConfig
    from golddigger.model.folder import write_model_folder

    torch.manual_seed(0)
    config = ModelConfig(name="tiny", classes_nm=[10.0, 15.0], base_channels=4, depth=2,
                         halo_px=16, edge_pad_px=16, sizing="maps")
    folder = write_model_folder(tmp_path / "tiny", config,
                                UNetGenerator(2, 4, 2).state_dict(), {"threshold": 0.5}, {})
    out = tmp_path / "tiny.zip"
    with pytest.raises(ValueError, match="multiple of 4"):
        export_bioimageio(folder, out, test_size=66)
    export_bioimageio(folder, out, test_size=64, weight_formats=("pytorch_state_dict",))
    summary = test_description(out)
    assert summary.status == "passed", [d.errors for d in summary.details if d.errors]
    from bioimageio.spec import load_model_description

    descr = load_model_description(out, perform_io_checks=False)
    assert [str(n) for n in descr.outputs[0].axes[1].channel_names] == ["gold_10nm",
                                                                         "gold_15nm"]
    assert descr.outputs[0].axes[2].halo == 16
    assert "10/15 nm" in descr.description
