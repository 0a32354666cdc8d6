"""``golddigger imagej --call ...``: the Python side of the installed ``.ijm`` commands.

When ImageJ was not started from Python, the installed macros save temporary copies of the
image and ROIs and run this program (by its absolute path, with an argument array: no
shell). It writes its results as files in the given folder and prints one status line on
stdout, which ImageJ's ``exec()`` returns to the macro:

    GOLDDIGGER OK particles=57 seconds=3.2
    GOLDDIGGER ERROR <one-line message>

Files written by ``--call detect`` in ``--out``: ``particles.csv`` (`ParticleTable`),
``rois.zip`` (RoiSet, `golddigger.io.rois.write_roiset`), ``results.csv`` and
``summary.csv`` (`golddigger.imagej.tables`); by ``--call preview`` (the installed Detect
Gold dialog's Preview): ``preview.csv`` and ``preview.txt``, and the candidates it reuses.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from golddigger.batch import detect_image
from golddigger.errors import GoldDiggerError
from golddigger.imagej import backend
from golddigger.imagej.options import (
    ANALYZE_FIELDS,
    DETECT_FIELDS,
    FOLDER_FIELDS,
    TRAINING_FIELDS,
    parse_options,
)
from golddigger.imagej.tables import rows_to_csv

__all__ = ["CALLS", "add_call_arguments", "run_call"]

logger = logging.getLogger(__name__)

OK = "GOLDDIGGER OK"
ERROR = "GOLDDIGGER ERROR"


def add_call_arguments(p: argparse.ArgumentParser) -> None:
    """The (hidden) options of ``golddigger imagej --call``."""
    h = argparse.SUPPRESS
    p.add_argument("--call", choices=sorted(CALLS), help=h)
    p.add_argument("--image", type=Path, help=h)
    p.add_argument("--roi", default="", help=h)
    p.add_argument("--rois", default="", help=h)
    p.add_argument("--out", type=Path, help=h)
    p.add_argument("--options", default="", help=h)
    p.add_argument("--slices", default="", help=h)
    p.add_argument("--stack-size", type=int, default=1, help=h)
    p.add_argument("--current-slice", type=int, default=-1, help=h)
    p.add_argument("--unit", default="um", help=h)
    p.add_argument("--name", default="", help=h)
    p.add_argument("--groups", type=int, default=0, help=h)
    p.add_argument("--detach", action="store_true", help=h)
    p.add_argument("--serve", action="store_true", help=h)
    p.add_argument("--watch", default="", help=h)
    p.add_argument("--layout", default="", help=h)


def run_call(args) -> int:
    """Run one call; print the status line; return the exit code.

    With ``--detach`` the call is started in the background (`golddigger.imagej.watch`),
    watched through ``--out``'s heartbeat file, and this prints ``GOLDDIGGER STARTED``.
    """
    import sys

    from golddigger.imagej import watch

    # the service and --detach forward this process's own command line: only when it is one
    # (not main([...]) called from Python, where sys.argv is the caller's)
    own = len(sys.argv) > 1 and sys.argv[1] == "imagej" and any(
        a.startswith("--call") for a in sys.argv)
    if args.detach and own:
        argv = [a for a in sys.argv[1:] if a != "--detach"] + [f"--watch={args.out}"]
        pid = watch.start_detached(argv, _need(args.out, "out"))
        print(f"GOLDDIGGER STARTED pid={pid}", flush=True)
        return 0
    from golddigger.imagej import service

    if own and service.enabled():
        # the model stays loaded in the user's Gold Digger service between calls
        imagej_pid = int(os.environ.get("GOLDDIGGER_IMAGEJ_PID") or os.getppid())
        answer = service.call(sys.argv[1:], imagej_pid)
        if answer is not None:
            sys.stdout.write(answer["stdout"])
            sys.stdout.flush()
            if args.watch:  # a detached call: this process's stdout is status.txt
                watch.mark_done(args.watch)
            return int(answer["code"])
        logger.warning("no Gold Digger service; running the call in this process")
    global _WATCH
    # in the service the client still has to write the answer: it says ``done`` itself
    _WATCH = (watch.Watch(args.watch, announce=not service.inside()) if args.watch
              else None)
    try:
        return _run_call(args)
    finally:
        if _WATCH is not None:
            _WATCH.finish()


#: The heartbeat watch of a detached call (None otherwise).
_WATCH = None


def _run_call(args) -> int:
    t0 = time.perf_counter()
    try:
        info = CALLS[args.call](args)
    except (GoldDiggerError, OSError) as err:
        from golddigger.imagej.messages import imagej_terms

        # the macro shows this to the user: ImageJ's terms, the image's title, no temp paths
        text = imagej_terms(" ".join(str(err).split()), args.name or "the image")
        print(f"{ERROR} {text}", flush=True)
        return 2
    except Exception as err:  # report anything to the macro rather than a silent failure
        if _WATCH is not None and _WATCH.is_set():
            return 3  # cancelled from ImageJ (Esc): nothing to report, the folder goes
        logger.exception("imagej --call %s failed", args.call)
        print(f"{ERROR} internal error: {type(err).__name__}: {err}", flush=True)
        return 2
    info["seconds"] = f"{time.perf_counter() - t0:.1f}"
    print(OK + " " + " ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    return 0


def _need(value, what: str):
    if value in (None, "") or str(value) == ".":
        raise GoldDiggerError(f"--{what} is required")
    return value


def _unit(text: str) -> tuple[str, float]:
    from golddigger.io.images import to_nm

    t = (text or "").strip()
    if t.lower() in ("um", "micron", "microns", "µm", "μm", ""):
        return "µm", 1000.0
    nm = to_nm(1.0, t)
    return (t, nm) if nm is not None else ("µm", 1000.0)


def _call_detect(args) -> dict:
    from golddigger.io.images import read_image
    from golddigger.io.rois import read_region, write_roiset

    values = parse_options(args.options, DETECT_FIELDS, "Detect Gold")
    options = backend.batch_options(values)
    out = Path(_need(args.out, "out"))
    image = read_image(_need(args.image, "image"), pixel_size_nm=options.pixel_size_nm)
    region = None
    if args.roi:
        # as a mask: ImageJ's own pixels of the selection, as the Python-hosted path uses
        found = read_region(args.roi, image.shape_yx)
        # the macro's temporary file names are no names for the user
        name = found.name if found.name not in ("", "region", "selection-keep") else "selection"
        region = backend.Region.from_mask(found.to_mask(image.shape_yx), name=name)
    if args.slices.strip():
        mapping = [int(s) for s in args.slices.replace(";", ",").split(",") if s.strip()]
    else:
        mapping = list(range(image.n_slices))
    if len(mapping) != image.n_slices:
        raise GoldDiggerError(f"--slices lists {len(mapping)} positions for "
                              f"{image.n_slices} plane(s)")
    detector = backend.get_detector(str(values["model"]), str(values["precision"]))
    result = detect_image(detector, image, region, options, slice_numbers=mapping,
                          region_name=region.name if region is not None else "image",
                          cancel=_WATCH, on_plane=_WATCH.progress if _WATCH else None)
    if _WATCH is not None and _WATCH.is_set():
        raise RuntimeError("cancelled")
    det = backend.Detection.from_result(result, args.name or image.name)
    unit, unit_nm = _unit(args.unit)
    out.mkdir(parents=True, exist_ok=True)
    det.particles.to_csv(out / "particles.csv")
    write_roiset(out / "rois.zip", det.particles, det.pixel_size_nm, shape=options.shape,
                 groups=bool(args.groups), positions=args.stack_size > 1,
                 properties={"image": args.name} if args.name else None)
    rows_to_csv(det.results(unit, unit_nm), out / "results.csv", plain=True)
    rows_to_csv(det.summary(), out / "summary.csv", plain=True)
    if args.layout:
        _write_layout(args.layout, out / "layout.txt")
    return {"particles": len(det.particles), "detector_seconds": f"{det.seconds:.1f}"}


def _write_layout(geometry: str, path: Path) -> None:
    """``layout.txt`` for the installed Detect Gold: where its result windows go
    (`golddigger.imagej.layout`), one ``title<TAB>x<TAB>y<TAB>width<TAB>height`` line each,
    from ``screen_w,screen_h,image_x,image_y,image_w,image_h`` (the macro's
    ``gdLayoutArg``)."""
    from golddigger.imagej.layout import result_windows

    try:
        v = [int(float(s)) for s in geometry.split(",")]
        screen, image = (v[0], v[1]), (tuple(v[2:6]) if len(v) >= 6 and v[4] > 0 else None)
    except (ValueError, IndexError):
        logger.warning("bad --layout %r; the windows stay where ImageJ puts them", geometry)
        return
    where = result_windows(screen, image)
    path.write_text("".join("\t".join([title, *map(str, box)]) + "\n"
                            for title, box in where.items()), encoding="utf-8")


#: Fields of the Detect Gold options on which the preview's candidates depend (a change of
#: any of these computes the class maps again; threshold, region and the model's own
#: classes only re-filter; sizes the model does not have get candidates of their own).
_MAP_KEYS = ("model", "precision", "tta", "sizing", "pixel_size")


def _call_preview(args) -> dict:
    """Detect Gold's Preview in the installed dialog: the particles of the options'
    threshold and classes on one plane (``--image``: the current slice, ``--slices``: its
    0-based index), inside ``--roi``.

    The candidates (`golddigger.live.find_candidates`: the network once) are kept in
    ``--out`` (``candidates.npz``, with the settings and image they depend on in
    ``candidates.json``) and reused while those stay the same, so a new threshold or class
    list only re-filters them (`Detector.apply_thresholds`, as `Detector.predict` does).
    Writes ``preview.csv`` (what the macro draws: ``shape,x,y,size,colour``, ovals by their
    top-left corner and diameter in pixels, points by their centre) and ``preview.txt`` (the
    dialog's message)."""
    import json

    from golddigger.io.images import read_image
    from golddigger.io.rois import class_colors, read_region
    from golddigger.live import find_candidates
    from golddigger.particles import ParticleTable

    values = parse_options(args.options, DETECT_FIELDS, "Detect Gold")
    options = backend.batch_options(values)
    out = Path(_need(args.out, "out"))
    path = Path(_need(args.image, "image"))
    image = read_image(path, pixel_size_nm=options.pixel_size_nm)
    px = image.require_pixel_size()
    plane = np.asarray(image.slice(0) if image.is_stack else image.data)
    index = int(args.slices.split(",")[0]) if args.slices.strip() else 0
    region = None
    if args.roi:
        region = backend.Region.from_mask(read_region(args.roi, image.shape_yx)
                                          .to_mask(image.shape_yx), name="selection")
    detector = backend.get_detector(str(values["model"]), str(values["precision"]))
    stat = path.stat()
    # sizes the model does not have are found at their own scale and measured: their
    # candidates are their own
    free = (list(options.classes) if options.classes
            and detector._free_classes(list(options.classes)) is not None else None)
    key = {k: str(values[k]) for k in _MAP_KEYS}
    key.update(image=str(path.resolve()), size=stat.st_size, mtime=stat.st_mtime_ns,
               slice=index, pixel_size_nm=px,
               classes=None if free is None else [str(c) for c in free])
    cache, cache_key = out / "candidates.npz", out / "candidates.json"
    reused = (cache.is_file() and cache_key.is_file()
              and json.loads(cache_key.read_text(encoding="utf-8")) == key)
    if reused:
        with np.load(cache) as z:
            table = ParticleTable(**{k: z[k] for k in z.files})
    else:
        table = find_candidates(detector, plane, px, slice_index=index,
                                sizing=options.sizing, tta=options.tta, classes=free)
        np.savez(cache, **table.columns())
        cache_key.write_text(json.dumps(key), encoding="utf-8")
    found = detector.apply_thresholds(table, options.threshold,
                                      list(options.classes) if options.classes else None,
                                      region)
    colours = class_colors(found.classes)
    rows = ["shape,x,y,size,colour"]
    for x, y, d, _, _ in found:
        colour = colours[min(colours, key=lambda c: abs(c - d))]
        if options.shape == "point":
            rows.append(f"point,{x:.3f},{y:.3f},0,{colour}")
        else:
            r = d / px / 2.0
            rows.append(f"oval,{x + 0.5 - r:.3f},{y + 0.5 - r:.3f},{2 * r:.3f},{colour}")
    (out / "preview.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    per = ", ".join(f"{d:g} nm: {len(found.of_class(d))}" for d in found.classes)
    thr = (f"threshold {options.threshold:g}" if options.threshold
           else "the model's thresholds")
    message = (f"Preview (slice {index + 1}, {thr}): {len(found)} particles"
               + (f" ({per})" if per else "") + ".\nChange the settings and press OK to "
               "see them again; untick Preview and press OK to run Detect Gold.")
    (out / "preview.txt").write_text(message, encoding="utf-8")
    return {"particles": len(found), "maps": "reused" if reused else "computed"}


def _call_folder_image(args) -> dict:
    values = parse_options(args.options, FOLDER_FIELDS, "Detect Gold in Folder")
    detector = backend.get_detector(str(values["model"]), str(values["precision"]))
    r = backend.detect_file(_need(args.image, "image"), _need(args.out, "out"), detector, values)
    if r.error:
        raise GoldDiggerError(r.error)
    if r.skipped:
        return {"particles": 0, "skipped": 1}
    return {"particles": len(r.detection.particles), "csv": r.csv.name}


def _call_folder_summary(args) -> dict:
    path = backend.write_folder_summary(_need(args.out, "out"))
    return {"summary": path.name}


def _call_training(args) -> dict:
    from golddigger.io.images import read_image

    values = parse_options(args.options, TRAINING_FIELDS, "Add to Training Set")
    px_override = float(values["pixel_size"] or 0) or None
    image = read_image(_need(args.image, "image"), pixel_size_nm=px_override)
    px = image.require_pixel_size()
    rois = _need(args.rois, "rois")
    current = None if args.current_slice < 0 else int(args.current_slice)
    particles = backend.particles_from_roiset(rois, px, float(values["default_class"]),
                                              current_slice=current)
    data = image.data
    if current is not None and image.is_stack:
        data = image.slice(current)
    folder = _need(str(values["folder"]).strip(), "options folder=")
    stem = str(values["name"]).strip() or backend.safe_stem(args.name or image.name)
    pair = backend.save_training_pair(np.asarray(data), px, particles, folder, stem,
                                      bool(values["overwrite"]), args.roi or None)
    counts = "/".join(f"{len(particles.of_class(d))}x{d:g}nm" for d in particles.classes)
    return {"particles": len(particles), "classes": counts, "image": pair.image.name,
            "csv": pair.csv.name}


def _call_analyze(args) -> dict:
    from golddigger.imagej import analyze

    values = parse_options(args.options, ANALYZE_FIELDS, "Analyze Gold Distribution")
    return analyze.run_from_files(args, values)


#: ``--call`` name -> function(args) -> dict of status fields.
CALLS: dict[str, Callable] = {
    "detect": _call_detect,
    "preview": _call_preview,
    "folder-image": _call_folder_image,
    "folder-summary": _call_folder_summary,
    "training": _call_training,
    "analyze": _call_analyze,
}
