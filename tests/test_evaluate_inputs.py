"""`golddigger evaluate` refuses a region that scores nothing, reads predictions in every
dialect the label reader reads, and counts a duplicated label once (with a warning)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from roifile import ROI_TYPE, ImagejRoi

from golddigger.cli.main import main
from golddigger.errors import RegionError
from golddigger.evaluate import check_region
from golddigger.io.annotations import read_particles
from golddigger.io.regions import Region
from golddigger.io.rois import write_roiset
from golddigger.particles import ParticleTable

PX = 0.5587
LABELS = "x,y,diameter_nm\n10.5,20,6\n40,50.25,12\n70,80,6\n"


def _evaluate(tmp_path, capsys, *extra) -> tuple[int, dict, str]:
    code = main(["evaluate", "--labels", str(tmp_path / "lab"), "--predictions",
                 str(tmp_path / "pred"), "--pixel-size", str(PX), "--json",
                 str(tmp_path / "s.json"), "--overwrite", "-q", *extra])
    err = capsys.readouterr().err
    scores = json.loads((tmp_path / "s.json").read_text()) if code == 0 else {}
    return code, scores, err


def _setup(tmp_path, preds: str, labels: str = LABELS):
    (tmp_path / "lab").mkdir(exist_ok=True)
    (tmp_path / "pred").mkdir(exist_ok=True)
    (tmp_path / "lab" / "a.csv").write_text(labels)
    (tmp_path / "pred" / "a.csv").write_text(preds)


@pytest.mark.parametrize("preds", [
    "x;y;diameter_nm;score\n10,5;20;6;0,9\n40;50,25;12;0,8\n70;80;6;0,7\n",
    "x\ty\tdiameter_nm\tscore\n10.5\t20\t6\t0.9\n40\t50.25\t12\t0.8\n70\t80\t6\t0.7\n",
    "x,y,diameter_nm,score\n10.5,20,6,0.9\n40,50.25,12,0.8\n70,80,6,0.7\n",
])
def test_prediction_dialects_are_all_read(tmp_path, capsys, preds):
    _setup(tmp_path, preds)
    code, scores, err = _evaluate(tmp_path, capsys)
    assert code == 0, err
    pooled = scores["pooled"]["all"]
    assert (pooled["tp"], pooled["fp"], pooled["fn"]) == (3, 0, 0)


def test_decimal_commas_with_comma_separator_are_refused(tmp_path):
    (tmp_path / "p.csv").write_text("x,y,diameter_nm\n10,5,20,6\n")
    with pytest.raises(Exception, match="decimal commas"):
        read_particles(tmp_path / "p.csv", PX)


def test_duplicate_label_rows_count_once(tmp_path, capsys, caplog):
    _setup(tmp_path, "x,y,diameter_nm\n10.5,20,6\n40,50.25,12\n70,80,6\n",
           LABELS + "70,80,6\n")
    with caplog.at_level(logging.WARNING, logger="golddigger"):
        code, scores, err = _evaluate(tmp_path, capsys)
    assert code == 0, err
    assert scores["pooled"]["all"]["fn"] == 0 and scores["pooled"]["all"]["tp"] == 3
    assert "1 duplicate row(s)" in caplog.text


def test_region_outside_the_particles_is_refused(tmp_path, capsys):
    _setup(tmp_path, "x,y,diameter_nm\n10.5,20,6\n")
    roi = ImagejRoi.frompoints(np.array([(500, 500), (600, 500), (600, 600)], np.int32))
    roi.roitype = ROI_TYPE.POLYGON
    roi.tofile(tmp_path / "far.roi")
    code, _, err = _evaluate(tmp_path, capsys, "--region", str(tmp_path / "far.roi"))
    assert code == 2 and "holds none of the 3 labelled and 1 predicted" in err


def test_empty_region_is_refused():
    t = ParticleTable([1.0], [1.0], [6.0])
    with pytest.raises(RegionError, match="no area"):
        check_region("a", t, t, Region.from_mask(np.zeros((5, 5), bool)))


def test_particle_roiset_is_not_an_evaluation_region(tmp_path, capsys):
    """A --region folder holding the annotators' <stem>_RoiSet.zip (particles) gives the
    labels' hull, not a 'region' made of the particles' ovals."""
    _setup(tmp_path, "x,y,diameter_nm\n10.5,20,6\n40,50.25,12\n70,80,6\n")
    (tmp_path / "reg").mkdir()
    write_roiset(tmp_path / "reg" / "a_RoiSet.zip", ParticleTable.from_csv(
        tmp_path / "lab" / "a.csv"), PX)
    code, scores, err = _evaluate(tmp_path, capsys, "--region", str(tmp_path / "reg"))
    assert code == 0, err
    assert scores["settings"]["region"]["a"] != "given"
    assert scores["pooled"]["all"]["tp"] == 3
