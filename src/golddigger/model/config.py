"""Validated model configuration (stored as ``config.json`` in a model folder)."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["FORMAT_VERSION", "ModelConfig", "ModelMetrics", "Thresholds"]

#: The model folder format this version reads and writes.
FORMAT_VERSION = 1


class ModelConfig(BaseModel):
    """What a trained model is: its classes, its scale and its network's shape."""

    model_config = ConfigDict(extra="forbid")

    name: str = "golddigger"
    classes_nm: list[float] = Field(default_factory=lambda: [6.0, 12.0, 18.0])
    pixel_size_nm: float = Field(1.2, gt=0.05, le=20, description="canonical nm/px")
    base_channels: int = Field(12, ge=2, le=64)
    depth: int = Field(4, ge=1, le=6)
    target_sigma_factor: float = Field(0.4, gt=0, le=2,
                                       description="target Gaussian sigma / particle radius")
    output: str = Field("classes", pattern="^(classes|gold)$",
                        description="the network's maps: one per class ('classes'), or one "
                                    "'gold' map for gold of any diameter in gold_range_nm, "
                                    "each detection's size measured on the image and binned "
                                    "into the classes asked for (classes_nm by default)")
    gold_range_nm: list[float] | None = Field(
        None, description="for output 'gold': the gold diameters (nm) the model was trained "
                          "to find, [smallest, largest]")
    sizing: str = Field("maps", pattern="^(maps|image)$",
                        description="size class from the strongest class map ('maps') or "
                                    "size class and centre measured from the image at each "
                                    "detection ('image', golddigger.model.sizing)")
    halo_px: int = Field(96, ge=16, description="tile overlap on each side, model pixels; "
                         "at least the generator's receptive radius (92 px at depth 4)")
    edge_pad_px: int = Field(16, ge=0, le=512,
                             description="mirrored context added at the image's own edges, "
                             "model pixels (the network sees zero padding beyond it)")
    tile_size: int = Field(1024, ge=32, description="tile core size, model pixels")
    format_version: int = FORMAT_VERSION

    @field_validator("format_version")
    @classmethod
    def _known_format(cls, v: int) -> int:
        if v != FORMAT_VERSION:
            raise ValueError(f"model folder format {v} is not the one this Gold Digger reads "
                             f"({FORMAT_VERSION}); use the Gold Digger version that wrote it, "
                             "or update Gold Digger")
        return v

    @field_validator("classes_nm")
    @classmethod
    def _classes(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("a model needs at least one particle class")
        if any(d <= 0 for d in v):
            raise ValueError(f"particle diameters must be positive, got {v}")
        if len(set(v)) != len(v):
            raise ValueError(f"particle classes must be distinct, got {v}")
        return sorted(float(d) for d in v)

    @field_validator("gold_range_nm")
    @classmethod
    def _gold_range(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if len(v) != 2 or not 0 < v[0] < v[1]:
            raise ValueError(f"gold_range_nm must be [smallest, largest] nm, got {v}")
        return [float(v[0]), float(v[1])]

    @model_validator(mode="after")
    def _gold_output(self) -> ModelConfig:
        if self.output == "gold":
            if self.gold_range_nm is None:
                raise ValueError("a model with output 'gold' needs gold_range_nm")
            if self.sizing != "image":
                raise ValueError("a model with output 'gold' measures sizes on the image "
                                 "(sizing 'image')")
        return self

    @property
    def n_maps(self) -> int:
        """The network's output maps: one per class, or one gold map."""
        return 1 if self.output == "gold" else len(self.classes_nm)

    @property
    def map_diameters_nm(self) -> list[float]:
        """The diameter each map stands for when finding peaks: the classes, or the
        smallest gold of a gold map (so that no two particles merge)."""
        if self.output == "gold":
            return [float(self.gold_range_nm[0])]  # type: ignore[index]
        return list(self.classes_nm)

    @field_validator("halo_px", "tile_size")
    @classmethod
    def _multiple_of_16(cls, v: int) -> int:
        if v % 16:
            raise ValueError(f"must be a multiple of 16 (the network's pooling), got {v}")
        return v


def _unit_interval(v: float, what: str) -> float:
    if not (isinstance(v, (int, float)) and math.isfinite(v) and 0.0 < v < 1.0):
        raise ValueError(f"{what} must be a number between 0 and 1, got {v!r}")
    return float(v)


class Thresholds(BaseModel):
    """``thresholds.json``: the tuned score threshold, optionally one per class."""

    model_config = ConfigDict(extra="allow")

    threshold: float
    per_class: dict[str, float] = Field(default_factory=dict)

    @field_validator("threshold", mode="before")
    @classmethod
    def _threshold(cls, v: Any) -> float:
        return _unit_interval(v, "threshold")

    @field_validator("per_class", mode="before")
    @classmethod
    def _per_class(cls, v: Any) -> dict[str, float]:
        if not isinstance(v, dict):
            raise ValueError(f"per_class must be an object of class -> threshold, got "
                             f"{type(v).__name__}")
        return {str(k): _unit_interval(t, f"the threshold of class {k}") for k, t in v.items()}


class ModelMetrics(BaseModel):
    """``metrics.json``: what the folder says about its training (free-form, but an object,
    and the fields Gold Digger reads have their types)."""

    model_config = ConfigDict(extra="allow")

    steps_done: int | None = Field(None, ge=0)
    train_minutes: float | None = Field(None, ge=0, allow_inf_nan=False)
    train_config: dict | None = None
    trained_on: list[str] | None = None
