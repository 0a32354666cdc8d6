"""The networks: a compact U-Net generator and a PatchGAN discriminator.

The generator maps a normalised grey image (at the model's canonical pixel size) to one
logit map per particle class. The discriminator (pix2pix's PatchGAN) judges
(image, particle maps) pairs patch by patch; it is used only in training.
`MapsGenerator` is the generator as a stand-alone map predictor, for model exchange
(BioImage.IO).

This module imports nothing but torch: the BioImage.IO export ships it verbatim as the
architecture of its state-dict weights.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["MapsGenerator", "UNetGenerator", "PatchDiscriminator", "count_parameters"]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class _ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each with batch norm and ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class UNetGenerator(nn.Module):
    """A compact U-Net.

    Parameters
    ----------
    n_classes : int
        Output maps (one per particle class).
    base : int
        Channels at full resolution; level ``k`` has ``base * 2**k``.
    depth : int
        Number of 2x downsamplings. Inputs must have sides divisible by ``2**depth``.
    """

    def __init__(self, n_classes: int, base: int = 16, depth: int = 3) -> None:
        super().__init__()
        if n_classes < 1 or base < 1 or depth < 1:
            raise ValueError("n_classes, base and depth must be >= 1")
        self.depth = depth
        widths = [base * 2**k for k in range(depth + 1)]
        self.encoders = nn.ModuleList()
        cin = 1
        for w in widths:
            self.encoders.append(_ConvBlock(cin, w))
            cin = w
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for k in range(depth - 1, -1, -1):
            self.ups.append(nn.Conv2d(widths[k + 1], widths[k], 1))
            self.decoders.append(_ConvBlock(2 * widths[k], widths[k]))
        self.head = nn.Conv2d(widths[0], n_classes, 1)

    @property
    def multiple(self) -> int:
        """Input sides must be a multiple of this."""
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for k, enc in enumerate(self.encoders):
            x = enc(x)
            if k < self.depth:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for up, dec in zip(self.ups, self.decoders, strict=True):
            skip = skips.pop()
            x = F.interpolate(up(x), size=skip.shape[-2:], mode="nearest")
            x = dec(torch.cat([x, skip], dim=1))
        return self.head(x)


class MapsGenerator(UNetGenerator):
    """The generator as a stand-alone predictor of probability maps, for model exchange.

    It does to one normalised tile what `golddigger.model.detector.tiled_forward` and
    the sigmoid do in `Detector.predict_maps`: the input is mirrored by ``edge_pad``
    pixels on every side (symmetric, edge pixel repeated, as ``np.pad(mode="symmetric")``),
    the U-Net runs, the pad is cropped and the logits become probabilities. Its state
    dict is the `UNetGenerator`'s (same keys).

    Parameters
    ----------
    n_classes, base, depth : int
        As `UNetGenerator`.
    edge_pad : int
        Mirrored context on each side, pixels; a multiple of ``2**depth`` keeps inputs
        whose sides are multiples of ``2**depth`` valid. Input sides must be at least
        ``edge_pad`` (mirrored once, not repeatedly).
    """

    def __init__(self, n_classes: int, base: int = 16, depth: int = 3,
                 edge_pad: int = 16) -> None:
        super().__init__(n_classes, base, depth)
        if edge_pad < 0 or edge_pad % (2**depth):
            raise ValueError(f"edge_pad must be a non-negative multiple of {2**depth}, "
                             f"got {edge_pad}")
        self.edge_pad = edge_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.edge_pad
        if e > 0:
            x = torch.cat([x[..., :e, :].flip(-2), x, x[..., -e:, :].flip(-2)], dim=-2)
            x = torch.cat([x[..., :e].flip(-1), x, x[..., -e:].flip(-1)], dim=-1)
        logits = super().forward(x)
        if e > 0:
            logits = logits[..., e:-e, e:-e]
        return torch.sigmoid(logits)


class PatchDiscriminator(nn.Module):
    """pix2pix's PatchGAN: a map of real/fake scores for overlapping patches.

    Parameters
    ----------
    in_channels : int
        Image channels plus map channels.
    base : int
        Channels of the first layer.
    n_layers : int
        Strided layers; the receptive field grows with it (3 layers: 70 px).
    """

    def __init__(self, in_channels: int, base: int = 32, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base, 4, stride=2, padding=1),
                                   nn.LeakyReLU(0.2, inplace=True)]
        c = base
        for k in range(1, n_layers):
            c_next = base * min(2**k, 8)
            layers += [nn.Conv2d(c, c_next, 4, stride=2, padding=1, bias=False),
                       nn.InstanceNorm2d(c_next, affine=True), nn.LeakyReLU(0.2, inplace=True)]
            c = c_next
        c_next = base * min(2**n_layers, 8)
        layers += [nn.Conv2d(c, c_next, 4, stride=1, padding=1, bias=False),
                   nn.InstanceNorm2d(c_next, affine=True), nn.LeakyReLU(0.2, inplace=True),
                   nn.Conv2d(c_next, 1, 4, stride=1, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image, maps], dim=1))
