"""Native EM files: DM3/DM4, TIA, Velox EMD, MRC (stacks, SerialEM montages) and SEM
TIFF tags are read with their calibration, or refused with one clear line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import tifffile
from tests.conftest import REPO, disc_image

from golddigger.cli.main import main
from golddigger.errors import ImageReadError
from golddigger.io.images import IMAGE_SUFFIXES, read_image

mrcfile = pytest.importorskip("mrcfile")

EM = REPO.parent / "shared" / "data" / "em-formats"
HAVE_H5PY = importlib.util.find_spec("h5py") is not None


@pytest.fixture(scope="module")
def model(tiny_model) -> Path:
    return tiny_model


def em_file(name: str) -> Path:
    path = EM / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    pytest.importorskip("rsciio")
    return path


# ------------------------------------------------------------------ the shared folder
@pytest.mark.parametrize("name, shape, dtype, px", [
    ("temp.mrc", (3, 128, 128), np.float32, 0.2),
])
def test_shared_images_read(name, shape, dtype, px):
    im = read_image(em_file(name))
    assert im.data.shape == shape and im.data.dtype == dtype
    assert im.pixel_size_nm == pytest.approx(px)


@pytest.mark.parametrize("name, needles", [
    ("08_carbon.dm3", ["spectrum", "EELS", "2048 channels", "not an image"]),
    ("dmTest_float32_nonSquare_diffPixelSize.dm3", ["not square", "x 1 nm", "y 0.2 nm",
                                                    "Image > Scale"]),
    ("dmTest_float32_nonSquare_diffPixelSize.dm4", ["not square", "x 1 nm", "y 0.2 nm"]),
    ("dmTest_3D_int16_64,65,66.dm4", ["not square", "x 0.002 nm", "y 3 nm"]),
    ("16_STOimage_1.ser", ["0.01001 nm", "atomic-resolution", "--pixel-size"]),
    ("16_STOimage.emi", ["0.01001 nm", "atomic-resolution"]),
    ("Acquisition_18.emd", ["0.01225 nm", "atomic-resolution"] if HAVE_H5PY
     else ["needs h5py", "golddigger[formats]"]),
])
def test_shared_bad_cases_refused(name, needles):
    with pytest.raises(ImageReadError) as info:
        read_image(em_file(name))
    msg = str(info.value)
    assert "\n" not in msg and name in msg
    for n in needles:
        assert n in msg, (n, msg)


def test_atomic_resolution_read_with_explicit_pixel_size():
    """--pixel-size says the file's calibration is wrong: the pixels are read."""
    im = read_image(em_file("16_STOimage_1.ser"), pixel_size_nm=0.5)
    assert im.data.shape == (1024, 1024) and im.data.dtype == np.uint16
    assert im.pixel_size_nm == 0.5


def test_non_square_pixels_refused_even_with_pixel_size():
    with pytest.raises(ImageReadError, match="not square"):
        read_image(em_file("dmTest_float32_nonSquare_diffPixelSize.dm4"), pixel_size_nm=1.0)


def test_suffix_list_is_one_list():
    for s in (".dm3", ".dm4", ".ser", ".emd", ".mrc", ".tif", ".png", ".jpeg"):
        assert s in IMAGE_SUFFIXES
    assert ".emi" not in IMAGE_SUFFIXES  # its .ser is listed; the pair would be read twice


# ------------------------------------------------------------------ MRC written here
def write_mrc(path: Path, data: np.ndarray, voxel_a, **kw) -> Path:
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(data)
        m.voxel_size = voxel_a
        for k, v in kw.items():
            setattr(m.header, k, v)
    return path


def test_mrc_image_and_stack(tmp_path):
    img = disc_image((64, 80)).astype(np.int16)
    im = read_image(write_mrc(tmp_path / "a.mrc", img, 5.5))
    assert im.data.shape == (64, 80) and isinstance(im.data, np.memmap)
    np.testing.assert_array_equal(im.data, img)
    assert im.pixel_size_nm == pytest.approx(0.55)
    stack = np.stack([img, img[::-1]]).astype(np.float32)
    im = read_image(write_mrc(tmp_path / "s.mrcs", stack, 12.0))
    assert im.data.shape == (2, 64, 80) and im.pixel_size_nm == pytest.approx(1.2)
    # --pixel-size overrides the file
    assert read_image(tmp_path / "s.mrcs", pixel_size_nm=0.7).pixel_size_nm == 0.7


def test_mrc_bytes_signed_or_unsigned(tmp_path):
    """Mode 0 is signed (MRC2014) unless the IMOD stamp says unsigned (SerialEM)."""
    from golddigger.io.em_formats import set_imod_unsigned_bytes

    img = disc_image((64, 80))
    with mrcfile.new(tmp_path / "u.mrc") as m:
        m.set_data(img.view(np.int8))
        set_imod_unsigned_bytes(m.header)
        m.voxel_size = 5.0
    im = read_image(tmp_path / "u.mrc")
    assert im.data.dtype == np.uint8
    np.testing.assert_array_equal(im.data, img)
    signed = read_image(write_mrc(tmp_path / "s.mrc", img.view(np.int8), 5.0))
    assert signed.data.dtype == np.int8


