"""The detector's parts: networks, tiling, post-processing, model folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from golddigger.errors import GoldDiggerError, ModelError
from golddigger.model.config import ModelConfig
from golddigger.model.detector import Detector, _fuse_for_inference, tiled_forward
from golddigger.model.folder import read_model_folder, write_model_folder
from golddigger.model.networks import PatchDiscriminator, UNetGenerator, count_parameters
from golddigger.model.postprocess import find_peaks, maps_to_particles, suppress_across_classes
from golddigger.model.preprocess import resample, resample_plane
from golddigger.model.targets import render_targets


def _random_bn(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return net.eval()


def test_generator_shapes_and_size():
    cfg = ModelConfig()
    net = UNetGenerator(len(cfg.classes_nm), cfg.base_channels, cfg.depth)
    assert count_parameters(net) <= 2_000_000
    out = net(torch.zeros(2, 1, 64, 48))
    assert out.shape == (2, 3, 64, 48)
    d = PatchDiscriminator(4)
    assert d(torch.zeros(2, 1, 64, 64), torch.zeros(2, 3, 64, 64)).ndim == 4


def test_fused_network_matches_training_network():
    torch.manual_seed(0)
    net = _random_bn(UNetGenerator(3, 4, 4))
    x = torch.randn(1, 1, 96, 80)
    with torch.no_grad():
        ref = net(x)
        fused = _fuse_for_inference(net)(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(ref, fused, atol=1e-4)


@pytest.mark.parametrize("tile", [96, 160])
@pytest.mark.parametrize("edge_pad", [0, 5, 16, 96])
def test_tiled_equals_untiled(tile, edge_pad):
    torch.manual_seed(1)
    cfg = ModelConfig()
    net = _fuse_for_inference(_random_bn(UNetGenerator(3, 4, cfg.depth)))
    img = np.random.default_rng(0).normal(size=(237, 301)).astype(np.float32)
    whole = tiled_forward(net, img, 2**cfg.depth, cfg.halo_px, None, edge_pad=edge_pad)
    tiled = tiled_forward(net, img, 2**cfg.depth, cfg.halo_px, tile, edge_pad=edge_pad)
    assert whole.shape == (3, 237, 301)
    np.testing.assert_allclose(tiled, whole, atol=2e-5)


@pytest.mark.parametrize("edge_pad", [0, 16, 40])
def test_untiled_is_one_pass_over_the_mirrored_image(edge_pad):
    """What "untiled" means: the network over the image mirrored by edge_pad (and up to a
    multiple of 16 at the bottom and right), cropped back."""
    torch.manual_seed(3)
    cfg = ModelConfig()
    net = _fuse_for_inference(_random_bn(UNetGenerator(3, 4, cfg.depth)))
    img = np.random.default_rng(1).normal(size=(100, 75)).astype(np.float32)
    h, w = img.shape
    hp, wp = -(-(h + 2 * edge_pad) // 16) * 16, -(-(w + 2 * edge_pad) // 16) * 16
    padded = np.pad(img, ((edge_pad, hp - h - edge_pad), (edge_pad, wp - w - edge_pad)),
                    mode="symmetric")
    with torch.no_grad():
        ref = net(torch.from_numpy(padded)[None, None].contiguous(
            memory_format=torch.channels_last))[0].numpy()
    got = tiled_forward(net, img, 16, cfg.halo_px, None, edge_pad=edge_pad)
    np.testing.assert_allclose(got, ref[:, edge_pad:edge_pad + h, edge_pad:edge_pad + w],
                               atol=1e-5)


def test_halo_covers_receptive_field():
    """A change in one pixel must not reach further than the halo."""
    cfg = ModelConfig()
    torch.manual_seed(2)
    net = _random_bn(UNetGenerator(3, 4, cfg.depth))
    x = torch.zeros(1, 1, 320, 320)
    with torch.no_grad():
        a = net(x)
        x[0, 0, 160, 160] = 10.0
        b = net(x)
    changed = torch.nonzero((a - b).abs().amax(dim=(0, 1)) > 0)
    reach = (changed - 160).abs().max().item()
    assert 0 < reach <= cfg.halo_px


def test_resample_strips_equal_whole():
    a = np.random.default_rng(0).integers(0, 255, (700, 900)).astype(np.uint8)
    whole = resample(a.astype(np.float32), 0.4656)
    strips = resample_plane(a, 0.4656, chunk_px=50_000)
    assert whole.shape == strips.shape
    assert torch.allclose(whole, strips, atol=1e-4)


def test_targets_peak_at_centres():
    maps = render_targets((40, 50), np.array([10.25, 30.0]), np.array([20.5, 8.0]),
                          np.array([0, 1]), 2, np.array([1.0, 2.0]))
    assert maps.shape == (2, 40, 50)
    assert maps.max() <= 1.0
    assert np.unravel_index(maps[0].argmax(), maps[0].shape) in [(20, 10), (21, 10)]
    assert maps[1, 8, 30] == pytest.approx(1.0)
    assert maps[0, 8, 30] == 0.0


def test_find_peaks_subpixel():
    x0, y0 = np.array([12.3, 40.0, 25.6]), np.array([15.7, 30.2, 44.1])
    maps = render_targets((60, 60), x0, y0, np.zeros(3, int), 1, np.full(3, 1.2))
    x, y, s = find_peaks(maps[0], 0.5, 2)
    order = np.argsort(x)
    np.testing.assert_allclose(x[order], np.sort(x0), atol=0.15)
    np.testing.assert_allclose(y[order], y0[np.argsort(x0)], atol=0.15)
    assert (s > 0.5).all()
    # threshold above every peak: nothing
    assert find_peaks(maps[0] * 0.4, 0.5, 2)[0].size == 0


def test_one_detection_per_particle_across_classes():
    # a 12 nm particle that also lights the 6 nm map a little, beside it a real 6 nm one
    maps = np.zeros((2, 80, 80), np.float32)
    maps[0] = render_targets((80, 80), np.array([40.0, 60.0]), np.array([40.0, 40.0]),
                             np.array([0, 0]), 1, np.full(2, 1.0))[0] * np.float32(0.6)
    maps[1] = render_targets((80, 80), np.array([40.5]), np.array([40.0]), np.array([0]), 1,
                             np.array([2.0]))[0] * np.float32(0.9)
    x, y, d, s = maps_to_particles(maps, [6.0, 12.0], 1.2, [0.3, 0.3])
    got = sorted(zip(np.round(x), d, strict=True))
    assert got == [(40.0, 12.0), (60.0, 6.0)]


def test_suppression_keeps_highest():
    keep = suppress_across_classes(np.array([0.0, 1.0, 50.0]), np.array([0.0, 0.0, 0.0]),
                                   np.array([0.5, 0.9, 0.7]), np.array([3.0, 3.0, 3.0]))
    assert sorted(keep.tolist()) == [1, 2]


@pytest.fixture
def tiny_model(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(name="tiny", base_channels=4, tile_size=128)
    net = _random_bn(UNetGenerator(3, 4, cfg.depth))
    folder = write_model_folder(tmp_path / "tiny", cfg, net.state_dict(),
                                {"threshold": 0.5}, {"note": "random weights"})
    return folder, net


def test_model_folder_round_trip(tiny_model):
    folder, net = tiny_model
    det = Detector.from_folder(folder)
    assert det.classes == (6.0, 12.0, 18.0)
    assert det.threshold == 0.5
    for k, v in net.state_dict().items():
        assert torch.equal(det.generator.state_dict()[k], v)
    cfg, state, thr, metrics = read_model_folder(folder)
    assert metrics == {"note": "random weights"}


def test_model_folder_checksum_mismatch(tiny_model):
    folder, _ = tiny_model
    (folder / "thresholds.json").write_text(json.dumps({"threshold": 0.1}))
    with pytest.raises(ModelError, match="checksum"):
        Detector.from_folder(folder)


def test_model_folder_missing_file(tiny_model):
    folder, _ = tiny_model
    (folder / "weights.pt").unlink()
    with pytest.raises(ModelError, match="missing weights.pt"):
        Detector.from_folder(folder)


def test_predict_tiled_equals_untiled_detections(tiny_model):
    folder, _ = tiny_model
    det = Detector.from_folder(folder, threads=1)
    img = np.random.default_rng(3).integers(0, 255, (300, 340)).astype(np.uint8)
    a = det.predict(img, pixel_size_nm=1.0, threshold=0.3, tile_size=None)
    b = det.predict(img, pixel_size_nm=1.0, threshold=0.3, tile_size=48)
    assert len(a) == len(b)
    np.testing.assert_allclose(a.xy, b.xy, atol=1e-3)


def test_predict_image_sizing(tiny_model):
    folder, _ = tiny_model
    det = Detector.from_folder(folder, threads=1)
    img = np.random.default_rng(4).integers(0, 255, (300, 340)).astype(np.uint8)
    by_maps = det.predict(img, pixel_size_nm=1.0, threshold=0.2, sizing="maps")
    a = det.predict(img, pixel_size_nm=1.0, threshold=0.2, sizing="image", tile_size=None)
    b = det.predict(img, pixel_size_nm=1.0, threshold=0.2, sizing="image", tile_size=48)
    # the same particles; classes measured and centres refined on the image, within the
    # search distance (1.5 nm) of the maps' centres
    assert len(a) == len(by_maps) > 0
    np.testing.assert_array_equal(a.diameter_nm, b.diameter_nm)
    np.testing.assert_allclose(a.xy, b.xy, atol=1e-6)  # tiling changes nothing
    from golddigger.model.sizing import measure_particles

    d, x, y = measure_particles(img, by_maps.x, by_maps.y, det.classes, 1.0)
    x, y = np.clip(x, 0, img.shape[1] - 1), np.clip(y, 0, img.shape[0] - 1)
    # moved at most the search distance (2 px here) plus rounding, per axis
    assert np.abs(x - by_maps.x).max() <= 3.0 and np.abs(y - by_maps.y).max() <= 3.0
    order = np.lexsort((x, y))  # predict sorts by row, then column
    np.testing.assert_array_equal(a.diameter_nm, d[order])
    np.testing.assert_allclose(a.xy, np.column_stack([x, y])[order], atol=1e-6)
    with pytest.raises(GoldDiggerError, match="sizing"):
        det.predict(img, pixel_size_nm=1.0, sizing="ruler")


def test_predict_bad_inputs(tiny_model):
    folder, _ = tiny_model
    det = Detector.from_folder(folder, threads=1)
    img = np.zeros((64, 64), np.uint8)
    with pytest.raises(GoldDiggerError, match="pixel size is unknown"):
        det.predict(img)
    with pytest.raises(GoldDiggerError, match="threshold"):
        det.predict(img, 1.0, threshold=1.5)
    with pytest.raises(GoldDiggerError, match="not a diameter"):
        det.predict(img, 1.0, classes=[-9])
    with pytest.raises(GoldDiggerError, match="not a diameter"):
        det.predict(img, 1.0, classes=["8-5"])
    with pytest.raises(GoldDiggerError, match="empty"):
        det.predict(img, 1.0, region=np.zeros((64, 64), bool))


def test_installed_data_dir_falls_back_to_prefix_share(tmp_path, monkeypatch):
    """A wheel puts models/ and fiji-scripts/ under <prefix>/share/golddigger/; without a
    checkout beside the package they are found there."""
    import sys

    from golddigger.model.folder import installed_data_dir

    name = "not-in-the-checkout"
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    target = tmp_path / "share" / "golddigger" / name
    assert installed_data_dir(name) != target  # nowhere yet: the checkout path is named
    target.mkdir(parents=True)
    assert installed_data_dir(name) == target
    # a checkout wins
    from tests.conftest import REPO

    assert installed_data_dir("models") == REPO / "models"


def test_tta_maps_turn_with_the_image(tiny_model):
    """With all 8 flips/rotations averaged the maps of a turned or mirrored image are the
    turned or mirrored maps (exactly, when no side needs padding to a multiple of 16);
    a single pass of a random network is not."""
    folder, _ = tiny_model
    det = Detector.from_folder(folder, threads=1, precision="float32")
    img = np.random.default_rng(5).normal(100, 20, (96, 96)).astype(np.float32)
    px = det.pixel_size_nm  # no resampling
    m8, _ = det.predict_maps(img, px, tta=8)
    for turned, back in ((np.rot90(img), lambda m: np.rot90(m, -1, axes=(1, 2))),
                         (img[:, ::-1], lambda m: m[:, :, ::-1])):
        t8, _ = det.predict_maps(np.ascontiguousarray(turned), px, tta=8)
        np.testing.assert_allclose(back(t8), m8, atol=1e-5)
    m1, _ = det.predict_maps(img, px)
    t1, _ = det.predict_maps(np.ascontiguousarray(np.rot90(img)), px)
    assert np.abs(np.rot90(t1, -1, axes=(1, 2)) - m1).max() > 1e-3
    assert 0 <= m8.min() and m8.max() <= 1


def test_tta_tiled_equals_untiled_and_rejects_bad_counts(tiny_model):
    folder, _ = tiny_model
    det = Detector.from_folder(folder, threads=1)
    img = np.random.default_rng(6).integers(0, 255, (200, 230)).astype(np.uint8)
    a = det.predict(img, pixel_size_nm=1.0, threshold=0.3, tile_size=None, tta=4)
    b = det.predict(img, pixel_size_nm=1.0, threshold=0.3, tile_size=48, tta=4)
    assert len(a) == len(b)
    np.testing.assert_allclose(a.xy, b.xy, atol=1e-3)
    for bad in (0, 3, 16):
        with pytest.raises(GoldDiggerError, match="tta"):
            det.predict(img, pixel_size_nm=1.0, tta=bad)
