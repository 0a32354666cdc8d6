"""ImageJ objects to Gold Digger's and back: pixels, calibration, ROIs.

Needs a running JVM with ImageJ (`golddigger.imagej.connect`). Pixels cross as whole
buffers (no per-pixel loops): a 4096 x 4096 16-bit plane takes about 0.03 s each way.

Region convention: an area ROI becomes a full-size mask filled by ImageJ itself
(``ByteProcessor.fill(roi)``), so a pixel is inside exactly when ImageJ says so (its
centre is inside the ROI). ``Roi.containsPoint`` is not used: in ImageJ 1.53t it answers
False for points plainly inside float polygons and for an oval's own centre.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from golddigger.io.images import to_nm
from golddigger.io.regions import Region

__all__ = [
    "array_to_imageplus",
    "calibration_unit",
    "imageplus_planes",
    "imageplus_to_array",
    "is_area_roi",
    "manager_region",
    "pixel_size_nm",
    "plane_to_array",
    "roi_manager",
    "roi_mask",
    "rois_to_region",
    "stack_slices",
]

logger = logging.getLogger(__name__)

_GREY = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # as golddigger.io.images


# ---------------------------------------------------------------------------- pixels
def plane_to_array(ip) -> np.ndarray:
    """One ImageProcessor as a 2D numpy array (a copy).

    8-bit -> uint8, 16-bit -> uint16, 32-bit -> float32, RGB -> uint8 grey (ITU-R 601
    luma, as `golddigger.io.images.read_image` does for RGB files).
    """
    w, h = int(ip.getWidth()), int(ip.getHeight())
    pixels = ip.getPixels()
    bitdepth = int(ip.getBitDepth())
    if bitdepth == 8:
        a = np.frombuffer(memoryview(pixels), dtype=np.int8).view(np.uint8)
    elif bitdepth == 16:
        a = np.frombuffer(memoryview(pixels), dtype=np.int16).view(np.uint16)
    elif bitdepth == 32:
        a = np.frombuffer(memoryview(pixels), dtype=np.float32)
    elif bitdepth == 24:
        argb = np.frombuffer(memoryview(pixels), dtype=np.int32).view(np.uint8)
        bgr = argb.reshape(-1, 4)[:, :3].astype(np.float32)  # little endian: B, G, R, A
        grey = bgr[:, ::-1] @ _GREY
        a = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"unsupported ImageJ bit depth {bitdepth}")
    return a.reshape(h, w).copy()


def imageplus_planes(imp, slices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, plane)`` for the given 0-based stack indices, one plane at a time."""
    stack = imp.getStack()
    for s in slices:
        yield int(s), plane_to_array(stack.getProcessor(int(s) + 1))


def imageplus_to_array(imp, slices: Sequence[int] | None = None) -> np.ndarray:
    """An ImagePlus as ``(Y, X)`` (one plane) or ``(Z, Y, X)``.

    Parameters
    ----------
    slices : sequence of int, optional
        0-based stack indices; default all. One index gives a 2D array.
    """
    if slices is None:
        slices = range(int(imp.getStackSize()))
    planes = [p for _, p in imageplus_planes(imp, slices)]
    if not planes:
        raise ValueError("no slices selected")
    return planes[0] if len(planes) == 1 else np.stack(planes)


def array_to_imageplus(title: str, data: np.ndarray, pixel_size_nm: float | None = None):
    """A new ImagePlus from a 2D or 3D (Z, Y, X) uint8/uint16/float32 array, calibrated in
    nm when ``pixel_size_nm`` is given."""
    import jpype
    from ij import ImagePlus, ImageStack
    from ij.process import ByteProcessor, FloatProcessor, ShortProcessor

    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ValueError(f"expected (Y, X) or (Z, Y, X), got shape {data.shape}")
    _, h, w = data.shape
    stack = ImageStack(w, h)
    for plane in data:
        if plane.dtype == np.uint8:
            ip = ByteProcessor(w, h, jpype.JArray(jpype.JByte)(
                np.ascontiguousarray(plane).ravel().view(np.int8)))
        elif plane.dtype in (np.uint16, np.int16):
            ip = ShortProcessor(w, h, jpype.JArray(jpype.JShort)(
                np.ascontiguousarray(plane).ravel().view(np.int16)), None)
        else:
            ip = FloatProcessor(w, h, jpype.JArray(jpype.JFloat)(
                np.ascontiguousarray(plane, dtype=np.float32).ravel()))
        stack.addSlice(ip)
    imp = ImagePlus(title, stack)
    if pixel_size_nm:
        cal = imp.getCalibration()
        cal.setUnit("nm")
        cal.pixelWidth = cal.pixelHeight = float(pixel_size_nm)
    return imp


