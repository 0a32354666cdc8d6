"""Huge images in chunks: chunked detection equals whole-image detection (as tiled equals
untiled), reads memory maps and lazy montages window by window, in bounded memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from golddigger.io import images as images_mod
from golddigger.io.images import CalibratedImage, read_image
from golddigger.io.montage import MontageArray
from golddigger.model.chunked import _weights, plan_chunks, predict_chunked
from golddigger.model.config import ModelConfig
from golddigger.model.detector import Detector
from golddigger.model.networks import UNetGenerator

mrcfile = pytest.importorskip("mrcfile")


@pytest.fixture(scope="module")
def det() -> Detector:
    torch.manual_seed(0)
    cfg = ModelConfig(name="tiny", base_channels=4, tile_size=128)
    return Detector(UNetGenerator(3, 4, 4).eval(), cfg, {"threshold": 0.5}, threads=1,
                    precision="float32")


def noise(shape, seed=3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, shape).astype(np.uint8)


def same_particles(a, b) -> None:
    assert len(a) == len(b) > 0
    np.testing.assert_array_equal(a.diameter_nm, b.diameter_nm)
    np.testing.assert_array_equal(a.slice, b.slice)
    np.testing.assert_allclose(a.xy, b.xy, atol=1e-3)
    np.testing.assert_allclose(a.score, b.score, atol=1e-3)


@pytest.mark.parametrize("n_in, factor", [(300, 0.4656), (417, 0.833), (300, 1.7),
                                          (5000, 0.4656)])
def test_window_weights_are_pytorchs(n_in, factor):
    """The per-window resampling weights are those of the whole-image resampling."""
    n_out = round(n_in * factor)
    eye = torch.eye(n_in)[None, None]
    ref = torch.nn.functional.interpolate(eye, size=(n_out, n_in), mode="bilinear",
                                          align_corners=False, antialias=factor < 1)[0, 0]
    for start, stop in ((0, n_out), (n_out // 3, n_out // 2)):
        first, last, w = _weights(n_in, n_out, start, stop)
        np.testing.assert_allclose(w, ref[start:stop, first:last].numpy(), atol=2e-7)
        assert not ref[start:stop, :first].any() and not ref[start:stop, last:].any()


@pytest.mark.parametrize("px, sizing, shape", [(1.2, "maps", (520, 650)),
                                               (0.5587, "image", (520, 650)),
                                               (2.0, "maps", (300, 380))])
def test_chunked_equals_whole(det, px, sizing, shape):
    img = noise(shape)
    whole = det.predict(img, pixel_size_nm=px, threshold=0.3, sizing=sizing)
    chunked = predict_chunked(det, CalibratedImage(img, px), threshold=0.3, sizing=sizing,
                              chunk_size=128)
    assert len(plan_chunks(det, img.shape, px, 128)) > 4  # seams in both directions
    same_particles(whole, chunked)


def write_mrc(path: Path, data: np.ndarray, voxel_a: float) -> Path:
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(data)
        m.voxel_size = voxel_a
    return path


def test_memory_mapped_mrc_in_chunks_bounded_memory(det, tmp_path):
    """A memory-mapped MRC detected in chunks: the same particles as whole, and less
    allocated at the peak (numpy arrays traced; benchmarks/montage_memory.py measures
    the resident size of a 50,000 px montage)."""
    img = noise((1000, 1000), seed=5).astype(np.int16)
    im = read_image(write_mrc(tmp_path / "big.mrc", img, 12.0))
    assert isinstance(im.data, np.memmap)
    tracemalloc.start()
    whole = det.predict(im, threshold=0.5, sizing="maps")
    peak_whole = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    chunked = predict_chunked(det, im, threshold=0.5, sizing="maps", chunk_size=256)
    peak_chunked = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    same_particles(whole, chunked)
    # here the normalisation's sample (the whole 1 Mpx plane) dominates the chunks
    assert peak_chunked < peak_whole / 1.5, (peak_chunked, peak_whole)


def test_lazy_montage_in_chunks(det, tmp_path, monkeypatch):
    """A montage too large to assemble stays lazy; read in chunks it gives the particles
    of the assembled image."""
    whole = noise((400, 520), seed=7).astype(np.int16)
    piece, step = (144, 160), (128, 120)
    ys = range(0, 400 - piece[0] + 1, step[0])
    xs = range(0, 520 - piece[1] + 1, step[1])
    planes, lines = [], ["PixelSpacing = 12.0", ""]
    for x in xs:
        for y in ys:
            planes.append(whole[y:y + piece[0], x:x + piece[1]])
            lines += [f"[ZValue = {len(planes) - 1}]", f"PieceCoordinates = {x} {y} 0", ""]
    path = write_mrc(tmp_path / "m.mrc", np.stack(planes), 12.0)
    (tmp_path / "m.mrc.mdoc").write_text("\n".join(lines))
    monkeypatch.setattr(images_mod, "MAX_PIXELS_IN_MEMORY", 10_000)
    im = read_image(path)
    assert isinstance(im.data, MontageArray) and im.data.shape == (400, 520)
    np.testing.assert_array_equal(np.asarray(im.data), whole)
    np.testing.assert_array_equal(im.data[5:301:7, 33:500:3], whole[5:301:7, 33:500:3])
    np.testing.assert_array_equal(im.data[17], whole[17])
    ref = det.predict(whole, pixel_size_nm=1.2, threshold=0.3, sizing="image")
    got = predict_chunked(det, im, threshold=0.3, sizing="image", chunk_size=128)
    same_particles(ref, got)


def test_chunked_equals_whole_on_a_padded_canvas(det):
    """A montage-like image on a flat canvas: the specimen is found window by window
    (its statistics, the canvas filled for the network, no detections near it), and
    the particles and the excluded pixels are those of the whole image."""
    img = noise((560, 700), seed=11)
    img[:, :150] = 0  # flat padding on the left and a block at the bottom right
    img[430:, 520:] = 255
    whole = det.predict(img, pixel_size_nm=0.5587, threshold=0.3, sizing="image")
    assert whole.excluded_px[0] > 0
    chunked = predict_chunked(det, CalibratedImage(img, 0.5587), threshold=0.3,
                              sizing="image", chunk_size=128)
    same_particles(whole, chunked)
    assert chunked.excluded_px == whole.excluded_px


@pytest.mark.parametrize("classes, passes", [(["10", "20"], 1), (["8", "14-25"], 2),
                                             (["5", "25"], 2)])
def test_chunked_equals_whole_with_free_classes(det, classes, passes):
    """Classes the model does not have: measured diameters and one particle per
    measured radius across chunk seams, as on the whole image; sizes too far apart for
    one scale in two network passes, merged the same way."""
    assert len(det.scale_passes(classes)) == passes
    img = noise((400, 520), seed=13)
    kw = dict(pixel_size_nm=1.2, threshold=0.3, classes=classes)
    whole = det.predict(img, **kw)
    chunked = predict_chunked(det, CalibratedImage(img, 1.2), chunk_size=128,
                              **{k: v for k, v in kw.items() if k != "pixel_size_nm"})
    same_particles(whole, chunked)
    np.testing.assert_allclose(whole.measured_nm, chunked.measured_nm, atol=1e-6)
