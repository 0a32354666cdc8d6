"""TIFFs are read as ImageJ opens them, and impossible resampling is refused before work."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tifffile
from tests.conftest import disc_image

from golddigger.batch import BatchOptions, check_memory, run_batch
from golddigger.errors import CalibrationError
from golddigger.io.images import read_image

PX = 0.5587


def test_planar_rgb_is_one_grey_image(tmp_path):
    rgb = np.stack([disc_image(shape=(60, 70), seed=s) for s in range(3)])  # (3, Y, X)
    tifffile.imwrite(tmp_path / "p.tif", rgb, planarconfig="separate", photometric="rgb")
    image = read_image(tmp_path / "p.tif", PX)
    assert image.data.shape == (60, 70) and image.n_slices == 1
    interleaved = read_image(_write(tmp_path / "c.tif", np.moveaxis(rgb, 0, -1)), PX)
    np.testing.assert_array_equal(image.data, interleaved.data)


def _write(path, data, **kw):
    tifffile.imwrite(path, data, **kw)
    return path


def test_white_is_zero_is_inverted(tmp_path):
    grey = disc_image(shape=(50, 50))
    tifffile.imwrite(tmp_path / "w.tif", 255 - grey, photometric="miniswhite")
    np.testing.assert_array_equal(read_image(tmp_path / "w.tif", PX).data, grey)


def test_largest_page_not_the_thumbnail(tmp_path, caplog):
    big = disc_image(shape=(120, 160))
    with tifffile.TiffWriter(tmp_path / "t.tif") as w:
        w.write(big[::8, ::8].copy())  # a thumbnail first
        w.write(big)
    with caplog.at_level(logging.WARNING, logger="golddigger"):
        image = read_image(tmp_path / "t.tif", PX)
    np.testing.assert_array_equal(image.data, big)
    assert "different sizes" in caplog.text and "20x15" in caplog.text


class _Model:
    pixel_size_nm = 1.2
    classes = (6.0, 12.0, 18.0)


def test_resampling_memory_is_checked_before_work(tmp_path):
    with pytest.raises(CalibrationError, match=r"50 nm/px .* GB of memory.*--pixel-size"):
        check_memory("a.tif", (1024, 1024), 50.0, _Model())
    check_memory("a.tif", (1024, 1024), 0.5587, _Model())  # an ordinary micrograph


def test_pixel_size_50_fails_the_image_with_the_figure(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", disc_image(shape=(1024, 1024)))

    class Never(_Model):
        def predict(self, *a, **k):  # pragma: no cover - must not be reached
            raise AssertionError("detection ran")

    res = run_batch([tmp_path / "a.tif"], Never(), tmp_path / "o",
                    BatchOptions(pixel_size_nm=50))
    assert "GB of memory" in res.results[0].error
