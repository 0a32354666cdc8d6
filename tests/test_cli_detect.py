"""`golddigger detect` / `demo` / `models` end to end with the shipped model on the bundled
synthetic example, scored against its ground truth."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest
from tests.conftest import REPO

from golddigger.cli.main import main
from golddigger.evaluate import evaluate_many
from golddigger.io.annotations import read_particles
from golddigger.io.images import read_image
from golddigger.io.rois import read_region
from golddigger.model.folder import DEFAULT_MODEL, available_models
from golddigger.particles import ParticleTable

EX = REPO / "examples"
pytestmark = pytest.mark.skipif(DEFAULT_MODEL not in available_models(),
                                reason="the shipped model is not in models/")


@pytest.fixture(scope="module")
def detected(tmp_path_factory):
    out = tmp_path_factory.mktemp("detect")
    code = main(["detect", str(EX / "synthetic_fril.tif"), "-o", str(out), "--overlay", "-q"])
    assert code == 0
    return out


def test_outputs_written(detected):
    names = sorted(p.name for p in detected.iterdir() if not p.name.startswith("."))
    assert names == ["summary.csv", "synthetic_fril.csv", "synthetic_fril_RoiSet.zip",
                     "synthetic_fril_overlay.png"]
    with open(detected / "synthetic_fril.csv") as fh:
        header = next(csv.reader(fh))
    assert header[:4] == ["x", "y", "diameter_nm", "score"]


def test_detections_match_ground_truth(detected):
    truth = ParticleTable.from_csv(EX / "synthetic_fril.csv")
    found = ParticleTable.from_csv(detected / "synthetic_fril.csv")
    image = read_image(EX / "synthetic_fril.tif")
    report = evaluate_many([("ex", truth, found, image.require_pixel_size(),
                             read_region(EX / "synthetic_fril_region.roi",
                                         image_shape=image.shape_yx))], classes=(6, 12, 18))
    pooled = report.to_dict()["pooled"]
    # a floor, not the benchmark: the synthetic example is harder than it looks (IMPs)
    assert pooled["all"]["f1"] >= 0.55, pooled["all"]
    assert pooled["all"]["loc_error_nm"] <= 1.5


def test_roiset_agrees_with_csv(detected):
    from_csv = ParticleTable.from_csv(detected / "synthetic_fril.csv")
    from_rois = read_particles(detected / "synthetic_fril_RoiSet.zip", pixel_size_nm=0.5587)
    assert len(from_rois) == len(from_csv)
    np.testing.assert_allclose(np.sort(from_rois.x), np.sort(from_csv.x), atol=0.6)


def test_summary_counts(detected):
    rows = list(csv.DictReader(open(detected / "summary.csv")))
    assert len(rows) == 1
    n = len(ParticleTable.from_csv(detected / "synthetic_fril.csv"))
    assert int(rows[0]["total"]) == n
    area = float(rows[0]["area_um2"])
    assert area == pytest.approx(1024 * 1024 * 0.5587**2 / 1e6, rel=1e-3)
    assert float(rows[0]["density_per_um2"]) == pytest.approx(n / area, rel=1e-2)


def test_no_silent_overwrite_and_resume(detected, capsys):
    before = hashlib.sha256((detected / "synthetic_fril.csv").read_bytes()).hexdigest()
    code = main(["detect", str(EX / "synthetic_fril.tif"), "-o", str(detected), "-q"])
    assert code == 1
    assert "already exists" in capsys.readouterr().err
    assert hashlib.sha256((detected / "synthetic_fril.csv").read_bytes()).hexdigest() == before
    assert main(["detect", str(EX / "synthetic_fril.tif"), "-o", str(detected), "--resume"]) == 0
    assert "skipped" in capsys.readouterr().out


def test_roi_restricts_detections(tmp_path):
    roi = EX / "synthetic_fril_region.roi"
    assert main(["detect", str(EX / "synthetic_fril.tif"), "-o", str(tmp_path), "--roi",
                 str(roi), "-q"]) == 0
    found = ParticleTable.from_csv(tmp_path / "synthetic_fril.csv")
    region = read_region(roi, image_shape=(1024, 1024))
    assert len(found) > 0 and region.contains(found.x, found.y).all()
    row = next(csv.DictReader(open(tmp_path / "summary.csv")))
    assert float(row["area_um2"]) == pytest.approx(region.area_px() * 0.5587**2 / 1e6, rel=1e-3)


def test_constant_image_finds_nothing(tmp_path):
    from golddigger.io.images import write_tiff

    write_tiff(tmp_path / "flat.tif", np.full((256, 256), 180, np.uint8), 0.5587)
    assert main(["detect", str(tmp_path / "flat.tif"), "-o", str(tmp_path / "o"), "-q"]) == 0
    assert len(ParticleTable.from_csv(tmp_path / "o" / "flat.csv")) == 0


def test_missing_pixel_size_is_one_line(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.full((64, 64), 100, np.uint8)).save(tmp_path / "a.jpg")
    assert main(["detect", str(tmp_path / "a.jpg"), "-o", str(tmp_path / "o"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "--pixel-size" in err and "Traceback" not in err


def test_demo_and_models(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "particles found" in out and "pooled" in out
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert DEFAULT_MODEL in listing
    assert "fril-gold-v4: gold of any size 4-30 nm" in listing
    assert "validated on 6-25 nm gold" in listing


def test_sizing_flag_changes_only_classes(detected, tmp_path):
    runs = {}
    for mode in ("maps", "image"):
        out = tmp_path / mode
        assert main(["detect", str(EX / "synthetic_fril.tif"), "-o", str(out), "-q",
                     "--sizing", mode, "--threshold", "0.4"]) == 0
        runs[mode] = ParticleTable.from_csv(out / "synthetic_fril.csv")
    a, b = runs["maps"], runs["image"]
    # with one threshold for all classes both modes find the same particles; "image"
    # measures their size class and refines their centres (within 1.5 nm) on the image
    assert len(a) == len(b) > 0
    gaps = np.hypot(*(b.xy[:, None, :] - a.xy[None, :, :]).transpose(2, 0, 1))
    shift_nm = gaps.min(axis=1) * 0.5587
    assert np.median(shift_nm) < 1.0 and shift_nm.max() < 3.2
    assert set(np.unique(b.diameter_nm)) <= {6.0, 12.0, 18.0}


def _score(out):
    truth = ParticleTable.from_csv(EX / "synthetic_fril.csv")
    found = ParticleTable.from_csv(out / "synthetic_fril.csv")
    image = read_image(EX / "synthetic_fril.tif")
    region = read_region(EX / "synthetic_fril_region.roi", image_shape=image.shape_yx)
    return found, evaluate_many([("ex", truth, found, image.require_pixel_size(), region)],
                                classes=(6, 12, 18)).to_dict()["pooled"]["all"]


def test_precision_flag_float32_and_bfloat16_agree(tmp_path):
    """bfloat16 (the default where the CPU does it natively) finds what float32 finds:
    the same particles bar a borderline one or two, scores within a few hundredths."""
    runs = {}
    for precision in ("float32", "bfloat16"):
        out = tmp_path / precision
        assert main(["detect", str(EX / "synthetic_fril.tif"), "-o", str(out), "-q",
                     "--precision", precision]) == 0
        runs[precision] = _score(out)
    (a, fa), (b, fb) = runs["float32"], runs["bfloat16"]
    assert abs(len(a) - len(b)) <= 2 and abs(fa["f1"] - fb["f1"]) <= 0.02
    gaps = np.hypot(*(b.xy[:, None, :] - a.xy[None, :, :]).transpose(2, 0, 1))
    near = gaps.min(axis=1) < 0.5
    assert near.mean() > 0.95
    j = gaps.argmin(axis=1)[near]
    assert np.median(np.abs(b.score[near] - a.score[j])) < 0.01


def test_tta_flag_runs_and_scores(tmp_path):
    out = tmp_path / "tta"
    assert main(["detect", str(EX / "synthetic_fril.tif"), "-o", str(out), "-q",
                 "--tta", "4"]) == 0
    _, pooled = _score(out)
    assert pooled["f1"] >= 0.55 and pooled["loc_error_nm"] <= 1.5
    with pytest.raises(SystemExit):
        main(["detect", str(EX / "synthetic_fril.tif"), "-o", str(out), "--tta", "3"])


def test_bad_precision_is_refused():
    from golddigger.errors import GoldDiggerError
    from golddigger.model.detector import Detector

    with pytest.raises(GoldDiggerError, match="precision"):
        Detector.from_pretrained(precision="float16")
