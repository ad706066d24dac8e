"""From an ``nn.Module`` to the model: its layer graph traced with torch.fx, its weights and masks by name.

The module is traced with ``torch.fx`` (a symbolic trace, modules built inside ``forward`` traced through)
and run once on an example input of the given shape under an ``fx.Interpreter`` that records every value's
shape, as ``torch.fx.passes.shape_prop.ShapeProp`` does (it is not used itself: it prints a traceback on
failure). Each node of the graph then becomes an op of the program (:mod:`netarchive.model.program`), the
way Torch-Pruning's DepGraph and torchlens read a traced module (:mod:`netarchive.loaders.fx_nodes`):
Linear/Conv1d/Conv2d modules become weight layers named by their tensors (``conv1.weight``),
BatchNorm1d/2d their eval statistics, pooling (module and functional), flatten (``nn.Flatten``,
``torch.flatten``, ``x.view(x.size(0), -1)``, any reshape that flattens from dim 1), ``+``/``torch.add``
residual additions, ``torch.cat`` and the activations; Dropout and Identity vanish (eval mode). Anything
else is refused in one line naming the node and its target.

Tracing happens once per architecture (:func:`trace`); each checkpoint's weights then fill the traced
structure by name (:meth:`Traced.checkpoint`), the masks already applied (``loaders.stack.effective_weights``).
This module imports torch: the loaders import it only when a model is given.
"""
from __future__ import annotations

import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import fx, nn

from netarchive.errors import InputError, first_line
from netarchive.loaders.fx_nodes import LayerSpec, NodeReader, NormSpec, describe
from netarchive.loaders.stack import effective_name, effective_weights
from netarchive.loaders.torch_file import arrays
from netarchive.model import ACTIVATIONS, BatchNorm, Checkpoint, Group, Layer, Op


@dataclass(frozen=True)
class Traced:
    """The structure of a traced module, ready to take the weights of any checkpoint of it."""

    label: str
    groups: tuple[Group, ...]
    program: tuple[Op, ...]
    layers: tuple[LayerSpec, ...]
    batchnorms: tuple[NormSpec, ...]
    tensors: Mapping[str, tuple[int, ...]]
    """Every tensor of the module's state_dict (masks applied) with its shape: what a checkpoint must hold."""
    activation: str = "relu"

    def checkpoint(self, weights: Mapping[str, np.ndarray], *, run: str, level: int, origin: str,
                   metrics: Mapping[str, float] | None = None, meta: Mapping[str, str] | None = None,
                   curves: Mapping[str, tuple] | None = None) -> Checkpoint:
        """The checkpoint of ``weights`` (named tensors, masks applied) in this structure; ``origin`` (a file
        name) starts the one-line error when a tensor is missing, extra or of another shape."""
        self._check_fit(weights, origin)
        layers = tuple(
            Layer.from_dense(spec.weight, weights[spec.weight], weights[spec.bias] if spec.bias else None,
                             conv=spec.conv, source=spec.source, target=spec.target)
            for spec in self.layers
        )
        batchnorms = tuple(
            BatchNorm(spec.name, spec.group, weights[f"{spec.name}.running_mean"], weights[f"{spec.name}.running_var"],
                      weights[f"{spec.name}.weight"] if spec.affine else None,
                      weights[f"{spec.name}.bias"] if spec.affine else None, spec.eps)
            for spec in self.batchnorms
        )
        return Checkpoint(run, level, layers, None, dict(metrics or {}), dict(meta or {}), self.activation,
                          groups=self.groups, batchnorms=batchnorms, program=self.program,
                          architecture_source=f"traced from {self.label}", curves=dict(curves or {}))

    def _check_fit(self, weights: Mapping[str, np.ndarray], origin: str) -> None:
        for name, shape in self.tensors.items():
            if name not in weights:
                if name.endswith("num_batches_tracked"):
                    continue
                raise InputError(f"{origin}: no tensor {name}, which the model {self.label} has (shape {shape})")
            if tuple(weights[name].shape) != shape:
                raise InputError(f"{origin}: {name} has shape {tuple(weights[name].shape)} in the checkpoint "
                                 f"but {shape} in the model {self.label}")
        extra = [name for name in weights if name not in self.tensors and not name.endswith("num_batches_tracked")]
        if extra:
            more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
            raise InputError(f"{origin}: the checkpoint's tensor {extra[0]}{more} is not in the model {self.label}")


