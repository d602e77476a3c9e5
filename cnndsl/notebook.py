"""cnndsl in Jupyter and IPython: `%load_ext cnndsl` gives the `%%cnn` cell magic.

    %%cnn [NAME] [--set KEY=VALUE]... [--network NAME] [--depth N]
    network tiny(classes = 10) {
        ...
    }

checks the cell's spec and displays its report (the diagram where Graphviz's `dot` is installed, then the table
of `cnndsl check`, folded at --depth); NAME binds the Spec in the notebook (`NAME.build()` is the nn.Module,
`cnndsl.train(NAME, ...)` trains it). A spec with errors raises them: IPython shows a CnnError as the command
line prints it, located in the cell, without a Python traceback (CnnError._render_traceback_), and "Run all" stops
there as at any error.

Part of the API layer: it imports the API, and IPython only when IPython loads it.
"""

from __future__ import annotations

import argparse
import shlex

from cnndsl import api
from cnndsl.errors import UsageError
from cnndsl.report import notebook_html

CELL = "<cell>"  # the name errors give the cell's text: <cell>:3:5: error: ...


def load_ipython_extension(ipython) -> None:
    """What `%load_ext cnndsl` runs: registers `%%cnn`."""
    ipython.register_magic_function(lambda line, cell: cnn(line, cell, ipython), "cell", "cnn")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # a bad magic line is the caller's mistake, said in one line
        raise UsageError(f"%%cnn: {message}", hint="%%cnn [NAME] [--set KEY=VALUE]... [--network NAME] [--depth N]")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%%cnn", add_help=False)
    p.add_argument("name", nargs="?", help="a Python name to bind the Spec to")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--network")
    p.add_argument("--depth", type=int)
    return p


def cnn(line: str, cell: str, ipython=None) -> None:
    """The `%%cnn` magic: the cell's spec loaded, checked, displayed, and bound to NAME in the user's namespace."""
    from IPython.display import HTML, display

    args = _parser().parse_args(shlex.split(line))
    if args.name is not None and not args.name.isidentifier():
        raise UsageError(f"%%cnn {args.name}: NAME must be a Python name, to bind the Spec to",
                         hint="e.g. %%cnn model")
    spec = api.loads(cell, args.network, name=CELL, **_params(args.set))
    report = spec.check()  # a spec with errors stops here, its errors shown where they are
    if args.name is not None and ipython is not None:
        ipython.user_ns[args.name] = spec
    drawn = report.draw(report.analysis) if report.draw else None
    display(HTML(notebook_html(report.analysis, report.source, report.warnings, drawn, args.depth)))


def _params(pairs: list[str]) -> dict:
    """`--set KEY=VALUE` values, read as the command line reads them."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"%%cnn --set takes KEY=VALUE, got `{pair}`", hint="e.g. --set classes=10")
        out[key.strip()] = api.parse_value(value)
    return out
