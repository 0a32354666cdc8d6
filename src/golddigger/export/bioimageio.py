"""A model folder as a BioImage.IO model package (spec 0.5), for deepImageJ, bioimageio.core
and the BioImage Model Zoo.

The package holds the generator as `golddigger.model.networks.MapsGenerator` (the U-Net
with Gold Digger's mirrored edge context and the sigmoid inside: one probability map per
gold class) in three weight formats: the state dict with ``networks.py`` as its
architecture (that module imports nothing but torch), TorchScript and ONNX; a synthetic
test tile with the maps it must give; the input normalisation as spec preprocessing; a
model card (README.md) with the pixel size and the post-processing that turns maps into
particles; a cover picture; the citation and licence.

`bioimageio.spec`, `bioimageio.core`, ``onnx`` and ``onnxscript`` are imported inside the
functions that need them (the ``golddigger[bioimageio]`` extra); the rest of Gold Digger
never imports this module.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golddigger.errors import GoldDiggerError
from golddigger.model.config import ModelConfig

__all__ = [
    "CITATION_DOI",
    "CITATION_TEXT",
    "WEIGHT_FORMATS",
    "ExportResult",
    "PackageNormalisation",
    "channel_names",
    "cover_image",
    "export_bioimageio",
    "maps_network",
    "model_card",
    "normalise_for_package",
    "package_normalisation",
    "synthetic_test_tile",
]

logger = logging.getLogger(__name__)

#: Weight formats written, in bioimageio's names; the first is the source of the others.
WEIGHT_FORMATS = ("pytorch_state_dict", "torchscript", "onnx")
ONNX_OPSET = 17
CITATION_TEXT = ("Jerez D, Stuart E, Schmitt K, Guerrero-Given D, Christie JM, Hahn WE, "
                 "Kamasawa N, Smirnov MS. A deep learning approach to identifying immunogold "
                 "particles in electron microscopy images. Scientific Reports 11 (2021).")
CITATION_DOI = "10.1038/s41598-021-87015-2"
LICENSE = "BSD-2-Clause"
#: Names of the files inside the package.
_FILES = {
    "pytorch_state_dict": "weights_state_dict.pt",
    "architecture": "golddigger_networks.py",
    "torchscript": "weights_torchscript.pt",
    "onnx": "weights.onnx",
    "test_input": "test_input.npy",
    "test_output": "test_output.npy",
    "sample_input": "sample_input.tif",
    "sample_output": "sample_output.tif",
    "cover": "cover.png",
    "card": "README.md",
    "config": "golddigger_config.json",
    "thresholds": "golddigger_thresholds.json",
}
INPUT_ID = "image"
_INCOMPATIBLE = ("bioimageio.spec cannot write packages with this pydantic (its serializers "
                 "fail with pydantic 2.14 / pydantic-core 2.50): install pydantic<2.14, as "
                 "pip install 'golddigger[bioimageio]' does")
OUTPUT_ID = "maps"


# ============================================================================ normalisation
@dataclass(frozen=True)
class PackageNormalisation:
    """The input normalisation the package declares as spec preprocessing.

    Gold Digger normalises a plane by its median and robust spread, ``(x - median) /
    (1.4826 * MAD)``, clipped to [-20, 20] (`golddigger.model.preprocess.normalise`). The
    spec cannot express a MAD; its closest operation is ``scale_range`` with per-sample
    percentiles: ``(x - p50) / (p75 - p50)`` (the median exactly, and the upper quartile's
    distance from it, which is the MAD for a symmetric histogram), followed by
    ``scale_linear`` with gain ``1 / 1.4826`` and ``clip``. Gold and other dark matter sit
    below the median, so the upper quartile is little affected by them.

    Attributes
    ----------
    centre_percentile, spread_percentile : float
        ``scale_range``'s ``min_percentile`` and ``max_percentile``.
    spread_factor : float
        The spread is ``spread_factor * (p[spread] - p[centre])``.
    clip : float
        Normalised values are clipped to ``[-clip, clip]``.
    eps : float
        ``scale_range``'s epsilon (added to the spread).
    """

    centre_percentile: float = 50.0
    spread_percentile: float = 75.0
    spread_factor: float = 1.4826
    clip: float = 20.0
    eps: float = 1e-6


def package_normalisation() -> PackageNormalisation:
    """The package's input normalisation: the one place that decides it.

    The spec description (`_preprocessing`), the test output (`normalise_for_package`)
    and the model card all follow what this returns, so a change of Gold Digger's own
    normalisation (`golddigger.model.preprocess`) is mirrored here once.
    """
    return PackageNormalisation()


def normalise_for_package(image: np.ndarray,
                          norm: PackageNormalisation | None = None) -> np.ndarray:
    """What a BioImage.IO consumer computes from the package's preprocessing, in numpy.

    Parameters
    ----------
    image : (H, W) array
        One plane, any grey dtype.
    norm : PackageNormalisation, optional
        Default `package_normalisation`.

    Returns
    -------
    (H, W) float32 array.
    """
    norm = norm or package_normalisation()
    a = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(a, [norm.centre_percentile, norm.spread_percentile])
    out = (a - np.float32(lo)) / np.float32(hi - lo + norm.eps)
    out *= np.float32(1.0 / norm.spread_factor)
    return np.clip(out, -norm.clip, norm.clip).astype(np.float32)


def _preprocessing(norm: PackageNormalisation) -> list:
    """`norm` as spec-0.5 preprocessing steps (per sample, over y and x)."""
    from bioimageio.spec.model import v0_5 as spec

    axes = [spec.AxisId("y"), spec.AxisId("x")]
    return [
        spec.EnsureDtypeDescr(kwargs=spec.EnsureDtypeKwargs(dtype="float32")),
        spec.ScaleRangeDescr(kwargs=spec.ScaleRangeKwargs(
            axes=axes, min_percentile=norm.centre_percentile,
            max_percentile=norm.spread_percentile, eps=norm.eps)),
        spec.ScaleLinearDescr(kwargs=spec.ScaleLinearKwargs(gain=1.0 / norm.spread_factor)),
        spec.ClipDescr(kwargs=spec.ClipKwargs(min=-norm.clip, max=norm.clip)),
    ]


# ============================================================================ pieces
def channel_names(config: ModelConfig) -> list[str]:
    """Output channel names, one per class: ``gold_6nm``, ``gold_12nm``, ...; a gold-map
    model (``config.output == "gold"``) has one, ``gold``."""
    if config.output == "gold":
        return ["gold"]
    return [f"gold_{d:g}nm".replace(".", "p") for d in config.classes_nm]


def maps_network(config: ModelConfig, state_dict: dict):
    """The `MapsGenerator` of a model folder, in eval mode."""
    from golddigger.model.networks import MapsGenerator

    net = MapsGenerator(config.n_maps, config.base_channels, config.depth,
                        config.edge_pad_px)
    try:
        net.load_state_dict(state_dict)
    except RuntimeError as err:
        raise GoldDiggerError(f"model {config.name!r}: weights do not fit the config "
                              f"({err})") from None
    return net.eval()


def _architecture_kwargs(config: ModelConfig) -> dict:
    return {"n_classes": config.n_maps, "base": config.base_channels,
            "depth": config.depth, "edge_pad": config.edge_pad_px}


def synthetic_test_tile(config: ModelConfig, size: int = 256, seed: int = 0) -> np.ndarray:
    """A synthetic FRIL tile at the model's pixel size with gold of every class
    (`golddigger.synth`), as float32 (grey values 0-255)."""
    from golddigger.synth import SynthConfig, generate

    small = min(config.classes_nm)
    counts = {float(d): (6 if d == small else 2) for d in config.classes_nm}
    synth = SynthConfig(shape=(size, size), pixel_size_nm=config.pixel_size_nm,
                        classes=tuple(config.classes_nm), counts=counts)
    return generate(synth, seed=seed).image.astype(np.float32)


def cover_image(tile: np.ndarray, maps: np.ndarray, colours: list[str]) -> np.ndarray:
    """A cover picture: the tile (contrast-stretched) beside the maps, each class in its
    colour (the colours of Gold Digger's Fiji overlays). Returns ``(H, 2W, 3)`` uint8."""
    lo, hi = np.percentile(tile, [0.5, 99.5])
    grey = np.clip((tile - lo) / max(hi - lo, 1e-6), 0, 1)
    left = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2)
    rgb = np.array([[int(c.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4)] for c in colours],
                   dtype=np.float32)
    right = np.clip(np.einsum("chw,ck->hwk", np.clip(maps, 0, 1), rgb), 0, 255)
    return np.concatenate([left, right.astype(np.uint8)], axis=1)


