"""The detection engine (`golddigger.batch`): regions, nothing lost or miscounted, one
schema for the CLI and the ImageJ paths.

Most tests use a stand-in detector that "finds" a fixed grid of particles (so counts and
densities are exact); the end-to-end ones run the real CLI with a tiny random model.
"""

from __future__ import annotations

import csv
import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from roifile import ROI_TYPE, ImagejRoi
from tests.conftest import REPO, disc_image

from golddigger import batch
from golddigger.batch import BatchOptions, BatchRun, detect_one, rebuild_summary, run_batch
from golddigger.cli.main import main
from golddigger.errors import GoldDiggerError, OptionError, OutputError
from golddigger.io import conventions
from golddigger.io.images import write_tiff
from golddigger.io.regions import Region
from golddigger.io.rois import write_roiset
from golddigger.particles import ParticleTable

PX = 0.5587


class GridDetector:
    """Finds a particle at every 10th pixel (x, y = 5, 15, ...), 6 nm and 12 nm in turn,
    keeping those inside the region: counts are known exactly."""

    classes = (6.0, 12.0, 18.0)
    folder = None
    thresholds = {"threshold": 0.5}
    precision = "float32"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0

    def report_classes(self, classes=None) -> list[float]:
        return list(self.classes)  # as Detector's for classes the model has

    def predict(self, image, pixel_size_nm=None, slices=None, region=None, threshold=None,
                classes=None, tile_size=-1, sizing=None, tta=1) -> ParticleTable:
        self.calls += 1
        time.sleep(self.delay)
        h, w = image.shape_yx
        yy, xx = np.mgrid[5:h:10, 5:w:10]
        x, y = xx.ravel().astype(float), yy.ravel().astype(float)
        d = np.where(np.arange(x.size) % 2 == 0, 6.0, 12.0)
        s = (slices or [0])[0]
        t = ParticleTable(x, y, d, np.full(x.size, 0.9), np.full(x.size, s))
        if region is not None:
            t = t[region.contains(t.x, t.y)]
        return t


@pytest.fixture(scope="module")
def model(tiny_model) -> Path:
    return tiny_model

def tif(path: Path, shape=(100, 120), seed=0) -> Path:
    write_tiff(path, disc_image(shape=shape, centres=((30.2, 40.7),), seed=seed), PX)
    return path


def polygon_roi(path: Path, points) -> Path:
    roi = ImagejRoi.frompoints(np.asarray(points, dtype=np.int32))
    roi.roitype = ROI_TYPE.POLYGON
    roi.tofile(path)
    return path


def particle_roiset(path: Path, n: int = 5) -> Path:
    t = ParticleTable(np.linspace(10, 50, n), np.linspace(10, 50, n), [6.0] * n)
    return write_roiset(path, t, PX)


