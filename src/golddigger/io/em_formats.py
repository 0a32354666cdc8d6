"""Micrographs as the microscope wrote them: Gatan DM3/DM4, FEI/Thermo TIA (.ser/.emi),
Velox EMD, MRC (SerialEM stacks and montages), and the pixel size of FEI/Zeiss SEM TIFFs.

DM/TIA/EMD are read with rosettasciio (GPL-3.0, the optional ``formats`` extra, imported
only when such a file is read); MRC with mrcfile (BSD-3) as a memory map; the SEM tags of
TIFFs with tifffile's own parsers. Each reader returns the pixels as ``(Y, X)`` or
``(Z, Y, X)`` and the pixel size in nm, and refuses with one line what is not a micrograph
Gold Digger can use: spectra and spectrum images, diffraction patterns, complex data,
non-square pixels, and atomic-resolution calibrations.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from golddigger.errors import ImageReadError

__all__ = ["NATIVE_SUFFIXES", "FOLDER_SUFFIXES", "MIN_FILE_PIXEL_SIZE_NM", "read_native",
           "sem_tiff_pixel_size"]

logger = logging.getLogger(__name__)

#: Suffixes read by `read_native` (``.emi`` is TIA's metadata file: its ``_1.ser`` is read).
NATIVE_SUFFIXES = (".dm3", ".dm4", ".ser", ".emi", ".emd", ".mrc", ".mrcs", ".st")
#: The native suffixes listed when a folder is given (``.emi`` is left out: each ``.emi``
#: has its ``.ser``, which would be read twice).
FOLDER_SUFFIXES = tuple(s for s in NATIVE_SUFFIXES if s != ".emi")

#: A file's own calibration finer than this (nm/px) is atomic-resolution imaging, not
#: immunogold (a 6 nm particle would be over 60 px across); such files are refused unless
#: ``--pixel-size`` says the file's calibration is wrong.
MIN_FILE_PIXEL_SIZE_NM = 0.1

#: Non-square pixels within this relative difference count as square (rounding in headers).
_ANISOTROPY_TOLERANCE = 1e-3

_EXTRA = "pip install 'golddigger[formats]'"


# ---------------------------------------------------------------------------- dispatch
def read_native(path: Path, channel: int | None = None, pixel_size_given: bool = False
                ) -> tuple[np.ndarray, float | None]:
    """Pixels and pixel size (nm) of a native EM file.

    Parameters
    ----------
    path : Path
        A file with one of `NATIVE_SUFFIXES`.
    channel : int, optional
        Index of the image signal in files holding several (Velox EMD: HAADF, BF, ...).
    pixel_size_given : bool
        True when the user gives the pixel size (``--pixel-size``): a file calibration
        outside immunogold is then not an error (the user's value is used instead).

    Returns
    -------
    data, pixel_size_nm
        ``(Y, X)`` or ``(Z, Y, X)`` (a read-only memory map for MRC); None when the file
        has no length calibration.

    Raises
    ------
    ImageReadError
        Not an image (spectrum, diffraction), complex, non-square pixels, atomic
        resolution, unreadable, or the reader is not installed.
    """
    suffix = path.suffix.lower()
    if suffix in (".mrc", ".mrcs", ".st"):
        data, px = _read_mrc(path)
    else:
        data, px = _read_rsciio(path, suffix, channel)
    if px is not None and px < MIN_FILE_PIXEL_SIZE_NM and not pixel_size_given:
        from golddigger.io.images import PIXEL_SIZE_RANGE_NM

        raise ImageReadError(
            f"{path}: the file's pixel size is {px:.4g} nm, atomic-resolution imaging, not "
            f"immunogold (a 6 nm particle would be {6 / px:.0f} px across; Gold Digger needs "
            f"{MIN_FILE_PIXEL_SIZE_NM:g}-{PIXEL_SIZE_RANGE_NM[1]:g} nm/px); if the file's "
            "calibration is wrong, give the right one with --pixel-size NM")
    return data, px


# ---------------------------------------------------------------------------- rosettasciio
def _rsciio_reader(path: Path, suffix: str):
    try:
        if suffix in (".dm3", ".dm4"):
            from rsciio.digitalmicrograph import file_reader
        elif suffix in (".ser", ".emi"):
            from rsciio.tia import file_reader
        else:
            from rsciio.emd import file_reader
    except ImportError as err:
        missing = getattr(err, "name", None) or "rosettasciio"
        what = "rosettasciio" if missing.startswith("rsciio") else missing
        raise ImageReadError(f"{path}: reading {suffix[1:].upper()} files needs {what}, "
                             f"which is not installed: {_EXTRA}") from None
    return file_reader


def _read_rsciio(path: Path, suffix: str, channel: int | None
                 ) -> tuple[np.ndarray, float | None]:
    file_reader = _rsciio_reader(path, suffix)
    try:
        signals = file_reader(str(path), lazy=False)
    except ImageReadError:
        raise
    except Exception as err:  # rsciio raises many types for broken files
        raise ImageReadError(f"{path}: cannot read the {suffix[1:].upper()} file ({err}); "
                             "it may be truncated or corrupt") from None
    images = [s for s in signals if _n_signal_axes(s) == 2]
    if not images:
        raise ImageReadError(_not_an_image(path, signals))
    if len(images) > 1:
        names = [str(s.get("metadata", {}).get("General", {}).get("title", i))
                 for i, s in enumerate(images)]
        if channel is None:
            raise ImageReadError(f"{path}: the file holds {len(images)} images "
                                 f"({', '.join(names)}); choose one with --channel N "
                                 f"(0-{len(images) - 1})")
        if not 0 <= channel < len(images):
            raise ImageReadError(f"{path}: --channel {channel} out of range "
                                 f"(0-{len(images) - 1})")
        signal = images[channel]
    else:
        if channel not in (None, 0):
            raise ImageReadError(f"{path}: --channel {channel} given but the file holds "
                                 "one image")
        signal = images[0]
    data = np.asarray(signal["data"])
    _refuse_complex(path, data)
    axes = signal["axes"]
    sig = [a for a in axes if not a.get("navigate", False)]
    if len(sig) != 2 or data.ndim != len(axes):
        raise ImageReadError(f"{path}: unexpected layout of the data (shape {data.shape})")
    # signal axes last (rsciio's order is navigation first, then y, x)
    data = data.reshape((-1,) + data.shape[-2:]) if data.ndim > 2 else data
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    y_ax, x_ax = sig
    names = [str(a.get("name", "")).strip().lower() for a in sig]
    if names == ["x", "y"]:  # labelled the other way round (Velox EMD)
        x_ax, y_ax = sig
    px = _square_pixel(path, _axis_nm(path, y_ax), _axis_nm(path, x_ax),
                       str(y_ax.get("units")), str(x_ax.get("units")))
    return data, px


def _n_signal_axes(signal: dict) -> int:
    return sum(1 for a in signal.get("axes", []) if not a.get("navigate", False))


def _not_an_image(path: Path, signals: list[dict]) -> str:
    s = signals[0] if signals else {}
    kind = str(s.get("metadata", {}).get("Signal", {}).get("signal_type", "") or "")
    axes = s.get("axes", [])
    sig = [a for a in axes if not a.get("navigate", False)]
    nav = [a for a in axes if a.get("navigate", False) and int(a.get("size", 1)) > 1]
    if len(sig) == 1:
        a = sig[0]
        what = "a spectrum image" if nav else "a spectrum"
        label = f"{kind} " if kind else ""
        return (f"{path}: the file holds {what} ({label}{int(a.get('size', 0))} channels of "
                f"{a.get('name', 'signal')} in {a.get('units') or 'no unit'}), not an image; "
                "open the micrograph itself (an image file) instead")
    return (f"{path}: the file holds no 2D image (signal axes: "
            f"{', '.join(str(a.get('name')) for a in sig) or 'none'})")


def _axis_nm(path: Path, axis: dict) -> float | None:
    """One axis's scale in nm; None when uncalibrated."""
    from golddigger.io.images import to_nm

    unit = str(axis.get("units") or "").strip()
    if unit in ("n_m", "u_m", "µ_m", "p_m", "m_m"):  # Velox EMD's spelling via rosettasciio
        unit = unit.replace("_", "")
    scale = float(axis.get("scale", 1.0))
    if not unit or unit.lower() in ("<undefined>", "<auto>", "px", "pixel", "pixels"):
        return None
    if unit.replace(" ", "").lower() in ("1/nm", "nm^-1", "1/a", "1/å", "1/um", "mrad", "rad"):
        raise ImageReadError(f"{path}: the image is calibrated in {unit} (reciprocal or "
                             "angular space): a diffraction pattern, not a micrograph")
    nm = to_nm(scale, unit)
    if nm is None:
        logger.debug("%s: axis unit %r is not a length; no calibration", path, unit)
    return nm


def _square_pixel(path: Path, y_nm: float | None, x_nm: float | None,
                  y_unit: str = "nm", x_unit: str = "nm") -> float | None:
    """The pixel size when x and y agree; an error saying how to fix it when not."""
    if x_nm is None or y_nm is None:
        return x_nm if y_nm is None else y_nm if x_nm is None else None
    if x_nm <= 0 or y_nm <= 0:
        return None
    if abs(x_nm - y_nm) > _ANISOTROPY_TOLERANCE * max(x_nm, y_nm):
        ratio = y_nm / x_nm
        raise ImageReadError(
            f"{path}: the pixels are not square (x {x_nm:.4g} nm, y {y_nm:.4g} nm); "
            f"resample the image to square pixels first (ImageJ: Image > Scale, "
            f"Y scale {ratio:.4g}, then Image > Properties with {x_nm:.4g} nm for both)")
    return float(x_nm)


def _refuse_complex(path: Path, data: np.ndarray) -> None:
    if np.iscomplexobj(data):
        raise ImageReadError(f"{path}: the data are complex ({data.dtype}: a Fourier "
                             "transform or a wave function), not a micrograph; save the "
                             "image's amplitude or the real-space image instead")


# ---------------------------------------------------------------------------- MRC
def _read_mrc(path: Path) -> tuple[np.ndarray, float | None]:
    """An MRC image or stack as a read-only memory map (a SerialEM montage, with its
    ``.mdoc``, assembled as one image)."""
    try:
        import mrcfile
        from mrcfile.utils import data_dtype_from_header, data_shape_from_header
    except ImportError:
        raise ImageReadError(f"{path}: reading MRC files needs mrcfile, which is not "
                             f"installed: {_EXTRA}") from None
    try:
        with mrcfile.open(path, mode="r", header_only=True, permissive=True) as mrc:
            header = mrc.header.copy()
            voxel = mrc.voxel_size.copy()
    except Exception as err:
        raise ImageReadError(f"{path}: not a readable MRC file ({err})") from None
    mode = int(header.mode)
    if mode in (3, 4):
        raise ImageReadError(f"{path}: the data are complex (MRC mode {mode}: a Fourier "
                             "transform), not a micrograph; save the real-space image")
    try:
        dtype = data_dtype_from_header(header)
        shape = data_shape_from_header(header)
    except Exception as err:
        raise ImageReadError(f"{path}: unsupported MRC data (mode {mode}: {err})") from None
    if mode == 0 and _imod_unsigned_bytes(header):
        dtype = np.dtype(np.uint8)  # IMOD/SerialEM bytes are unsigned unless flagged
    offset = 1024 + int(header.nsymbt)
    need = offset + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if path.stat().st_size < need:
        raise ImageReadError(f"{path}: the header says {' x '.join(map(str, shape))} values "
                             f"but the file is too short; it is truncated: copy it again")
    data = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=tuple(shape))
    if data.ndim == 4:  # a stack of volumes: every plane is one image
        data = data.reshape((-1,) + data.shape[-2:])
    x_nm = float(voxel.x) / 10.0 if float(voxel.x) > 0 else None
    y_nm = float(voxel.y) / 10.0 if float(voxel.y) > 0 else None
    from golddigger.io.montage import mdoc_path, open_montage, read_mdoc

    mdoc = mdoc_path(path)
    if mdoc is not None:
        pieces = read_mdoc(mdoc)
        if pieces.get("pieces"):
            if not x_nm and pieces.get("pixel_nm"):
                x_nm = y_nm = pieces["pixel_nm"]
            data = open_montage(path, data.reshape((-1,) + data.shape[-2:]),
                                pieces["pieces"])
    px = _square_pixel(path, y_nm, x_nm, "Å", "Å")
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    return data, px