def _gold_map_note(config: ModelConfig) -> str:
    if config.output != "gold":
        return ""
    lo, hi = config.gold_range_nm  # type: ignore[misc]
    return (f"This model has one map, `gold`, for gold of any diameter from {lo:g} to "
            f"{hi:g} nm. Peaks are found with the window of the smallest ({lo:g} nm); "
            "each particle's diameter is then measured on the image (Gold Digger's "
            "`golddigger.model.sizing.measure_diameters`) and binned into the classes "
            f"asked for (default {', '.join(f'{d:g}' for d in config.classes_nm)} nm, each "
            "+-25 % or 2.5 nm, neighbours split at their midpoint); candidates within one "
            "measured radius of a stronger one are the same particle.\n")


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def model_card(config: ModelConfig, thresholds: dict, metrics: dict,
               norm: PackageNormalisation, min_size: int, weight_formats: tuple[str, ...]
               ) -> str:
    """The package's README.md: what the model does, its input, its output, the
    post-processing that turns maps into particles, its limits, citation and licence."""
    classes = ", ".join(f"{d:g}" for d in config.classes_nm)
    per = thresholds.get("per_class", {})
    default_t = float(thresholds.get("threshold", 0.5))
    thr_rows = "\n".join(
        f"| `{name}` | {d:g} nm | {float(per.get(f'{d:g}', default_t)):.2f} | "
        f"{max(1, round(0.5 * d / config.pixel_size_nm))} px |"
        for name, d in zip(channel_names(config), config.map_diameters_nm, strict=True))
    cv = metrics.get("cross_validation", {})
    cv_line = ""
    pooled = (cv.get("gan") or {}).get("pooled") or {}
    if pooled:
        scores = ", ".join(f"{'all classes' if k == 'all' else k + ' nm'} {_fmt(v.get('f1'))}"
                           for k, v in pooled.items() if isinstance(v, dict))
        cv_line = (f"\nCross-validation of the recipe ({cv.get('protocol', 'by image')}): "
                   f"pooled F1 {scores}.\n")
    trained_on = metrics.get("trained_on")
    trained = (f"{len(trained_on)} annotated freeze-fracture replica (FRIL) micrographs"
               if trained_on else "annotated micrographs")
    synth = metrics.get("synthetic_images")
    if synth:
        trained += f" and {synth} synthetic FRIL images"
    formats = ", ".join(weight_formats)
    m = 2**config.depth
    lo, hi = f"p{norm.centre_percentile:g}", f"p{norm.spread_percentile:g}"
    formula = f"(x - {lo}) / ({norm.spread_factor:g} * ({hi} - {lo}))"
    if config.sizing == "image":
        sizing = ("Gold Digger measures each detection's size on the image itself (the "
                  "class whose scale-normalised Laplacian-of-Gaussian response is strongest "
                  "around the peak; `golddigger.model.sizing`), refines the centre there, "
                  "and applies that class's threshold; the maps' class is a first guess.")
    else:
        sizing = "the class is the map with the strongest peak."
    return f"""# Gold Digger immunogold detector: `{config.name}`

Finds colloidal gold particles ({classes} nm) in electron micrographs of immunogold-labelled
samples, chiefly freeze-fracture replicas (FRIL). This package holds the network of
[Gold Digger](#citation); it outputs **one probability map per gold class, not a particle
list**. Gold Digger itself (`golddigger detect`, its Fiji commands, its Python API) turns
the maps into particles with measured sizes; with deepImageJ or bioimageio.core you get the
maps and do the post-processing below yourself.

Weights: {formats} (each gives the same maps; the state dict's architecture is
`{_FILES["architecture"]}`, class `MapsGenerator`, which needs only PyTorch).

## Input
- One grey channel, axes `batch, channel, y, x`, float32 (any grey image; converted).
- **Pixel size {config.pixel_size_nm:g} nm/px.** The network knows gold by its size in
  pixels: resample your micrograph to {config.pixel_size_nm:g} nm/px first (e.g. Fiji's
  *Image > Scale* with interpolation, factor = your nm/px / {config.pixel_size_nm:g}). The
  axes' `scale` in the description carries this pixel size; tools do not resample for you.
- Sides: at least {min_size} px and a multiple of {m} px (pad or crop to fit).
- Normalisation (in the description's preprocessing, per image):
  `{formula}`, clipped to [-{norm.clip:g}, {norm.clip:g}] (percentiles over the whole image).
  Gold Digger itself uses `(x - median) / ({norm.spread_factor:g} * MAD)` with the same clip,
  with the statistics taken from the image before resampling. The spec cannot express a
  MAD; the upper quartile's distance from the median equals the MAD for a symmetric
  histogram and is little affected by the dark gold, so it is the closest the spec allows,
  but it is an **approximation**. Measured with `fril-gold-v3` on its 6 development FRIL
  micrographs (0.5587 nm/px, resampled): the spread is 11-19 % narrower than Gold
  Digger's, maps differ by up to 0.5, and the particles found agree at F1 0.96 (571
  vs 542 detections, 533 matched within 3 nm; `benchmarks/bioimageio_normalisation.py`).
  For Gold Digger's exact results, normalise yourself with the median and 1.4826 x MAD of
  the image at its own pixel size and drop the preprocessing, or use Gold Digger.

## Output
- `maps`: axes `batch, channel, y, x`, the same size and pixel size as the input;
  channels {", ".join(f"`{n}`" for n in channel_names(config))}.
- Values are probabilities in [0, 1]: **the sigmoid is applied inside the network** (no
  postprocessing step). Each particle of a class is a peak (a Gaussian-shaped blob of
  sigma about {config.target_sigma_factor:g} x its radius) centred on the particle.
- The network sees up to about {config.halo_px} px around each pixel (the declared
  `halo`): when tiling, overlap tiles by at least {config.halo_px} px on each side. At the
  image's own edges it mirrors {config.edge_pad_px} px of the image, as Gold Digger does.
  The whole image at once gives exactly Gold Digger's maps for the same normalised input.

## From maps to particles (Gold Digger's post-processing)
{_gold_map_note(config)}
1. In each class map, find local maxima above the class threshold, with a square window
   of side `2 r + 1` (r = the particle radius in px, at least 1); drop flat plateaus
   larger than the window.
2. Refine each centre to subpixel precision: intensity-weighted centroid of the 3 x 3
   neighbourhood (minus its minimum).
3. One detection per particle across classes: greedy non-maximum suppression by score; a
   peak is dropped when a stronger one (of any class) lies closer than the larger of the
   two radii.
4. Keep a detection when its score passes its class's threshold:

| channel | class | threshold | radius r |
| --- | --- | --- | --- |
{thr_rows}

5. Sizing (`{config.sizing}`): {sizing}
6. Convert centres back to your image's pixels: `x_in = (x + 0.5) * (p_model / p_in) - 0.5`.

`golddigger detect` (or *Plugins > Gold Digger > Detect Gold* in Fiji) does all of this, with
tiling, sizing and region filtering, and writes CSV and ImageJ ROI sets.

## Training and accuracy
Trained on {trained}, at {config.pixel_size_nm:g} nm/px, {config.depth} poolings,
{config.base_channels} base channels.{cv_line}
Micrographs of other preparations, stains or magnifications may need retraining
(`golddigger train`); check on a few images of your own (`golddigger evaluate`).

## Validation
Gold Digger's test suite exports the shipped model and runs bioimageio.core's own test of
the package (`bioimageio test`, offline): every weight format reproduces the test output
from the test input (a synthetic FRIL tile made by `golddigger.synth`, with gold of every
class) through the declared preprocessing. It also feeds each weight format Gold Digger's
own normalisation and checks the maps equal `Detector.predict_maps` within 1e-4.

## Citation
- {CITATION_TEXT} doi:{CITATION_DOI}
- This package was made by Gold Digger's `golddigger export-bioimageio`; cite the paper
  above and Gold Digger (the software that made and uses this model).

## Licence
{LICENSE}.
"""


