"""Training and evaluation samples from files: what ``golddigger train``, the benchmarks
and cross-validation load (one implementation; the benchmarks import it).

Layouts
    `load_samples`: images with their annotations beside them, or in a ``labels`` folder
    (`golddigger.io.annotations.find_annotations`), and their region ``<stem>_region.*``.
    `load_labelled_folder`: a data folder with ``images/<stem>.*`` and
    ``labels/<stem>.csv`` (the layout of the development set).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from golddigger.io.conventions import TRAINING_REGION_SUFFIXES
from golddigger.train import Sample

__all__ = ["annotation_files", "load_labelled_folder", "load_samples", "region_for_training",
           "synthetic_set"]

logger = logging.getLogger(__name__)


def region_for_training(image: Path, labels: Path | None, shape):
    """The annotated region of a training image: ``<stem>_region.roi/.zip/.tif/.png`` in
    ``labels`` or beside the image; None (the labels' hull is used) when there is none."""
    from golddigger.io.rois import read_region

    for d in filter(None, (labels, image.parent)):
        for suffix in TRAINING_REGION_SUFFIXES:
            f = d / f"{image.stem}{suffix}"
            if f.is_file():
                return read_region(f, image_shape=shape)
    return None


def annotation_files(image: Path, labels: Path | None) -> list[Path]:
    """An image's annotation files: beside it, or with ``labels`` the same names there."""
    from golddigger.io.annotations import find_annotations
    from golddigger.io.conventions import ANNOTATION_PATTERNS

    if labels is None:
        return find_annotations(image)
    found = [labels / p.format(stem=image.stem) for p in ANNOTATION_PATTERNS]
    found = [f for f in found if f.is_file()]
    if (labels / image.stem).is_dir():
        found.append(labels / image.stem)
    return found


def load_samples(paths: Iterable[Path], labels: Path | None, pixel_size_nm: float | None
                 ) -> list[Sample]:
    """Training samples (one per image plane) from images and their annotations; images
    without annotations are skipped with a warning."""
    from golddigger.io.annotations import read_annotation_set
    from golddigger.io.images import read_image

    samples = []
    for path in paths:
        files = annotation_files(path, labels)
        if not files:
            logger.warning("%s: no annotations found; skipped", path)
            continue
        image = read_image(path, pixel_size_nm)
        px = image.require_pixel_size()
        particles = read_annotation_set(files, px)
        region = region_for_training(path, labels, image.shape_yx)
        for s in range(image.n_slices):
            name = path.stem if image.n_slices == 1 else f"{path.stem}[{s + 1}]"
            samples.append(Sample(name, np.asarray(image.slice(s)), px,
                                  particles.in_slice(s), region))
    return samples


def load_labelled_folder(data: Path, pixel_size_nm: float | None) -> list[Sample]:
    """Samples of a data folder laid out as ``images/<stem>.*`` + ``labels/<stem>.csv``."""
    from golddigger.io.images import read_image
    from golddigger.particles import ParticleTable

    samples = []
    for lab in sorted((Path(data) / "labels").glob("*.csv")):
        img_path = next((p for p in (Path(data) / "images").glob(lab.stem + ".*")), None)
        if img_path is None:
            continue
        img = read_image(img_path, pixel_size_nm=pixel_size_nm)
        samples.append(Sample(lab.stem, img.data, img.require_pixel_size(),
                              ParticleTable.from_csv(lab)))
    return samples


def synthetic_set(n: int, seed: int, pixel_size_nm: float,
                  classes_nm: Sequence[float] | None = None, dark_bands: float = 0.0,
                  dark_gold: float = 0.0) -> list[Sample]:
    """``n`` synthetic samples (`golddigger.train.synthetic_samples`) of the default classes."""
    from golddigger.model.config import ModelConfig
    from golddigger.train import synthetic_samples

    return synthetic_samples(n, pixel_size_nm, classes_nm or ModelConfig().classes_nm,
                             seed=seed, dark_band_density_per_um2=dark_bands,
                             dark_gold_fraction=dark_gold)
