"""Detection over files, under its earlier names: a thin layer over `golddigger.batch`.

``DetectOptions`` is `golddigger.batch.BatchOptions`; ``detect_files`` is
`golddigger.batch.run_batch` with the earlier ``on_progress`` keyword.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from golddigger.batch import BatchOptions, BatchResult, ImageResult, run_batch, summary_rows
from golddigger.io.conventions import outputs_for as _outputs_for

__all__ = ["DetectOptions", "ImageResult", "BatchResult", "detect_files", "summary_rows",
           "outputs_for"]

DetectOptions = BatchOptions


def outputs_for(path: Path, outdir: Path, overlay: bool = False) -> list[Path]:
    """The files detection writes for one image (named by its stem)."""
    return _outputs_for(Path(path).stem, outdir, overlay).all()


def detect_files(paths: Sequence[Path], detector, outdir: Path, options: BatchOptions,
                 on_progress: Callable[[int, int, Path], None] | None = None,
                 cancel=None) -> BatchResult:
    """`golddigger.batch.run_batch` (``on_progress`` is its ``progress``)."""
    return run_batch(paths, detector, outdir, options, progress=on_progress, cancel=cancel)