def rows(out: Path) -> list[dict]:
    with open(out / "summary.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def per_image_totals(out: Path) -> dict[str, int]:
    return {p.stem: len(ParticleTable.from_csv(p)) for p in out.glob("*.csv")
            if p.name != "summary.csv"}


def assert_summary_matches_files(out: Path) -> None:
    """One summary row per particle file, with its count (rows are named by image, files
    by output stem, so the multisets of counts are compared)."""
    got = sorted(int(r["total"]) for r in rows(out))
    assert got == sorted(per_image_totals(out).values())


# ---------------------------------------------------------------------------- options
@pytest.mark.parametrize("kwargs, needle", [
    ({"threshold": 1.5}, "--threshold"), ({"threshold": float("nan")}, "--threshold"),
    ({"tta": 3}, "--tta"), ({"shape": "star"}, "shape"), ({"channel": -1}, "--channel"),
    ({"overwrite": True, "resume": True}, "contradict"), ({"tile_size": 40}, "--tile-size"),
    ({"classes": (6, -1)}, "--classes"), ({"pixel_size_nm": 0}, "--pixel-size")])
def test_options_are_validated(kwargs, needle):
    with pytest.raises(GoldDiggerError, match=needle.replace("-", r"\-")):
        BatchOptions(**kwargs)


# ---------------------------------------------------------------------------- regions
def test_region_file_wins_over_particle_roiset(tmp_path):
    """A folder laid out as the training docs say (particles in <stem>_RoiSet.zip, the
    membrane in <stem>_region.roi): the membrane is the region."""
    tif(tmp_path / "S1.tif")
    particle_roiset(tmp_path / "S1_RoiSet.zip")
    polygon_roi(tmp_path / "S1_region.roi", [(0, 0), (60, 0), (60, 50), (0, 50)])
    res = run_batch([tmp_path / "S1.tif"], GridDetector(), tmp_path / "o",
                    BatchOptions(roi=tmp_path))
    r = res.results[0]
    assert r.error is None and r.region_source == "S1_region.roi"
    assert r.area_um2[0] == pytest.approx(60 * 50 * PX * PX / 1e6)
    assert rows(tmp_path / "o")[0]["region"] == "S1_region.roi"


def test_particle_file_is_never_a_region(tmp_path):
    tif(tmp_path / "S1.tif")
    particle_roiset(tmp_path / "S1_RoiSet.zip")
    particle_roiset(tmp_path / "S1.zip")
    assert conventions.find_region_file(tmp_path / "S1.tif") is None
    res = run_batch([tmp_path / "S1.tif"], GridDetector(), tmp_path / "o",
                    BatchOptions(roi=tmp_path))
    assert "no region file for this image" in res.results[0].error
    assert "--whole-image-if-no-roi" in res.results[0].error
    res = run_batch([tmp_path / "S1.tif"], GridDetector(), tmp_path / "o2",
                    BatchOptions(roi=tmp_path, whole_image_if_no_roi=True))
    assert res.results[0].region_source == "image"
    assert res.results[0].area_um2[0] == pytest.approx(100 * 120 * PX * PX / 1e6)


def test_own_outputs_are_never_the_region(tmp_path):
    """Re-running into the folder that holds the images and regions: the previous run's
    <stem>_RoiSet.zip (particles) is not taken as the membrane."""
    tif(tmp_path / "a.tif")
    opts = BatchOptions(roi=tmp_path, whole_image_if_no_roi=True, overwrite=True)
    first = run_batch([tmp_path / "a.tif"], GridDetector(), tmp_path, opts)
    assert (tmp_path / "a_RoiSet.zip").is_file()
    second = run_batch([tmp_path / "a.tif"], GridDetector(), tmp_path, opts)
    assert second.results[0].region_source == "image"
    assert len(second.results[0].particles) == len(first.results[0].particles)


def test_roi_partly_outside_is_clipped(tmp_path):
    tif(tmp_path / "a.tif")  # 120 x 100 px
    roi = polygon_roi(tmp_path / "half.roi", [(-100, -100), (60, -100), (60, 200),
                                              (-100, 200)])
    res = run_batch([tmp_path / "a.tif"], GridDetector(), tmp_path / "o",
                    BatchOptions(roi=roi))
    r = res.results[0]
    # ImageJ vertices are pixel corners: x < 60 is columns 0..59; the image is 100 rows
    assert r.area_um2[0] == pytest.approx(60 * 100 * PX * PX / 1e6, rel=1e-6)
    row = rows(tmp_path / "o")[0]
    assert float(row["density_per_um2"]) == pytest.approx(len(r.particles) / r.area_um2[0],
                                                          rel=1e-5)


# ---------------------------------------------------------------------------- nothing lost
def _full_disk_on(monkeypatch, name_part: str):
    import pathlib

    real = pathlib.Path.write_bytes

    def full(self, data):
        if name_part in self.name:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full)
    return real


def test_full_disk_on_the_record_keeps_nothing_of_the_image(tmp_path, monkeypatch):
    for n in "ab":
        tif(tmp_path / f"{n}.tif")
    _full_disk_on(monkeypatch, ".b.json")
    res = run_batch([tmp_path / "a.tif", tmp_path / "b.tif"], GridDetector(), tmp_path / "o",
                    BatchOptions())
    err = res.results[1].error
    assert "nothing of this image was kept" in err
    out = tmp_path / "o"
    assert not (out / "b.csv").exists() and not (out / "b_RoiSet.zip").exists()
    assert_summary_matches_files(out)