def module_weights(module) -> dict[str, np.ndarray]:
    """The named tensors of a live module as numpy, masks applied (``torch.nn.utils.prune`` included)."""
    return effective_weights(arrays(module.state_dict(), f"module {type(module).__name__}"))


def from_module(module, *, run: str, level: int, input_shape: Sequence[int] | None = None,
                metrics: Mapping[str, float] | None = None, meta: Mapping[str, str] | None = None,
                curves: Mapping[str, tuple] | None = None, traces: "TraceCache | None" = None) -> Checkpoint:
    """The checkpoint of a live module: traced (or its structure taken from ``traces``), with its own
    weights and masks."""
    label = f"module {type(module).__name__}"
    traced = traces.trace(module, input_shape, label) if traces is not None else trace(module, input_shape, label)
    return traced.checkpoint(module_weights(module), run=run, level=level, origin=label, metrics=metrics, meta=meta,
                             curves=curves)


class TraceCache:
    """The traced structures of the modules a training loop archives, so that a module whose structure
    has not changed since its last level is not traced again (a trace costs about 0.1 s on the digits MLP,
    a ResNet's seconds; the weights are read afresh every time).

    The key (:func:`structure_key`) is what can change a trace: the input shape; every submodule's
    name, class, ``forward`` and settings (``extra_repr`` and its plain attributes: numbers, strings,
    tuples); and the names and shapes of its tensors, masks applied. Pruning with ``torch.nn.utils.prune``
    (``weight_orig`` and ``weight_mask`` for ``weight``) keeps the key; a layer swapped, resized or added,
    a changed setting or forward, re-traces. Code in ``forward`` that reads other state (a global, a
    list attribute) is not seen: give such a model a fresh cache when it changes."""

    def __init__(self):
        self._key, self._traced = None, None  # a loop archives one structure at a time: the last one

    def trace(self, module, input_shape: Sequence[int] | None = None, label: str | None = None) -> Traced:
        _require_module(module)
        key = (label, structure_key(module, input_shape))
        if key != self._key:
            self._key, self._traced = key, trace(module, input_shape, label)
        return self._traced


def structure_key(module, input_shape: Sequence[int] | None = None) -> tuple:
    """What the trace of ``module`` on samples of ``input_shape`` depends on (see :class:`TraceCache`)."""
    def settings(m) -> tuple:
        plain = tuple(sorted((name, value) for name, value in vars(m).items()
                             if not name.startswith("_") and name != "training" and _plain(value)))
        forward = getattr(m.forward, "__func__", m.forward)
        return type(m), forward, m.extra_repr(), plain

    shape = None if input_shape is None else tuple(int(s) for s in input_shape)
    modules = tuple((name, *settings(m)) for name, m in module.named_modules())
    tensors = tuple(sorted((effective_name(name), tuple(value.shape)) for name, value in module.state_dict().items()
                           if effective_name(name) is not None))
    return shape, modules, tensors


def _plain(value) -> bool:
    if isinstance(value, tuple):
        return all(_plain(item) for item in value)
    return isinstance(value, (bool, int, float, str, type(None)))


def _require_module(module) -> None:
    if not isinstance(module, torch.nn.Module):
        raise InputError(f"expected a torch.nn.Module, got a {type(module).__name__}")


def trace(module, input_shape: Sequence[int] | None = None, label: str | None = None) -> Traced:
    """Trace ``module`` on samples of ``input_shape`` (C,H,W or C,L; None for an MLP: its first Linear's
    inputs). ``label`` names the model in messages and in ``architecture_source``."""
    _require_module(module)
    label = label or f"module {type(module).__name__}"
    training = {m: m.training for m in module.modules()}
    module.eval()  # trace and run as in evaluation (batch norm statistics, no dropout); restored below
    try:
        graph = _symbolic_graph(module, label)
        gm = fx.GraphModule(module, graph)
        placeholder = _the_input(graph, label)
        shape = _input_shape(gm, input_shape, label)
        flat = _feeds_linear(gm, placeholder)
        example = torch.zeros(2, int(np.prod(shape))) if flat else torch.zeros(2, *shape)
        recorder = _Recorder(gm)
        try:
            with torch.no_grad(), warnings.catch_warnings():  # the model's warnings are not the user's business here
                warnings.simplefilter("ignore")
                recorder.run(example)
        except _NodeFailed as failed:
            raise InputError(f"{label} fails on an input of shape {','.join(map(str, shape))}: node {failed.node.name} "
                             f"({describe(gm, failed.node)}): {first_line(failed.error)}") from None
        builder = NodeReader(gm, recorder, label)
        builder.build(shape if len(shape) > 1 else None, flat)
    finally:
        for m, mode in training.items():
            m.train(mode)
    functions = [op.params["function"] for op in builder.program if op.kind == "activation"]
    tensors = {effective_name(name): tuple(value.shape) for name, value in module.state_dict().items()}
    tensors.pop(None, None)
    return Traced(label, builder.groups, builder.program, builder.layers, builder.batchnorms, tensors,
                  next((f for f in functions if f in ACTIVATIONS), "relu"))


