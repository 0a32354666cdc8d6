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
from collections.abc import Sequence
from pathlib import Path

from golddigger.errors import ModelError
from golddigger.model.config import ModelConfig

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_FILES",
    "available_models",
    "installed_data_dir",
    "models_covering",
    "models_root",
    "read_model_folder",
    "resolve_model",
    "check_state_dict",
    "gold_validated",
    "sha256_file",
    "update_model_folder",
    "validated_gold_nm",
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


def validated_gold_nm(name_or_path: str | os.PathLike) -> tuple[float, float] | None:
    """The gold diameters (nm) a model folder was validated on, read from its
    ``metrics.json`` (``"validated"``), else its config's gold range or classes; None
    when the folder cannot be read. Weights are not loaded."""
    try:
        folder = resolve_model(name_or_path)
        config = json.loads((folder / "config.json").read_text())
        metrics_file = folder / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    except (OSError, ValueError, ModelError):
        return None
    return gold_validated(metrics, config.get("gold_range_nm"), config.get("classes_nm"))


def gold_validated(metrics: dict, gold_range_nm: Sequence[float] | None,
                   classes_nm: Sequence[float] | None) -> tuple[float, float] | None:
    """The gold diameters (nm) a model was validated on: its metrics' ``"validated"``
    ``gold_nm``, else its gold range (a gold-map model), else its classes' span."""
    gold = ((metrics.get("validated") or {}).get("gold_nm") or gold_range_nm or classes_nm)
    if not gold:
        return None
    return float(min(gold)), float(max(gold))


def models_covering(sizes_nm: Sequence[float], exclude: str = "") -> list[str]:
    """Installed models validated on every one of ``sizes_nm`` (nm), except ``exclude``."""
    out = []
    for name in available_models():
        gold = validated_gold_nm(name) if name != exclude else None
        if gold and all(gold[0] * 0.999 <= d <= gold[1] * 1.001 for d in sizes_nm):
            out.append(name)
    return out


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
    from golddigger.model.config import ModelMetrics, Thresholds

    parts = {}
    for name, schema in (("config.json", ModelConfig), ("thresholds.json", Thresholds),
                         ("metrics.json", ModelMetrics)):
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, got {type(data).__name__}")
            parts[name] = schema.model_validate(data)
        except (ValueError, OSError) as err:  # pydantic's ValidationError is a ValueError
            raise ModelError(f"{folder / name}: invalid model files ({_one_line(err)})"
                             ) from None
    config = parts["config.json"]
    thresholds = parts["thresholds.json"].model_dump(exclude_unset=True)
    metrics = parts["metrics.json"].model_dump(exclude_unset=True)
    state = _load_state(folder / "weights.pt")
    check_state_dict(state, config, folder / "weights.pt")
    return config, state, thresholds, metrics


def _load_state(path: Path) -> dict:
    """``torch.load(weights_only=True)`` with its refusals as one line."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ModelError(f"{path}: cannot load weights (refused: the file holds Python objects "
                         "besides tensors, which could run code); use a model folder written "
                         "by Gold Digger") from None
    except Exception as err:  # damaged files raise many types
        raise ModelError(f"{path}: cannot load weights ({_one_line(err)})") from None
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ModelError(f"{path}: cannot load weights (not a state dict of named tensors but "
                         f"a {type(state).__name__}); use a model folder written by Gold "
                         "Digger")
    return state


def check_state_dict(state: dict, config: ModelConfig, path: Path | str = "weights.pt") -> None:
    """Refuse weights that do not fit the config's network (another architecture, other
    classes or widths), in one line."""
    from golddigger.model.networks import UNetGenerator

    expected = {k: tuple(v.shape) for k, v in
                UNetGenerator(config.n_maps, config.base_channels, config.depth)
                .state_dict().items()}
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    if missing or extra or wrong:
        what = []
        if missing:
            what.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if extra:
            what.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
        if wrong:
            k = wrong[0]
            what.append(f"{len(wrong)} of other shapes (e.g. {k}: {tuple(state[k].shape)} "
                        f"instead of {expected[k]})")
        raise ModelError(f"{path}: weights do not fit the config (another network: "
                         f"{'; '.join(what)} tensors); use the config.json that came with "
                         "these weights")


def update_model_folder(folder: str | Path, *, config: ModelConfig | None = None,
                        thresholds: dict | None = None, metrics: dict | None = None) -> Path:
    """Replace a model folder's config, thresholds or metrics (weights unchanged) and
    rewrite its checksums; e.g. to store thresholds tuned by cross-validation."""
    old_config, state, old_thr, old_metrics = read_model_folder(folder)
    return write_model_folder(folder, config or old_config, state,
                              old_thr if thresholds is None else thresholds,
                              old_metrics if metrics is None else metrics)
