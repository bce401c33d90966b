"""Torch implementation of the ResNet-18 image encoder (written here: torchvision is not available)."""
from __future__ import annotations

import pickle
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo

from ..residual import BasicBlock, he_initialise
from . import ResNet18ImageConfig

# ImageNet statistics: inputs are normalised with them so that ImageNet-trained weights fit
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STAGE_STRIDES = (1, 2, 2, 2)
BLOCKS_PER_STAGE = 2
NAME = "resnet18_image"


class ResNet18Backbone(nn.Module):
    """ResNet-18 without its classifier: normalised images [B, 3, H, W] -> pooled features [B, 8 * base_width].

    Its state-dict keys are those of the common ResNet-18 layout, so a local ImageNet checkpoint loads as is:
    ``conv1.weight``, ``bn1.{weight,bias,running_mean,running_var,num_batches_tracked}``, and for stage
    ``s`` in 1..4 and block ``b`` in 0..1 ``layer{s}.{b}.conv1.weight``, ``layer{s}.{b}.bn1.*``,
    ``layer{s}.{b}.conv2.weight``, ``layer{s}.{b}.bn2.*``, plus the projection shortcut of the first block of
    stages 2-4, ``layer{s}.0.downsample.0.weight`` (1x1 conv) and ``layer{s}.0.downsample.1.*`` (BN).
    """

    def __init__(self, base_width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, base_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = base_width
        for stage, stride in enumerate(STAGE_STRIDES, start=1):
            width = base_width * 2 ** (stage - 1)
            blocks = [BasicBlock(channels if b == 0 else width, width, stride if b == 0 else 1)
                      for b in range(BLOCKS_PER_STAGE)]
            self.add_module(f"layer{stage}", nn.Sequential(*blocks))
            channels = width
        self.out_channels = channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self._init_weights()

    def _init_weights(self) -> None:
        """He initialisation for training from scratch, and each block's last BN scaled to zero so that every
        residual block starts as its shortcut (a deep network that begins shallow trains more easily)."""
        he_initialise(self)
        for module in self.modules():
            if isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.pool(x).flatten(1)


class ResNet18Image(nn.Module):
    """Images [B, 3, H, W] with values in [0, 1] (any size from 32x32) -> global code [B, code_size]."""

    def __init__(self, code_size: int = 256, base_width: int = 64) -> None:
        super().__init__()
        self.backbone = ResNet18Backbone(base_width)
        self.fc = nn.Linear(self.backbone.out_channels, code_size)
        # constants, not state: kept out of checkpoints
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.encoding = EncodingInfo(kind="global", dim=code_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone((images - self.mean) / self.std))


def _listing(names: Iterable[str], most: int = 6) -> str:
    names = sorted(names)
    shown = ", ".join(names[:most])
    return f"{shown}, ... ({len(names)} in all)" if len(names) > most else shown


def load_backbone_weights(backbone: ResNet18Backbone, path: str | Path) -> None:
    """Load a backbone state dict saved with ``torch.save`` (tensors only: read with ``weights_only=True``).

    A classifier head (``fc.*`` keys, e.g. ImageNet's 1000 classes) is ignored; anything else that does not
    fit raises a ValueError naming the file and the missing, unexpected or mis-shaped keys.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{NAME}: weights file {file} does not exist")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{NAME}: weights file {file} is not a tensor state dict ({reason})") from exc
    if not isinstance(state, dict):
        raise ValueError(f"{NAME}: weights file {file} holds a {type(state).__name__}, not a state dict")
    state = {key: value for key, value in state.items() if not str(key).startswith("fc.")}
    expected = backbone.state_dict()
    problems = []
    if missing := expected.keys() - state.keys():
        problems.append(f"missing keys: {_listing(missing)}")
    if unexpected := state.keys() - expected.keys():
        problems.append(f"unexpected keys: {_listing(map(str, unexpected))}")
    misshaped = [f"{key} {tuple(getattr(state[key], 'shape', ()))} instead of {tuple(value.shape)}"
                 for key, value in expected.items()
                 if key in state and getattr(state[key], "shape", None) != value.shape]
    if misshaped:
        problems.append(f"wrong shapes: {_listing(misshaped)}")
    if problems:
        raise ValueError(f"{NAME}: weights file {file} does not fit the ResNet-18 backbone (base_width "
                         f"{backbone.conv1.out_channels}): {'; '.join(problems)}")
    backbone.load_state_dict(state)


def build(config: ResNet18ImageConfig, info: DatasetInfo) -> ResNet18Image:
    """Encoder factory; ``info`` is part of the contract but the architecture does not depend on it."""
    model = ResNet18Image(code_size=config.code_size, base_width=config.base_width)
    if config.weights:
        load_backbone_weights(model.backbone, config.weights)
    return model
