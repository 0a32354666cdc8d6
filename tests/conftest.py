"""Shared fixtures: small synthetic images, the real data folder when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "mpfi-fril"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real FRIL development set (../shared/data/mpfi-fril); skips when absent."""
    if not (REAL_DATA / "labels").is_dir():
        pytest.skip("real data ../shared/data/mpfi-fril not present")
    return REAL_DATA


@pytest.fixture(scope="session")
def example_image() -> Path:
    return REPO / "examples" / "synthetic_fril.tif"


def disc_image(shape=(200, 240), centres=((50.3, 60.7), (120.0, 150.5)), radius=5.0,
               background=180.0, depth=120.0, noise=3.0, seed=0) -> np.ndarray:
    """Grey background with dark discs at (x, y) centres: a hand-made micrograph."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.full(shape, background, dtype=np.float64)
    for x, y in centres:
        r = np.hypot(xx - x, yy - y)
        img -= depth * np.clip(radius + 0.5 - r, 0, 1)
    img += rng.normal(0, noise, shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny model folder with random weights (fast; for tests about what happens around
    the detector, not its accuracy)."""
    import torch

    from golddigger.model.config import ModelConfig
    from golddigger.model.folder import write_model_folder
    from golddigger.model.networks import UNetGenerator

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model") / "tiny"
    return write_model_folder(folder, ModelConfig(name="tiny", base_channels=4, tile_size=128),
                              UNetGenerator(3, 4, 4).state_dict(), {"threshold": 0.5}, {})
