"""OpenLTH's models (facebookresearch/open_lth, ``models/``), module for module, so that the state_dicts of
an OpenLTH run (``model_ep<E>_it<I>.pth``, ``mask.pth``) load into them by name::

    netarchive ingest runs/lottery_…/replicate_1 --run resnet20 \\
        --model netarchive.zoo.openlth:cifar_resnet_20 --input-shape 3,32,32

- ``cifar_resnet_<N>[_W]``: a 3×3 convolution and batch norm, three segments of (N − 2) / 6 residual blocks
  of W, 2W, 4W filters (the first block of segments 2 and 3 halves the size, with a 1×1 stride-2
  convolution and batch norm on the shortcut), global average pooling, one Linear layer.
- ``cifar_vgg_<N>``: VGG's plan of 3×3 convolutions (each with batch norm and ReLU) and 2×2 max pools, a 2×2
  average pool, one Linear layer from 512 features.
- ``mnist_lenet_<N1>_<N2>…``: fully connected layers with ReLU on flattened 28×28 images.

The weights of a fresh model are torch's defaults: the factories give the architecture only.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

VGG_PLANS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512],
}


class ResNetBlock(nn.Module):
    """Two 3×3 convolutions with batch norms around a residual connection (``out += shortcut(x)``)."""

    def __init__(self, f_in: int, f_out: int, downsample: bool):
        super().__init__()
        stride = 2 if downsample else 1
        self.conv1 = nn.Conv2d(f_in, f_out, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(f_out)
        self.conv2 = nn.Conv2d(f_out, f_out, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(f_out)
        projected = downsample or f_in != f_out
        self.shortcut = (
            nn.Sequential(nn.Conv2d(f_in, f_out, kernel_size=1, stride=2, bias=False), nn.BatchNorm2d(f_out))
            if projected else nn.Sequential()
        )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class CifarResNet(nn.Module):
    """OpenLTH's ``cifar_resnet``: ``plan`` is a list of (filters, blocks) per segment."""

    def __init__(self, plan: list[tuple[int, int]], outputs: int = 10):
        super().__init__()
        filters = plan[0][0]
        self.conv = nn.Conv2d(3, filters, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(filters)
        blocks = []
        for segment, (width, count) in enumerate(plan):
            for block in range(count):
                blocks.append(ResNetBlock(filters, width, downsample=segment > 0 and block == 0))
                filters = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(plan[-1][0], outputs)

    def forward(self, x):
        out = F.relu(self.bn(self.conv(x)))
        out = self.blocks(out)
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        return self.fc(out)


class VGGModule(nn.Module):
    """A 3×3 convolution, batch norm and ReLU."""

    def __init__(self, f_in: int, f_out: int):
        super().__init__()
        self.conv = nn.Conv2d(f_in, f_out, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(f_out)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class CifarVGG(nn.Module):
    """OpenLTH's ``cifar_vgg``: ``plan`` lists filters and ``"M"`` for a 2×2 max pool."""

    def __init__(self, plan: list, outputs: int = 10):
        super().__init__()
        layers, filters = [], 3
        for spec in plan:
            if spec == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers.append(VGGModule(filters, spec))
                filters = spec
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, outputs)

    def forward(self, x):
        x = self.layers(x)
        x = nn.AvgPool2d(2)(x)  # built in forward, as OpenLTH does: traced through
        x = x.view(x.size(0), -1)
        return self.fc(x)


class MnistLeNet(nn.Module):
    """OpenLTH's ``mnist_lenet``: Linear layers of the given widths with ReLU, then the output layer."""

    def __init__(self, plan: list[int], outputs: int = 10):
        super().__init__()
        sizes = [784, *plan]
        self.fc_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.fc = nn.Linear(sizes[-1], outputs)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        for layer in self.fc_layers:
            x = F.relu(layer(x))
        return self.fc(x)


def cifar_resnet(depth: int, width: int = 16, outputs: int = 10) -> CifarResNet:
    """``cifar_resnet_<depth>[_<width>]``: depth = 6·blocks + 2."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"a CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, 110), not {depth}")
    blocks = (depth - 2) // 6
    return CifarResNet([(width, blocks), (2 * width, blocks), (4 * width, blocks)], outputs)


def cifar_vgg(depth: int, outputs: int = 10) -> CifarVGG:
    """``cifar_vgg_<depth>``, depth 11, 13, 16 or 19."""
    if depth not in VGG_PLANS:
        raise ValueError(f"a CIFAR VGG has depth 11, 13, 16 or 19, not {depth}")
    return CifarVGG(VGG_PLANS[depth], outputs)


def cifar_resnet_20() -> CifarResNet:
    """OpenLTH's ``cifar_resnet_20`` for CIFAR-10 (16, 32, 64 filters; 0.27 M weights)."""
    return cifar_resnet(20)


def cifar_vgg_16() -> CifarVGG:
    """OpenLTH's ``cifar_vgg_16`` for CIFAR-10 (14.7 M weights)."""
    return cifar_vgg(16)


def mnist_lenet_300_100() -> MnistLeNet:
    """OpenLTH's ``mnist_lenet_300_100``."""
    return MnistLeNet([300, 100])
