"""Reliability: every bad input gets a one-line error through the real CLI, batches keep
going and lose nothing, interruptions leave no half-written file, big images are read
piecewise, model files cannot run code, nothing opens a socket.

A tiny model with random weights stands in for the shipped one: these tests are about
what happens around the detector, not its accuracy. docs/reliability.md lists each case
with the message the user sees.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from roifile import ROI_TYPE, ImagejRoi
from tests.conftest import REPO, disc_image

from golddigger.cli.main import main
from golddigger.errors import ImageReadError, ModelError
from golddigger.io import images as images_mod
from golddigger.io.images import read_image, write_tiff
from golddigger.io.regions import Region
from golddigger.model.config import ModelConfig
from golddigger.model.detector import Detector
from golddigger.model.folder import read_model_folder, sha256_file, write_model_folder
from golddigger.model.networks import UNetGenerator
from golddigger.particles import ParticleTable

PX = 0.5587


# ---------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A tiny model folder with random weights (fast; accuracy is not the point here)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model") / "tiny"
    return write_model_folder(folder, ModelConfig(name="tiny", base_channels=4, tile_size=128),
                              UNetGenerator(3, 4, 4).state_dict(), {"threshold": 0.5}, {})


def good_tif(path: Path, seed: int = 0, shape=(96, 96)) -> Path:
    """A small calibrated micrograph (dark discs on grey)."""
    write_tiff(path, disc_image(shape=shape, centres=((30.2, 40.7), (60.0, 55.5)), seed=seed),
               PX)
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def detect(capsys, model, *argv) -> tuple[int, str, str]:
    return run(capsys, "detect", *argv, "--model", model, "-q")


def one_line(err: str, *needles: str) -> str:
    """The error is one line, names what it is about, and is not a traceback.

    In a batch the line also appears as it happens (``golddigger: ERROR: ...``, logged)
    and then under the closing ``N of M image(s) failed:`` list; both are the same line.
    """
    assert "Traceback" not in err
    lines = [ln.strip() for ln in err.strip().splitlines()]
    logged = [ln[len("golddigger: ERROR: "):] for ln in lines
              if ln.startswith("golddigger: ERROR: ")]
    lines = [ln for ln in lines if not ln.startswith("golddigger: ERROR: ")]
    if lines and lines[0].startswith("golddigger detect:") and "failed:" in lines[0]:
        lines = lines[1:]
    assert len(lines) == 1, err
    assert all(ln == lines[0] for ln in logged), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def files_in(folder: Path) -> list[str]:
    """The files a user sees (not the run's hidden state folder ``.golddigger``)."""
    return sorted(p.name for p in folder.iterdir() if p.name != ".golddigger"
                  ) if folder.exists() else []


def handmade_tiff(path: Path, width: int, height: int, payload: bytes = b"\0" * 64) -> Path:
    """A classic TIFF whose header claims ``width x height`` 8-bit pixels in one strip,
    followed by only ``payload``: nothing of that size is ever written."""
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
               (273, 4, None), (277, 3, 1), (278, 4, height),
               (279, 4, min(width * height, 2**32 - 1))]
    data_offset = 8 + 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)))
    for tag, typ, value in entries:
        value = data_offset if value is None else value
        out += (struct.pack("<HHIHH", tag, typ, 1, value, 0) if typ == 3
                else struct.pack("<HHII", tag, typ, 1, value))
    out += struct.pack("<I", 0) + payload
    path.write_bytes(bytes(out))
    return path


# ---------------------------------------------------------------------------- 1. bad input
def test_missing_path(capsys, model, tmp_path):
    code, _, err = detect(capsys, model, tmp_path / "nope.tif", "-o", tmp_path / "o")
    assert code == 2
    one_line(err, "nope.tif", "no such file")
    assert not (tmp_path / "o").exists()