def test_mrc_bad_cases(tmp_path):
    img = disc_image((64, 80)).astype(np.float32)
    with pytest.raises(ImageReadError, match=r"not square \(x 0.5 nm, y 0.8 nm\)"):
        read_image(write_mrc(tmp_path / "aniso.mrc", img, (5.0, 8.0, 5.0)))
    with pytest.raises(ImageReadError, match="complex"):
        read_image(write_mrc(tmp_path / "fft.mrc", img.astype(np.complex64), 5.0))
    with pytest.raises(ImageReadError, match="atomic-resolution"):
        read_image(write_mrc(tmp_path / "atomic.mrc", img, 0.5))  # 0.05 nm
    ok = write_mrc(tmp_path / "ok.mrc", img, 5.0)
    cut = tmp_path / "cut.mrc"
    cut.write_bytes(ok.read_bytes()[:-1000])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(cut)
    # no calibration in the file: unknown (the CLI then asks for --pixel-size)
    assert read_image(write_mrc(tmp_path / "nocal.mrc", img, 0.0)).pixel_size_nm is None


def write_montage(folder: Path, whole: np.ndarray, piece=(96, 128), step=(80, 112),
                  px_a=5.0) -> Path:
    """Cut ``whole`` into overlapping pieces and save them SerialEM-style (.mrc + .mdoc)."""
    h, w = whole.shape
    ys = list(range(0, h - piece[0] + 1, step[0]))
    xs = list(range(0, w - piece[1] + 1, step[1]))
    assert ys[-1] + piece[0] == h and xs[-1] + piece[1] == w
    planes, lines = [], [f"PixelSpacing = {px_a}", f"ImageSize = {piece[1]} {piece[0]}",
                         "Montage = 1", ""]
    for x in xs:
        for y in ys:
            # pieces disagree in their overlaps (as real ones do): tells which is used
            planes.append(whole[y:y + piece[0], x:x + piece[1]] + np.int16(len(planes) % 2))
            lines += [f"[ZValue = {len(planes) - 1}]", f"PieceCoordinates = {x} {y} 0",
                      "ExposureTime = 1", ""]
    path = write_mrc(folder / "mont.mrc", np.stack(planes), px_a)
    (folder / "mont.mrc.mdoc").write_text("\n".join(lines))
    return path


def test_serialem_montage_assembled(tmp_path):
    whole = disc_image((256, 352)).astype(np.int16)
    im = read_image(write_montage(tmp_path, whole))
    assert im.data.shape == whole.shape and im.pixel_size_nm == pytest.approx(0.5)
    # every pixel comes from one piece: exactly the image, or one more (odd pieces)
    diff = im.data.astype(int) - whole
    assert set(np.unique(diff)) <= {0, 1}
    # overlaps are split at their middle: piece 0 (even) keeps rows/cols up to there
    assert (diff[:88, :120] == 0).all() and (diff[88:96, :120] == 1).all()


def test_montage_mdoc_for_another_file(tmp_path):
    path = write_montage(tmp_path, disc_image((256, 352)).astype(np.int16))
    mdoc = path.with_name(path.name + ".mdoc")
    mdoc.write_text(mdoc.read_text() + "\n[ZValue = 99]\nPieceCoordinates = 0 0 0\n")
    with pytest.raises(ImageReadError, match="another file"):
        read_image(path)


# ------------------------------------------------------------------ SEM TIFF tags
def write_fei_tiff(path: Path, data: np.ndarray, px_nm: float, py_nm: float | None = None
                   ) -> Path:
    """A TIFF as FEI/Thermo SEMs write it: the INI-style metadata in tag 34682."""
    py_nm = px_nm if py_nm is None else py_nm
    text = (f"[User]\nUser=test\n[Scan]\nPixelWidth={px_nm * 1e-9:.6e}\n"
            f"PixelHeight={py_nm * 1e-9:.6e}\nHorFieldsize={px_nm * 1e-9 * data.shape[1]:e}\n")
    tifffile.imwrite(path, data, extratags=[(34682, "s", 0, text, True)],
                     resolution=(72, 72))
    return path


def test_fei_tiff_pixel_size(tmp_path):
    img = disc_image((64, 80))
    im = read_image(write_fei_tiff(tmp_path / "fei.tif", img, 0.5587))
    assert im.pixel_size_nm == pytest.approx(0.5587)
    np.testing.assert_array_equal(im.data, img)
    with pytest.raises(ImageReadError, match=r"not square \(x 0.5 nm, y 0.7 nm\)"):
        read_image(write_fei_tiff(tmp_path / "aniso.tif", img, 0.5, 0.7))


# ------------------------------------------------------------------ same particles
def test_mrc_and_calibrated_tiff_give_identical_particles(tmp_path, model, capsys):
    img = disc_image((160, 192), centres=((40.3, 50.7), (120.0, 100.5), (150.2, 30.1)),
                     radius=5.0).astype(np.uint16)
    write_mrc(tmp_path / "a.mrc", img, 5.587)
    write_fei_tiff(tmp_path / "b.tif", img, 0.5587)
    for name in ("a.mrc", "b.tif"):
        code = main(["detect", str(tmp_path / name), "-o", str(tmp_path / "out"),
                     "--model", str(model), "--threshold", "0.2", "-q"])
        assert code == 0, capsys.readouterr().err
    a = (tmp_path / "out" / "a.csv").read_text()
    assert a == (tmp_path / "out" / "b.csv").read_text()
    assert len(a.splitlines()) > 1  # some particles (random weights, low threshold)
