"""Model folders: ``config.json``, ``weights.pt`` (a state dict), ``thresholds.json``,
``metrics.json`` and ``checksums.sha256``.

A folder the user trains loads exactly like a shipped one. Weights load with
``torch.load(weights_only=True)`` after the checksum is verified, so a model file cannot
execute code.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from golddigger.errors import ModelError
from golddigger.model.config import ModelConfig

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_FILES",
    "available_models",
    "installed_data_dir",
    "models_root",
    "read_model_folder",
    "resolve_model",
    "sha256_file",
    "update_model_folder",
    "write_model_folder",
]

#: The model `detect` uses when none is named.
DEFAULT_MODEL = "fril-gold-v3"
MODEL_FILES = ("config.json", "weights.pt", "thresholds.json", "metrics.json")


def models_root() -> Path:
    """Where shipped models live: ``$GOLDDIGGER_MODELS``, else the repository's ``models/``
    (beside ``src/``: a source checkout or editable install), else
    ``<prefix>/share/golddigger/models`` (where a wheel installs them)."""
    env = os.environ.get("GOLDDIGGER_MODELS")
    if env:
        return Path(env)
    return installed_data_dir("models")


def installed_data_dir(name: str) -> Path:
    """The repository's top-level folder ``name`` when running from a checkout, else the
    copy a wheel installs under ``<prefix>/share/golddigger/`` (pyproject's data-files)."""
    checkout = Path(__file__).resolve().parents[3] / name
    if checkout.is_dir():
        return checkout
    import sys

    for prefix in (sys.prefix, sys.base_prefix):
        shared = Path(prefix) / "share" / "golddigger" / name
        if shared.is_dir():
            return shared
    return checkout


def available_models() -> list[str]:
    """Names of the model folders in `models_root`."""
    root = models_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())


def resolve_model(name_or_path: str | os.PathLike | None) -> Path:
    """A model folder from a name (in `models_root`) or a path; None means the default."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    path = Path(name_or_path)
    if path.is_dir():
        return path
    candidate = models_root() / str(name_or_path)
    if candidate.is_dir():
        return candidate
    names = ", ".join(available_models()) or "none"
    raise ModelError(f"model {str(name_or_path)!r} not found: give a model folder or one of "
                     f"the installed models ({names}) in {models_root()}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_model_folder(folder: str | Path, config: ModelConfig, state_dict: dict,
                       thresholds: dict, metrics: dict) -> Path:
    """Write a complete model folder (files written atomically)."""
    import torch

    from golddigger.io.safe import atomic_path, atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "weights.pt") as tmp:
        torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, tmp)
    atomic_write_text(folder / "config.json", config.model_dump_json(indent=2) + "\n")
    atomic_write_text(folder / "thresholds.json", json.dumps(thresholds, indent=2) + "\n")
    atomic_write_text(folder / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    lines = [f"{sha256_file(folder / n)}  {n}" for n in MODEL_FILES]
    atomic_write_text(folder / "checksums.sha256", "\n".join(lines) + "\n")
    return folder


def _one_line(err: Exception) -> str:
    """A validation error as one line (pydantic's messages span several)."""
    errors = getattr(err, "errors", None)
    if callable(errors):
        try:
            return "; ".join(f"{'.'.join(map(str, e.get('loc', ()))) or 'config'}: {e['msg']}"
                             for e in errors())
        except Exception:  # not pydantic's shape after all
            pass
    return " ".join(str(err).split())


def read_model_folder(folder: str | Path, verify: bool = True
                      ) -> tuple[ModelConfig, dict, dict, dict]:
    """Read and check a model folder.

    Returns
    -------
    config, state_dict, thresholds, metrics

    Raises
    ------
    ModelError
        A missing file, a checksum mismatch, or an invalid config.
    """
    import torch

    folder = Path(folder)
    missing = [n for n in MODEL_FILES if not (folder / n).is_file()]
    if missing:
        raise ModelError(f"{folder}: model folder is missing {', '.join(missing)}; "
                         "re-copy the folder or retrain")
    if verify:
        sums = folder / "checksums.sha256"
        if not sums.is_file():
            raise ModelError(f"{folder}: no checksums.sha256; the model cannot be verified")
        expected = {}
        for line in sums.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                expected[parts[1]] = parts[0]
        for name in MODEL_FILES:
            if expected.get(name) != sha256_file(folder / name):
                raise ModelError(f"{folder / name}: checksum mismatch; the file is corrupt or "
                                 "was changed; re-copy the model folder")
    try:
        config = ModelConfig.model_validate_json((folder / "config.json").read_text())
        thresholds = json.loads((folder / "thresholds.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
    except (ValueError, OSError) as err:
        raise ModelError(f"{folder}: invalid model files ({_one_line(err)})") from None
    try:
        state = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors have many types
        raise ModelError(f"{folder / 'weights.pt'}: cannot load weights ({err})") from None
    return config, state, thresholds, metrics


def update_model_folder(folder: str | Path, *, config: ModelConfig | None = None,
                        thresholds: dict | None = None, metrics: dict | None = None) -> Path:
    """Replace a model folder's config, thresholds or metrics (weights unchanged) and
    rewrite its checksums; e.g. to store thresholds tuned by cross-validation."""
    old_config, state, old_thr, old_metrics = read_model_folder(folder)
    return write_model_folder(folder, config or old_config, state,
                              old_thr if thresholds is None else thresholds,
                              old_metrics if metrics is None else metrics)