def test_full_disk_on_the_summary_then_resume(tmp_path, monkeypatch):
    for n in "ab":
        tif(tmp_path / f"{n}.tif")
    paths = [tmp_path / "a.tif", tmp_path / "b.tif"]
    real = _full_disk_on(monkeypatch, ".summary.csv")
    run_batch(paths, GridDetector(), tmp_path / "o", BatchOptions())
    assert not (tmp_path / "o" / "summary.csv").exists()
    import pathlib

    monkeypatch.setattr(pathlib.Path, "write_bytes", real)
    res = run_batch(paths, GridDetector(), tmp_path / "o", BatchOptions(resume=True))
    assert all(r.skipped for r in res.results)
    assert len(rows(tmp_path / "o")) == 2
    assert_summary_matches_files(tmp_path / "o")


def test_summary_rebuilt_from_records_after_crash(tmp_path):
    """A summary out of step (deleted, or a row lost) is rebuilt from the records."""
    for n in "abc":
        tif(tmp_path / f"{n}.tif")
    out = tmp_path / "o"
    run_batch(sorted(tmp_path.glob("*.tif")), GridDetector(), out, BatchOptions())
    (out / "summary.csv").write_text((out / "summary.csv").read_text().splitlines()[0] + "\n")
    assert rebuild_summary(out) == out / "summary.csv"
    assert_summary_matches_files(out)
    assert len(rows(out)) == 3


def test_second_run_into_a_locked_folder_refuses(tmp_path):
    tif(tmp_path / "a.tif")
    out = tmp_path / "o"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = out / conventions.STATE_DIR / "lock"
        lock.parent.mkdir(parents=True)
        lock.write_text(f"{sleeper.pid} {os.uname().nodename} 2026-01-01 00:00:00\n")
        with pytest.raises(OutputError, match=f"in use by another Gold Digger run \\(pid "
                                              f"{sleeper.pid}"):
            run_batch([tmp_path / "a.tif"], GridDetector(), out, BatchOptions())
    finally:
        sleeper.kill()
        sleeper.wait()
    # its process is gone: a stale lock is taken over
    res = run_batch([tmp_path / "a.tif"], GridDetector(), out, BatchOptions())
    assert res.results[0].error is None
    assert not (out / conventions.STATE_DIR / "lock").exists()


def test_two_concurrent_runs(tmp_path, model):
    """Two real processes into one -o: one refuses with the lock message, the other
    finishes; the summary equals the per-image files."""
    for i in range(4):
        tif(tmp_path / f"im{i}.tif", seed=i)
    out = tmp_path / "o"
    script = _slow_cli(3.0)  # p1 runs >= 12 s, while p2 starts
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    cmd = [sys.executable, "-c", script, "detect", str(tmp_path), "-o", str(out), "--model",
           str(model), "-q", "--threads", "1"]
    p1 = subprocess.Popen(cmd, env=env, cwd=REPO, stderr=subprocess.PIPE, text=True)
    lock = out / conventions.STATE_DIR / "lock"
    t0 = time.time()
    while not lock.exists() and time.time() - t0 < 60:
        time.sleep(0.05)
    p2 = subprocess.run(cmd, env=env, cwd=REPO, stderr=subprocess.PIPE, text=True,
                        timeout=120)
    err1 = p1.communicate(timeout=120)[1]
    assert p1.returncode == 0, err1
    assert p2.returncode == 2, p2.stderr
    assert "in use by another Gold Digger run" in p2.stderr
    assert_summary_matches_files(out)
    assert len(rows(out)) == 4


def _slow_cli(delay: float) -> str:
    return textwrap.dedent(f"""
        import sys, time
        from golddigger.model.detector import Detector
        real = Detector.predict
        def slow(self, *a, **k):
            time.sleep({delay})
            return real(self, *a, **k)
        Detector.predict = slow
        from golddigger.cli.main import main
        sys.exit(main(sys.argv[1:]))
    """)


