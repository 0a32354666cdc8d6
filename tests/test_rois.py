"""ImageJ ROI writing and region reading (golddigger.io.rois).

The ImageJ checks run ImageJ 1.53t (ij.jar) in a subprocess through jpype, so no JVM is
started inside the test process; they skip when Java, ij.jar or jpype are missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import roifile
from roifile import ROI_OPTIONS, ROI_TYPE, ImagejRoi

from golddigger.errors import AnnotationError
from golddigger.io.annotations import read_particles
from golddigger.io.regions import Region
from golddigger.io.rois import (
    CLASS_COLORS,
    class_colors,
    class_groups,
    read_region,
    region_to_imagej_roi,
    write_roiset,
)
from golddigger.particles import ParticleTable

IJ_JAR = Path("/usr/share/java/ij.jar")
PX = 0.5587


def _particles() -> ParticleTable:
    return ParticleTable([10.0, 20.25, 30.0, 41.0], [15.0, 25.0, 35.5, 12.0],
                         [6.0, 12.0, 18.0, 10.0], [0.9, 0.8, 0.75, 0.5], [0, 1, 2, 0])


def _rect_roi(x, y, w, h, name="r") -> ImagejRoi:
    return ImagejRoi(roitype=ROI_TYPE.RECT, version=228, left=x, top=y, right=x + w,
                     bottom=y + h, name=name)


def _poly_roi(xy, name="p", roitype=ROI_TYPE.POLYGON) -> ImagejRoi:
    roi = ImagejRoi.frompoints(np.asarray(xy), name=name)
    roi.roitype = roitype
    roi.version = 228
    return roi


# ---------------------------------------------------------------------------- writing
def test_class_palette_and_groups():
    assert set(CLASS_COLORS) == {6.0, 12.0, 18.0}
    assert len(set(CLASS_COLORS.values())) == 3
    cols = class_colors([6, 12, 18, 10, 25])
    assert cols[6.0] == CLASS_COLORS[6.0] and cols[18.0] == CLASS_COLORS[18.0]
    assert len(set(cols.values())) == 5
    assert class_colors([6], {6: "#112233"})[6.0] == "#112233"
    assert class_groups([6, 12, 18, 10, 25]) == {6.0: 1, 10.0: 4, 12.0: 2, 18.0: 3, 25.0: 5}


def test_write_roiset_ovals_round_trip(tmp_path):
    p = _particles()
    out = write_roiset(tmp_path / "set.zip", p, PX, name_prefix="img1-")
    assert out == tmp_path / "set.zip"
    assert not list(tmp_path.glob("*.part"))  # atomic: no temporary left behind
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["img1-gold-6nm-0001.roi", "img1-gold-12nm-0002.roi",
                                 "img1-gold-18nm-0003.roi", "img1-gold-10nm-0004.roi"]
    rois = roifile.roiread(out)
    assert [r.roitype for r in rois] == [ROI_TYPE.OVAL] * 4
    assert [r.group for r in rois] == [1, 2, 3, 4]
    assert [r.position for r in rois] == [1, 2, 3, 1]
    assert [r.hexcolor(r.stroke_color) for r in rois][:3] == [
        CLASS_COLORS[6.0].lower(), CLASS_COLORS[12.0].lower(), CLASS_COLORS[18.0].lower()]
    assert rois[1].properties == {"diameter_nm": 12, "score": 0.8}
    # oval diameter is the particle's, centred on the pixel centre (+0.5 in ImageJ)
    r = rois[1]
    assert r.widthd == pytest.approx(12 / PX, abs=1e-4)
    assert r.xd + r.widthd / 2 == pytest.approx(20.25 + 0.5, abs=1e-4)
    back = read_particles(out)  # class from the diameter_nm property
    np.testing.assert_allclose(back.x, p.x, atol=1e-4)
    np.testing.assert_allclose(back.y, p.y, atol=1e-4)
    np.testing.assert_array_equal(back.diameter_nm, p.diameter_nm)
    np.testing.assert_array_equal(back.slice, p.slice)


def test_write_roiset_points_exact_and_no_positions_for_single_images(tmp_path):
    p = ParticleTable([828.0, 5.5], [1402.0, 7.25], [12.0, 6.0], [1.0, 0.25])
    out = write_roiset(tmp_path / "pts.zip", p, None, shape="point", groups=False)
    rois = roifile.roiread(out)
    assert [r.roitype for r in rois] == [ROI_TYPE.POINT] * 2
    assert [r.position for r in rois] == [0, 0]  # all in slice 0: shown on every slice
    assert [r.group for r in rois] == [0, 0]
    back = read_particles(out)
    assert back == ParticleTable(p.x, p.y, p.diameter_nm)  # score is not read back
    # the same point coordinates as the annotators' ImageJ point ROIs (828.0, 1402.0)
    np.testing.assert_array_equal(rois[0].coordinates(), [[828.0, 1402.0]])


def test_write_roiset_overwrites_and_checks(tmp_path):
    path = tmp_path / "s.zip"
    write_roiset(path, _particles(), PX)
    write_roiset(path, _particles()[:1], PX)
    assert len(roifile.roiread(path)) == 1
    with pytest.raises(AnnotationError, match="zip"):
        write_roiset(tmp_path / "s.roi", _particles(), PX)
    with pytest.raises(ValueError, match="pixel size"):
        write_roiset(tmp_path / "t.zip", _particles(), None)
    with pytest.raises(ValueError, match="shape"):
        write_roiset(tmp_path / "t.zip", _particles(), PX, shape="square")
    write_roiset(tmp_path / "empty.zip", ParticleTable.empty(), PX)
    with zipfile.ZipFile(tmp_path / "empty.zip") as zf:
        assert zf.namelist() == []


# ---------------------------------------------------------------------------- regions
def test_rectangle_roi_covers_imagej_pixels(tmp_path):
    # ImageJ: x=10, y=20, w=5, h=4 covers columns 10..14 and rows 20..23
    _rect_roi(10, 20, 5, 4).tofile(tmp_path / "r.roi")
    region = read_region(tmp_path / "r.roi", image_shape=(40, 30))
    mask = region.to_mask((40, 30))
    expected = np.zeros((40, 30), bool)
    expected[20:24, 10:15] = True
    np.testing.assert_array_equal(mask, expected)
    assert region.contains([10, 14, 9, 15], [20, 23, 20, 23]).tolist() == [True, True,
                                                                          False, False]
    assert region.area_px() == pytest.approx(20, abs=1e-3)


def test_polygon_and_oval_regions(tmp_path):
    _poly_roi([[1, 1], [9, 1], [1, 9]]).tofile(tmp_path / "tri.roi")
    m = read_region(tmp_path / "tri.roi").to_mask((12, 12))
    # pixel (r, c) inside iff its centre (c+.5, r+.5) is inside the ImageJ triangle;
    # ImageJ counts centres on the diagonal edge (right side) as inside
    rr, cc = np.mgrid[:12, :12]
    np.testing.assert_array_equal(m, (rr >= 1) & (cc >= 1) & (rr + cc <= 9))
    oval = ImagejRoi(roitype=ROI_TYPE.OVAL, version=228, left=10, top=20, right=21, bottom=31)
    oval.tofile(tmp_path / "o.roi")
    m = read_region(tmp_path / "o.roi").to_mask((40, 40))
    assert m.sum() == 97 and m[25, 15] and m[20, 15] and not m[20, 12]  # ImageJ: 97 px


def test_edges_through_pixel_centres_follow_imagej(tmp_path):
    # a sub-pixel polygon whose edges run through pixel centres (ImageJ x 5.5..15.5,
    # y 3.5..12.5): ImageJ 1.53t fills columns 6..15 and rows 4..12 (centres on the left
    # and top edges are outside, on the right and bottom edges inside)
    _poly_roi([[5.5, 3.5], [15.5, 3.5], [15.5, 12.5], [5.5, 12.5]]).tofile(tmp_path / "p.roi")
    m = read_region(tmp_path / "p.roi").to_mask((20, 20))
    rows, cols = np.nonzero(m)
    assert (rows.min(), rows.max(), cols.min(), cols.max(), m.sum()) == (4, 12, 6, 15, 90)


def test_composite_roi_with_hole(tmp_path):
    # a 20 x 20 square at (10, 10) with a 6 x 6 hole at (17, 17), as ImageJ's ShapeRoi path
    path = [0, 10, 10, 1, 30, 10, 1, 30, 30, 1, 10, 30, 4,
            0, 17, 17, 1, 23, 17, 1, 23, 23, 1, 17, 23, 4]
    roi = _rect_roi(10, 10, 20, 20, "ring")
    roi.multi_coordinates = np.asarray(path, np.float32)
    roi.shape_roi_size = len(path)
    roi.tofile(tmp_path / "ring.roi")
    m = read_region(tmp_path / "ring.roi").to_mask((40, 40))
    expected = np.zeros((40, 40), bool)
    expected[10:30, 10:30] = True
    expected[17:23, 17:23] = False
    np.testing.assert_array_equal(m, expected)


def test_zip_union_index_and_lines(tmp_path):
    rois = [_rect_roi(0, 0, 4, 4, "a"), _rect_roi(10, 10, 2, 3, "b"),
            _poly_roi([[5, 5]], "pt", ROI_TYPE.POINT)]
    roifile.roiwrite(tmp_path / "set.zip", rois)
    assert read_region(tmp_path / "set.zip").to_mask((20, 20)).sum() == 16 + 6
    second = read_region(tmp_path / "set.zip", index=1)
    assert second.to_mask((20, 20)).sum() == 6 and second.name == "b"
    with pytest.raises(AnnotationError, match="index 2 is out of range"):
        read_region(tmp_path / "set.zip", index=2)
    wide = _poly_roi([[2.0, 10.0], [30.0, 10.0]], "line", ROI_TYPE.POLYLINE)
    wide.stroke_width = 4
    wide.tofile(tmp_path / "wide.roi")
    region = read_region(tmp_path / "wide.roi")
    assert region.area_px() == pytest.approx(28 * 4, rel=1e-6)
    wide.stroke_width = 1
    wide.tofile(tmp_path / "thin.roi")
    with pytest.raises(AnnotationError, match="no area ROI"):
        read_region(tmp_path / "thin.roi")


def test_region_errors(tmp_path):
    roifile.roiwrite(tmp_path / "pts.zip", [_poly_roi([[5, 5], [6, 7]], "pts",
                                                      ROI_TYPE.POINT)])
    with pytest.raises(AnnotationError, match="no area ROI.*point"):
        read_region(tmp_path / "pts.zip")
    _rect_roi(5, 5, 0, 4).tofile(tmp_path / "flat.roi")
    with pytest.raises(AnnotationError, match="no area"):
        read_region(tmp_path / "flat.roi")
    _rect_roi(500, 500, 10, 10).tofile(tmp_path / "far.roi")
    assert read_region(tmp_path / "far.roi").area_px() > 0  # fine without an image shape
    with pytest.raises(AnnotationError, match="covers no pixel"):
        read_region(tmp_path / "far.roi", image_shape=(100, 100))
    (tmp_path / "empty.roi").write_bytes(b"")
    with pytest.raises(AnnotationError, match="empty"):
        read_region(tmp_path / "empty.roi")
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(AnnotationError, match="junk.zip.*not a readable zip"):
        read_region(tmp_path / "junk.zip")
    with pytest.raises(AnnotationError, match="cannot read a region"):
        read_region(tmp_path / "x.json")


def test_mask_images(tmp_path):
    import tifffile
    from PIL import Image

    mask = np.zeros((30, 40), np.uint8)
    mask[5:10, 6:20] = 255
    tifffile.imwrite(tmp_path / "m.tif", mask)
    Image.fromarray(mask).save(tmp_path / "m.png")
    for name in ("m.tif", "m.png"):
        region = read_region(tmp_path / name, image_shape=(30, 40))
        assert region.mask is not None
        np.testing.assert_array_equal(region.to_mask((30, 40)), mask > 0)
    with pytest.raises(AnnotationError, match="40 x 30 px but the image is 50 x 30"):
        read_region(tmp_path / "m.tif", image_shape=(30, 50))
    tifffile.imwrite(tmp_path / "zero.tif", np.zeros((30, 40), np.uint8))
    with pytest.raises(AnnotationError, match="mask is empty"):
        read_region(tmp_path / "zero.tif")


def test_region_to_imagej_roi_round_trip(tmp_path):
    region = Region.from_polygon([[3.2, 4.1], [20.7, 6.0], [12.5, 18.9]], name="tri")
    roi = region_to_imagej_roi(region)
    assert roi.roitype == ROI_TYPE.POLYGON and roi.name == "tri"
    roi.tofile(tmp_path / "tri.roi")
    back = read_region(tmp_path / "tri.roi")
    np.testing.assert_array_equal(back.to_mask((25, 25)), region.to_mask((25, 25)))
    # a mask with a hole and a second part becomes a composite ROI with the same pixels
    mask = np.zeros((30, 40), bool)
    mask[2:20, 3:25] = True
    mask[8:12, 10:15] = False
    mask[24:28, 30:38] = True
    roi = region_to_imagej_roi(Region.from_mask(mask, name="m"))
    assert roi.composite
    roi.tofile(tmp_path / "m.roi")
    np.testing.assert_array_equal(read_region(tmp_path / "m.roi").to_mask((30, 40)), mask)
    # an ImageJ integer polygon read and written back is the same integer polygon
    _poly_roi([[2, 3], [20, 3], [11, 15]], "t").tofile(tmp_path / "t.roi")
    again = region_to_imagej_roi(read_region(tmp_path / "t.roi"))
    assert not again.subpixelresolution and again.name == "t"
    assert again.coordinates().tolist() == [[2, 3], [20, 3], [11, 15]]
    # a plain mask gives an integer polygon along pixel edges
    simple = np.zeros((10, 10), bool)
    simple[2:5, 3:7] = True
    roi = region_to_imagej_roi(Region.from_mask(simple))
    assert not roi.subpixelresolution
    assert sorted(map(tuple, roi.coordinates().tolist())) == [(3, 2), (3, 5), (7, 2), (7, 5)]


# ---------------------------------------------------------------------------- ImageJ itself
_IJ_SCRIPT = r'''
import json, sys, zipfile
import numpy as np
import jpype
jpype.startJVM("-Djava.awt.headless=true", classpath=[sys.argv[1]])
from jpype import JArray, JByte, JClass, JFloat, JInt
out_dir, ours_zip = sys.argv[2], sys.argv[3]
BP = JClass("ij.process.ByteProcessor"); Roi = JClass("ij.gui.Roi")
OvalRoi = JClass("ij.gui.OvalRoi"); PolygonRoi = JClass("ij.gui.PolygonRoi")
ShapeRoi = JClass("ij.gui.ShapeRoi"); RoiEncoder = JClass("ij.io.RoiEncoder")
RoiDecoder = JClass("ij.io.RoiDecoder"); IJ = JClass("ij.IJ")
H, W = 70, 80
def mask(roi):
    bp = BP(W, H); bp.setColor(255); bp.fill(roi)
    return np.frombuffer(memoryview(bp.getPixels()), np.uint8).reshape(H, W) > 0
rng = np.random.default_rng(7)
made, masks = [], {}
def keep(name, roi):
    data = bytes(np.array(RoiEncoder.saveAsByteArray(roi), dtype=np.int8).view(np.uint8))
    open(f"{out_dir}/{name}.roi", "wb").write(data)
    masks[name] = mask(roi); made.append(name)
keep("rect", Roi(10, 20, 5, 4))
keep("subpixel_rect", Roi(5.5, 3.7, 10.2, 9.0))
for i in range(30):
    x, y = rng.integers(-5, 60, 2); w, h = rng.integers(1, 30, 2)
    keep(f"oval{i}", OvalRoi(int(x), int(y), int(w), int(h)))
for i in range(40):
    n = int(rng.integers(3, 9)); xs = rng.integers(0, W, n); ys = rng.integers(0, H, n)
    keep(f"ipoly{i}", PolygonRoi(JArray(JInt)(xs.tolist()), JArray(JInt)(ys.tolist()), n,
                                 Roi.POLYGON))
for i in range(20):
    n = int(rng.integers(3, 9)); xs = rng.uniform(0, W, n); ys = rng.uniform(0, H, n)
    keep(f"fpoly{i}", PolygonRoi(JArray(JFloat)(xs.tolist()), JArray(JFloat)(ys.tolist()), n,
                                 Roi.POLYGON))
keep("traced", PolygonRoi(JArray(JInt)([2, 12, 12, 7, 7, 2]), JArray(JInt)([2, 2, 12, 12, 7, 7]),
                          6, Roi.TRACED_ROI))
keep("composite", ShapeRoi(Roi(10, 10, 50, 40)).xor(ShapeRoi(OvalRoi(20, 15, 15, 12)))
     .or_(ShapeRoi(Roi(70, 60, 8, 8))))
decoded = []
with zipfile.ZipFile(ours_zip) as zf:
    for entry in zf.namelist():
        data = JArray(JByte)(np.frombuffer(zf.read(entry), np.int8))
        r = RoiDecoder(data, entry).getRoi()
        b = r.getFloatBounds(); fp = r.getFloatPolygon()
        decoded.append(dict(entry=entry, type=str(r.getTypeAsString()), name=str(r.getName()),
                            group=int(r.getGroup()), position=int(r.getPosition()),
                            score=str(r.getProperty("score")), cx=b.x + b.width / 2,
                            cy=b.y + b.height / 2, w=b.width, px=float(fp.xpoints[0]),
                            py=float(fp.ypoints[0])))
back = {}
for name in ("region_poly", "region_mask"):
    data = open(f"{out_dir}/{name}.roi", "rb").read()
    r = RoiDecoder(JArray(JByte)(np.frombuffer(data, np.int8)), name + ".roi").getRoi()
    back[name] = mask(r)
np.savez(f"{out_dir}/masks.npz", **masks, **{"back_" + k: v for k, v in back.items()})
json.dump(dict(version=str(IJ.getVersion()), made=made, decoded=decoded),
          open(f"{out_dir}/out.json", "w"))
'''


@pytest.fixture(scope="module")
def imagej_run(tmp_path_factory):
    """Run ImageJ once: make reference ROIs and masks, decode our ROI set and regions."""
    if shutil.which("java") is None or not IJ_JAR.exists():
        pytest.skip("needs Java and ImageJ (/usr/share/java/ij.jar)")
    pytest.importorskip("jpype")
    d = tmp_path_factory.mktemp("imagej")
    p = _particles()
    write_roiset(d / "ours.zip", p, PX)
    write_roiset(d / "ours_points.zip", p, PX, shape="point")
    with zipfile.ZipFile(d / "ours.zip", "a") as zf, zipfile.ZipFile(d / "ours_points.zip") as zp:
        for n in zp.namelist():
            zf.writestr("pt-" + n, zp.read(n))
    poly = Region.from_polygon([[3.2, 4.1], [60.7, 6.0], [32.5, 58.9], [20.3, 30.2]])
    region_to_imagej_roi(poly).tofile(d / "region_poly.roi")
    m = np.zeros((70, 80), bool)
    m[5:40, 5:50] = True
    m[10:20, 10:15] = False
    m[50:60, 60:70] = True
    region_to_imagej_roi(Region.from_mask(m)).tofile(d / "region_mask.roi")
    script = d / "ij_check.py"
    script.write_text(_IJ_SCRIPT)
    res = subprocess.run([sys.executable, str(script), str(IJ_JAR), str(d), str(d / "ours.zip")],
                         capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        pytest.fail(f"ImageJ check failed:\n{res.stderr[-3000:]}")
    out = json.loads((d / "out.json").read_text())
    masks = dict(np.load(d / "masks.npz"))
    return d, out, masks, poly, m


@pytest.mark.imagej
def test_imagej_masks_equal_ours(imagej_run):
    d, out, masks, _, _ = imagej_run
    assert out["version"] == "1.53t"
    bad = []
    for name in out["made"]:
        ours = read_region(d / f"{name}.roi").to_mask(masks[name].shape)
        if not np.array_equal(ours, masks[name]):
            bad.append((name, int((ours != masks[name]).sum())))
    assert bad == []
    rect = masks["rect"]
    rows, cols = np.nonzero(rect)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (20, 23, 10, 14)


@pytest.mark.imagej
def test_imagej_reads_our_roiset(imagej_run):
    _, out, _, _, _ = imagej_run
    p = _particles()
    ovals = [r for r in out["decoded"] if not r["entry"].startswith("pt-")]
    points = [r for r in out["decoded"] if r["entry"].startswith("pt-")]
    assert [r["type"] for r in ovals] == ["Oval"] * 4
    assert [r["name"] for r in ovals] == ["gold-6nm-0001", "gold-12nm-0002", "gold-18nm-0003",
                                          "gold-10nm-0004"]
    assert [r["group"] for r in ovals] == [1, 2, 3, 4]
    assert [r["position"] for r in ovals] == [1, 2, 3, 1]
    assert [r["score"] for r in ovals] == ["0.9000", "0.8000", "0.7500", "0.5000"]
    np.testing.assert_allclose([r["cx"] - 0.5 for r in ovals], p.x, atol=1e-4)
    np.testing.assert_allclose([r["cy"] - 0.5 for r in ovals], p.y, atol=1e-4)
    np.testing.assert_allclose([r["w"] * PX for r in ovals], p.diameter_nm, atol=1e-4)
    assert [r["type"] for r in points] == ["Point"] * 4
    np.testing.assert_allclose([r["px"] for r in points], p.x, atol=1e-4)
    np.testing.assert_allclose([r["py"] for r in points], p.y, atol=1e-4)


@pytest.mark.imagej
def test_imagej_masks_of_our_regions(imagej_run):
    _, _, masks, poly, m = imagej_run
    np.testing.assert_array_equal(masks["back_region_poly"], poly.to_mask((70, 80)))
    np.testing.assert_array_equal(masks["back_region_mask"], m)


def test_ovals_drawn_with_subpixel_options_are_read(tmp_path):
    roi = ImagejRoi(roitype=ROI_TYPE.OVAL, options=ROI_OPTIONS.SUB_PIXEL_RESOLUTION,
                    version=228, xd=10.4, yd=20.2, widthd=11.0, heightd=11.0,
                    left=10, top=20, right=22, bottom=32)
    roi.tofile(tmp_path / "o.roi")
    # ImageJ fills sub-pixel ovals within the integer bounds (10, 20, 11, 11)
    assert read_region(tmp_path / "o.roi").to_mask((40, 40)).sum() == 97
