"""Validated model configuration (stored as ``config.json`` in a model folder)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ModelConfig"]


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
    sizing: str = Field("maps", pattern="^(maps|image)$",
                        description="size class from the strongest class map ('maps') or "
                                    "size class and centre measured from the image at each "
                                    "detection ('image', golddigger.model.sizing)")
    halo_px: int = Field(96, ge=0, description="tile overlap on each side, model pixels; "
                         "at least the generator's receptive radius (92 px at depth 4)")
    edge_pad_px: int = Field(16, ge=0, le=512,
                             description="mirrored context added at the image's own edges, "
                             "model pixels (the network sees zero padding beyond it)")
    tile_size: int = Field(1024, ge=32, description="tile core size, model pixels")
    format_version: int = 1

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

    @field_validator("halo_px", "tile_size")
    @classmethod
    def _multiple_of_16(cls, v: int) -> int:
        if v % 16:
            raise ValueError(f"must be a multiple of 16 (the network's pooling), got {v}")
        return v
