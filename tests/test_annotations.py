"""Annotation reading (golddigger.io.annotations) on hand-made files and the real set."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
import roifile
from roifile import ROI_OPTIONS, ROI_TYPE, ImagejRoi

from golddigger.errors import AnnotationError
from golddigger.io.annotations import (
    find_annotations,
    read_annotation_set,
    read_particles,
    size_from_name,
)
from golddigger.particles import ParticleTable

PX = 0.5587


def _points(xy, name="", position=0) -> ImagejRoi:
    roi = ImagejRoi.frompoints(np.asarray(xy, dtype=float), name=name or "pts")
    roi.roitype = ROI_TYPE.POINT
    roi.options = ROI_OPTIONS.SUB_PIXEL_RESOLUTION
    roi.version = 228
    if position:
        roi.position = position
    return roi


def _oval(left, top, w, h, name="") -> ImagejRoi:
    return ImagejRoi(roitype=ROI_TYPE.OVAL, version=228, left=left, top=top, right=left + w,
                     bottom=top + h, name=name or f"oval-{left}-{top}")


def _results_csv(path: Path, xy_um, header=" ,X,Y") -> Path:
    lines = [header] + [f"{i + 1},{x:.3f},{y:.3f}" for i, (x, y) in enumerate(xy_um)]
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------- class names
@pytest.mark.parametrize("text, size", [
    ("6nm", 6.0), ("12 nm", 12.0), ("gold_12", 12.0), ("gold-12nm-0007", 12.0),
    ("Results 12nm XY in microns ROI", 12.0), ("Results XY in microns 6nm ROI", 6.0),
    ("S1_18-nm", 18.0), ("10.5nm", 10.5), ("Gold12", 12.0),
    ("1402-0828", None), ("S1", None), ("6nm and 12nm", None), ("", None), ("5000nm", None),
])
def test_size_from_name(text, size):
    assert size_from_name(text) == size


# ---------------------------------------------------------------------------- one file
def test_particle_csv_and_explicit_diameter(tmp_path):
    p = ParticleTable([1.5, 20.0], [3.25, 40.0], [6.0, 12.0], [0.9, 0.4], [0, 2])
    p.to_csv(tmp_path / "a.csv")
    assert read_particles(tmp_path / "a.csv") == ParticleTable(p.x, p.y, p.diameter_nm,
                                                               p.score, p.slice)
    forced = read_particles(tmp_path / "a.csv", diameter_nm=18)
    assert forced.diameter_nm.tolist() == [18.0, 18.0]


def test_roi_zip_points_multipoints_and_ovals(tmp_path):
    rois = [
        _points([[10, 20], [30.5, 40.25], [50, 60]], name="6nm", position=3),
        _points([[100, 200]], name="12 nm"),
        _oval(10, 20, 11, 11, name="gold_18"),  # centre pixel (15, 25)
    ]
    roifile.roiwrite(tmp_path / "set.zip", rois)
    t = read_particles(tmp_path / "set.zip")
    assert t.x.tolist() == [10.0, 30.5, 50.0, 100.0, 15.0]
    assert t.y.tolist() == [20.0, 40.25, 60.0, 200.0, 25.0]
    assert t.diameter_nm.tolist() == [6.0, 6.0, 6.0, 12.0, 18.0]
    assert t.slice.tolist() == [2, 2, 2, 0, 0]
    assert t.score.tolist() == [1.0] * 5


def test_integer_point_rois_and_counter_positions(tmp_path):
    roi = ImagejRoi.frompoints(np.array([[5, 6], [7, 9], [11, 2]]), name="pts")  # integer
    roi.roitype = ROI_TYPE.POINT
    roi.counters = np.zeros(3, np.uint8)
    roi.counter_positions = np.array([1, 2, 0], np.uint32)  # 1-based, 0 = the ROI's own
    roi.position = 4
    roi.tofile(tmp_path / "spots 6nm.roi")
    t = read_particles(tmp_path / "spots 6nm.roi")  # class from the file name
    assert t.xy.tolist() == [[5, 6], [7, 9], [11, 2]]
    assert t.slice.tolist() == [0, 1, 3]
    assert t.diameter_nm.tolist() == [6.0] * 3


def test_class_inference_order(tmp_path):
    # ROI name beats the file name; the explicit argument beats both
    roifile.roiwrite(tmp_path / "all 6nm.zip", [_points([[1, 2]], "12nm"), _points([[3, 4]])])
    assert read_particles(tmp_path / "all 6nm.zip").diameter_nm.tolist() == [12.0, 6.0]
    assert read_particles(tmp_path / "all 6nm.zip", diameter_nm=18).classes == [18.0]
    # the diameter_nm property and Gold Digger's groups
    a, b = _points([[1, 2]], "a"), _points([[3, 4]], "b")
    a.properties = {"diameter_nm": 10}
    b.group = 3
    roifile.roiwrite(tmp_path / "props.zip", [a, b])
    assert read_particles(tmp_path / "props.zip").diameter_nm.tolist() == [10.0, 18.0]
    # an oval's size, with the pixel size: 21 px * 0.5587 = 11.7 nm -> 12 nm
    roifile.roiwrite(tmp_path / "ovals.zip", [_oval(100, 100, 21, 21), _oval(0, 0, 11, 11)])
    assert read_particles(tmp_path / "ovals.zip", PX).diameter_nm.tolist() == [12.0, 6.0]
    with pytest.raises(AnnotationError, match="size class of 2 ROI.*pixel size"):
        read_particles(tmp_path / "ovals.zip")


def test_non_particle_rois_are_skipped(tmp_path, caplog):
    poly = ImagejRoi.frompoints(np.array([[0, 0], [50, 0], [50, 50]]), name="membrane")
    poly.roitype = ROI_TYPE.POLYGON
    roifile.roiwrite(tmp_path / "mixed 6nm.zip", [poly, _points([[5, 5]])])
    with caplog.at_level(logging.WARNING):
        t = read_particles(tmp_path / "mixed 6nm.zip")
    assert len(t) == 1 and "1 polygon" in caplog.text
    roifile.roiwrite(tmp_path / "outline 6nm.zip", [poly])
    with pytest.raises(AnnotationError, match="no point or oval ROIs"):
        read_particles(tmp_path / "outline 6nm.zip")


def test_results_table_in_microns(tmp_path):
    xy_px = np.array([[828.0, 1402.0], [696.0, 1406.0]])
    f = _results_csv(tmp_path / "Results 12nm XY in microns.csv", xy_px * PX / 1000)
    t = read_particles(f, pixel_size_nm=PX)
    np.testing.assert_allclose(t.xy, xy_px, atol=1.0)  # 3 decimals of a micron: +-0.9 px
    assert t.diameter_nm.tolist() == [12.0, 12.0]
    with pytest.raises(AnnotationError, match="microns.*pixel size"):
        read_particles(f)
    # small fractional values without a unit in the names are taken as microns too
    g = _results_csv(tmp_path / "table 6nm.csv", xy_px * PX / 1000)
    with pytest.raises(AnnotationError, match="microns"):
        read_particles(g)
    assert read_particles(g, units="px").x.tolist() == [0.463, 0.389]


def test_results_table_in_pixels_xm_area_tabs_and_slices(tmp_path):
    (tmp_path / "pix 6nm.csv").write_text(" ,X,Y\n1,100,200\n2,300.5,400\n")
    assert read_particles(tmp_path / "pix 6nm.csv").xy.tolist() == [[100, 200], [300.5, 400]]
    (tmp_path / "cm 12nm.csv").write_text(" ,Area,XM,YM\n1,90,100.5,200.5\n")
    assert read_particles(tmp_path / "cm 12nm.csv").xy.tolist() == [[100.0, 200.0]]
    (tmp_path / "stack 6nm.xls").write_text(" \tX\tY\tSlice\n1\t10\t20\t1\n2\t30\t40\t3\n")
    t = read_particles(tmp_path / "stack 6nm.xls")
    assert t.xy.tolist() == [[10, 20], [30, 40]] and t.slice.tolist() == [0, 2]
    (tmp_path / "nm.csv").write_text("X,Y\n558.7,1117.4\n")
    t = read_particles(tmp_path / "nm.csv", PX, diameter_nm=6, units="nm")
    np.testing.assert_allclose(t.xy, [[1000, 2000]])


def test_table_errors(tmp_path):
    (tmp_path / "bad 6nm.csv").write_text(" ,X,Y\n1,0.1,0.2\n2,abc,0.3\n")
    with pytest.raises(AnnotationError, match=r"bad 6nm.csv, line 3: column 'X' is 'abc'"):
        read_particles(tmp_path / "bad 6nm.csv", PX)
    (tmp_path / "cols 6nm.csv").write_text("a,b\n1,2\n")
    with pytest.raises(AnnotationError, match="no coordinate columns.*found: a,b"):
        read_particles(tmp_path / "cols 6nm.csv")
    (tmp_path / "ours.csv").write_text("x,y,diameter_nm\n1,2,oops\n")
    with pytest.raises(AnnotationError, match="ours.csv, line 2"):
        read_particles(tmp_path / "ours.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(AnnotationError, match="empty"):
        read_particles(tmp_path / "empty.csv")
    (tmp_path / "noclass.csv").write_text("X,Y\n100,200\n")
    with pytest.raises(AnnotationError, match="size class"):
        read_particles(tmp_path / "noclass.csv")
    (tmp_path / "binary.xls").write_bytes(b"\xd0\xcf\x11\xe0\x00\x00binary")
    with pytest.raises(AnnotationError, match="not a text table"):
        read_particles(tmp_path / "binary.xls")
    with pytest.raises(AnnotationError, match="no such"):
        read_particles(tmp_path / "missing.csv")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(AnnotationError, match="unknown annotation format"):
        read_particles(tmp_path / "x.json")


def test_roi_file_errors(tmp_path):
    (tmp_path / "corrupt.zip").write_bytes(b"this is not a zip at all")
    with pytest.raises(AnnotationError, match="corrupt.zip: not a readable zip"):
        read_particles(tmp_path / "corrupt.zip")
    with zipfile.ZipFile(tmp_path / "foreign.zip", "w") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(AnnotationError, match="no .roi files, only notes.txt"):
        read_particles(tmp_path / "foreign.zip")
    with zipfile.ZipFile(tmp_path / "badentry.zip", "w") as zf:
        zf.writestr("a.roi", b"x" * 80)
    with pytest.raises(AnnotationError, match="entry 'a.roi': not an ImageJ ROI"):
        read_particles(tmp_path / "badentry.zip")
    zipfile.ZipFile(tmp_path / "empty.zip", "w").close()
    with pytest.raises(AnnotationError, match="holds no ROIs"):
        read_particles(tmp_path / "empty.zip")
    (tmp_path / "empty.roi").write_bytes(b"")
    with pytest.raises(AnnotationError, match="empty"):
        read_particles(tmp_path / "empty.roi")
    # a truncated zip (half of a real one)
    roifile.roiwrite(tmp_path / "good 6nm.zip", [_points([[1, 2]], f"p{i}") for i in range(20)])
    data = (tmp_path / "good 6nm.zip").read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(AnnotationError, match="cut.zip"):
        read_particles(tmp_path / "cut.zip")


# ---------------------------------------------------------------------------- sets of files
def _annotator_folder(folder: Path, extra_results: bool = False) -> Path:
    folder.mkdir()
    six = np.array([[100.0, 200.0], [150.0, 260.0], [400.0, 80.0]])
    twelve = np.array([[300.0, 300.0]])
    roifile.roiwrite(folder / "Results 6nm XY in microns ROI.zip",
                     [_points([p], f"{int(p[1]):04d}-{int(p[0]):04d}") for p in six])
    _points(twelve, "Results 12nm XY in microns ROI").tofile(
        folder / "Results 12nm XY in microns ROI.roi")
    six_res = np.vstack([six, [[600.0, 600.0]]]) if extra_results else six
    _results_csv(folder / "Results 6nm XY in microns.csv", six_res * PX / 1000)
    _results_csv(folder / "Results XY in microns 12nm.csv", twelve * PX / 1000)
    return folder


def test_annotation_set_prefers_rois_and_does_not_double_count(tmp_path):
    folder = _annotator_folder(tmp_path / "S1")
    for px in (None, PX):
        t = read_annotation_set(folder, pixel_size_nm=px)
        assert len(t) == 4 and len(t.of_class(6)) == 3 and len(t.of_class(12)) == 1
        assert t.xy.tolist() == [[300, 300], [100, 200], [150, 260], [400, 80]]
    # a list of files works the same; a Results-only particle is kept
    folder2 = _annotator_folder(tmp_path / "S2", extra_results=True)
    t = read_annotation_set(sorted(folder2.iterdir()), pixel_size_nm=PX)
    assert len(t) == 5
    np.testing.assert_allclose(t.xy[-1], [600, 600], atol=1)
    with pytest.raises(AnnotationError, match="pixel size"):
        read_annotation_set(folder2)  # 4 vs 3 particles: cannot be told apart without it
    with pytest.raises(AnnotationError, match="no such"):
        read_annotation_set(tmp_path / "nowhere")


def test_find_annotations_convention(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    img = images / "a.tif"
    img.write_bytes(b"")
    assert find_annotations(img) == []
    ParticleTable([1], [2], [6]).to_csv(images / "a.csv")
    roifile.roiwrite(images / "a_RoiSet.zip", [_points([[1, 2]], "6nm")])
    _points([[5, 6]], "12nm").tofile(images / "a.roi")
    (images / "a").mkdir()
    roifile.roiwrite(images / "a" / "more 6nm.zip", [_points([[9, 9]])])
    (images / "a" / "notes.md").write_text("not an annotation")
    (tmp_path / "labels").mkdir()
    ParticleTable([1], [2], [6]).to_csv(tmp_path / "labels" / "a.csv")
    ParticleTable([1], [2], [6]).to_csv(tmp_path / "labels" / "b.csv")
    found = find_annotations(img)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "images/a.csv", "images/a_RoiSet.zip", "images/a.roi", "images/a/more 6nm.zip",
        "labels/a.csv"]
    t = read_annotation_set(found)  # (1, 2) is in three files: counted once
    assert sorted(map(tuple, t.xy.tolist())) == [(1, 2), (5, 6), (9, 9)]


# ---------------------------------------------------------------------------- the real set
IMAGES = ("S1", "S4", "S7", "S13", "S15", "S27")


def _rows(t: ParticleTable) -> list[tuple[float, float, float]]:
    return sorted(zip(t.x.tolist(), t.y.tolist(), t.diameter_nm.tolist(), strict=True))


@pytest.mark.realdata
@pytest.mark.parametrize("name", IMAGES)
def test_real_annotator_files_agree_with_labels(real_data, name):
    labels = ParticleTable.from_csv(real_data / "labels" / f"{name}.csv")
    folder = real_data / "imagej" / name
    for px in (None, PX):
        assert _rows(read_annotation_set(folder, pixel_size_nm=px)) == _rows(labels)
    # every Results table matches its class's labels to within the 0.001 um (1.8 px)
    # rounding of ImageJ's output (plus the 0.01 % between 0.5587 nm and 1/1790 um)
    for table in sorted(folder.glob("*.csv")):
        t = read_particles(table, pixel_size_nm=PX)
        lab = labels.of_class(t.diameter_nm[0])
        assert len(t) == len(lab)
        np.testing.assert_allclose(t.xy, lab.xy, atol=1.0)
    assert find_annotations(real_data / "images" / f"{name}.jpg") == [
        real_data / "labels" / f"{name}.csv"]


@pytest.mark.realdata
def test_real_set_totals(real_data):
    tables = [read_annotation_set(real_data / "imagej" / n) for n in IMAGES]
    total = ParticleTable.concat(tables)
    assert (len(total.of_class(6)), len(total.of_class(12))) == (242, 19)
