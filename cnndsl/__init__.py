"""cnndsl: a declarative compiler for convolutional networks.

    import cnndsl
    report = cnndsl.check("specs/resnet34.cnn")
    report.params, report.macs, report.output

Importing cnndsl is cheap: the parser, networkx and torch load only when a function needs them.
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = {"load", "loads", "check", "Spec", "Report"}


def __getattr__(name: str):
    if name in _API:
        from cnndsl import api

        return getattr(api, name)
    if name == "load_weights":
        from cnndsl.weights import load_weights

        return load_weights
    if name == "CnnError":
        from cnndsl.errors import CnnError

        return CnnError
    if name == "Limits":
        from cnndsl.limits import Limits

        return Limits
    raise AttributeError(f"module 'cnndsl' has no attribute {name!r}")


__all__ = ["CnnError", "Limits", "Report", "Spec", "check", "load", "load_weights", "loads", "__version__"]
