"""cnndsl: a declarative compiler for convolutional networks.

    import cnndsl
    report = cnndsl.check("specs/resnet34.cnn")
    report.params, report.macs, report.output

    run = cnndsl.train("specs/lenet5.cnn", epochs=3)      # a RunResult: out, history, test_accuracy, best, ...
    cnndsl.evaluate(run.out).accuracy                       # the run's own test split, again
    cnndsl.predict(run.out, ["seven.png"])                  # [[("7", 0.98), ...]]
    cnndsl.export(run.out, "lenet5.onnx")

Importing cnndsl is cheap: the API (cnndsl.api) loads at the first name asked of it, and the parser, networkx
and torch only when something needs them (see docs/python-api.md). In Jupyter, `%load_ext cnndsl` gives the
`%%cnn` cell magic (docs/notebooks.md).
"""

from __future__ import annotations

from cnndsl.version import __version__

_API = {"Callback", "Diagnosis", "EarlyStopping", "Formatted", "Report", "Shown", "Spec", "TrainingPlan",
        "UsageError", "check", "diagnose", "enable_plugins", "error_page", "evaluate", "export", "format_file",
        "format_spec", "from_keras", "from_module", "import_keras", "import_model", "installed_plugins",
        "launch_training", "layers", "load", "load_recipe", "loads", "page", "parse_value", "plan_training", "plot",
        "plugin_of", "predict", "read_run", "serve_language_server", "show", "train", "write_source"}


def __getattr__(name: str):
    if name in _API:
        from cnndsl import api

        return getattr(api, name)
    if name == "load_weights":  # these three without the API's imports
        from cnndsl.weights import load_weights

        return load_weights
    if name == "CnnError":
        from cnndsl.errors import CnnError

        return CnnError
    if name == "Limits":
        from cnndsl.limits import Limits

        return Limits
    raise AttributeError(f"module 'cnndsl' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API alone: what tab completion offers (not the modules loaded so far, nor these helpers)."""
    return list(__all__)


def load_ipython_extension(ipython) -> None:
    """`%load_ext cnndsl` in IPython or Jupyter: the `%%cnn` cell magic (cnndsl/notebook.py)."""
    from cnndsl.notebook import load_ipython_extension as load

    load(ipython)


__all__ = sorted(_API | {"CnnError", "Limits", "load_weights"}) + ["__version__"]