# ============================================================================ export
@dataclass
class ExportResult:
    """What `export_bioimageio` wrote.

    Attributes
    ----------
    path : Path
        The package (zip).
    size_bytes : int
    seconds : float
        Wall time of the export.
    weight_formats : tuple of str
    """

    path: Path
    size_bytes: int
    seconds: float
    weight_formats: tuple[str, ...]


def _write_torchscript(net, path: Path, example) -> None:
    import copy

    import torch

    fused = copy.deepcopy(net).eval()
    for module in fused.modules():  # conv + BN + ReLU, as Detector runs it
        if isinstance(module, torch.nn.Sequential) and len(module) == 6:
            torch.ao.quantization.fuse_modules(module, [["0", "1", "2"], ["3", "4", "5"]],
                                               inplace=True)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic
        traced = torch.jit.trace(fused, example, check_trace=False)
    torch.jit.save(traced, str(path))


def _write_onnx(net, path: Path, example) -> int:
    """Write ONNX weights; returns the opset they were written with."""
    import torch

    dims = {0: "batch", 2: "y", 3: "x"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated
        try:
            torch.onnx.export(net, (example,), str(path), input_names=[INPUT_ID],
                              output_names=[OUTPUT_ID], opset_version=ONNX_OPSET,
                              dynamic_axes={INPUT_ID: dims, OUTPUT_ID: dims}, dynamo=False)
            return ONNX_OPSET
        except Exception as err:  # removed in a future torch: use the dynamo exporter
            logger.info("TorchScript-based ONNX export failed (%s); using dynamo", err)
        import onnx

        d = torch.export.Dim.DYNAMIC
        torch.onnx.export(net, (example,), str(path), input_names=[INPUT_ID],
                          output_names=[OUTPUT_ID], opset_version=ONNX_OPSET, dynamo=True,
                          dynamic_shapes=({0: d, 2: d, 3: d},))
        model = onnx.load(str(path))  # one self-contained file, no external data
        data = Path(str(path) + ".data")
        onnx.save(model, str(path), save_as_external_data=False)
        if data.exists():
            data.unlink()
        # the converter may keep a newer opset than asked for: describe what was written
        return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _describe(config: ModelConfig, thresholds: dict, metrics: dict, files: dict[str, Path],
              weight_formats: tuple[str, ...], norm: PackageNormalisation, min_size: int,
              n_params: int, onnx_opset: int = ONNX_OPSET):
    """The spec-0.5 `ModelDescr` of the package's files."""
    import torch
    from bioimageio.spec.model import v0_5 as spec

    from golddigger import __version__
    from golddigger.model.folder import sha256_file

    px = float(config.pixel_size_nm)
    m = 2**config.depth
    classes = "/".join(f"{d:g}" for d in config.classes_nm)
    space_in = [spec.SpaceInputAxis(id=spec.AxisId(a), size=spec.ParameterizedSize(
        min=min_size, step=m), scale=px, unit="nanometer",
        description=f"resample to {px:g} nm/px first") for a in ("y", "x")]
    inp = spec.InputTensorDescr(
        id=spec.TensorId(INPUT_ID),
        description=f"EM micrograph, one grey channel, at {px:g} nm/px",
        axes=[spec.BatchAxis(), spec.ChannelAxis(channel_names=[spec.Identifier("em")]),
              *space_in],
        data=spec.IntervalOrRatioDataDescr(type="float32"),
        test_tensor=spec.FileDescr(source=files["test_input"]),
        sample_tensor=spec.FileDescr(source=files["sample_input"]),
        preprocessing=_preprocessing(norm),
    )
    out_axis = spec.SpaceOutputAxisWithHalo if config.halo_px else spec.SpaceOutputAxis
    halo = {"halo": config.halo_px} if config.halo_px else {}
    space_out = [out_axis(
        id=spec.AxisId(a), size=spec.SizeReference(tensor_id=spec.TensorId(INPUT_ID),
                                                   axis_id=spec.AxisId(a)),
        scale=px, unit="nanometer", **halo) for a in ("y", "x")]
    out = spec.OutputTensorDescr(
        id=spec.TensorId(OUTPUT_ID),
        description="probability per gold class (sigmoid applied); peaks are particles",
        axes=[spec.BatchAxis(),
              spec.ChannelAxis(channel_names=[spec.Identifier(n)
                                              for n in channel_names(config)]),
              *space_out],
        data=spec.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
        test_tensor=spec.FileDescr(source=files["test_output"]),
        sample_tensor=spec.FileDescr(source=files["sample_output"]),
    )
    torch_version = spec.Version(torch.__version__.split("+")[0])
    weights = {}
    if "pytorch_state_dict" in weight_formats:
        weights["pytorch_state_dict"] = spec.PytorchStateDictWeightsDescr(
            source=files["pytorch_state_dict"],
            sha256=sha256_file(files["pytorch_state_dict"]),
            architecture=spec.ArchitectureFromFileDescr(
                source=files["architecture"], sha256=sha256_file(files["architecture"]),
                callable=spec.Identifier("MapsGenerator"),
                kwargs=_architecture_kwargs(config)),
            pytorch_version=torch_version)
    parent = "pytorch_state_dict" if "pytorch_state_dict" in weight_formats else None
    if "torchscript" in weight_formats:
        weights["torchscript"] = spec.TorchscriptWeightsDescr(
            source=files["torchscript"], sha256=sha256_file(files["torchscript"]),
            pytorch_version=torch_version, parent=parent,
            comment="traced from the state dict; conv+batch-norm+ReLU fused")
    if "onnx" in weight_formats:
        weights["onnx"] = spec.OnnxWeightsDescr(
            source=files["onnx"], sha256=sha256_file(files["onnx"]),
            opset_version=onnx_opset, parent=parent)
    golddigger_meta = {
        "model": config.name, "classes_nm": list(config.classes_nm),
        "pixel_size_nm": px, "thresholds": thresholds, "sizing": config.sizing,
        "halo_px": config.halo_px, "edge_pad_px": config.edge_pad_px,
        "normalisation": {"package": norm.__dict__,
                          "golddigger": "(x - median) / (1.4826 * MAD), clip +-20"},
        "exported_by": f"golddigger {__version__}",
    }
    return spec.ModelDescr(
        name=f"Gold Digger immunogold detector {config.name}",
        description=(f"Immunogold particle maps ({classes} nm gold) for electron "
                     f"micrographs at {px:g} nm/px: Gold Digger's U-Net (a pix2pix-style "
                     "generator), trained on freeze-fracture replicas for the shipped "
                     "models. Outputs probability maps, not particles: the model card "
                     "gives the peak finding, thresholds and sizing."),
        authors=[spec.Author(name="Gold Digger developers")],
        cite=[spec.CiteEntry(text=CITATION_TEXT, doi=spec.Doi(CITATION_DOI))],
        license=spec.LicenseId(LICENSE),
        tags=["electron-microscopy", "immunogold", "gold-particles", "freeze-fracture",
              "fril", "particle-detection", "2d", "unet", "pytorch", "torchscript", "onnx",
              "golddigger"],
        covers=[spec.FileDescr(source=files["cover"])],
        documentation=spec.FileDescr(source=files["card"]),
        attachments=[spec.FileDescr(source=files["config"]),
                     spec.FileDescr(source=files["thresholds"])],
        inputs=[inp],
        outputs=[out],
        weights=spec.WeightsDescr(**weights),
        version=spec.Version(__version__),
        config=spec.Config(
            bioimageio=spec.BioimageioConfig(
                architecture_type="U-Net", model_parameter_count=n_params,
                modality="electron microscopy (freeze-fracture replica, immunogold)",
                target_structure=["colloidal gold particles"],
                task="particle detection (probability maps)"),
            golddigger=golddigger_meta),
    )


def export_bioimageio(model: str | os.PathLike | None, output: str | os.PathLike, *,
                      test_size: int = 256, seed: int = 0,
                      weight_formats: tuple[str, ...] = WEIGHT_FORMATS) -> ExportResult:
    """Write a model folder as a BioImage.IO model package (spec 0.5, a zip).

    Parameters
    ----------
    model : str or path, optional
        A shipped model's name (`golddigger.model.folder.available_models`) or a model
        folder; None means the default model.
    output : path
        The package to write; must end in ``.zip``. Written atomically.
    test_size : int
        Side of the synthetic test tile, pixels (a multiple of ``2**depth``, at least
        ``2 * halo + 2**depth`` and ``edge_pad``; the package's smallest input).
    seed : int
        Seed of the synthetic test tile.
    weight_formats : tuple of str
        Any of `WEIGHT_FORMATS`.

    Returns
    -------
    ExportResult

    Raises
    ------
    GoldDiggerError
        Unknown model or weight format, bad test size or output name.
    ImportError
        ``bioimageio.spec`` (or ``onnx`` for the ONNX weights) is not installed:
        ``pip install 'golddigger[bioimageio]'``.
    """
    t0 = time.perf_counter()
    output = Path(output)
    if output.suffix.lower() != ".zip":
        raise GoldDiggerError(f"{output}: a BioImage.IO package is a .zip file; "
                              "give an output name ending in .zip")
    unknown = [w for w in weight_formats if w not in WEIGHT_FORMATS]
    if unknown or not weight_formats:
        raise GoldDiggerError(f"weight formats must be some of {', '.join(WEIGHT_FORMATS)}, "
                              f"got {', '.join(unknown) or 'none'}")
    from golddigger.model.folder import read_model_folder, resolve_model

    folder = resolve_model(model)
    config, state, thresholds, metrics = read_model_folder(folder)
    try:
        from bioimageio.spec import save_bioimageio_package
    except ImportError as err:
        raise ImportError("the BioImage.IO export needs bioimageio.spec: "
                          "pip install 'golddigger[bioimageio]'") from err
    import tifffile
    import torch
    from PIL import Image

    from golddigger.io.rois import class_colors
    from golddigger.io.safe import atomic_path
    from golddigger.model import networks

    m = 2**config.depth
    # the halo must fit inside (spec), and the mirrored edge needs as many pixels
    min_size = max(2 * config.halo_px + m, -(-config.edge_pad_px // m) * m, m)
    if test_size % m or test_size < min_size:
        raise GoldDiggerError(f"test size must be a multiple of {m} and at least {min_size} "
                              f"px (the model's halo and edge mirroring), got {test_size}")
    norm = package_normalisation()
    net = maps_network(config, state)
    n_params = networks.count_parameters(net)

    with tempfile.TemporaryDirectory(prefix="golddigger-bioimageio-") as tmp:
        d = Path(tmp)
        files = {k: d / name for k, name in _FILES.items()}
        shutil.copyfile(folder / "weights.pt", files["pytorch_state_dict"])
        shutil.copyfile(networks.__file__, files["architecture"])
        shutil.copyfile(folder / "config.json", files["config"])
        shutil.copyfile(folder / "thresholds.json", files["thresholds"])

        tile = synthetic_test_tile(config, test_size, seed)
        x = torch.from_numpy(normalise_for_package(tile, norm))[None, None]
        with torch.no_grad():
            maps = net(x).numpy()
        np.save(files["test_input"], tile[None, None])
        np.save(files["test_output"], maps.astype(np.float32))
        # the same as TIFFs for people and viewers (the spec's FAIR sample tensors)
        tifffile.imwrite(files["sample_input"], tile[None, None])
        tifffile.imwrite(files["sample_output"], maps.astype(np.float32))
        colours = list(class_colors(config.map_diameters_nm).values())
        Image.fromarray(cover_image(tile, maps[0], colours)).save(files["cover"])
        files["card"].write_text(model_card(config, thresholds, metrics, norm, min_size,
                                            weight_formats), encoding="utf-8")

        example = torch.zeros(1, 1, min_size, min_size)
        onnx_opset = ONNX_OPSET
        if "torchscript" in weight_formats:
            _write_torchscript(net, files["torchscript"], example)
        if "onnx" in weight_formats:
            onnx_opset = _write_onnx(net, files["onnx"], example)
        logger.info("exporting %s: weights written in %.1f s", config.name,
                    time.perf_counter() - t0)

        try:
            descr = _describe(config, thresholds, metrics, files, weight_formats, norm,
                              min_size, n_params, onnx_opset)
        except ValueError as err:
            if "index_key" in str(err):  # bioimageio.spec 0.5.12 with pydantic-core 2.50
                raise ImportError(_INCOMPATIBLE) from None
            raise
        with atomic_path(output) as part:
            package = part.with_name(part.name + ".zip")  # the spec wants a .zip name
            try:
                save_bioimageio_package(descr, output_path=package)
                package.replace(part)
            finally:
                package.unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    logger.info("wrote %s (%.1f MB) in %.1f s", output, output.stat().st_size / 1e6, seconds)
    return ExportResult(output, output.stat().st_size, seconds, tuple(weight_formats))
