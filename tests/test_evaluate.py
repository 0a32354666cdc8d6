"""The evaluation protocol on hand-checked cases, and the ``golddigger evaluate`` command."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from golddigger.cli.main import main
from golddigger.evaluate import (
    EvalPair,
    Report,
    evaluate_image,
    evaluate_many,
    match_points,
)
from golddigger.io.images import write_tiff
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

PX = 0.5  # nm per pixel in these tests


def grid_labels(n_side: int = 4, spacing_px: float = 60.0, classes=(6.0, 12.0)
                ) -> ParticleTable:
    """Labels on a square grid (30 nm apart), classes alternating."""
    xs, ys = np.meshgrid(np.arange(n_side) * spacing_px + 100, np.arange(n_side) * spacing_px
                         + 100)
    d = np.array([classes[i % len(classes)] for i in range(n_side * n_side)])
    return ParticleTable(xs.ravel(), ys.ravel(), d)


def moved(t: ParticleTable, dx_px, dy_px) -> ParticleTable:
    return ParticleTable(t.x + dx_px, t.y + dy_px, t.diameter_nm.copy(), None, t.slice.copy())


# ---------------------------------------------------------------------------- hand cases
def test_perfect_predictions_score_one():
    labels = grid_labels()
    s = evaluate_image(labels, labels, PX)
    for key in ("6", "12", "all"):
        sc = s.scores[key]
        assert (sc.tp, sc.fp, sc.fn) == ((8, 0, 0) if key != "all" else (16, 0, 0))
        assert sc.precision == sc.recall == sc.f1 == 1.0
        assert sc.loc_error_nm == 0.0
    assert s.all.class_accuracy == 1.0
    assert (s.prediction_matched >= 0).all() and (s.label_matched >= 0).all()


def test_jitter_of_2nm_is_still_matched_with_2nm_error():
    labels = grid_labels()
    rng = np.random.default_rng(0)
    angle = rng.uniform(0, 2 * np.pi, len(labels))
    r_px = 2.0 / PX
    preds = moved(labels, r_px * np.cos(angle), r_px * np.sin(angle))
    s = evaluate_image(labels, preds, PX)
    assert s.all.tp == 16 and s.all.f1 == 1.0
    assert s.scores["6"].f1 == s.scores["12"].f1 == 1.0
    assert s.all.loc_error_nm == pytest.approx(2.0, abs=1e-9)
    assert s.all.loc_error_median_nm == pytest.approx(2.0, abs=1e-9)


def test_shift_of_10nm_is_all_false_positives_and_negatives():
    labels = grid_labels()
    preds = moved(labels, 10.0 / PX, 0.0)
    s = evaluate_image(labels, preds, PX)
    assert (s.all.tp, s.all.fp, s.all.fn) == (0, 16, 16)
    assert s.all.f1 == 0.0 and s.all.loc_error_nm is None and s.all.class_accuracy is None


def test_radius_is_inclusive_and_in_nm():
    labels = ParticleTable([100], [100], [6])
    at_5nm = evaluate_image(labels, moved(labels, 5.0 / PX, 0), PX, radius_nm=5.0)
    beyond = evaluate_image(labels, moved(labels, 5.1 / PX, 0), PX, radius_nm=5.0)
    assert at_5nm.all.tp == 1 and beyond.all.tp == 0


def test_empty_predictions():
    labels = grid_labels()
    s = evaluate_image(labels, ParticleTable.empty(), PX)
    assert (s.all.tp, s.all.fp, s.all.fn) == (0, 0, 16)
    assert (s.all.precision, s.all.recall, s.all.f1) == (1.0, 0.0, 0.0)
    assert s.scores["6"].fn == 8


def test_empty_labels_every_prediction_is_false_positive():
    preds = grid_labels()
    s = evaluate_image(ParticleTable.empty(), preds, PX)
    assert s.region is None  # whole image
    assert (s.all.tp, s.all.fp, s.all.fn) == (0, 16, 0)
    assert (s.all.precision, s.all.recall, s.all.f1) == (0.0, 1.0, 0.0)
    assert set(s.scores) == {"6", "12", "all"}  # classes from the predictions


def test_nothing_at_all_scores_one():
    s = evaluate_image(ParticleTable.empty(), ParticleTable.empty(), PX, classes=[6, 12])
    for sc in s.scores.values():
        assert (sc.tp, sc.fp, sc.fn) == (0, 0, 0)
        assert sc.precision == sc.recall == sc.f1 == 1.0


def test_wrong_class_is_a_class_error_but_agnostic_hit():
    labels = ParticleTable([100, 200], [100, 100], [6, 12])
    preds = ParticleTable([101, 200], [100, 100], [12, 12])  # first: 12 where 6 labelled
    s = evaluate_image(labels, preds, PX)
    assert (s.scores["6"].tp, s.scores["6"].fp, s.scores["6"].fn) == (0, 0, 1)
    assert (s.scores["12"].tp, s.scores["12"].fp, s.scores["12"].fn) == (1, 1, 0)
    assert (s.all.tp, s.all.fp, s.all.fn) == (2, 0, 0)
    assert s.all.class_accuracy == 0.5


def test_prediction_class_is_the_nearest_labelled_class():
    labels = ParticleTable([100, 200], [100, 100], [6, 12])
    preds = ParticleTable([100, 200], [100, 100], [7.5, 18])  # 7.5 -> 6, 18 -> 12
    s = evaluate_image(labels, preds, PX)
    assert s.scores["6"].tp == 1 and s.scores["12"].tp == 1
    assert list(s.predictions.diameter_nm) == [6.0, 12.0]
    # with the classes given, 18 nm stays its own class: a 12 nm miss and an 18 nm FP
    s = evaluate_image(labels, preds, PX, classes=[6, 12, 18])
    assert s.scores["12"].fn == 1 and s.scores["18"].fp == 1


def test_predictions_outside_the_hull_region_are_ignored():
    labels = grid_labels()
    far = ParticleTable([100 + 180 + 30 / PX + 5, 5], [100, 5], [6, 6])  # > 30 nm out
    near = ParticleTable([100 + 180 + 20 / PX], [100], [6])  # 20 nm outside the hull
    s = evaluate_image(labels, ParticleTable.concat([labels, far]), PX)
    assert (s.all.tp, s.all.fp) == (16, 0)
    s = evaluate_image(labels, ParticleTable.concat([labels, near]), PX)
    assert (s.all.tp, s.all.fp) == (16, 1)
    s = evaluate_image(labels, ParticleTable.concat([labels, near]), PX, buffer_nm=10)
    assert (s.all.tp, s.all.fp) == (16, 0)


def test_given_region_ignores_labels_and_predictions_outside():
    labels = grid_labels()  # x, y in 100..280
    region = Region.from_polygon([(90, 90), (190, 90), (190, 290), (90, 290)])  # x <= 190
    preds = ParticleTable.concat([labels[labels.x < 150],
                                  ParticleTable([250, 150], [150, 150], [6, 6])])
    s = evaluate_image(labels, preds, PX, region=region)
    # inside: 8 labels (x = 100, 160), predictions at x = 100 (4 hits) and x = 150 (1 FP)
    assert (s.all.tp, s.all.fp, s.all.fn) == (4, 1, 4)
    assert len(s.labels) == 8


def test_hungarian_beats_greedy():
    # labels at x = 0 and 6 nm; predictions at 3.5 nm and 10 nm (radius 5 nm).
    # Greedy nearest-first pairs 3.5 with 6 (2.5 nm) and leaves 10 unmatched;
    # the optimal matching pairs 3.5 -> 0 and 10 -> 6: two hits.
    labels = ParticleTable(np.array([0.0, 6.0]) / PX + 100, [100, 100], [6, 6])
    preds = ParticleTable(np.array([3.5, 10.0]) / PX + 100, [100, 100], [6, 6])
    s = evaluate_image(labels, preds, PX)
    assert (s.all.tp, s.all.fp, s.all.fn) == (2, 0, 0)
    assert s.all.loc_error_nm == pytest.approx((3.5 + 4.0) / 2)


def test_among_maximal_matchings_the_closest_wins():
    a = np.array([[0.0, 0.0], [1.0, 0.0]])
    b = np.array([[0.9, 0.0], [0.1, 0.0]])
    ia, ib, d = match_points(a, b, 5.0)
    assert list(ia) == [0, 1] and list(ib) == [1, 0]
    assert d == pytest.approx([0.1, 0.1])


def test_slices_are_kept_apart():
    labels = ParticleTable([100, 100], [100, 100], [6, 6], slice=[0, 1])
    preds = ParticleTable([100, 100], [100, 100], [6, 6], slice=[1, 2])
    s = evaluate_image(labels, preds, PX)
    assert (s.all.tp, s.all.fp, s.all.fn) == (1, 1, 1)
    assert s.prediction_matched.tolist() == [1, -1]


def test_matching_equals_dense_hungarian_and_is_fast():
    rng = np.random.default_rng(1)
    for _ in range(20):  # small dense cases: same number of matches and total distance
        a = rng.uniform(0, 20, (12, 2))
        b = rng.uniform(0, 20, (10, 2))
        ia, ib, d = match_points(a, b, 4.0)
        dist = np.hypot(*(a[:, None] - b[None]).transpose(2, 0, 1))
        cost = np.where(dist <= 4.0, dist, 1e6)
        r, c = linear_sum_assignment(cost)
        ok = cost[r, c] < 1e6
        assert ia.size == ok.sum()
        assert d.sum() == pytest.approx(cost[r, c][ok].sum())
        assert np.allclose(d, dist[ia, ib]) and (d <= 4.0).all()
        assert len(set(ia)) == ia.size and len(set(ib)) == ib.size
    # thousands of points
    a = rng.uniform(0, 4000, (5000, 2))
    b = a + rng.normal(0, 1.0, a.shape)
    t = time.perf_counter()
    ia, _, _ = match_points(a, b, 5.0)
    assert time.perf_counter() - t < 5.0
    assert ia.size >= 4990


def test_invalid_settings_raise():
    labels = grid_labels()
    with pytest.raises(ValueError, match="radius"):
        evaluate_image(labels, labels, PX, radius_nm=0)
    with pytest.raises(ValueError, match="buffer"):
        evaluate_image(labels, labels, PX, buffer_nm=-1)
    with pytest.raises(ValueError, match="pixel size"):
        evaluate_image(labels, labels, 0.0)


# ---------------------------------------------------------------------------- pooling, JSON
def test_pooled_scores_sum_over_images_and_json_shape():
    labels = grid_labels()
    only6 = labels[labels.diameter_nm == 6]
    report = evaluate_many([
        ("a", labels, labels, PX),
        EvalPair("b", only6, moved(only6, 10 / PX, 0), PX),
    ])
    d = json.loads(report.to_json())
    assert set(d) == {"pooled", "images", "settings"}
    assert list(d["pooled"]) == ["6", "12", "all"]
    assert list(d["images"]) == ["a", "b"]
    for img in d["images"].values():
        assert list(img) == ["6", "12", "all"]  # image b has no 12 nm labels: still a key
    needed = {"tp", "fp", "fn", "precision", "recall", "f1", "loc_error_nm"}
    for block in [d["pooled"], *d["images"].values()]:
        for key, sc in block.items():
            assert needed <= set(sc)
            assert ("class_accuracy" in sc) == (key == "all")
    p6 = d["pooled"]["6"]
    assert (p6["tp"], p6["fp"], p6["fn"]) == (8, 8, 8)  # micro: 8+0 / 0+8 / 0+8
    assert p6["f1"] == pytest.approx(0.5)
    assert d["images"]["b"]["12"]["f1"] == 1.0 and d["images"]["b"]["12"]["tp"] == 0
    assert d["pooled"]["all"]["tp"] == 16 and d["pooled"]["all"]["class_accuracy"] == 1.0
    assert d["settings"]["radius_nm"] == 5.0 and d["settings"]["buffer_nm"] == 30.0
    assert d["settings"]["classes"] == [6.0, 12.0]
    # the table names every image and the pooled rows
    table = report.to_table()
    starts = [line.split()[0] for line in table.splitlines() if line.strip()]
    assert starts.count("pooled") == 3 and starts.count("a") == 3 and starts.count("b") == 3
    assert "0.500" in table


def test_report_rejects_duplicate_names():
    labels = grid_labels()
    with pytest.raises(ValueError, match="unique"):
        evaluate_many([("a", labels, labels, PX), ("a", labels, labels, PX)])
    assert isinstance(evaluate_many({"x": (labels, labels, PX)}), Report)


# ---------------------------------------------------------------------------- CLI
def _write_case(tmp_path):
    labels_dir = tmp_path / "labels"
    preds_dir = tmp_path / "preds"
    labels_dir.mkdir()
    preds_dir.mkdir()
    labels = grid_labels()
    labels.to_csv(labels_dir / "img1.csv")
    moved(labels, 1.0, 0).to_csv(preds_dir / "img1.csv")
    labels.to_csv(labels_dir / "img2.csv")  # no predictions: all missed
    labels.to_csv(preds_dir / "img3.csv")  # no labels: skipped
    (preds_dir / "summary.csv").write_text("image,slice,count\nimg1.png,1,16\n")
    return labels_dir, preds_dir


def test_cli_end_to_end(tmp_path, capsys):
    labels_dir, preds_dir = _write_case(tmp_path)
    out = tmp_path / "scores.json"
    rc = main(["evaluate", "--labels", str(labels_dir), "--predictions", str(preds_dir),
               "--pixel-size", str(PX), "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr()
    assert "img1" in printed.out and "pooled" in printed.out
    assert "img3" in printed.err and "img2" in printed.err  # warned
    d = json.loads(out.read_text())
    assert list(d["images"]) == ["img1", "img2"]
    assert d["images"]["img1"]["all"]["f1"] == 1.0
    assert d["images"]["img1"]["all"]["loc_error_nm"] == pytest.approx(1.0 * PX)
    assert d["images"]["img2"]["all"]["fn"] == 16
    assert d["pooled"]["all"]["tp"] == 16 and d["pooled"]["all"]["fn"] == 16
    # no silent overwrite
    rc = main(["evaluate", "--labels", str(labels_dir), "--predictions", str(preds_dir),
               "--pixel-size", str(PX), "--json", str(out)])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
    rc = main(["evaluate", "--labels", str(labels_dir), "--predictions", str(preds_dir),
               "--pixel-size", str(PX), "--json", str(out), "--overwrite", "-q",
               "--radius-nm", "0.4"])
    assert rc == 0 and capsys.readouterr().out == ""
    assert json.loads(out.read_text())["pooled"]["all"]["tp"] == 0  # 0.5 nm off > 0.4


def test_cli_pixel_size_from_images_or_a_clear_error(tmp_path, capsys):
    labels_dir, preds_dir = _write_case(tmp_path)
    rc = main(["evaluate", "--labels", str(labels_dir), "--predictions", str(preds_dir)])
    assert rc == 2
    assert "--pixel-size" in capsys.readouterr().err
    images = tmp_path / "images"
    images.mkdir()
    for stem in ("img1", "img2"):
        write_tiff(images / f"{stem}.tif", np.zeros((400, 400), np.uint8), PX)
    out = tmp_path / "s.json"
    rc = main(["evaluate", "--labels", str(labels_dir), "--predictions", str(preds_dir),
               "--images", str(images), "--json", str(out), "-q"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["settings"]["pixel_size_nm"]["img1"] == pytest.approx(PX)
    assert d["images"]["img1"]["all"]["tp"] == 16


def test_cli_region_file(tmp_path):
    from golddigger.io.rois import region_to_imagej_roi

    labels_dir, preds_dir = _write_case(tmp_path)
    region = Region.from_polygon([(90, 90), (190, 90), (190, 290), (90, 290)])
    roi = tmp_path / "region.roi"
    region_to_imagej_roi(region).tofile(str(roi))
    out = tmp_path / "s.json"
    rc = main(["evaluate", "--labels", str(labels_dir), "--predictions", str(preds_dir),
               "--pixel-size", str(PX), "--region", str(roi), "--json", str(out), "-q"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["images"]["img1"]["all"]["tp"] == 8  # only the two left columns count
    assert d["settings"]["region"]["img1"] == "given"