# ---------------------------------------------------------------------------- calibration
def pixel_size_nm(imp) -> float | None:
    """The pixel width in nm from the image's calibration; None when the image is not
    calibrated in a length unit (``pixel``, ``inch`` of a screen shot... see
    `golddigger.io.images.to_nm` for the units understood: nm, µm/um/micron, mm, Å...)."""
    cal = imp.getCalibration()
    if not cal.scaled():
        return None
    unit = str(cal.getUnit())
    pw, ph = float(cal.pixelWidth), float(cal.pixelHeight)
    if ph > 0 and abs(pw - ph) > 1e-3 * pw:
        logger.warning("%s: pixels are not square (%g x %g %s); using the width",
                       imp.getTitle(), pw, ph, unit)
    nm = to_nm(pw, unit)
    if nm is None and unit.lower() not in ("pixel", "pixels", "px", ""):
        logger.warning("%s: calibration unit %r is not a length; give the pixel size",
                       imp.getTitle(), unit)
    return nm


def calibration_unit(imp) -> tuple[str, float]:
    """The unit ``X``/``Y`` are reported in and its length in nm: the image's own length
    unit, else µm."""
    cal = imp.getCalibration()
    if cal.scaled():
        unit = str(cal.getUnit())
        nm = to_nm(1.0, unit)
        if nm is not None:
            return ("µm" if unit.lower() in ("micron", "microns", "um") else unit), nm
    return "µm", 1000.0


def stack_slices(imp, whole_stack: bool) -> list[int]:
    """0-based stack indices to search: the current plane, or every plane of the current
    channel (all z and t of a hyperstack; every slice of a plain stack)."""
    if not whole_stack or int(imp.getStackSize()) == 1:
        return [int(imp.getCurrentSlice()) - 1]
    if imp.isHyperStack() and int(imp.getNChannels()) > 1:
        c = int(imp.getC())
        return [int(imp.getStackIndex(c, z, t)) - 1
                for t in range(1, int(imp.getNFrames()) + 1)
                for z in range(1, int(imp.getNSlices()) + 1)]
    return list(range(int(imp.getStackSize())))


# ---------------------------------------------------------------------------- ROIs
def is_area_roi(roi) -> bool:
    """Rectangle, oval, polygon, freehand, traced or composite (not points or lines)."""
    return roi is not None and bool(roi.isArea())


def roi_mask(roi, width: int, height: int) -> np.ndarray:
    """Boolean ``(height, width)`` mask of an area ROI, filled by ImageJ."""
    from ij.process import ByteProcessor

    bp = ByteProcessor(int(width), int(height))
    bp.setColor(255)
    bp.fill(roi)
    return np.frombuffer(memoryview(bp.getPixels()), dtype=np.uint8).reshape(
        int(height), int(width)) != 0


def rois_to_region(rois: Iterable, width: int, height: int, name: str = "") -> Region | None:
    """The union of the area ROIs among ``rois`` as a mask `Region`; None if there is no
    area ROI. Points and lines are skipped."""
    mask = None
    names = []
    for roi in rois:
        if not is_area_roi(roi):
            continue
        m = roi_mask(roi, width, height)
        mask = m if mask is None else (mask | m)
        names.append(str(roi.getName()) if roi.getName() is not None else "selection")
    if mask is None:
        return None
    return Region.from_mask(mask, name=name or (names[0] if len(names) == 1 else "ROIs"))


def roi_manager():
    """The ROI Manager a running macro sees: the ROI Manager window if there is one, else,
    in batch mode, the macro's hidden one; None when there is neither."""
    from ij.macro import Interpreter
    from ij.plugin.frame import RoiManager

    rm = RoiManager.getInstance()
    if rm is None and Interpreter.isBatchMode():
        rm = Interpreter.getBatchModeRoiManager()
    return rm


def save_particle_rois(imp, folder, hint: str):
    """Save the particles the user marked (the ROI Manager's ROIs, else a point selection
    on ``imp``) into ``folder`` as an ImageJ ROI file; returns its path.

    Raises GoldDiggerError (ending with ``hint``) when there are none.
    """
    from pathlib import Path

    from ij.io import RoiEncoder

    from golddigger.errors import GoldDiggerError

    rm = roi_manager()
    if rm is not None and int(rm.getCount()) > 0:
        path = Path(folder) / "rois.zip"
        rm.deselect()  # RoiManager saves only the selected ROI when one is selected
        if not rm.runCommand("Save", str(path)):
            raise GoldDiggerError("could not save the ROI Manager's ROIs")
        return path
    roi = imp.getRoi()
    if roi is None or is_area_roi(roi):
        raise GoldDiggerError(f"no particles: {hint}")
    path = Path(folder) / "points.roi"
    RoiEncoder.save(roi, str(path))
    return path


def manager_region(width: int, height: int, exclude_prefix: str = "gold-") -> Region | None:
    """The union of the ROI Manager's area ROIs, leaving out Gold Digger's own particle ROIs
    (named ``gold-...``); None when there is none."""
    rm = roi_manager()
    if rm is None or int(rm.getCount()) == 0:
        return None
    rois = [r for r in rm.getRoisAsArray()
            if not str(r.getName() or "").startswith(exclude_prefix)]
    return rois_to_region(rois, width, height, name="ROI Manager")
