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


def start_private_xvfb(first: int = 91, screen: str = "1280x1024x24") -> str:
    """Start a private X display (windows never reach the user's screen) and return its
    name (":N"); skips the test when Xvfb is missing or does not start. It must outlive
    the GUI toolkit: Java's AWT and Qt end the process when their X server goes away, so
    a watchdog stops Xvfb only after this test process has exited."""
    import os
    import shutil
    import subprocess
    import sys
    import time

    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed")
    n = next(n for n in range(first, first + 300) if not Path(f"/tmp/.X11-unix/X{n}").exists()
             and not Path(f"/tmp/.X{n}-lock").exists())
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", screen, "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if Path(f"/tmp/.X11-unix/X{n}").exists():
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.skip("Xvfb did not start")
    watchdog = ("import os, sys, time\n"
                "parent, child = int(sys.argv[1]), int(sys.argv[2])\n"
                "while True:\n"
                "    try:\n"
                "        os.kill(parent, 0)\n"
                "    except OSError:\n"
                "        break\n"
                "    time.sleep(0.5)\n"
                "os.kill(child, 15)\n")
    subprocess.Popen([sys.executable, "-c", watchdog, str(os.getpid()), str(proc.pid)],
                     start_new_session=True, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    return f":{n}"