def test_folder_without_images(capsys, model, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    code, _, err = detect(capsys, model, tmp_path / "in", "-o", tmp_path / "o")
    assert code == 2
    one_line(err, "no images in this folder", ".tif")


def test_empty_file(capsys, model, tmp_path):
    (tmp_path / "empty.tif").write_bytes(b"")
    code, _, err = detect(capsys, model, tmp_path / "empty.tif", "-o", tmp_path / "o")
    assert code == 1
    one_line(err, "empty.tif", "the file is empty")
    assert files_in(tmp_path / "o") == []


@pytest.mark.parametrize("compression, imagej", [(None, True), ("zlib", False)])
def test_truncated_tiff(capsys, model, tmp_path, compression, imagej):
    """A 4-slice stack cut in half. (tifffile would return the slices it can read; that
    must not pass for the image. Its own complaints are not shown: one line.)"""
    img = np.random.default_rng(0).integers(0, 255, (4, 128, 128)).astype(np.uint8)
    if imagej:
        kwargs = {"imagej": True, "resolution": (1 / PX, 1 / PX),
                  "metadata": {"unit": "nm", "axes": "ZYX"}}
    else:
        kwargs = {"resolution": (1e7 / PX, 1e7 / PX), "resolutionunit": 3,
                  "compression": compression, "rowsperstrip": 16, "photometric": "minisblack"}
    tifffile.imwrite(tmp_path / "full.tif", img, **kwargs)
    assert read_image(tmp_path / "full.tif").data.shape == (4, 128, 128)
    data = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    code, _, err = detect(capsys, model, tmp_path / "cut.tif", "-o", tmp_path / "o")
    assert code == 1
    one_line(err, "cut.tif", "truncated")
    assert files_in(tmp_path / "o") == []


def test_text_file_named_tif(capsys, model, tmp_path):
    (tmp_path / "notes.tif").write_text("x,y\n1,2\n")
    code, _, err = detect(capsys, model, tmp_path / "notes.tif", "-o", tmp_path / "o")
    assert code == 1
    one_line(err, "notes.tif", "not a TIF image", "re-save")
    assert files_in(tmp_path / "o") == []


@pytest.mark.parametrize("size", [0, 1])
def test_degenerate_sizes(capsys, model, tmp_path, size):
    path = handmade_tiff(tmp_path / f"s{size}.tif", size, size, b"\x80" * max(size, 1))
    code, _, err = detect(capsys, model, path, "-o", tmp_path / "o", "--pixel-size", PX)
    assert code == 1
    one_line(err, path.name, f"{size} x {size} pixels", "at least 16 x 16")
    assert files_in(tmp_path / "o") == []


def test_huge_header_refused_without_allocation(capsys, model, tmp_path):
    path = handmade_tiff(tmp_path / "huge.tif", 100_000, 100_000)
    assert path.stat().st_size < 1000
    tracemalloc.start()
    try:
        with pytest.raises(ImageReadError, match="100000 x 100000 pixels"):
            read_image(path, PX)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # never anything like 10 GB
    code, _, err = detect(capsys, model, path, "-o", tmp_path / "o", "--pixel-size", PX)
    assert code == 1
    one_line(err, "huge.tif", "more than Gold Digger processes", "crop")


def test_header_larger_than_file(tmp_path):
    """A plausible size whose pixels are missing: truncated, said before reading."""
    path = handmade_tiff(tmp_path / "short.tif", 3000, 2000)
    with pytest.raises(ImageReadError, match="header says 2000 x 3000 pixels .* truncated"):
        read_image(path, PX)


def test_sparse_huge_file_refused(tmp_path):
    """A real (sparse) 10 GB uncompressed TIFF: memory-mappable, but one plane of 10 Gpx
    is refused rather than processed into 40 GB of maps."""
    path = tmp_path / "sparse.tif"
    mm = tifffile.memmap(path, shape=(100_000, 100_000), dtype=np.uint8, bigtiff=True)
    del mm
    if path.stat().st_blocks * 512 > 2**24:  # the file system wrote it out: don't keep it
        path.unlink()
        pytest.skip("file system has no sparse files")
    with pytest.raises(ImageReadError, match="more than Gold Digger processes"):
        read_image(path)


def test_huge_png_header_refused(tmp_path):
    """Pillow's decompression-bomb error becomes the same clear refusal."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000,
                                                             8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    (tmp_path / "bomb.png").write_bytes(png)
    with pytest.raises(ImageReadError, match="100000 x 100000 pixels"):
        read_image(tmp_path / "bomb.png", PX)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_float_image(capsys, model, tmp_path, bad):
    img = disc_image(shape=(64, 64)).astype(np.float32)
    img[5, 7] = bad
    write_tiff(tmp_path / "f.tif", img, PX)
    code, _, err = detect(capsys, model, tmp_path / "f.tif", "-o", tmp_path / "o")
    assert code == 1
    one_line(err, "f.tif", "NaN or infinite", "Remove NaNs")
    assert files_in(tmp_path / "o") == []


def test_constant_image_no_detections(capsys, model, tmp_path):
    write_tiff(tmp_path / "flat.tif", np.full((96, 96), 117, np.uint8), PX)
    code, _, err = detect(capsys, model, tmp_path / "flat.tif", "-o", tmp_path / "o")
    assert code == 0, err
    assert len(ParticleTable.from_csv(tmp_path / "o" / "flat.csv")) == 0
    row = next(csv.DictReader(open(tmp_path / "o" / "summary.csv")))
    assert row["total"] == "0"


@pytest.fixture
def hyperstacks(tmp_path) -> dict[str, Path]:
    rng = np.random.default_rng(1)
    data = rng.integers(0, 255, (2, 3, 2, 64, 64)).astype(np.uint8)  # T Z C Y X
    out = {}
    for name, arr, axes in (("h5", data, "TZCYX"), ("h4", data[0], "ZCYX")):
        out[name] = tmp_path / f"{name}.tif"
        tifffile.imwrite(out[name], arr, imagej=True, resolution=(1 / PX, 1 / PX),
                         metadata={"axes": axes, "unit": "nm"})
    return out


@pytest.mark.parametrize("name", ["h4", "h5"])
def test_hyperstack_needs_channel(capsys, model, tmp_path, hyperstacks, name):
    code, _, err = detect(capsys, model, hyperstacks[name], "-o", tmp_path / "o")
    assert code == 1
    one_line(err, f"{name}.tif", "2 channels", "--channel N (0-1)")
    assert files_in(tmp_path / "o") == []


def test_hyperstack_channel_chosen(capsys, model, tmp_path, hyperstacks):
    code, _, err = detect(capsys, model, hyperstacks["h5"], "-o", tmp_path / "o",
                          "--channel", 1)
    assert code == 0, err
    img = read_image(hyperstacks["h5"], channel=1)
    assert img.data.shape == (6, 64, 64)  # T x Z flattened into slices
    raw = tifffile.imread(hyperstacks["h5"])
    np.testing.assert_array_equal(img.data, raw[:, :, 1].reshape(6, 64, 64))
    rows = list(csv.DictReader(open(tmp_path / "o" / "summary.csv")))
    assert [r["slice"] for r in rows] == ["1", "2", "3", "4", "5", "6"]


def test_hyperstack_channel_out_of_range(capsys, model, tmp_path, hyperstacks):
    code, _, err = detect(capsys, model, hyperstacks["h5"], "-o", tmp_path / "o",
                          "--channel", 5)
    assert code == 1
    one_line(err, "h5.tif", "--channel 5 out of range (0-1)")
    code, _, err = detect(capsys, model, hyperstacks["h5"], "-o", tmp_path / "o",
                          "--channel", -1)
    assert code == 2
    one_line(err, "--channel", "cannot be negative")


def test_pixel_size_missing(capsys, model, tmp_path):
    tifffile.imwrite(tmp_path / "raw.tif", disc_image(shape=(64, 64)))
    code, _, err = detect(capsys, model, tmp_path / "raw.tif", "-o", tmp_path / "o")
    assert code == 1
    one_line(err, "raw.tif", "pixel size is unknown", "--pixel-size NM")


@pytest.mark.parametrize("value, needle", [("0", "positive"), ("-0.5", "positive"),
                                           ("5000", "outside the range"),
                                           ("0.0001", "outside the range"),
                                           ("nan", "positive")])
def test_pixel_size_bad_flag(capsys, model, tmp_path, value, needle):
    good_tif(tmp_path / "a.tif")
    code, _, err = detect(capsys, model, tmp_path / "a.tif", "-o", tmp_path / "o",
                          "--pixel-size", value)
    assert code == 2  # refused once, before any image is read
    one_line(err, "--pixel-size", needle)
    assert not (tmp_path / "o").exists()


def test_pixel_size_absurd_in_file(capsys, model, tmp_path):
    """A file calibrated at 1 cm per pixel: its calibration is ignored (with a warning) and
    the pixel size is then unknown."""
    tifffile.imwrite(tmp_path / "cm.tif", disc_image(shape=(64, 64)), resolution=(1, 1),
                     resolutionunit=3)
    assert read_image(tmp_path / "cm.tif").pixel_size_nm is None
    code, _, err = detect(capsys, model, tmp_path / "cm.tif", "-o", tmp_path / "o")
    assert code == 1
    one_line(err, "cm.tif", "pixel size is unknown")


def _roi_case(tmp_path: Path, kind: str) -> Path:
    if kind == "corrupt zip":
        p = tmp_path / "bad.zip"
        p.write_bytes(b"PK\x03\x04 this is not really a zip")
    elif kind == "foreign zip":
        p = tmp_path / "photos.zip"
        with zipfile.ZipFile(p, "w") as zf:
            zf.writestr("holiday.jpg", b"\xff\xd8\xff")
    elif kind == "garbage roi":
        p = tmp_path / "junk.roi"
        p.write_bytes(b"Iout but not really" * 3)
    elif kind == "outside":
        p = tmp_path / "outside.roi"
        ImagejRoi(roitype=ROI_TYPE.RECT, left=500, top=500, right=600, bottom=600).tofile(p)
    elif kind == "empty":
        p = tmp_path / "empty.roi"
        ImagejRoi(roitype=ROI_TYPE.RECT, left=10, top=10, right=10, bottom=10).tofile(p)
    else:
        p = tmp_path / "missing.roi"
    return p


@pytest.mark.parametrize("kind, needles", [
    ("corrupt zip", ("bad.zip", "not a readable zip", "re-save")),
    ("foreign zip", ("photos.zip", "not an ImageJ ROI set", "holiday.jpg")),
    ("garbage roi", ("junk.roi", "not an ImageJ ROI")),
    ("outside", ("outside.roi", "covers no pixel of the 96 x 96 image")),
    ("empty", ("empty.roi", "no area ROI")),
    ("missing", ("missing.roi", "no such ROI file")),
])
def test_bad_roi(capsys, model, tmp_path, kind, needles):
    good_tif(tmp_path / "a.tif")
    roi = _roi_case(tmp_path, kind)
    code, _, err = detect(capsys, model, tmp_path / "a.tif", "-o", tmp_path / "o", "--roi",
                          roi)
    assert code == 1
    one_line(err, *needles)
    assert files_in(tmp_path / "o") == []


@pytest.mark.parametrize("damage", ["missing", "checksum", "no checksums", "bad config"])
def test_bad_model_folder(capsys, model, tmp_path, damage):
    folder = tmp_path / "m"
    shutil.copytree(model, folder)
    if damage == "missing":
        (folder / "thresholds.json").unlink()
        needles = ("missing thresholds.json", "re-copy")
    elif damage == "checksum":
        with open(folder / "weights.pt", "ab") as fh:
            fh.write(b"\0")
        needles = ("weights.pt", "checksum mismatch", "re-copy")
    elif damage == "no checksums":
        (folder / "checksums.sha256").unlink()
        needles = ("no checksums.sha256",)
    else:
        (folder / "config.json").write_text('{"name": "x", "tile_size": 100}')
        sums = "\n".join(f"{sha256_file(folder / n)}  {n}" for n in
                         ("config.json", "weights.pt", "thresholds.json", "metrics.json"))
        (folder / "checksums.sha256").write_text(sums + "\n")
        needles = ("invalid model files", "multiple of 16")
    good_tif(tmp_path / "a.tif")
    code, _, err = run(capsys, "detect", tmp_path / "a.tif", "-o", tmp_path / "o",
                       "--model", folder, "-q")
    assert code == 2
    one_line(err, *needles)
    assert not (tmp_path / "o").exists()


def test_unknown_model_name(capsys, tmp_path):
    good_tif(tmp_path / "a.tif")
    code, _, err = run(capsys, "detect", tmp_path / "a.tif", "-o", tmp_path / "o",
                       "--model", "no-such-model", "-q")
    assert code == 2
    one_line(err, "'no-such-model' not found", "installed models")


@pytest.mark.parametrize("labels, preds, needles", [
    ("x,y\n1,2\n", "x,y,diameter_nm\n1,2,6\n", ("a.csv", "size class")),
    ("x,diameter_nm\n1,6\n", "x,y,diameter_nm\n1,2,6\n", ("a.csv", "no coordinate columns")),
    ("x,y,diameter_nm\n1,2,6\n3,abc,6\n", "x,y,diameter_nm\n1,2,6\n",
     ("a.csv, line 3", "'abc'", "not a number")),
    ("x,y,diameter_nm\n1,2,6\n", "x,y,diameter_nm\n1,2,six\n",
     ("a.csv, line 2", "'six'", "not a number")),
    ("x,y,diameter_nm,slice\n1,2,6,-1\n", "x,y,diameter_nm\n1,2,6\n",
     ("a.csv, line 2", "slice", "0-based")),
    ("x,y,diameter_nm\n1,2,0\n", "x,y,diameter_nm\n1,2,6\n", ("a.csv", "positive")),
])
def test_bad_annotation_csv(capsys, tmp_path, labels, preds, needles):
    (tmp_path / "lab").mkdir()
    (tmp_path / "pred").mkdir()
    (tmp_path / "lab" / "a.csv").write_text(labels)
    (tmp_path / "pred" / "a.csv").write_text(preds)
    code, _, err = run(capsys, "evaluate", "--labels", tmp_path / "lab", "--predictions",
                       tmp_path / "pred", "--pixel-size", PX, "-q")
    assert code == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err


def test_unknown_option(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["detect", str(tmp_path), "-o", str(tmp_path / "o"), "--bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "unrecognized arguments: --bogus" in err


@pytest.mark.parametrize("flags, needle", [(["--threshold", "1.5"], "between 0 and 1"),
                                           (["--classes", "7"], "class 7"),
                                           (["--tile-size", "50"], "multiple of 16"),
                                           (["--threads", "0"], "threads must be >= 1")])
def test_bad_flags_refused_once(capsys, model, tmp_path, flags, needle):
    good_tif(tmp_path / "a.tif")
    good_tif(tmp_path / "b.tif")
    code, _, err = detect(capsys, model, tmp_path / "a.tif", tmp_path / "b.tif", "-o",
                          tmp_path / "o", *flags)
    assert code == 2
    one_line(err, needle)
    assert files_in(tmp_path / "o") == []


# ---------------------------------------------------------------------------- 2. batches
def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def batch(tmp_path) -> Path:
    """A folder of three good images and three bad ones."""
    d = tmp_path / "in"
    d.mkdir()
    for i, name in enumerate(("a", "c", "e")):
        good_tif(d / f"{name}.tif", seed=i)
    (d / "b.tif").write_text("not an image")
    (d / "d.tif").write_bytes(b"")
    tifffile.imwrite(d / "f.tif", disc_image(shape=(64, 64)))  # no pixel size
    return d


def test_batch_good_and_bad(capsys, model, batch, tmp_path):
    before = {p.name: sha(p) for p in batch.iterdir()}
    out = tmp_path / "o"
    code, _, err = detect(capsys, model, batch, "-o", out)
    assert code == 1
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("golddigger: ERROR")]
    assert lines[0] == "golddigger detect: 3 of 6 image(s) failed:"
    assert [ln.split(":")[0].strip().split("/")[-1] for ln in lines[1:]] == \
        ["b.tif", "d.tif", "f.tif"]
    assert files_in(out) == ["a.csv", "a_RoiSet.zip", "c.csv", "c_RoiSet.zip", "e.csv",
                             "e_RoiSet.zip", "summary.csv"]
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [r["image"] for r in rows] == ["a.tif", "c.tif", "e.tif"]
    for r in rows:
        n = len(ParticleTable.from_csv(out / r["image"].replace(".tif", ".csv")))
        assert int(r["total"]) == n
    # inputs are never modified
    assert {p.name: sha(p) for p in batch.iterdir()} == before


def test_no_overwrite_without_flag(capsys, model, batch, tmp_path):
    out = tmp_path / "o"
    detect(capsys, model, batch / "a.tif", batch / "c.tif", "-o", out)
    before = {p: sha(out / p) for p in files_in(out)}
    code, _, err = detect(capsys, model, batch / "a.tif", batch / "c.tif", "-o", out)
    assert code == 1
    assert err.count("\n  a.tif: /") == 1 and err.count("\n  c.tif: /") == 1
    assert err.count("already exists; use --overwrite") >= 2
    assert {p: sha(out / p) for p in files_in(out)} == before
    code, _, err = detect(capsys, model, batch / "a.tif", "-o", out, "--overwrite")
    assert code == 0, err
    code, _, err = detect(capsys, model, batch / "a.tif", "-o", out, "--overwrite",
                          "--resume")
    assert code == 2
    one_line(err, "contradict")


def test_summary_keeps_earlier_runs(capsys, model, batch, tmp_path):
    out = tmp_path / "o"
    assert detect(capsys, model, batch / "a.tif", "-o", out)[0] == 0
    assert detect(capsys, model, batch / "c.tif", "-o", out)[0] == 0
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [r["image"] for r in rows] == ["a.tif", "c.tif"]


def test_foreign_summary_not_replaced(capsys, model, batch, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "summary.csv").write_text("my,own,notes\n1,2,3\n")
    code, _, err = detect(capsys, model, batch / "a.tif", "-o", out)
    assert code == 2
    one_line(err, "summary.csv exists and is not a Gold Digger summary")
    assert (out / "summary.csv").read_text() == "my,own,notes\n1,2,3\n"
    assert files_in(out) == ["summary.csv"]


def _no_partial_files(out: Path) -> None:
    leftovers = [p.name for p in out.iterdir() if p.name.endswith(".part")
                 or (p.name.startswith(".") and p.name != ".golddigger")]
    assert leftovers == []
    for csv_path in out.glob("*.csv"):
        if csv_path.name != "summary.csv":
            ParticleTable.from_csv(csv_path)  # complete, parseable
    for z in out.glob("*.zip"):
        with zipfile.ZipFile(z) as zf:
            assert zf.testzip() is None


def test_interrupt_then_resume(capsys, model, batch, tmp_path, monkeypatch):
    paths = [batch / "a.tif", batch / "c.tif", batch / "e.tif"]
    out = tmp_path / "o"
    calls = {"n": 0}
    real = Detector.predict

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Detector, "predict", flaky)
    code, _, err = detect(capsys, model, *paths, "-o", out)
    assert code == 130
    assert "interrupted" in err and "Traceback" not in err
    assert files_in(out) == ["a.csv", "a_RoiSet.zip", "summary.csv"]
    _no_partial_files(out)
    done = sha(out / "a.csv")
    assert [r["image"] for r in csv.DictReader(open(out / "summary.csv"))] == ["a.tif"]

    monkeypatch.setattr(Detector, "predict", real)
    code, stdout, err = run(capsys, "detect", *paths, "-o", out, "--model", model, "--resume")
    assert code == 0, err
    assert "a.tif: skipped" in stdout
    assert sha(out / "a.csv") == done
    assert files_in(out) == ["a.csv", "a_RoiSet.zip", "c.csv", "c_RoiSet.zip", "e.csv",
                             "e_RoiSet.zip", "summary.csv"]
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [r["image"] for r in rows] == ["a.tif", "c.tif", "e.tif"]
    _no_partial_files(out)


def test_interrupt_while_writing(capsys, model, batch, tmp_path, monkeypatch):
    """Ctrl-C in the middle of writing an image's files: what was being written vanishes,
    the ROI set already written for that image is replaced by --resume."""
    paths = [batch / "a.tif", batch / "c.tif"]
    out = tmp_path / "o"
    real_replace = os.replace

    def interrupt_at(name):
        def flaky_replace(src, dst):
            if Path(dst).name == name:
                raise KeyboardInterrupt
            return real_replace(src, dst)
        return flaky_replace

    monkeypatch.setattr(os, "replace", interrupt_at("c_RoiSet.zip"))
    code, _, _ = detect(capsys, model, *paths, "-o", out)
    assert code == 130
    assert files_in(out) == ["a.csv", "a_RoiSet.zip", "summary.csv"]
    _no_partial_files(out)

    # now interrupt c between its ROI set and its CSV: what it wrote is removed
    monkeypatch.setattr(os, "replace", interrupt_at("c.csv"))
    code, _, _ = detect(capsys, model, *paths, "-o", out, "--resume")
    assert code == 130
    assert files_in(out) == ["a.csv", "a_RoiSet.zip", "summary.csv"]
    monkeypatch.setattr(os, "replace", real_replace)
    code, _, err = detect(capsys, model, *paths, "-o", out, "--resume")
    assert code == 0, err
    assert files_in(out) == ["a.csv", "a_RoiSet.zip", "c.csv", "c_RoiSet.zip", "summary.csv"]
    _no_partial_files(out)


def test_disk_full(capsys, model, batch, tmp_path, monkeypatch):
    """No space for an image's CSV: nothing half-written stays, the message says what to
    do, and --resume completes the image once there is space."""
    import errno
    import pathlib

    out = tmp_path / "o"
    real_write = pathlib.Path.write_bytes

    def full(self, data):
        if self.name.startswith(".c.csv"):
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full)
    code, _, err = detect(capsys, model, batch / "a.tif", batch / "c.tif", "-o", out)
    assert code == 1
    one_line(err, "c.tif", "no space left on the disk", "--resume")
    assert "c.csv" not in files_in(out) and "a.csv" in files_in(out)
    _no_partial_files(out)
    monkeypatch.setattr(pathlib.Path, "write_bytes", real_write)
    code, _, err = detect(capsys, model, batch / "a.tif", batch / "c.tif", "-o", out,
                          "--resume")
    assert code == 0, err
    assert [r["image"] for r in csv.DictReader(open(out / "summary.csv"))] == ["a.tif",
                                                                               "c.tif"]


def test_unexpected_error_in_one_image_does_not_stop_batch(capsys, model, batch, tmp_path,
                                                          monkeypatch):
    real = Detector.predict

    def boom(self, image, *args, **kwargs):
        if image.path.name == "a.tif":
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory")
        return real(self, image, *args, **kwargs)

    monkeypatch.setattr(Detector, "predict", boom)
    code, _, err = detect(capsys, model, batch / "a.tif", batch / "c.tif", "-o",
                          tmp_path / "o")
    assert code == 1
    one_line(err, "a.tif", "unexpected error", "RuntimeError")
    assert "c.csv" in files_in(tmp_path / "o")


# ---------------------------------------------------------------------------- 3. size
def test_large_tiff_memory_mapped_same_result(model, tmp_path, monkeypatch):
    path = good_tif(tmp_path / "big.tif", shape=(160, 192))
    det = Detector.from_folder(model, threads=1)
    loaded = read_image(path)
    assert not isinstance(loaded.data, np.memmap)
    monkeypatch.setattr(images_mod, "MAX_PIXELS_IN_MEMORY", 1000)
    mapped = read_image(path)
    assert isinstance(mapped.data, np.memmap)
    assert mapped.pixel_size_nm == pytest.approx(PX)
    a = det.predict(loaded, threshold=0.3)
    b = det.predict(mapped, threshold=0.3)
    assert len(a) > 0 and a == b


def test_stack_memory_mapped(model, tmp_path, monkeypatch):
    stack = np.stack([disc_image(shape=(64, 80), seed=s) for s in range(50)])
    write_tiff(tmp_path / "stack.tif", stack, PX)
    monkeypatch.setattr(images_mod, "MAX_PIXELS_IN_MEMORY", 10_000)
    img = read_image(tmp_path / "stack.tif")
    assert isinstance(img.data, np.memmap) and img.data.shape == (50, 64, 80)
    np.testing.assert_array_equal(img.slice(49), stack[49])
    found = Detector.from_folder(model, threads=1).predict(img, threshold=0.3,
                                                           slices=[0, 49])
    assert set(found.slice) <= {0, 49}


def test_memory_mapped_float_with_nan_refused(tmp_path, monkeypatch):
    img = disc_image(shape=(300, 200)).astype(np.float32)
    img[250, 150] = np.nan
    tifffile.imwrite(tmp_path / "f.tif", img, resolution=(1e7 / PX, 1e7 / PX),
                     resolutionunit=3)
    real = images_mod._all_finite
    assert real(tifffile.memmap(tmp_path / "f.tif"), chunk=2000) is False  # late strip
    assert real(tifffile.memmap(tmp_path / "f.tif")[:200], chunk=2000) is True
    monkeypatch.setattr(images_mod, "MAX_PIXELS_IN_MEMORY", 1000)
    monkeypatch.setattr(images_mod, "_all_finite", functools.partial(real, chunk=2000))
    with pytest.raises(ImageReadError, match="NaN or infinite"):
        read_image(tmp_path / "f.tif")


def test_rgb_memmap_to_grey_in_strips(tmp_path, monkeypatch):
    rgb = np.random.default_rng(0).integers(0, 255, (40, 50, 3)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    ref = read_image(tmp_path / "rgb.tif").data
    monkeypatch.setattr(images_mod, "MAX_PIXELS_IN_MEMORY", 100)
    grey = read_image(tmp_path / "rgb.tif").data
    assert grey.dtype == np.uint8 and grey.shape == (40, 50)
    np.testing.assert_array_equal(grey, ref)


def test_overlay_of_big_plane_in_bounded_memory(tmp_path):
    """--overlay on a big memory-mapped plane: reduced in strips, never copied whole as
    float (a float32 copy of this plane alone would be 256 MB; the code before took
    1.5 GB). What remains is for the 2048-pixel picture, whatever the plane's size."""
    from golddigger.overlay import render_overlay

    mm = tifffile.memmap(tmp_path / "big.tif", shape=(8192, 8192), dtype=np.uint8)
    mm[:] = 150
    mm[1000:1010, 2000:2010] = 20
    mm.flush()
    del mm
    plane = tifffile.memmap(tmp_path / "big.tif", mode="r")
    parts = ParticleTable([2005.0], [1005.0], [12.0])
    region = Region.from_polygon([(100, 100), (8000, 200), (4000, 7900)])
    tracemalloc.start()
    try:
        rgb = render_overlay(plane, parts, PX, region)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rgb.shape == (2048, 2048, 3)
    assert peak < 200 * 2**20, peak / 2**20
    assert (rgb == (255, 255, 0)).all(axis=-1).any()  # the region outline is drawn
    assert rgb[251, 501].max() < 120  # the dark spot survives the reduction, in place


# ---------------------------------------------------------------------------- 4. security
class _Payload:
    """Unpickling this would create a file: a stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_payload_in_weights_refused(model, tmp_path):
    folder = tmp_path / "evil"
    shutil.copytree(model, folder)
    marker = tmp_path / "pwned"
    state = torch.load(folder / "weights.pt", weights_only=True)
    state["payload"] = _Payload(marker)
    torch.save(state, folder / "weights.pt")
    # as shipped: the checksum no longer matches
    with pytest.raises(ModelError, match="checksum mismatch"):
        Detector.from_folder(folder)
    # even with forged checksums, weights_only loading refuses the payload
    sums = "\n".join(f"{sha256_file(folder / n)}  {n}" for n in
                     ("config.json", "weights.pt", "thresholds.json", "metrics.json"))
    (folder / "checksums.sha256").write_text(sums + "\n")
    with pytest.raises(ModelError, match="cannot load weights"):
        read_model_folder(folder)
    assert not marker.exists()


_SOCKET_EVENTS: list[tuple] = []
_AUDITING = {"on": False}


def _audit(event: str, args) -> None:
    if _AUDITING["on"] and event.startswith("socket."):
        _SOCKET_EVENTS.append((event, args))


def test_detect_opens_no_socket(capsys, model, tmp_path):
    """At run time (audit hooks see every socket the interpreter creates, binds or
    connects), a detect run touches no network."""
    sys.addaudithook(_audit)  # hooks cannot be removed; this one only records when on
    good_tif(tmp_path / "a.tif")
    _SOCKET_EVENTS.clear()
    _AUDITING["on"] = True
    try:
        code, _, err = detect(capsys, model, tmp_path / "a.tif", "-o", tmp_path / "o",
                              "--overlay")
    finally:
        _AUDITING["on"] = False
    assert code == 0, err
    assert _SOCKET_EVENTS == []


ODD_NAMES = ["with space.tif", "quote's \"double\".tif", "semi;colon $(rm -rf x).tif",
             "ünï cødé µm 金.tif"]


def test_odd_file_names_end_to_end(model, tmp_path):
    """Spaces, quotes, semicolons and non-ASCII pass through the real command (a fresh
    process); temporary files stay in a private folder and are removed."""
    src = tmp_path / "in dir ; 'x'"
    src.mkdir()
    for i, name in enumerate(ODD_NAMES):
        good_tif(src / name, seed=i)
    (src / "bad; name.tif").write_text("oops")
    out = tmp_path / "out ü;'\""
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(private_tmp), OMP_NUM_THREADS="1",
               PYTHONIOENCODING="utf-8")
    proc = subprocess.run([sys.executable, "-m", "golddigger.cli.main", "detect", str(src),
                           "-o", str(out), "--model", str(model), "--overlay", "-q",
                           "--threads", "1"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "bad; name.tif" in proc.stderr and "1 of 5 image(s) failed" in proc.stderr
    for name in ODD_NAMES:
        stem = name[:-4]
        for suffix in (".csv", "_RoiSet.zip", "_overlay.png"):
            assert (out / f"{stem}{suffix}").is_file(), (stem, suffix)
    rows = list(csv.DictReader(open(out / "summary.csv", encoding="utf-8")))
    assert sorted(r["image"] for r in rows) == sorted(ODD_NAMES)
    assert list(private_tmp.iterdir()) == []
    _no_partial_files(out)


def test_atomic_writes_leave_nothing_on_failure(tmp_path):
    from golddigger.io.safe import atomic_path, atomic_write_text

    atomic_write_text(tmp_path / "r.csv", "old\n")
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "r.csv") as tmp:
        tmp.write_text("half a fi")
        raise KeyboardInterrupt
    assert files_in(tmp_path) == ["r.csv"]
    assert (tmp_path / "r.csv").read_text() == "old\n"
