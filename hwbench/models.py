"""Models shared by the studies, all with one convention.

Every model is a :class:`Classifier`:

- ``model.features(x)`` returns the penultimate features (N x ``feature_dim``);
- ``model.head`` is the final ``nn.Linear`` (replace it, freeze all but it);
- ``model.add_head(name, n)`` adds an extra output head on the same features; a
  model with extra heads returns ``{"main": logits, name: logits, ...}``, one
  without returns the main logits tensor.

Names for :func:`build_model`: ``resnet18``, ``resnet152`` (torchvision, adapted to
28x28 input by the stem), ``base_cnn`` (the adaptation paper's CNN) and
``small_cnn`` (a fast demo network).
"""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import torch
from torch import nn

MODEL_NAMES = ("resnet18", "resnet152", "base_cnn", "small_cnn")
STEMS = ("cifar", "imagenet")


class PretrainedWeightsUnavailable(RuntimeError):
    """ImageNet weights are neither cached nor downloadable."""


class Classifier(nn.Module):
    """A feature extractor ``body`` followed by a linear ``head``.

    ``head_dropout`` is applied to the features before every head (the base CNN
    has Dropout 0.25 there; the others use 0, i.e. identity).
    """

    def __init__(self, body: nn.Module, feature_dim: int, num_classes: int, head_dropout=0.0):
        super().__init__()
        self.body = body
        self.feature_dim = feature_dim
        self.head_dropout = nn.Dropout(head_dropout) if head_dropout > 0 else nn.Identity()
        self.head = nn.Linear(feature_dim, num_classes)
        self.extra_heads = nn.ModuleDict()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor):
        f = self.head_dropout(self.features(x))
        main = self.head(f)
        if not len(self.extra_heads):
            return main
        return {"main": main, **{name: head(f) for name, head in self.extra_heads.items()}}

    def replace_head(self, num_classes: int) -> nn.Linear:
        """A fresh main head with ``num_classes`` outputs (e.g. for transfer)."""
        device = self.head.weight.device
        self.head = nn.Linear(self.feature_dim, num_classes).to(device)
        return self.head

    def add_head(self, name: str, num_classes: int) -> nn.Linear:
        """An extra head on the penultimate features; outputs become a dict."""
        if name == "main" or name in self.extra_heads:
            raise ValueError(f"head {name!r} already exists")
        head = nn.Linear(self.feature_dim, num_classes).to(self.head.weight.device)
        self.extra_heads[name] = head
        return head


def set_trainable(model: nn.Module, prefixes) -> list[str]:
    """Freeze every parameter whose name starts with none of ``prefixes``.

    ``prefixes=None`` makes everything trainable. Returns the trainable names.
    The engine also keeps BatchNorm layers with only frozen parameters in eval
    mode, so their running statistics stay as they were.
    """
    trainable = []
    for name, p in model.named_parameters():
        p.requires_grad_(prefixes is None or any(name.startswith(pre) for pre in prefixes))
        if p.requires_grad:
            trainable.append(name)
    if prefixes is not None and not trainable:
        names = sorted({n.split(".")[0] for n, _ in model.named_parameters()})
        raise ValueError(f"trainable prefixes {list(prefixes)} match no parameter; top: {names}")
    return trainable


# --- torchvision ResNets ----------------------------------------------------------


def _weights_enum(name: str):
    from torchvision.models import ResNet18_Weights, ResNet152_Weights

    return {"resnet18": ResNet18_Weights, "resnet152": ResNet152_Weights}[name].IMAGENET1K_V1


def pretrained_cache_file(name: str) -> Path:
    """Where torchvision's cache keeps the ImageNet weights of ``name``."""
    url = _weights_enum(name).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def load_imagenet_state(name: str, allow_download: bool | None = None) -> dict:
    """The ImageNet state dict of ``name`` from torchvision's cache (downloaded if allowed).

    ``allow_download`` defaults to true unless the environment sets HWBENCH_OFFLINE=1.
    """
    weights = _weights_enum(name)
    cached = pretrained_cache_file(name)
    if allow_download is None:
        allow_download = os.environ.get("HWBENCH_OFFLINE", "") not in ("1", "true", "yes")
    help_text = (
        f"ImageNet weights for {name} are not in the torch cache: expected {cached}. "
        f"Download {weights.url} on a machine with internet and copy it to that path "
        f"(the cache folder is $TORCH_HOME/hub/checkpoints, TORCH_HOME defaults to "
        f"~/.cache/torch), or set pretrained to null."
    )
    if not cached.exists() and not allow_download:
        raise PretrainedWeightsUnavailable(help_text + " (HWBENCH_OFFLINE is set)")
    try:
        return weights.get_state_dict(progress=False)
    except (urllib.error.URLError, OSError, RuntimeError) as err:
        raise PretrainedWeightsUnavailable(f"{help_text} Download failed: {err}") from err


