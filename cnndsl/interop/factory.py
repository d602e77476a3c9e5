"""`package.module:factory` or `path/to/file.py:factory`: the model `cnndsl import` reads, made by the user's code.

Running it runs that code: the user named it on the command line, as `python -c` would run it. Nothing else
is imported from the name, and a name that is not of either form is a command-line mistake (exit 2).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

from cnndsl.errors import CnnError, UsageError

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


def split(source: str) -> tuple[str, str]:
    where, sep, factory = source.rpartition(":")
    if not sep or not _DOTTED.match(factory) or not where:
        raise UsageError(f"{source!r} names no factory",
                         hint="write MODULE:FUNCTION (torchvision.models:resnet50) or FILE.py:FUNCTION (net.py:Net)")
    return where, factory


def make(source: str):
    """Imports the module or file of `source` and calls its factory with no arguments: the model."""
    where, factory = split(source)
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise UsageError(f"no such file: {where}")
        spec = importlib.util.spec_from_file_location(f"_cnndsl_import_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses and pickling look their module up
        _run(lambda: spec.loader.exec_module(module), f"running {where}")
    elif _DOTTED.match(where):
        module = _run(lambda: importlib.import_module(where), f"importing {where}")
    else:
        raise UsageError(f"{where!r} is neither a module name nor a .py file")
    target = module
    for part in factory.split("."):
        if not hasattr(target, part):
            raise CnnError(f"{where} has no {factory}", hint="name a function or class that makes the model")
        target = getattr(target, part)
    if not callable(target):
        raise CnnError(f"{where}:{factory} is not callable")
    return _run(target, f"calling {source}")


def _run(fn, what: str):
    try:
        return fn()
    except CnnError:
        raise
    except Exception as e:  # the user's code failed: say where, without our traceback
        raise CnnError(f"{what} failed: {type(e).__name__}: {e}"[:500]) from None
