"""How each node of a traced fx graph becomes an op of the program: the tables of supported modules,
functions and methods, and the reader that walks the graph (see :mod:`netarchive.loaders.traced`).

Each node becomes a raw op; a reshape that flattens from dim 1 is recognised by the shapes before and after,
whatever the call. In-place operations (``relu_``, ``nn.ReLU(inplace=True)``) make later readers of the tensor
see the new value. Once the output is reached, only the ops it depends on are kept, and groups, layers and
batch norms are numbered in forward order.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from netarchive.errors import InputError
from netarchive.model import Conv, Group, Op, sample_shape

SUPPORTED = ("Linear, Conv1d/Conv2d, BatchNorm1d/2d, max/avg/adaptive pooling, flatten, +, torch.cat, "
             "ReLU/GELU/Tanh/Sigmoid/LeakyReLU, Identity, Dropout")


@dataclass(frozen=True)
class LayerSpec:
    """A weight layer of the traced structure: its tensor names, geometry and groups."""

    weight: str
    bias: str | None
    conv: Conv | None
    source: int
    target: int


@dataclass(frozen=True)
class NormSpec:
    """A batch norm of the traced structure: its module name (tensor prefix), group, eps, affine or not."""

    name: str
    group: int
    eps: float
    affine: bool


def describe(gm, node) -> str:
    """What a node calls, for messages: ``Conv2d layer1.conv``, ``torch.mul``, ``.softmax()``."""
    if node.op == "call_module":
        return f"{type(gm.get_submodule(node.target)).__name__} {node.target}"
    if node.op == "call_method":
        return f".{node.target}()"
    if node.op == "call_function":
        where = getattr(node.target, "__module__", None) or ""
        where = {"_operator": "operator", "torch._C._nn": "torch.nn.functional", "torch._C._VariableFunctions": "torch"}.get(where, where)
        return f"{where}.{getattr(node.target, '__name__', node.target)}".lstrip(".")
    return f"{node.op} {node.target}"


@dataclass
class _Raw:
    """An op before dead code is removed and groups, layers and batch norms are numbered."""

    kind: str
    inputs: tuple[int, ...]
    size: int
    spatial: tuple[int, int] | None
    name: str
    params: dict = field(default_factory=dict)
    layer: tuple | None = None  # (weight name, bias name, Conv or None)
    norm: tuple | None = None  # (module name, eps, affine)
    coordinates: tuple | None = None


class NodeReader:
    """Reads the fx graph node by node into raw ops, then numbers what reaches the output."""

    def __init__(self, gm, recorder, label: str):
        self.gm, self.recorder, self.label = gm, recorder, label
        self.raws: list[_Raw] = []
        self.value: dict = {}  # fx node -> raw op index
        self.called: set[str] = set()

    # -- reading nodes -----------------------------------------------------------------------------
    def build(self, shape, flat: bool) -> None:
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self._input(node, shape, flat)
            elif node.op == "output":
                output = node.args[0]
                if not (isinstance(output, fx.Node) and output in self.value):
                    raise InputError(f"{self.label}: forward must return one tensor computed from its input")
                self._finish(self.value[output])
            elif node in self.recorder.shapes and node.op != "get_attr":
                self._node(node)

    def _input(self, node, shape, flat: bool) -> None:
        batch_shape = self.recorder.shapes[node]
        size, spatial = self._shape(node, batch_shape)
        coordinates = sample_shape(shape) if shape and (flat or self._flattened_at_once(node)) else None
        if coordinates is not None:
            size, spatial = int(np.prod(coordinates)), None
        self.value[node] = self._add(_Raw("input", (), size, spatial, "input", coordinates=coordinates))

    def _flattened_at_once(self, node) -> bool:
        """Whether every use of the input flattens it (``x.size(0)`` is no use): it is then pixel units, not a
        feature map."""
        users = [user for user in node.users if user in self.recorder.shapes]
        return bool(users) and all(self._flattens(user) for user in users)

    def _node(self, node) -> None:
        handler = self._handler(node)
        if handler is None:
            raise self._unsupported(node)
        handler(node)

    def _handler(self, node):
        if node.op == "call_module":
            module = self.gm.get_submodule(node.target)
            return next((getattr(self, name) for types, name in _MODULES if isinstance(module, types)), None)
        table = _METHODS if node.op == "call_method" else _FUNCTIONS if node.op == "call_function" else {}
        name = table.get(node.target)
        return getattr(self, name) if name else None

    def _unsupported(self, node, why: str = "") -> InputError:
        reason = f": {why}" if why else f" (supported: {SUPPORTED})"
        return InputError(f"{self.label}: operation {node.name} ({describe(self.gm, node)}) is not supported{reason}")

    # -- values --------------------------------------------------------------------------------------
    def _shape(self, node, batch_shape) -> tuple[int, tuple[int, int] | None]:
        sample = batch_shape[1:]
        if len(sample) == 1:
            return sample[0], None
        if len(sample) == 2:
            return sample[0], (1, sample[1])
        if len(sample) == 3:
            return sample[0], (sample[1], sample[2])
        raise self._unsupported(node, f"its value has shape {batch_shape} (netarchive handles [N, F], [N, C, L], [N, C, H, W])")

    def _add(self, raw: _Raw) -> int:
        self.raws.append(raw)
        return len(self.raws) - 1

    def _inputs(self, node) -> list[int]:
        """The raw ops of the tensor arguments of ``node`` (in order); a tensor not computed from the input is refused."""
        found = []
        fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n) if n in self.recorder.shapes else None)
        for arg in found:
            if arg not in self.value:
                raise self._unsupported(node, f"it reads {arg.name}, a tensor not computed from the input (a parameter "
                                        "or constant used directly)")
        return [self.value[arg] for arg in found]

    def _arguments(self, node, names: Sequence[str]) -> dict:
        """The call's arguments by name (positional ones named by ``names``), non-tensor values resolved."""
        resolve = lambda value: fx.node.map_arg(value, lambda n: self.recorder.constants.get(n, n))  # noqa: E731
        bound = dict(zip(names, resolve(tuple(node.args))))
        bound.update(resolve(dict(node.kwargs)))
        return bound

    def _result(self, node, raw: _Raw, in_place_of: int | None = None) -> None:
        index = self._add(raw)
        self.value[node] = index
        if in_place_of is not None:  # later readers of the modified tensor see the new value
            for other, value in list(self.value.items()):
                if value == in_place_of:
                    self.value[other] = index

    def _single(self, node) -> int:
        """The raw op of the one tensor that ``node`` reads."""
        inputs = self._inputs(node)
        if len(inputs) != 1:
            raise self._unsupported(node, f"it reads {len(inputs)} tensors")
        return inputs[0]

    # -- handlers ------------------------------------------------------------------------------------
    def _alias(self, node) -> None:
        self.value[node] = self._single(node)

    def _layer(self, node) -> None:
        module = self.gm.get_submodule(node.target)
        self._once(node)
        source = self._single(node)
        raw = self.raws[source]
        size, spatial = self._shape(node, self.recorder.shapes[node])
        conv = None
        if isinstance(module, nn.Linear):
            if raw.spatial is not None or len(self.recorder.shapes[node]) != 2:
                raise self._unsupported(node, "a Linear layer must read a flat [N, features] value (flatten it first)")
        elif raw.spatial is None:
            raise self._unsupported(node, "a convolution must read a feature map [N, C, L] or [N, C, H, W]")
        else:
            conv = self._conv(node, module, raw.spatial)
        bias = f"{node.target}.bias" if module.bias is not None else None
        self._result(node, _Raw("layer", (source,), size, spatial, node.target, layer=(f"{node.target}.weight", bias, conv)))

    def _conv(self, node, module, spatial) -> Conv:
        if module.padding_mode != "zeros":
            raise self._unsupported(node, f"padding_mode={module.padding_mode!r} (only zero padding is supported)")
        dims = 1 if isinstance(module, nn.Conv1d) else 2
        kernel, stride, dilation = (_axes(getattr(module, name), dims, 1) for name in ("kernel_size", "stride", "dilation"))
        if module.padding == "same":
            totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
            if any(total % 2 for total in totals):
                raise self._unsupported(node, "padding='same' with this kernel pads unevenly (only symmetric padding is supported)")
            padding = tuple(total // 2 for total in totals)
        else:
            padding = (0, 0) if module.padding == "valid" else _axes(module.padding, dims, 0)
        return Conv(kernel=kernel, in_spatial=spatial, stride=stride, padding=padding, dilation=dilation,
                    groups=module.groups, dims=dims)

    def _once(self, node) -> None:
        if node.target in self.called:
            raise self._unsupported(node, f"module {node.target} is called twice (shared weights)")
        self.called.add(node.target)

    def _batchnorm(self, node) -> None:
        module = self.gm.get_submodule(node.target)
        self._once(node)
        if not module.track_running_stats or module.running_mean is None:
            raise self._unsupported(node, "it has no running statistics (track_running_stats=False)")
        source = self._single(node)
        raw = self.raws[source]
        self._result(node, _Raw("batchnorm", (source,), raw.size, raw.spatial, node.target,
                                norm=(node.target, module.eps, module.affine)))

    def _activation(self, node) -> None:
        if node.op == "call_module":
            module = self.gm.get_submodule(node.target)
            function = _MODULE_ACTIVATIONS[type(module)]
            arguments = {key: getattr(module, key) for key in ("inplace", "negative_slope", "approximate") if hasattr(module, key)}
        elif node.op == "call_method":
            function, arguments = node.target.rstrip("_"), {"inplace": node.target.endswith("_")}
        else:
            function, names = _FUNCTION_ACTIVATIONS[node.target]
            arguments = {"inplace": node.target.__name__.endswith("_"), **self._arguments(node, names)}
        params = {"function": function}
        if function == "leaky_relu":
            params["slope"] = float(arguments.get("negative_slope", 0.01))
        if function == "gelu" and arguments.get("approximate", "none") != "none":
            params["approximate"] = arguments["approximate"]
        source = self._single(node)
        raw = self.raws[source]
        self._result(node, _Raw("activation", (source,), raw.size, raw.spatial, node.name, params),
                     in_place_of=source if arguments.get("inplace") else None)

    def _pool(self, node) -> None:
        source = self._single(node)
        raw = self.raws[source]
        kind, dims, arguments = self._pool_arguments(node)
        if arguments.get("return_indices"):
            raise self._unsupported(node, "it returns indices")
        size, spatial = self._shape(node, self.recorder.shapes[node])
        if raw.spatial is None or size != raw.size:
            raise self._unsupported(node, "pooling must read a feature map [N, C, L] or [N, C, H, W]")
        if kind.startswith("adaptive"):
            params = {"output_size": spatial}
        else:
            kernel = _axes(arguments["kernel_size"], dims, 1)
            stride = arguments.get("stride")
            params = {"kernel": kernel, "stride": _axes(stride, dims, 1) if stride not in (None, [], ()) else kernel,
                      "padding": _axes(arguments.get("padding", 0), dims, 0), "ceil_mode": bool(arguments.get("ceil_mode", False))}
            if kind == "maxpool":
                params["dilation"] = _axes(arguments.get("dilation", 1), dims, 1)
            else:
                params["count_include_pad"] = bool(arguments.get("count_include_pad", True))
                params["divisor_override"] = arguments.get("divisor_override")
        self._result(node, _Raw(kind, (source,), size, spatial, node.name, params))

    def _pool_arguments(self, node) -> tuple[str, int, dict]:
        if node.op == "call_module":
            module = self.gm.get_submodule(node.target)
            name = type(module).__name__
            arguments = {key: getattr(module, key) for key in ("kernel_size", "stride", "padding", "dilation", "ceil_mode",
                         "count_include_pad", "divisor_override", "return_indices") if hasattr(module, key)}
        else:
            name, names = _POOL_FUNCTIONS[node.target]
            arguments = self._arguments(node, names)
        kind = {"MaxPool": "maxpool", "AvgPool": "avgpool", "AdaptiveAvgPool": "adaptive_avgpool",
                "AdaptiveMaxPool": "adaptive_maxpool"}[name[:-2]]
        return kind, int(name[-2]), arguments

    def _flattens(self, node) -> bool:
        """A reshape that flattens from dim 1 (whatever the call: the result is [N, everything else])."""
        if self._handler(node) != self._flatten:
            return False
        args = [a for a in node.args if isinstance(a, fx.Node) and a in self.recorder.shapes]
        if len(args) != 1 or node not in self.recorder.shapes:
            return False
        before, after = self.recorder.shapes[args[0]], self.recorder.shapes[node]
        return len(after) == 2 and after == (before[0], int(np.prod(before[1:])))

    def _flatten(self, node) -> None:
        if not self._flattens(node):
            raise self._unsupported(node, f"it reshapes to {self.recorder.shapes.get(node)}, which is not a flatten from dim 1")
        source = self._single(node)
        raw = self.raws[source]
        if raw.spatial is None:
            self.value[node] = source
            return
        self._result(node, _Raw("flatten", (source,), raw.size * raw.spatial[0] * raw.spatial[1], None, node.name,
                                coordinates=(raw.size, *raw.spatial)))

    def _add_values(self, node) -> None:
        inputs = self._inputs(node)
        if len(inputs) != 2 or len([a for a in node.args if isinstance(a, fx.Node)]) != 2:
            raise self._unsupported(node, "only the sum of two tensors computed from the input is supported")
        if node.target is torch.add and self._arguments(node, ("input", "other")).get("alpha", 1) != 1:
            raise self._unsupported(node, "torch.add with alpha")
        size, spatial = self._shape(node, self.recorder.shapes[node])
        if any((self.raws[i].size, self.raws[i].spatial) != (size, spatial) for i in inputs):
            raise self._unsupported(node, "the added tensors differ in shape (broadcasting is not supported)")
        in_place = node.target in ("add_",) or node.target is operator.iadd
        self._result(node, _Raw("add", tuple(inputs), size, spatial, node.name), in_place_of=inputs[0] if in_place else None)

    def _concat(self, node) -> None:
        inputs = self._inputs(node)
        arguments = self._arguments(node, ("tensors", "dim"))
        rank = len(self.recorder.shapes[node])
        if arguments.get("dim", 0) % rank != 1:
            raise self._unsupported(node, f"it concatenates along dim {arguments.get('dim', 0)} (only channels / features, dim 1)")
        size, spatial = self._shape(node, self.recorder.shapes[node])
        self._result(node, _Raw("concat", tuple(inputs), size, spatial, node.name))

    # -- numbering -----------------------------------------------------------------------------------
    def _finish(self, output: int) -> None:
        """Keep the raw ops the output depends on, in order, and number groups, layers and batch norms."""
        needed = {output}
        for index in range(output, -1, -1):
            if index in needed:
                needed.update(self.raws[index].inputs)
        position, groups, program, layers, norms = {}, [], [], [], []
        for index in sorted(needed):
            raw = self.raws[index]
            inputs = tuple(position[i] for i in raw.inputs)
            if raw.kind in ("input", "layer", "flatten", "add", "concat"):
                group = len(groups)
                groups.append(Group(raw.name, raw.size, raw.spatial, raw.coordinates))
            else:
                group = program[inputs[0]].group
            op_index = None
            if raw.kind == "layer":
                op_index = len(layers)
                layers.append(LayerSpec(*raw.layer, source=program[inputs[0]].group, target=group))
            elif raw.kind == "batchnorm":
                op_index = len(norms)
                norms.append(NormSpec(raw.norm[0], group, float(raw.norm[1]), bool(raw.norm[2])))
            position[index] = len(program)
            program.append(Op(raw.kind, inputs, group, op_index, raw.params))
        if not layers:
            raise InputError(f"{self.label} has no Linear or convolution layer on the way from its input to its output")
        self.groups, self.program, self.layers, self.batchnorms = tuple(groups), tuple(program), tuple(layers), tuple(norms)


def _axes(value, dims: int, fill: int) -> tuple[int, int]:
    """A torch size argument (int or tuple) as (height, width); 1-D ones get height ``fill``."""
    values = tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * dims
    return values if dims == 2 else (fill, values[0])


_MAX_POOL = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_AVG_POOL = ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
_POOL_FUNCTIONS = {
    F.max_pool1d: ("MaxPool1d", _MAX_POOL), F.max_pool2d: ("MaxPool2d", _MAX_POOL),
    F.avg_pool1d: ("AvgPool1d", _AVG_POOL[:-1]), F.avg_pool2d: ("AvgPool2d", _AVG_POOL),
    F.adaptive_avg_pool1d: ("AdaptiveAvgPool1d", ("input", "output_size")),
    F.adaptive_avg_pool2d: ("AdaptiveAvgPool2d", ("input", "output_size")),
    F.adaptive_max_pool1d: ("AdaptiveMaxPool1d", ("input", "output_size", "return_indices")),
    F.adaptive_max_pool2d: ("AdaptiveMaxPool2d", ("input", "output_size", "return_indices")),
}
"""Functional pools: the name of the module doing the same and the names of their positional arguments."""
_MODULE_ACTIVATIONS = {nn.ReLU: "relu", nn.GELU: "gelu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.LeakyReLU: "leaky_relu"}
_FUNCTION_ACTIVATIONS = {
    F.relu: ("relu", ("input", "inplace")), torch.relu: ("relu", ("input",)), F.relu_: ("relu", ("input",)),
    torch.relu_: ("relu", ("input",)), F.gelu: ("gelu", ("input", "approximate")),
    F.leaky_relu: ("leaky_relu", ("input", "negative_slope", "inplace")),
    torch.tanh: ("tanh", ("input",)), F.tanh: ("tanh", ("input",)),
    torch.sigmoid: ("sigmoid", ("input",)), F.sigmoid: ("sigmoid", ("input",)),
}
_MODULES = (
    ((nn.Linear, nn.Conv1d, nn.Conv2d), "_layer"),
    ((nn.BatchNorm1d, nn.BatchNorm2d), "_batchnorm"),
    ((nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
      nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d), "_pool"),
    (tuple(_MODULE_ACTIVATIONS), "_activation"),
    ((nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout), "_alias"),
    ((nn.Flatten,), "_flatten"),
)
"""Module types and the handler of the builder that reads their calls (first match wins)."""
_METHODS = {
    **{name: "_activation" for name in ("relu", "relu_", "tanh", "tanh_", "sigmoid", "sigmoid_")},
    "add": "_add_values", "add_": "_add_values", "contiguous": "_alias",
    **{name: "_flatten" for name in ("view", "reshape", "flatten", "squeeze")},
}
_FUNCTIONS = {
    operator.add: "_add_values", operator.iadd: "_add_values", torch.add: "_add_values",
    torch.cat: "_concat", torch.concat: "_concat", torch.concatenate: "_concat",
    torch.flatten: "_flatten", torch.reshape: "_flatten", torch.squeeze: "_flatten",
    **{function: "_activation" for function in _FUNCTION_ACTIVATIONS},
    **{function: "_alias" for function in (F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout)},
    **{function: "_pool" for function in _POOL_FUNCTIONS},
}
