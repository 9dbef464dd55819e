"""The high-to-low baseline: SimpleBaseline (Xiao, Wu & Wei, ECCV 2018), for comparison with HRNet.

Most pose networks before HRNet go *down* in resolution and come back up at the end. SimpleBaseline
is the cleanest of them:

    ResNet   7×7 stride-2 conv + 3×3 stride-2 max-pool, then 4 groups of residual units with
             strides 1, 2, 2, 2                                 (N, 3, H, W) → (N, C_4, H/32, W/32)
    head     3 deconvolutions (4×4, stride 2) + BN + ReLU      → (N, 256, H/4, W/4)
             1×1 conv → K heatmaps                              → (N, K, H/4, W/4)

Same input and output as :class:`hrnet_edu.model.HRNet`; the difference is *where* the high
resolution comes from: recovered at the end from a 1/32 representation here, kept all the way in
HRNet. ``RESNET50`` reproduces the paper's comparison row (34.0 M parameters, 8.9 GFLOPs at 256×192);
``SMALL`` is a thin ResNet-18-like network for CPU notebooks. Residual units come from ``blocks.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from hrnet_edu.blocks import BasicBlock, Bottleneck, batch_norm, make_units

RESIDUAL_UNITS = {"basic": BasicBlock, "bottleneck": Bottleneck}


@dataclass(frozen=True)
class BaselineConfig:
    """A SimpleBaseline network. Presets ``RESNET50`` (the paper's comparison), ``SMALL`` (CPU).

    Attributes:
        block: the residual unit, "basic" (``BasicBlock``, ResNet-18/34) or "bottleneck"
            (``Bottleneck``, ResNet-50+); a name, so the config stores in checkpoints and JSON.
        units: residual units in each of the 4 groups, e.g. (3, 4, 6, 3) for ResNet-50.
        widths: inner width of each group (the output is ``block.expansion`` times wider).
        stem_width: width of the 7×7 stem convolution.
        deconv_width: width of the 3 deconvolution layers (256 in the paper).
        num_deconv: number of ×2 deconvolutions (3: 1/32 → 1/4).
        num_joints: K heatmaps.
    """

    block: str = "bottleneck"
    units: tuple[int, int, int, int] = (3, 4, 6, 3)
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    stem_width: int = 64
    deconv_width: int = 256
    num_deconv: int = 3
    num_joints: int = 17

    def __post_init__(self):
        object.__setattr__(self, "units", tuple(self.units))
        object.__setattr__(self, "widths", tuple(self.widths))
        if self.block not in RESIDUAL_UNITS:
            raise ValueError(f"block must be one of {sorted(RESIDUAL_UNITS)}, got {self.block!r}")

    @property
    def unit(self) -> type[BasicBlock] | type[Bottleneck]:
        """The residual unit class that ``block`` names."""
        return RESIDUAL_UNITS[self.block]

    @property
    def output_stride(self) -> int:
        """Input pixels per heatmap pixel: 32 at the ResNet's end, halved by each deconvolution."""
        return 32 // 2**self.num_deconv


RESNET50 = BaselineConfig()
SMALL = BaselineConfig(block="basic", units=(1, 1, 1, 1), widths=(16, 32, 64, 128), stem_width=16,
                       deconv_width=64)


class SimpleBaseline(nn.Module):
    """High-to-low ResNet, then low-to-high deconvolutions: (N, 3, H, W) → (N, K, H/4, W/4).

    H and W must be divisible by 32. Module names follow the reference SimpleBaseline (``layer1`` …
    ``layer4``, ``deconv_layers``, ``final_layer``).
    """

    def __init__(self, cfg: BaselineConfig = SMALL):
        super().__init__()
        self.cfg = cfg
        self.conv1 = nn.Conv2d(3, cfg.stem_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = batch_norm(cfg.stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        c_in = cfg.stem_width
        for g, (n, c, stride) in enumerate(zip(cfg.units, cfg.widths, (1, 2, 2, 2)), start=1):
            setattr(self, f"layer{g}", make_units(cfg.unit, c_in, c, n, stride))
            c_in = c * cfg.unit.expansion
        layers: list[nn.Module] = []
        for _ in range(cfg.num_deconv):
            # A 4×4 stride-2 transposed conv with padding 1 exactly doubles H and W.
            deconv = nn.ConvTranspose2d(c_in, cfg.deconv_width, 4, stride=2, padding=1, bias=False)
            layers += [deconv, batch_norm(cfg.deconv_width), nn.ReLU(inplace=True)]
            c_in = cfg.deconv_width
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(c_in, cfg.num_joints, kernel_size=1)
        for m in self.modules():  # the reference's init for the head; the ResNet keeps PyTorch's default
            if isinstance(m, nn.ConvTranspose2d) or m is self.final_layer:
                nn.init.normal_(m.weight, std=0.001)
            if m is self.final_layer:
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) → the lowest-resolution representation (N, C_4, H/32, W/32)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(f"input height and width must be divisible by 32, got H×W = {h}×{w}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, C_stem, H/4, W/4)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: Tensor) -> Tensor:
        # High to low (ResNet), then low to high (deconvolutions), then the 1×1 heatmap head.
        return self.final_layer(self.deconv_layers(self.forward_features(x)))
