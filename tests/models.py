"""Small architectures for the tracing and forward-pass tests; each factory is a ``--model`` SPEC target
(``tests/models.py:cnn``). Weights are seeded; batch-norm statistics are made non-trivial so they matter."""
import torch
import torch.nn.functional as F
from torch import nn


def _seeded(model: nn.Module, seed: int = 0) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.3)
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model.eval()


class ResidualMLP(nn.Module):
    """The issue's example: ``h + relu(fc2(h))``, which a chain reading silently gets wrong."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        h = h + F.relu(self.fc2(h))
        return self.out(h)


class CNN(nn.Module):
    """Convolutions with batch norm and max pooling (module and functional forms), flatten, Linear."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.conv2, self.bn2 = nn.Conv2d(4, 6, 3, padding="same"), nn.BatchNorm2d(6)
        self.fc = nn.Linear(6 * 2 * 2, 3)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), kernel_size=2, stride=2)
        return self.fc(torch.flatten(x, 1))


class BasicBlockNet(nn.Module):
    """A ResNet basic block whose shortcut is a 1×1 stride-2 projection with batch norm."""

    def __init__(self):
        super().__init__()
        self.stem, self.bn0 = nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.conv1, self.bn1 = nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.shortcut = nn.Sequential(nn.Conv2d(4, 8, 1, stride=2, bias=False), nn.BatchNorm2d(8))
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x):
        x = self.relu(self.bn0(self.stem(x)))
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return self.head(self.relu(out))


class DepthwiseSeparable(nn.Module):
    """A depthwise 3×3 convolution (groups = channels), a pointwise 1×1 one, average pooling."""

    def __init__(self):
        super().__init__()
        self.depthwise = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.pointwise = nn.Conv2d(4, 6, 1)
        self.fc = nn.Linear(6 * 3 * 3, 3)

    def forward(self, x):
        x = F.gelu(self.pointwise(F.relu(self.depthwise(x))))
        x = F.avg_pool2d(x, 2)
        return self.fc(x.view(x.size(0), -1))


class Conv1dNet(nn.Module):
    """1-D convolutions (grouped, strided, dilated), BatchNorm1d, pools of both kinds, concatenation."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv1d(2, 4, 3, stride=2, padding=1, dilation=2, groups=2)
        self.bn = nn.BatchNorm1d(4)
        self.b = nn.Conv1d(2, 3, 5, padding=2)
        self.fc = nn.Linear(7 * 4, 3)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        left = nn.AdaptiveMaxPool1d(4)(torch.tanh(self.bn(self.a(x))))
        right = F.adaptive_avg_pool1d(F.leaky_relu(self.b(x), 0.2), 4)
        return self.fc(self.drop(torch.cat([left, right], dim=1).flatten(1)))


def residual_mlp():
    return _seeded(ResidualMLP())


def cnn():
    return _seeded(CNN())


def basic_block():
    return _seeded(BasicBlockNet())


def depthwise_separable():
    return _seeded(DepthwiseSeparable())


def conv1d_net():
    return _seeded(Conv1dNet())


def mlp():
    """A plain chain: what the archive can store today."""
    return _seeded(nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.Tanh(), nn.Linear(5, 3)))


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return self.fc(-x)


def data_dependent():
    return DataDependent()


def raises():
    raise RuntimeError("CUDA is not available here")


def not_a_module():
    return {"fc.weight": torch.ones(2, 2)}
