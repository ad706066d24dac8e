"""Weight layers: one weight tensor (``nn.Linear`` or ``nn.Conv1d``/``nn.Conv2d``) as its surviving synapses.

A layer keeps only its surviving synapses, never a dense tensor: ``src`` (input neuron), ``dst`` (output
neuron) and ``w``, plus for convolutions the kernel offset ``ky``, ``kx`` of each weight. The neurons of a
convolution are channels, so one channel pair carries up to ``kh * kw`` synapses, one per surviving kernel
weight. A 1-D convolution is held as a 2-D one of kernel height 1 (``ky`` is 0), which computes the same.

Example::

    >>> import numpy as np
    >>> kernel = np.zeros((2, 1, 3, 3)); kernel[0, 0, 1, 2] = 0.5; kernel[1, 0, 0, 0] = -1.0
    >>> conv = Layer.from_dense("conv.weight", kernel, conv=Conv(kernel=(3, 3), in_spatial=(8, 8), padding=(1, 1)))
    >>> conv.kind, conv.edges, conv.dense_size, conv.conv.out_spatial
    ('conv2d', 2, 18, (8, 8))
    >>> sorted(zip(conv.src.tolist(), conv.dst.tolist(), conv.ky.tolist(), conv.kx.tolist()))
    [(0, 0, 1, 2), (0, 1, 0, 0)]
"""
from __future__ import annotations

from dataclasses import KW_ONLY, asdict, dataclass, replace

import numpy as np
import scipy.sparse as sp

from netarchive.errors import InputError


def _pair(value, name: str) -> tuple[int, int]:
    pair = tuple(int(v) for v in (value if isinstance(value, (tuple, list)) else (value, value)))
    if len(pair) != 2:
        raise InputError(f"{name} must be two numbers (height, width), got {value!r}")
    return pair


@dataclass(frozen=True)
class Conv:
    """The geometry of a convolution: what ``nn.Conv2d`` takes, plus the spatial size of its input.

    ``in_spatial`` is the (H, W) of the value the convolution reads (after any pooling since its source
    group was computed); the output size follows from it. Padding is symmetric (``padding='same'`` is
    resolved to numbers when the model is traced). ``dims`` is 1 for ``nn.Conv1d``, held as a kernel of
    height 1 on inputs of height 1.
    """

    kernel: tuple[int, int]
    in_spatial: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    dims: int = 2

    def __post_init__(self):
        for name in ("kernel", "in_spatial", "stride", "padding", "dilation"):
            object.__setattr__(self, name, _pair(getattr(self, name), name))
        object.__setattr__(self, "groups", int(self.groups))
        if min(self.kernel + self.in_spatial + self.stride + self.dilation) < 1 or min(self.padding) < 0 or self.groups < 1:
            raise InputError(f"invalid convolution geometry {self}")
        if self.dims not in (1, 2) or (self.dims == 1 and (self.kernel[0], self.in_spatial[0], self.stride[0],
                                                            self.padding[0], self.dilation[0]) != (1, 1, 1, 0, 1)):
            raise InputError(f"invalid convolution geometry {self}: a 1-D convolution has height 1")
        if min(self.out_spatial) < 1:
            raise InputError(f"a {self.kernel} kernel does not fit the {self.in_spatial} input of this convolution")

    @property
    def out_spatial(self) -> tuple[int, int]:
        """(H, W) of the output: ``(H + 2p - d(k - 1) - 1) // s + 1`` per axis, as torch computes it."""
        return tuple(
            (size + 2 * p - d * (k - 1) - 1) // s + 1
            for size, k, s, p, d in zip(self.in_spatial, self.kernel, self.stride, self.padding, self.dilation)
        )

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


