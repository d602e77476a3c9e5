"""cnndsl: a declarative compiler for convolutional networks.

    import cnndsl
    report = cnndsl.check("specs/resnet34.cnn")
    report.params, report.macs, report.output

    run = cnndsl.train("specs/lenet5.cnn", epochs=3)      # a RunResult: out, history, test_accuracy, best, ...
    cnndsl.evaluate(run.out).accuracy                       # the run's own test split, again
    cnndsl.predict(run.out, ["seven.png"])                  # [[("7", 0.98), ...]]
    cnndsl.export(run.out, "lenet5.onnx")

Importing cnndsl is cheap: the parser, networkx and torch load only when something needs them
(see docs/python-api.md).
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = {"load", "loads", "check", "diagnose", "Diagnosis", "Spec", "Report", "train", "evaluate", "predict",
        "export"}


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


__all__ = ["CnnError", "Diagnosis", "Limits", "Report", "Spec", "check", "diagnose", "evaluate", "export", "load",
           "load_weights", "loads", "predict", "train", "__version__"]