def _resnet(name: str, num_classes: int, in_channels: int, stem: str, pretrained) -> Classifier:
    import torchvision

    net = getattr(torchvision.models, name)(weights=None)
    if pretrained == "imagenet":
        net.load_state_dict(load_imagenet_state(name))
    elif pretrained is not None:
        raise ValueError(f"pretrained={pretrained!r}: use 'imagenet' or None")
    conv1 = net.conv1
    if stem == "cifar":
        # 28x28 input: a 3x3 stride-1 stem without max-pool keeps 28x28 into layer1
        # (the 7x7/2 stem plus max-pool leaves 7x7). Its weights start fresh.
        net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    elif in_channels != 3:
        new = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        with torch.no_grad():
            # Grey input: the RGB kernels summed respond to a grey image as to its RGB copy.
            new.weight.copy_(conv1.weight.sum(dim=1, keepdim=True).repeat(1, in_channels, 1, 1))
        net.conv1 = new
    feature_dim = net.fc.in_features
    net.fc = nn.Identity()
    return Classifier(net, feature_dim, num_classes)


# --- small CNNs -----------------------------------------------------------------


def _conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(c_out),
        nn.MaxPool2d(2),
    ]


def _hw(input_size: int | tuple[int, int]) -> tuple[int, int]:
    """``input_size`` as (height, width): an int is a square side."""
    if isinstance(input_size, int):
        return input_size, input_size
    height, width = (int(v) for v in input_size)
    return height, width


def base_cnn_body(
    in_channels: int = 1, input_size: int | tuple[int, int] = 28
) -> tuple[nn.Module, int]:
    """The adaptation paper's base CNN up to its 256-unit penultimate layer.

    [Conv32, Conv32, BN, MaxPool] -> [Conv48, Conv48, BN, MaxPool] -> [Conv64, Conv64,
    BN, MaxPool] -> Dense 768 -> Dropout 0.25 -> Dense 256. Convolutions are 3x3
    'same' with ReLU (Keras style, so 'the same image dimensions' survive the
    convolutions); max-pool 2x2 'valid' takes 28 -> 14 -> 7 -> 3.
    """
    height, width = (v // 2 // 2 // 2 for v in _hw(input_size))
    body = nn.Sequential(
        *_conv_block(in_channels, 32),
        *_conv_block(32, 48),
        *_conv_block(48, 64),
        nn.Flatten(),
        nn.Linear(64 * height * width, 768),
        nn.ReLU(inplace=True),
        nn.Dropout(0.25),
        nn.Linear(768, 256),
        nn.ReLU(inplace=True),
    )
    return body, 256


def small_cnn_body(
    in_channels: int = 1, input_size: int | tuple[int, int] = 28
) -> tuple[nn.Module, int]:
    """Two conv layers and a 64-unit layer: seconds per epoch on a laptop CPU."""
    height, width = (v // 2 // 2 for v in _hw(input_size))
    body = nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * height * width, 64),
        nn.ReLU(inplace=True),
    )
    return body, 64


def build_model(
    name: str,
    num_classes: int,
    in_channels: int = 1,
    stem: str = "cifar",
    pretrained: str | None = None,
    input_size: int | tuple[int, int] = 28,
) -> Classifier:
    """Build a :class:`Classifier` by name.

    ``stem`` and ``pretrained`` apply to the ResNets ("cifar": 3x3 stride 1, no
    max-pool, for 28x28 input; "imagenet": torchvision's stem as is). With
    ``pretrained="imagenet"`` and one input channel the first kernel is the sum of
    the RGB kernels; with the cifar stem the (new-shaped) first conv starts fresh.
    ``input_size`` (a side, or (height, width) for non-square input) matters to the
    CNNs, whose dense layer depends on it; the ResNets pool adaptively.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {list(MODEL_NAMES)}")
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose one of {list(STEMS)}")
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels={in_channels}: use 1 (grey) or 3 (RGB copies)")
    if name.startswith("resnet"):
        return _resnet(name, num_classes, in_channels, stem, pretrained)
    if pretrained is not None:
        raise ValueError(f"{name} has no pretrained weights (pretrained={pretrained!r})")
    if name == "base_cnn":
        body, dim = base_cnn_body(in_channels, input_size)
        return Classifier(body, dim, num_classes, head_dropout=0.25)
    body, dim = small_cnn_body(in_channels, input_size)
    return Classifier(body, dim, num_classes)


def model_from_config(cfg, num_classes: int) -> Classifier:
    """:func:`build_model` from a config section shaped by workflow/schemas/model.schema.yaml."""
    return build_model(
        num_classes=num_classes, **{k: v for k, v in cfg.items() if k != "normalize"}
    )