@dataclass(frozen=True, eq=False)
class Layer:
    """One weight tensor: synapse ``src`` (input neuron) -> ``dst`` (output neuron) of weight ``w``.

    ``name`` is the name of the weight tensor in the user's state_dict (e.g. ``fc1.weight``), kept so that
    masks computed later load back into the user's model by name. ``inputs``/``outputs`` are the neurons
    of the source and target groups (channels for a convolution). ``source``/``target`` are the indices of
    those groups in the checkpoint (None: the chain position, layer l from group l to group l + 1).
    ``conv`` is the geometry of a convolution (None for ``nn.Linear``); its synapses then also carry the
    kernel offset ``ky``, ``kx`` (int16 arrays), and a grouped convolution only connects the input channels
    ``g * inputs/groups ... (g + 1) * inputs/groups - 1`` to the output channels of its group ``g``.
    """

    name: str
    inputs: int
    outputs: int
    src: np.ndarray
    dst: np.ndarray
    w: np.ndarray
    bias: np.ndarray | None = None
    """One bias per output neuron (channel), or None when the checkpoint had none (a forward pass then uses zeros)."""
    _: KW_ONLY
    ky: np.ndarray | None = None
    kx: np.ndarray | None = None
    conv: Conv | None = None
    source: int | None = None
    target: int | None = None

    def __post_init__(self):
        src = np.ascontiguousarray(self.src, dtype=np.int32)
        dst = np.ascontiguousarray(self.dst, dtype=np.int32)
        w = np.ascontiguousarray(self.w, dtype=np.float32)
        if not (src.ndim == dst.ndim == w.ndim == 1 and len(src) == len(dst) == len(w)):
            raise InputError(f"layer {self.name}: src, dst and w must be 1-D arrays of one length")
        if len(src) and (src.min() < 0 or src.max() >= self.inputs or dst.min() < 0 or dst.max() >= self.outputs):
            raise InputError(f"layer {self.name}: a synapse refers to a neuron outside the {self.outputs}x{self.inputs} layer")
        if not np.isfinite(w).all():
            raise InputError(f"layer {self.name}: weights contain NaN or inf")
        object.__setattr__(self, "src", src)
        object.__setattr__(self, "dst", dst)
        object.__setattr__(self, "w", w)
        self._check_kernel_offsets()
        if self.bias is not None:
            bias = np.ascontiguousarray(self.bias, dtype=np.float32)
            if bias.shape != (self.outputs,):
                raise InputError(f"layer {self.name}: {bias.size} biases for {self.outputs} outputs")
            if not np.isfinite(bias).all():
                raise InputError(f"layer {self.name}: biases contain NaN or inf")
            object.__setattr__(self, "bias", bias)

    def _check_kernel_offsets(self) -> None:
        if self.conv is None:
            if self.ky is not None or self.kx is not None:
                raise InputError(f"layer {self.name}: kernel offsets ky, kx belong to convolutions only")
            return
        if self.inputs % self.conv.groups or self.outputs % self.conv.groups:
            raise InputError(f"layer {self.name}: {self.inputs} -> {self.outputs} channels do not split into {self.conv.groups} groups")
        if self.ky is None or self.kx is None:
            raise InputError(f"layer {self.name}: a convolution's synapses need their kernel offsets ky, kx")
        ky = np.ascontiguousarray(self.ky, dtype=np.int16)
        kx = np.ascontiguousarray(self.kx, dtype=np.int16)
        if ky.shape != self.w.shape or kx.shape != self.w.shape:
            raise InputError(f"layer {self.name}: ky and kx must have one value per synapse")
        kh, kw = self.conv.kernel
        if len(ky) and (ky.min() < 0 or ky.max() >= kh or kx.min() < 0 or kx.max() >= kw):
            raise InputError(f"layer {self.name}: a kernel offset lies outside the {kh}x{kw} kernel")
        per_in, per_out = self.inputs // self.conv.groups, self.outputs // self.conv.groups
        if (self.src // per_in != self.dst // per_out).any():
            raise InputError(f"layer {self.name}: a synapse joins channels of different groups of the grouped convolution")
        object.__setattr__(self, "ky", ky)
        object.__setattr__(self, "kx", kx)

    @classmethod
    def from_dense(cls, name: str, weight: np.ndarray, bias: np.ndarray | None = None, *, conv: Conv | None = None,
                   source: int | None = None, target: int | None = None) -> "Layer":
        """Build a layer from its weight tensor; zeros are pruned.

        ``weight`` is ``[outputs, inputs]`` as ``nn.Linear.weight``, or with ``conv`` the kernel
        ``[C_out, C_in / groups, kh, kw]`` as ``nn.Conv2d.weight`` (``[C_out, C_in / groups, k]`` for Conv1d).
        """
        weight = np.asarray(weight)
        if conv is None and weight.ndim != 2:
            raise InputError(f"{name}: expected a 2-D weight matrix, got shape {tuple(weight.shape)}")
        if not np.isfinite(weight).all():
            raise InputError(f"{name}: weights contain NaN or inf")
        if conv is None:
            dst, src = np.nonzero(weight)
            return cls(name, int(weight.shape[1]), int(weight.shape[0]), src, dst, weight[dst, src], bias,
                       source=source, target=target)
        kernel = weight.reshape(weight.shape[0], weight.shape[1], *conv.kernel) if weight.ndim == 3 else weight
        if kernel.ndim != 4 or kernel.shape[2:] != conv.kernel:
            raise InputError(f"{name}: a {conv.kernel[0]}x{conv.kernel[1]} kernel cannot have shape {tuple(weight.shape)}")
        outputs, per_group = int(kernel.shape[0]), int(kernel.shape[1])
        dst, local, ky, kx = np.nonzero(kernel)
        src = (dst // (outputs // conv.groups)) * per_group + local
        return cls(name, per_group * conv.groups, outputs, src, dst, kernel[dst, local, ky, kx], bias,
                   ky=ky, kx=kx, conv=conv, source=source, target=target)

    @property
    def kind(self) -> str:
        """``linear``, ``conv1d`` or ``conv2d``."""
        return "linear" if self.conv is None else f"conv{self.conv.dims}d"

    @property
    def edges(self) -> int:
        return len(self.w)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """The shape of the weight tensor in torch (``nn.Linear.weight``, ``nn.Conv1d/2d.weight``)."""
        if self.conv is None:
            return (self.outputs, self.inputs)
        head = (self.outputs, self.inputs // self.conv.groups)
        return head + ((self.conv.kernel[1],) if self.conv.dims == 1 else self.conv.kernel)

    @property
    def dense_size(self) -> int:
        """Weights of the dense tensor (``C_out * C_in / groups * kh * kw`` for a convolution)."""
        return int(np.prod(self.weight_shape))

    def subset(self, keep: np.ndarray) -> "Layer":
        """The same layer with only the synapses where the boolean mask ``keep`` is true."""
        offsets = {} if self.conv is None else {"ky": self.ky[keep], "kx": self.kx[keep]}
        return replace(self, src=self.src[keep], dst=self.dst[keep], w=self.w[keep], **offsets)

    def _indices(self) -> tuple[np.ndarray, ...]:
        """Where each synapse sits in the dense weight tensor of :attr:`weight_shape`."""
        if self.conv is None:
            return self.dst, self.src
        local = self.src - (self.dst // (self.outputs // self.conv.groups)) * (self.inputs // self.conv.groups)
        return (self.dst, local, self.kx) if self.conv.dims == 1 else (self.dst, local, self.ky, self.kx)

    def dense(self) -> np.ndarray:
        """The dense weight tensor shaped as in torch, zeros where pruned (for one layer at a time)."""
        out = np.zeros(self.weight_shape, dtype=np.float32)
        out[self._indices()] = self.w
        return out

    def mask(self) -> np.ndarray:
        """The dense boolean mask of surviving synapses, shaped like the weight tensor (for ``custom_from_mask``)."""
        out = np.zeros(self.weight_shape, dtype=bool)
        out[self._indices()] = True
        return out

    def matrix(self) -> sp.csr_matrix:
        """A Linear layer as a sparse ``[outputs, inputs]`` matrix of weights (CSR), like ``nn.Linear.weight``.

        A convolution has several weights per channel pair, so it has no such matrix: use the arrays.
        """
        if self.conv is not None:
            raise InputError(f"{self.name} is a convolution: it has up to {self.conv.kernel[0] * self.conv.kernel[1]} "
                             "weights per channel pair, not one matrix entry")
        return sp.csr_matrix((self.w, (self.dst, self.src)), shape=(self.outputs, self.inputs))