def _symbolic_graph(module, label: str):
    """The fx graph of ``module``; a module built inside ``forward`` (OpenLTH's ``nn.AvgPool2d(2)(x)``) is
    traced through. Untraceable code (data-dependent control flow) is one line naming where it is."""
    class Tracer(fx.Tracer):
        def call_module(self, m, forward, args, kwargs):
            try:
                self.path_of_module(m)
            except NameError:  # not a submodule of the root: trace what it does
                return forward(*args, **kwargs)
            return super().call_module(m, forward, args, kwargs)

    try:
        return Tracer().trace(module)
    except Exception as error:  # noqa: BLE001 - whatever the model's code raises while being traced
        kind = "data-dependent control flow" if isinstance(error, fx.proxy.TraceError) else type(error).__name__
        raise InputError(f"{label} cannot be traced: {kind} at {_user_frame(error)} ({first_line(error)})") from None


def _user_frame(error: BaseException) -> str:
    """``file.py:line `code``` of the innermost frame of the traceback outside torch and netarchive."""
    inside = (str(Path(torch.__file__).parent), str(Path(__file__).parents[1]))
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(inside)]
    if not frames:
        return "an unknown place"
    frame = frames[-1]
    return f"{Path(frame.filename).name}:{frame.lineno} `{(frame.line or '').strip()}`"


def _the_input(graph, label: str):
    inputs = [node for node in graph.nodes if node.op == "placeholder"]
    if len(inputs) != 1:
        raise InputError(f"{label}: forward takes {len(inputs)} inputs ({', '.join(n.name for n in inputs)}); "
                         "netarchive traces models of one input tensor")
    return inputs[0]


def _input_shape(gm, given, label: str) -> tuple[int, ...]:
    """The sample shape to trace with: the given one, or for a model without convolutions its first Linear's inputs."""
    if given is not None:
        shape = tuple(int(s) for s in given)
        if not 1 <= len(shape) <= 3 or min(shape) < 1:
            raise InputError(f"input shape {','.join(map(str, shape))} must be C,H,W, C,L or a number of features")
        return shape
    modules = [gm.get_submodule(n.target) for n in gm.graph.nodes if n.op == "call_module"]
    if any(isinstance(m, (nn.Conv1d, nn.Conv2d)) for m in modules):
        raise InputError(f"{label} has convolutions: give the shape of one input sample (--input-shape C,H,W, e.g. 3,32,32)")
    linear = next((m for m in modules if isinstance(m, nn.Linear)), None)
    if linear is None:
        raise InputError(f"{label}: give the shape of one input sample (--input-shape C,H,W)")
    return (linear.in_features,)


def _feeds_linear(gm, placeholder) -> bool:
    """Whether the input goes straight into an nn.Linear: it is then a flat vector (pixels when shaped)."""
    return any(user.op == "call_module" and isinstance(gm.get_submodule(user.target), nn.Linear) for user in placeholder.users)


class _NodeFailed(Exception):
    def __init__(self, node, error):
        super().__init__(str(error))
        self.node, self.error = node, error


class _Recorder(fx.Interpreter):
    """Runs the graph once, keeping the shape of every tensor (batch first) and every other value."""

    def __init__(self, gm):
        super().__init__(gm)
        self.extra_traceback = False  # its structured log of a failure imports half of torch (seconds)
        self.shapes, self.constants = {}, {}

    def run_node(self, node):
        try:
            result = super().run_node(node)
        except Exception as error:  # noqa: BLE001 - the model's own failure, reported with its node
            raise _NodeFailed(node, error) from None
        if isinstance(result, torch.Tensor):
            self.shapes[node] = tuple(result.shape)
        else:
            self.constants[node] = result
        return result
