"""Images with their calibration.

``read_image`` reads TIFF (ImageJ hyperstacks and OME-TIFF included), PNG and JPEG, 8/16/32
bit or RGB, 2D or stacks, and finds the pixel size in the file's metadata (ImageJ, OME,
TIFF resolution tags), converted to nm. An explicit pixel size overrides the file.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golddigger.errors import CalibrationError, ImageReadError
from golddigger.io.em_formats import FOLDER_SUFFIXES, NATIVE_SUFFIXES

__all__ = [
    "CalibratedImage",
    "write_tiff",
    "IMAGE_SUFFIXES",
    "MAX_PIXELS_IN_MEMORY",
    "MAX_PIXELS_PER_PLANE",
    "PIXEL_SIZE_RANGE_NM",
    "read_image",
    "to_nm",
    "validate_pixel_size",
]

logger = logging.getLogger(__name__)

#: File suffixes treated as images when a folder is given (the one list: TIFF, PNG, JPEG
#: and the native EM formats of `golddigger.io.em_formats`).
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg") + FOLDER_SUFFIXES

#: Pixel sizes (nm/px) accepted as electron microscopy. Outside this a typo is likelier.
PIXEL_SIZE_RANGE_NM = (0.01, 50.0)

#: Images with more pixels than this are memory-mapped (when the format allows) instead
#: of loaded, and refused when they cannot be.
MAX_PIXELS_IN_MEMORY = 2**31 // 4  # 0.5 Gpx: 2 GB as float32

#: One plane (slice) with more pixels than this is refused whatever the format: the
#: detector's per-plane arrays would not fit a workstation (32768 x 32768 is the limit).
MAX_PIXELS_PER_PLANE = 2**30

_UNIT_TO_NM = {
    "nm": 1.0, "nanometer": 1.0, "nanometers": 1.0, "nanometre": 1.0, "nanometres": 1.0,
    "um": 1e3, "µm": 1e3, "μm": 1e3, "micron": 1e3, "microns": 1e3, "micrometer": 1e3,
    "micrometers": 1e3, "micrometre": 1e3, "micrometres": 1e3, "\\u00b5m": 1e3,
    "mm": 1e6, "millimeter": 1e6, "millimetre": 1e6,
    "cm": 1e7, "centimeter": 1e7, "centimetre": 1e7,
    "m": 1e9, "meter": 1e9, "metre": 1e9,
    "a": 0.1, "å": 0.1, "angstrom": 0.1, "angstroms": 0.1, "ångström": 0.1,
    "pm": 1e-3, "picometer": 1e-3,
    "inch": 2.54e7, "in": 2.54e7,
}


def to_nm(value: float, unit: str) -> float | None:
    """Convert a length in ``unit`` to nm; None when the unit is not a length.

    >>> to_nm(0.5, "micron")
    500.0
    """
    key = unit.strip().lower()
    factor = _UNIT_TO_NM.get(key)
    return None if factor is None else float(value) * factor


def validate_pixel_size(pixel_size_nm: float | None, source: str = "") -> float:
    """Return ``pixel_size_nm`` as a float or raise a `CalibrationError` saying why.

    Parameters
    ----------
    pixel_size_nm : float or None
        Pixel size in nm.
    source : str
        Where it came from (a file name, a flag), for the message.
    """
    where = f"{source}: " if source else ""
    if pixel_size_nm is None:
        raise CalibrationError(
            f"{where}the pixel size is unknown; give it with --pixel-size NM (nm per pixel), "
            "or set it in ImageJ (Image > Properties) and save as TIFF")
    try:
        value = float(pixel_size_nm)
    except (TypeError, ValueError):
        raise CalibrationError(f"{where}pixel size {pixel_size_nm!r} is not a number") from None
    lo, hi = PIXEL_SIZE_RANGE_NM
    if not np.isfinite(value) or value <= 0:
        raise CalibrationError(f"{where}pixel size must be a positive number of nm, "
                               f"got {pixel_size_nm!r}")
    if not lo <= value <= hi:
        raise CalibrationError(
            f"{where}pixel size {value:g} nm is outside the range for electron micrographs "
            f"({lo:g}-{hi:g} nm/px); check the unit (--pixel-size is in nm per pixel)")
    return value


@dataclass
class CalibratedImage:
    """A greyscale image or stack with its pixel size.

    Attributes
    ----------
    data : numpy.ndarray
        ``(Y, X)`` for one image, ``(Z, Y, X)`` for a stack (Z: slices, frames or both).
        The file's dtype is kept; this may be a read-only memory map (large TIFFs, MRC)
        or, for a SerialEM montage beyond `MAX_PIXELS_IN_MEMORY`, a lazy
        `golddigger.io.montage.MontageArray` (detected in chunks).
    pixel_size_nm : float or None
        Pixel size in nm, or None when unknown.
    path : Path or None
        The file it came from.
    """

    data: np.ndarray
    pixel_size_nm: float | None = None
    path: Path | None = None

    @property
    def is_stack(self) -> bool:
        return self.data.ndim == 3

    @property
    def n_slices(self) -> int:
        return self.data.shape[0] if self.is_stack else 1

    @property
    def shape_yx(self) -> tuple[int, int]:
        return tuple(self.data.shape[-2:])  # type: ignore[return-value]

    def slice(self, index: int) -> np.ndarray:
        """One 2D plane (0-based)."""
        if not 0 <= index < self.n_slices:
            raise ValueError(f"slice {index} out of range (image has {self.n_slices})")
        return self.data[index] if self.is_stack else self.data

    def require_pixel_size(self) -> float:
        """The pixel size, or a `CalibrationError` explaining how to give it."""
        return validate_pixel_size(self.pixel_size_nm, str(self.path or "image"))

    @property
    def name(self) -> str:
        return self.path.stem if self.path else "image"


# ---------------------------------------------------------------------------- readers
def read_image(path: str | Path, pixel_size_nm: float | None = None,
               channel: int | None = None) -> CalibratedImage:
    """Read a micrograph and its calibration.

    Parameters
    ----------
    path : str or Path
        A TIFF, PNG or JPEG file, or a native EM file (DM3/DM4, MRC with SerialEM
        montages, TIA .ser/.emi, Velox EMD; see `golddigger.io.em_formats`).
    pixel_size_nm : float, optional
        Overrides any calibration in the file (nm per pixel).
    channel : int, optional
        0-based channel of a multi-channel hyperstack. Required when it has more than one
        channel (RGB is converted to grey instead).

    Returns
    -------
    CalibratedImage
        ``pixel_size_nm`` is None when neither the file nor the argument gives it;
        call `CalibratedImage.require_pixel_size` where it is needed.

    Raises
    ------
    ImageReadError
        Missing, empty, truncated or non-image files, too-small or absurdly large images,
        NaN/Inf pixels, ambiguous channels.
    CalibrationError
        An explicit pixel size that is not plausible.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: the file is empty")
    if pixel_size_nm is not None:
        pixel_size_nm = validate_pixel_size(pixel_size_nm, "--pixel-size")

    suffix = path.suffix.lower()
    if suffix in NATIVE_SUFFIXES:  # DM3/DM4, TIA, EMD, MRC: golddigger.io.em_formats
        from golddigger.io.em_formats import read_native

        data, file_px = read_native(path, channel, pixel_size_nm is not None)
        return _calibrated(path, data, file_px, pixel_size_nm)
    with open(path, "rb") as fh:
        magic = fh.read(8)
    is_tiff = magic[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
    if is_tiff:
        data, file_px = _read_tiff(path, channel)
    elif magic.startswith(b"\x89PNG") or magic[:3] == b"\xff\xd8\xff":
        data, file_px = _read_pillow(path)
    elif suffix in IMAGE_SUFFIXES:
        raise ImageReadError(f"{path}: not a {suffix[1:].upper()} image (the content does not "
                             "match its name); re-save it from ImageJ as TIFF")
    else:
        raise ImageReadError(f"{path}: unsupported file type; use TIFF, PNG, JPEG, DM3/DM4, "
                             "MRC, TIA (.ser) or Velox EMD")
    return _calibrated(path, data, file_px, pixel_size_nm)


def _calibrated(path: Path, data: np.ndarray, file_px: float | None,
                pixel_size_nm: float | None) -> CalibratedImage:
    """Check the pixels; the pixel size: the argument's, else the file's when plausible."""
    _check_pixels(path, data)
    if file_px is not None:
        try:
            file_px = validate_pixel_size(file_px, str(path))
        except CalibrationError as err:
            logger.warning("%s; ignoring the file's calibration", err)
            file_px = None
    px = pixel_size_nm if pixel_size_nm is not None else file_px
    logger.debug("read %s: shape %s, dtype %s, pixel size %s nm", path, data.shape,
                 data.dtype, px)
    return CalibratedImage(data=data, pixel_size_nm=px, path=path)


def _fmt_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def _plane_shape(shape: tuple[int, ...], axes: str) -> tuple[int, int]:
    """(rows, columns) of one plane of a TIFF series."""
    axes = axes.upper()
    if "Y" in axes and "X" in axes and len(axes) == len(shape):
        return int(shape[axes.index("Y")]), int(shape[axes.index("X")])
    dims = [d for d in shape if d not in (3, 4)] if len(shape) > 2 else list(shape)
    return (int(dims[-2]), int(dims[-1])) if len(dims) >= 2 else (int(shape[0]), 1)


def _check_size(path: Path, yx: tuple[int, int], n_values: int, piecewise: bool) -> None:
    """Refuse planes too large to process, and images too large to load that cannot be
    read piecewise, before any pixel is allocated."""
    h, w = yx
    if h * w > MAX_PIXELS_PER_PLANE:
        raise ImageReadError(
            f"{path}: {w} x {h} pixels in one image is more than Gold Digger processes "
            f"(at most {MAX_PIXELS_PER_PLANE / 1e9:.2g} Gpx, e.g. 32768 x 32768); crop it or "
            "cut it into parts in ImageJ (Image > Crop, or Image > Stacks > Tools > Montage "
            "to Stack)")
    if not piecewise and n_values > MAX_PIXELS_IN_MEMORY:
        raise ImageReadError(
            f"{path}: {w} x {h} pixels is too large to load from a PNG/JPEG, which cannot be "
            "read piecewise; save it as an uncompressed TIFF, or crop it in ImageJ")


def _check_pixels(path: Path, data: np.ndarray) -> None:
    if data.ndim not in (2, 3):
        raise ImageReadError(f"{path}: expected a 2D image or a stack, got shape {data.shape}")
    h, w = data.shape[-2:]
    if h < 16 or w < 16:
        raise ImageReadError(f"{path}: the image is {w} x {h} pixels; at least 16 x 16 is "
                             "needed to find particles")
    if data.dtype.kind == "f":
        if not _all_finite(data):
            raise ImageReadError(f"{path}: the image has NaN or infinite pixels; replace them "
                                 "(ImageJ: Process > Math > Remove NaNs) and save again")


def _all_finite(data: np.ndarray, chunk: int = 1 << 24) -> bool:
    """``np.isfinite(data).all()`` in bounded memory (memory maps are read in strips)."""
    if not isinstance(data, np.ndarray):  # a lazy montage: plane by plane, in strips
        planes = [data[i] for i in range(data.shape[0])] if data.ndim == 3 else [data]
        rows = max(1, chunk // data.shape[-1])
        return all(np.isfinite(p[r:r + rows]).all() for p in planes
                   for r in range(0, p.shape[0], rows))
    if not isinstance(data, np.memmap) or data.size <= chunk:
        return bool(np.isfinite(data).all())
    flat = data.reshape(-1, data.shape[-1])
    rows = max(1, chunk // flat.shape[1])
    return all(np.isfinite(flat[r:r + rows]).all() for r in range(0, flat.shape[0], rows))


def _to_grey(data: np.ndarray) -> np.ndarray:
    """RGB(A) in the last axis to grey (ITU-R 601 luma), keeping 8-bit range.

    Converted in strips of rows, so a memory-mapped RGB file is never all float at once.
    """
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    out = np.empty(data.shape[:-1], dtype=np.uint8 if data.dtype == np.uint8 else np.float32)
    src = data.reshape((-1,) + data.shape[-2:])  # (rows, X, samples)
    dst = out.reshape((-1, data.shape[-2]))
    step = max(1, (1 << 22) // max(1, data.shape[-2]))
    for r in range(0, src.shape[0], step):
        grey = src[r:r + step, :, :3].astype(np.float32) @ weights
        if out.dtype == np.uint8:
            grey = np.clip(np.rint(grey), 0, 255)
        dst[r:r + step] = grey
    return out


def _read_pillow(path: Path) -> tuple[np.ndarray, float | None]:
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow's own limit (~179 Mpx) is lower than ours; sizes are checked below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                im = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = limit
        with im:
            w, h = im.size
            _check_size(path, (h, w), w * h * len(im.getbands()), piecewise=False)
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L"):
                data = np.asarray(im, dtype=np.uint16)
            elif mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LA"):
                data = _to_grey(np.asarray(im.convert("RGB")))
            else:
                data = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageReadError(f"{path}: cannot read the image ({err}); the file may be "
                             "truncated or corrupt") from None
    # PNG/JPEG carry no usable length calibration (dpi is about paper).
    return data, None


class _Complaints(logging.Handler):
    """Collects what tifffile logs while a file is opened (and keeps it off stderr)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(re.sub(r"^<[^>]*>\s*", "", record.getMessage()))


#: tifffile complaints that mean pages or pixels are missing: tifffile then returns what
#: it could read (say, the first slice of a stack), which must not pass for the image.
_TRUNCATION_SIGNS = ("invalid page offset", "corrupted file", "truncated")


def _read_tiff(path: Path, channel: int | None) -> tuple[np.ndarray, float | None]:
    tiff_log = logging.getLogger("tifffile")
    complaints = _Complaints()
    saved = tiff_log.level, tiff_log.propagate
    tiff_log.addHandler(complaints)
    tiff_log.setLevel(logging.WARNING)
    tiff_log.propagate = False
    try:
        return _read_tiff_checked(path, channel, complaints.messages)
    finally:
        tiff_log.removeHandler(complaints)
        tiff_log.setLevel(saved[0])
        tiff_log.propagate = saved[1]
        for msg in complaints.messages:
            logger.debug("%s: tifffile: %s", path, msg)


def _read_tiff_checked(path: Path, channel: int | None, complaints: list[str]
                       ) -> tuple[np.ndarray, float | None]:
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception as err:  # tifffile raises many types for broken files
        raise ImageReadError(f"{path}: not a readable TIFF ({err})") from None
    with tif:
        try:
            series = _largest_series(path, tif)
            shape, axes = series.shape, series.axes
        except Exception as err:
            raise ImageReadError(f"{path}: cannot read the TIFF structure ({err})") from None
        white_is_zero = _is_white_is_zero(series)
        broken = [m for m in complaints if any(s in m.lower() for s in _TRUNCATION_SIGNS)]
        if broken:
            raise ImageReadError(f"{path}: the file is truncated or corrupt ({broken[0]}); "
                                 "copy it again or re-save it")
        if len(shape) == 0:
            raise ImageReadError(f"{path}: the TIFF holds no image (shape {tuple(shape)}); "
                                 "the file is damaged or empty: copy it again or re-save it")
        n_px = int(np.prod(shape, dtype=np.float64))
        yx = _plane_shape(shape, axes)
        _check_size(path, yx, n_px, piecewise=True)
        try:
            page = series.keyframe
            compressed = int(page.compression) != 1
            itemsize = np.dtype(series.dtype).itemsize
        except Exception:  # exotic pages: let the reader below decide
            compressed, itemsize = True, 1
        if not compressed and path.stat().st_size < n_px * itemsize:
            raise ImageReadError(
                f"{path}: the header says {' x '.join(map(str, shape))} pixels "
                f"({_fmt_bytes(n_px * itemsize)}) but the file holds only "
                f"{_fmt_bytes(path.stat().st_size)}; it is truncated or corrupt: copy it "
                "again or re-save it")
        too_big = n_px > MAX_PIXELS_IN_MEMORY
        try:
            px = _tiff_pixel_size(tif)
        except ImageReadError:  # e.g. non-square pixels in SEM tags: a clear refusal
            raise
        except Exception as err:  # odd metadata must not stop reading pixels
            logger.debug("%s: calibration not read: %s", path, err)
            px = None
        data = None
        if too_big:
            try:
                data = tifffile.memmap(path, mode="r")
            except Exception:
                raise ImageReadError(
                    f"{path}: {' x '.join(map(str, shape))} pixels is too large to load and "
                    "the file is compressed or tiled, so it cannot be read piecewise; save it "
                    "uncompressed, or crop it in ImageJ") from None
        else:
            try:
                data = series.asarray()
            except Exception as err:
                raise ImageReadError(f"{path}: cannot read the pixels ({err}); the file may "
                                     "be truncated or corrupt") from None
    if white_is_zero:
        data = _invert(data)
        logger.info("%s: WhiteIsZero TIFF (Photometric 0): inverted, as ImageJ shows it", path)
    data = _squeeze_axes(path, data, axes, channel)
    return data, px


def _largest_series(path: Path, tif):
    """The series whose planes are largest: a TIFF whose first page is a thumbnail (or a
    preview) holds the micrograph in a later page, which ImageJ opens."""
    series = list(tif.series)
    if len(series) <= 1:
        return series[0]

    def area(s) -> int:
        h, w = _plane_shape(s.shape, s.axes)
        return h * w

    best = max(series, key=area)
    if area(best) != area(series[0]):
        sizes = ", ".join("x".join(map(str, _plane_shape(s.shape, s.axes)[::-1]))
                          for s in series)
        logger.warning("%s: the file holds images of different sizes (%s); reading the "
                       "largest, not the first (a thumbnail)", path, sizes)
    return best


def _is_white_is_zero(series) -> bool:
    try:
        return int(series.keyframe.photometric) == 0
    except Exception:  # exotic pages: as they come
        return False


def _invert(data: np.ndarray) -> np.ndarray:
    """White-is-zero pixels to black-is-zero (integers: full range minus value; floats:
    max + min minus value)."""
    data = np.asarray(data)
    if data.dtype.kind in "ui":
        top = np.iinfo(data.dtype).max if data.dtype.kind == "u" else int(data.max())
        low = 0 if data.dtype.kind == "u" else int(data.min())
        return (top + low - data.astype(np.int64)).astype(data.dtype)
    if data.dtype.kind == "f":
        return (np.nanmax(data) + np.nanmin(data)) - data
    return data


def _squeeze_axes(path: Path, data: np.ndarray, axes: str, channel: int | None) -> np.ndarray:
    """Reduce a TIFF series to (Y, X) or (Z, Y, X)."""
    axes = axes.upper()
    if data.ndim != len(axes):  # memmap of a series: trust the data's shape
        axes = axes[-data.ndim:]
    # RGB samples; planar RGB (PlanarConfiguration 2: samples before the rows) is one
    # colour image, not a stack of 3 slices
    if "S" in axes and not axes.endswith("S") and data.shape[axes.index("S")] in (3, 4):
        si = axes.index("S")
        data = np.moveaxis(data, si, -1)
        axes = axes[:si] + axes[si + 1:] + "S"
    if axes.endswith("S") and data.shape[-1] in (3, 4):
        data = _to_grey(data)
        axes = axes[:-1]
    # channels
    if "C" in axes:
        ci = axes.index("C")
        nc = data.shape[ci]
        if nc == 1:
            data = data[(slice(None),) * ci + (0,)]  # a view: memory maps stay on disk
        elif channel is None:
            raise ImageReadError(f"{path}: the image has {nc} channels; choose one with "
                                 f"--channel N (0-{nc - 1})")
        elif not 0 <= channel < nc:
            raise ImageReadError(f"{path}: --channel {channel} out of range (0-{nc - 1})")
        else:
            data = data[(slice(None),) * ci + (channel,)]
        axes = axes.replace("C", "")
    elif channel not in (None, 0):
        raise ImageReadError(f"{path}: --channel {channel} given but the image has one channel")
    # any other leading axes (T, Z, Q, I, ...) are flattened into one stack axis
    if data.ndim > 3:
        data = data.reshape((-1,) + data.shape[-2:])
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    return data


def _tiff_pixel_size(tif) -> float | None:
    """Pixel size (nm) from OME, ImageJ or TIFF resolution metadata."""
    if tif.is_ome and tif.ome_metadata:
        px = _ome_pixel_size(tif.ome_metadata)
        if px is not None:
            return px
    from golddigger.io.em_formats import sem_tiff_pixel_size  # FEI/Zeiss SEM tags

    px = sem_tiff_pixel_size(tif)
    if px is not None:
        return px
    page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
    tags = page.tags
    res = tags.get("XResolution")
    px_per_unit = None
    if res is not None:
        num, den = res.value
        if num and den:
            px_per_unit = num / den
    ij = tif.imagej_metadata or {}
    if ij:
        unit = str(ij.get("unit", "")).replace("\\u00B5", "µ").replace("\\u00b5", "µ")
        if unit and px_per_unit and px_per_unit > 0:
            nm = to_nm(1.0 / px_per_unit, unit)
            if nm is not None:
                return nm
        return None  # ImageJ file with no (or pixel) calibration
    if px_per_unit and px_per_unit > 0:
        unit_tag = tags.get("ResolutionUnit")
        unit_val = int(unit_tag.value) if unit_tag is not None else 2
        if unit_val == 3:  # centimetre
            return 1e7 / px_per_unit
        # inch (2) is a print resolution (e.g. 72 dpi), not a length calibration;
        # unit 1 (none) has no length either.
    return None


def _ome_pixel_size(xml: str) -> float | None:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    for el in root.iter():
        if re.sub(r"\{.*\}", "", el.tag) == "Pixels":
            size = el.get("PhysicalSizeX")
            unit = el.get("PhysicalSizeXUnit", "µm")
            if size:
                return to_nm(float(size), unit)
    return None


def write_tiff(path: str | Path, data: np.ndarray, pixel_size_nm: float | None) -> None:
    """Write an ImageJ TIFF with its calibration in nm (atomically)."""
    import tifffile

    from golddigger.io.safe import atomic_path

    kwargs: dict = {"imagej": True}
    if pixel_size_nm:
        kwargs["resolution"] = (1.0 / pixel_size_nm, 1.0 / pixel_size_nm)
        kwargs["metadata"] = {"unit": "nm", "axes": "ZYX" if data.ndim == 3 else "YX"}
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, data, **kwargs)
