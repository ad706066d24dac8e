"""``--model SPEC``: the user's architecture, from a callable that returns an ``nn.Module``.

``SPEC`` is ``package.module:factory`` (imported as Python imports it, the current directory first) or
``path/to/file.py:factory``; the factory is called without arguments. Whatever goes wrong (the module does
not import, the factory is missing or raises, it returns something else) is one line naming the SPEC.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from netarchive.errors import InputError, first_line


def load_factory(spec: str):
    """The module that the factory named by ``spec`` returns."""
    import torch

    location, sep, name = spec.rpartition(":")
    if not sep or not location or not name.isidentifier():
        raise InputError(f"--model {spec}: expected package.module:factory or path/to/file.py:factory")
    module = _import(spec, location)
    factory = getattr(module, name, None)
    if not callable(factory):
        raise InputError(f"--model {spec}: {location} has no callable {name}")
    try:
        model = factory()
    except Exception as error:  # noqa: BLE001 - the user's code, reported in one line
        raise InputError(f"--model {spec}: {name}() raised {type(error).__name__}: {first_line(error)}") from None
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"--model {spec}: {name}() returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _import(spec: str, location: str):
    try:
        if location.endswith(".py") or os.sep in location or "/" in location:
            return _import_file(spec, Path(location))
        with _on_path(os.getcwd()):
            return importlib.import_module(location)
    except InputError:
        raise
    except BaseException as error:  # noqa: BLE001 - SyntaxError, ImportError, SystemExit, ... of the user's module
        if isinstance(error, KeyboardInterrupt):
            raise
        raise InputError(f"--model {spec}: cannot import {location}: {type(error).__name__}: {first_line(error)}") from None


def _import_file(spec: str, path: Path):
    if not path.is_file():
        raise InputError(f"--model {spec}: no such file {path}")
    name = "netarchive_model_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    try:
        with _on_path(str(path.resolve().parent)):  # the file may import its neighbours
            module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


@contextmanager
def _on_path(directory: str):
    added = directory not in sys.path
    if added:
        sys.path.insert(0, directory)
    try:
        yield
    finally:
        if added:
            sys.path.remove(directory)
