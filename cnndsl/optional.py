"""Optional dependencies: what each is for and how to install it, and the one place where a missing one
becomes a CnnError that says so (exit 1 on the command line) instead of a traceback.

`cnndsl check` needs none of them. The API's functions turn an ImportError of any package below into that
error (`clear_imports`); a part that would fail late (a plot at the end of a run) asks first (`require`).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass

from cnndsl.errors import CnnError


@dataclass(frozen=True)
class Package:
    pip: str  # what `pip install` takes
    purpose: str  # what needs it: "PIP is needed for PURPOSE"
    extra: str | None = None  # cnndsl's extra that brings it (pyproject.toml)


PACKAGES = {  # by the name it is imported as
    "torch": Package("torch", "building, training and running a network", "torch"),
    "numpy": Package("numpy", "building, training and running a network", "torch"),
    "safetensors": Package("safetensors", "reading .safetensors weights", "torch"),
    "sklearn": Package("scikit-learn", "the offline digits dataset", "train"),
    "yaml": Package("pyyaml", "training recipes", "train"),
    "matplotlib": Package("matplotlib", "the plots of a run and `cnndsl show`", "train"),
    "PIL": Package("pillow", "reading and drawing images", "train"),
    "onnx": Package("onnx", "ONNX export", "export"),
    "onnxscript": Package("onnxscript", "ONNX export (torch.onnx's translator)", "export"),
    "onnxruntime": Package("onnxruntime", "checking an ONNX export", "export"),
    "tensorboard": Package("tensorboard", "TensorBoard logs", "tensorboard"),
    "graphviz": Package("graphviz", "drawing diagrams"),
    "pygls": Package("pygls", "the language server `cnndsl lsp`", "lsp"),
    "lsprotocol": Package("pygls", "the language server `cnndsl lsp`", "lsp"),
    "h5py": Package("h5py", "reading Keras weights (.keras, .weights.h5, .h5)", "keras"),
}


def missing(error: ImportError, package: str | None = None, purpose: str | None = None,
            hint: str | None = None) -> CnnError | None:
    """The error that says how to install the optional package `error` failed to import (`package`, when the
    importer knows better, as torch's message for TensorBoard does not name it), or None for another module.
    `purpose` replaces the package's own (what needs it); `hint` comes before the extra's."""
    name = error.name or ""
    if "." in name or name not in PACKAGES:  # a module inside a package: the package the importer names
        name = package or name.split(".")[0]
    known = PACKAGES.get(name)
    if known is None:
        return None
    extra = f"or cnndsl's extra: pip install 'cnndsl[{known.extra}]'" if known.extra else None
    return CnnError(f"{known.pip} is needed for {purpose or known.purpose}, but it cannot be imported ({error}): "
                    f"pip install {known.pip}", hint="; ".join(h for h in (hint, extra) if h) or None)


def require(module: str, purpose: str | None = None, package: str | None = None, hint: str | None = None):
    """The imported module, or the CnnError saying what to install (asked before work that would need it)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        error = missing(e, package or module.split(".")[0], purpose, hint)
        if error is None:
            raise
        raise error from None


def clear_imports(function):
    """`function`, whose ImportError of an optional package becomes the CnnError that names it."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ImportError as e:
            error = missing(e)
            if error is None:
                raise
            raise error from None

    return wrapper