#: "IMOD" as the header's imodStamp; its imodFlags bit 0 says bytes are signed
_IMOD_STAMP = 1146047817


def _imod_unsigned_bytes(header) -> bool:
    """MRC mode 0 is signed in MRC2014, but IMOD and SerialEM write unsigned bytes and
    say so with the IMOD stamp (header bytes 152-159: imodStamp, imodFlags bit 0 clear)."""
    try:
        raw = np.asarray(header.extra2).tobytes()[40:48]  # extra2 starts at byte 112
        order = "<" if header.mode.dtype.byteorder in ("<", "=", "|") else ">"
        stamp, flags = np.frombuffer(raw, dtype=f"{order}i4")
    except (AttributeError, ValueError):
        return False
    return int(stamp) == _IMOD_STAMP and not int(flags) & 1


def set_imod_unsigned_bytes(header) -> None:
    """Mark an mrcfile header's mode-0 data as unsigned bytes, as SerialEM does."""
    raw = bytearray(np.asarray(header.extra2).tobytes())
    raw[40:48] = np.array([_IMOD_STAMP, 0], dtype="<i4").tobytes()
    header.extra2 = np.void(bytes(raw))


# ---------------------------------------------------------------------------- SEM TIFF
def sem_tiff_pixel_size(tif) -> float | None:
    """Pixel size (nm) from the FEI/Thermo (``[Scan] PixelWidth``, metres) or Zeiss
    (``ap_image_pixel_size``/``ap_pixel_size``) SEM tags of an open ``tifffile.TiffFile``."""
    fei = tif.fei_metadata if getattr(tif, "is_fei", False) else None
    if fei:
        scan = fei.get("Scan") or fei.get("EScan") or {}
        w, h = scan.get("PixelWidth"), scan.get("PixelHeight")
        try:
            if w:
                x_nm = float(w) * 1e9
                y_nm = float(h) * 1e9 if h else x_nm
                return _square_pixel(Path(tif.filehandle.path), y_nm, x_nm)
        except ImageReadError:
            raise
        except (TypeError, ValueError):
            pass
    sem = tif.sem_metadata if getattr(tif, "is_sem", False) else None
    if sem:
        from golddigger.io.images import to_nm

        for key in ("ap_image_pixel_size", "ap_pixel_size"):
            v = sem.get(key)
            if isinstance(v, (tuple, list)) and len(v) >= 3:
                try:
                    return to_nm(float(v[1]), str(v[2]))
                except (TypeError, ValueError):
                    continue
    return None
