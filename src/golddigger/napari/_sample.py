"""napari sample data: the bundled synthetic FRIL replica and its membrane outline."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from golddigger.errors import GoldDiggerError

__all__ = ["example_paths", "synthetic_fril"]


def example_paths() -> tuple[Path, Path]:
    """The bundled example image and its region ROI (a checkout's ``examples/``, or the
    copy a wheel installs under ``<prefix>/share/golddigger/examples``)."""
    from golddigger.model.folder import installed_data_dir

    folder = installed_data_dir("examples")
    image, region = folder / "synthetic_fril.tif", folder / "synthetic_fril_region.roi"
    if not image.is_file() or not region.is_file():
        raise GoldDiggerError(f"the bundled example is missing from {folder}; reinstall "
                              "golddigger")
    return image, region


def synthetic_fril() -> list[tuple]:
    """The synthetic example as an image layer (scale = its pixel size in nm) and its
    membrane outline as a Shapes layer (the region to count in)."""
    from golddigger.io.images import read_image
    from golddigger.io.rois import read_region

    image_path, region_path = example_paths()
    image = read_image(image_path)
    px = image.require_pixel_size()
    region = read_region(region_path, image_shape=image.shape_yx)
    geoms = getattr(region.geometry, "geoms", [region.geometry])
    polygons = [np.asarray(g.exterior.coords)[:-1, ::-1] for g in geoms]  # (row, col)
    scale = (px, px)
    return [
        (np.asarray(image.slice(0)), {"name": "synthetic_fril", "scale": scale,
                                      "units": "nm",
                                      "metadata": {"pixel_size_nm": px,
                                                   "source": str(image_path)}}, "image"),
        (polygons, {"name": "membrane", "shape_type": "polygon", "scale": scale,
                    "units": "nm",
                    "face_color": "transparent", "edge_color": "yellow", "edge_width": 3},
         "shapes"),
    ]