def test_sigkill_mid_batch_then_resume(tmp_path, model, capsys):
    for i in range(5):
        tif(tmp_path / f"im{i}.tif", seed=i)
    out = tmp_path / "o"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-c", _slow_cli(0.5), "detect", str(tmp_path),
                             "-o", str(out), "--model", str(model), "-q", "--threads", "1"],
                            env=env, cwd=REPO, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not (out / "im1.csv").exists() and time.time() - t0 < 90:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / "im1.csv").exists() and not (out / "im4.csv").exists()
    assert (out / conventions.STATE_DIR / "lock").exists()  # left behind by the kill
    code = main(["detect", str(tmp_path), "-o", str(out), "--model", str(model), "--resume",
                 "-q", "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    assert_summary_matches_files(out)
    assert len(rows(out)) == 5


def test_other_settings_refuse_to_mix(tmp_path):
    tif(tmp_path / "a.tif")
    tif(tmp_path / "b.tif")
    out = tmp_path / "o"
    run_batch([tmp_path / "a.tif"], GridDetector(), out, BatchOptions(threshold=0.5))
    with pytest.raises(OutputError, match="other settings .*threshold: 0.5 -> 0.3"):
        run_batch([tmp_path / "b.tif"], GridDetector(), out, BatchOptions(threshold=0.3))
    assert [r["image"] for r in rows(out)] == ["a.tif"]
    run_batch([tmp_path / "b.tif"], GridDetector(), out,
              BatchOptions(threshold=0.3, overwrite=True))
    # a.tif was made with the other threshold: not mixed into this summary
    assert [r["image"] for r in rows(out)] == ["b.tif"]


def test_image_named_summary_keeps_its_particles(tmp_path):
    tif(tmp_path / "summary.tif")
    tif(tmp_path / "x.tif")
    out = tmp_path / "o"
    res = run_batch(sorted(tmp_path.glob("*.tif")), GridDetector(), out, BatchOptions())
    assert all(r.error is None for r in res.results)
    assert (out / "summary.tif.csv").is_file()
    assert {r["image"] for r in rows(out)} == {"summary.tif", "x.tif"}
    assert len(ParticleTable.from_csv(out / "summary.tif.csv")) == len(
        res.results[0].particles)


def test_same_stem_inputs_do_not_collide(tmp_path):
    tif(tmp_path / "a.tif")
    write_tiff(tmp_path / "a.tiff", disc_image(shape=(60, 60)), PX)
    out = tmp_path / "o"
    res = run_batch([tmp_path / "a.tif", tmp_path / "a.tiff"], GridDetector(), out,
                    BatchOptions())
    assert [r.stem for r in res.results] == ["a.tif", "a.tiff"]
    assert_summary_matches_files(out)


def test_output_folder_is_the_input_folder_with_overlays(tmp_path):
    for n in "ab":
        tif(tmp_path / f"{n}.tif")
    from golddigger.cli._common import expand_images

    opts = BatchOptions(overlay=True)
    run_batch(expand_images([tmp_path]), GridDetector(), tmp_path, opts)
    assert (tmp_path / "a_overlay.png").is_file()
    det = GridDetector()
    res = run_batch(expand_images([tmp_path]), det, tmp_path, opts.replace(resume=True))
    assert [r.name for r in res.results] == ["a.tif", "b.tif"]
    assert det.calls == 0
    assert_summary_matches_files(tmp_path)


def test_non_utf8_file_name(tmp_path):
    name = os.fsdecode(b"gold\xff.tif")
    path = tmp_path / name
    tif(path)
    out = tmp_path / "o"
    res = run_batch([path], GridDetector(), out, BatchOptions(overlay=True))
    assert res.results[0].error is None
    assert (out / os.fsdecode(b"gold\xff.csv")).is_file()
    assert rows(out)[0]["image"] == "gold\ufffd.tif"


def test_non_utf8_file_name_through_the_cli(tmp_path, model, capsys):
    path = tmp_path / os.fsdecode(b"im\xff.tif")
    tif(path)
    code = main(["detect", str(tmp_path), "-o", str(tmp_path / "o"), "--model", str(model),
                 "--threads", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "im\ufffd.tif" in out
    assert len(rows(tmp_path / "o")) == 1


# ---------------------------------------------------------------------------- API
def test_cancel_and_progress(tmp_path):
    for n in "abcd":
        tif(tmp_path / f"{n}.tif")
    stop = threading.Event()
    seen = []

    def progress(i, n, path):
        seen.append((i, n, path.name if path else None))
        if i == 2:
            stop.set()

    res = run_batch(sorted(tmp_path.glob("*.tif")), GridDetector(), tmp_path / "o",
                    BatchOptions(), progress=progress, cancel=stop)
    assert res.cancelled and len(res.results) == 2
    assert seen[:3] == [(0, 4, "a.tif"), (1, 4, "b.tif"), (2, 4, "c.tif")]
    assert [r["image"] for r in rows(tmp_path / "o")] == ["a.tif", "b.tif"]
    res = run_batch(sorted(tmp_path.glob("*.tif")), GridDetector(), tmp_path / "o",
                    BatchOptions(resume=True))
    assert [r.skipped for r in res.results] == [True, True, False, False]
    assert len(rows(tmp_path / "o")) == 4


def test_detect_elsewhere_then_write_gives_the_same_files(tmp_path):
    """What a Dask client does (detect_one on workers, BatchRun.write here) writes the
    same files as run_batch."""
    for n in "ab":
        tif(tmp_path / f"{n}.tif", seed=ord(n))
    paths = sorted(tmp_path.glob("*.tif"))
    opts = BatchOptions(overlay=True)
    run_batch(paths, GridDetector(), tmp_path / "local", opts)
    det = GridDetector()
    with BatchRun(tmp_path / "dist", opts, det) as run:
        todo = [item for item in run.plan(paths) if item.result is None]
        results = [detect_one(item.path, det, opts, stem=item.stem,
                              region_exclude=run.own_outputs) for item in todo]
        for r in results:
            run.write(r)
    for name in ("a.csv", "b.csv", "a_overlay.png", "summary.csv"):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "dist" / name
                                                             ).read_bytes(), name


def test_imagej_folder_and_cli_share_the_summary_schema(tmp_path):
    from golddigger.imagej import backend

    tif(tmp_path / "a.tif")
    polygon_roi(tmp_path / "a_region.roi", [(0, 0), (60, 0), (60, 50), (0, 50)])
    det = GridDetector()
    run_batch([tmp_path / "a.tif"], det, tmp_path / "cli", BatchOptions(roi=tmp_path))
    r = backend.detect_file(tmp_path / "a.tif", tmp_path / "ij", det, {})
    assert r.error == ""
    backend.write_folder_summary(tmp_path / "ij")
    cli, ij = rows(tmp_path / "cli"), rows(tmp_path / "ij")
    assert cli == ij
    assert list(cli[0])[:6] == list(batch.SUMMARY_COLUMNS)
    assert (tmp_path / "ij" / "a_summary.csv").is_file()
    # the Results table carries the class as a number, like the CSVs
    assert {row["Class"] for row in r.detection.results()} <= {6.0, 12.0}


def test_summary_columns_keep_the_cli_names(tmp_path):
    tif(tmp_path / "a.tif")
    run_batch([tmp_path / "a.tif"], GridDetector(), tmp_path / "o", BatchOptions())
    header = (tmp_path / "o" / "summary.csv").read_text().splitlines()[0].split(",")
    assert header == ["image", "slice", "region", "pixel_size_nm", "area_um2", "total",
                      "n_6nm", "n_12nm", "n_18nm", "density_per_um2", "density_6nm_per_um2",
                      "density_12nm_per_um2", "density_18nm_per_um2"]


def test_one_csv_rule_for_floats_and_nan():
    from golddigger.io.csvtable import format_cell

    assert format_cell(0.1 + 0.2) == "0.3"
    assert format_cell(np.float32(1.5)) == "1.5"
    assert format_cell(float("nan")) == "NaN" and format_cell(np.inf) == "NaN"
    assert format_cell(np.int64(3)) == "3" and format_cell("a,b") == "a,b"


def test_option_error_class():
    assert issubclass(OptionError, GoldDiggerError) and issubclass(OptionError, ValueError)
    with pytest.raises(OptionError):
        Region  # noqa: B018 - keep the import used
        BatchOptions(tta=5)


def test_settings_of_a_run_that_kept_nothing_do_not_block(tmp_path):
    tif(tmp_path / "a.tif")
    out = tmp_path / "o"
    res = run_batch([tmp_path / "a.tif"], GridDetector(), out, BatchOptions(roi=tmp_path))
    assert res.results[0].error  # no region: nothing kept
    res = run_batch([tmp_path / "a.tif"], GridDetector(), out, BatchOptions())
    assert res.results[0].error is None
