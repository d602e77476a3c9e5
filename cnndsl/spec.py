"""A spec loaded and checked: `Spec` and `Report`, and `load`, `loads` and `check`, which every other part uses.

Part of the core: nothing here imports torch (a Spec's `build` does, when called), training, pictures or
export; `cnndsl.api` re-exports these as the public API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from cnndsl import collector, keras_summary, report
from cnndsl.analysis import Analysis, analyse, memory_warnings
from cnndsl.elaborate import elaborate
from cnndsl.errors import CnnError, Diagnostic, UsageError, raise_all
from cnndsl.graph import Graph
from cnndsl.limits import Limits
from cnndsl.ops import plugins
from cnndsl.ops.base import fmt_shape
from cnndsl.optional import clear_imports
from cnndsl.syntax.loader import STD_DIR, Loaded, Program, load_tolerant, read_text

# draws a network's diagram for a notebook (inline SVG, or None where it cannot): the API gives its Specs and
# Reports viz's; the core draws none, so that `check` never loads graphviz
Draw = Callable[[Analysis], "str | None"]


@dataclass
class Report:
    """What `cnndsl check` prints, as data."""

    analysis: Analysis
    warnings: list[Diagnostic]
    source: str
    draw: Draw | None = field(default=None, repr=False, compare=False)

    def __getattr__(self, name: str):  # params, macs, buffers, receptive_field, ...
        return getattr(self.__dict__["analysis"], name)

    @property
    def output(self) -> tuple[int, ...]:
        return self.analysis.output.layer.shape

    @property
    def input(self) -> tuple[int, ...]:
        return self.analysis.graph.input.shape

    def layer(self, name: str):
        return self.analysis.by_id[name]

    def text(self, depth: int | None = None, explain: bool = False) -> str:
        return report.text(self.analysis, self.source, depth, explain)

    def to_dict(self) -> dict:
        return report.as_dict(self.analysis, self.source)

    def json(self) -> str:
        return report.to_json(self.analysis, self.source, self.warnings)

    def markdown(self, depth: int | None = None) -> str:
        return report.markdown(self.analysis, self.source, depth)

    def coloured(self, depth: int | None = None, explain: bool = False):
        """The table as rich Text, coloured for a terminal (what `check` prints there)."""
        return report.coloured(self.analysis, self.source, depth, explain)

    def summary(self, depth: int | None = None, explain: bool = False) -> None:
        """Prints the table as `cnndsl check` does (Keras' model.summary())."""
        print(self.text(depth, explain))

    def __repr__(self) -> str:
        a = self.analysis
        warned = f", {len(self.warnings)} warning{'s' * (len(self.warnings) != 1)}" if self.warnings else ""
        return (f"<Report {a.graph.name} ({self.source}): {fmt_shape(self.input)} -> {fmt_shape(self.output)}, "
                f"{a.params:,} params, {report.human(a.macs)} MACs{warned}>")

    def _repr_html_(self) -> str:
        """Jupyter's display: the table, and the diagram beside it where one can be drawn."""
        return report.notebook_html(self.analysis, self.source, self.warnings,
                                    self.draw(self.analysis) if self.draw else None)

    def keras(self) -> keras_summary.KerasSummary:
        """The rows and totals of Keras' `model.summary()` for the equivalent Keras model, as data."""
        return keras_summary.summarise(self.analysis)

    def keras_summary(self, width: int | None = None) -> str:
        """The report as Keras 3's `model.summary()` prints it (`check --keras`): `width` is its line_length,
        by default Keras' own (88 columns, 108 with a merge, less on a narrower terminal)."""
        return keras_summary.text(self.keras(), width)

    def keras_table(self, width: int | None = None):
        """`keras_summary` as a rich renderable, in Keras' colours on a terminal."""
        return keras_summary.renderable(self.keras(), width)


@dataclass
class Spec:
    """A loaded spec: one network of a program, with its parameter values."""

    program: Program
    origin: str  # the file, or <string>
    network: str | None = None
    params: dict = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    file: Path | None = None  # the file it was read from (load), None for text (loads)
    _elaborated: object = None
    _report: Report | None = None
    _source: tuple[str, str] | None = None
    draw: Draw | None = field(default=None, repr=False, compare=False)  # its reports' diagrams, as Report.draw

    def _elaborate(self):
        if self._elaborated is None:
            with collector.paused():
                self._elaborated = elaborate(self.program, self.network, self.params, self.limits.layers)
        return self._elaborated

    @property
    def graph(self) -> Graph:
        return self._elaborate().graph

    @property
    def warnings(self) -> list[Diagnostic]:
        return self._elaborate().warnings

    def paths(self) -> list[Path]:
        """The files on disk the spec was read from, which no command may write over: its own file and each file
        it `use`s (for a spec loaded from a file), and the standard library's files it uses."""
        std = [STD_DIR / name[len("std/"):] for name in self.program.files if name.startswith("std/")]
        if self.file is None:
            return std
        return [self.file, *(self.file.parent / name for name in self.program.sources), *std]

    @property
    def text(self) -> str:
        """The main file's text: with `program.sources` (the files it uses), what rebuilds the network."""
        return self.program.text or self.graph.input.span.source.text

    def check(self) -> Report:
        """The figures of `cnndsl check` (made once: a Spec's network does not change)."""
        if self._report is None:
            elaborated = self._elaborate()
            with collector.paused():
                analysis = analyse(elaborated.graph)
            self._report = Report(analysis, elaborated.warnings + memory_warnings(analysis), self.origin)
        self._report.draw = self.draw
        return self._report

    def summary(self, depth: int | None = None, explain: bool = False) -> None:
        """Prints the table as `cnndsl check` does (Keras' model.summary())."""
        self.check().summary(depth, explain)

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v}" for k, v in self.params.items())
        try:
            r = self.check()
        except CnnError as e:  # a repr never raises: it says what is wrong
            return f"<Spec {self.origin}{f' ({values})' if values else ''}: error: {e.message.splitlines()[0]}>"
        name = r.analysis.graph.name + (f" ({values})" if values else "")
        return f"<Spec {name}: {fmt_shape(r.input)} -> {fmt_shape(r.output)}, {r.params:,} params>"

    def _repr_html_(self) -> str:
        """Jupyter's display: the report's (a spec that does not check shows its error, located)."""
        try:
            return self.check()._repr_html_()
        except CnnError as e:
            return f'<pre class="cnndsl-error">{report.esc(e.render())}</pre>'

    def source(self) -> str:
        """Standalone PyTorch source for the network (checks the spec first)."""
        return self._generated()[0]

    def class_name(self) -> str:
        return self._generated()[1]

    def _generated(self) -> tuple[str, str]:
        if self._source is None:
            from cnndsl.codegen import generate

            graph = self.graph  # a spec that fails check is not compiled: the same error
            last = graph.layer(graph.output)
            softmax = last.op == "softmax" and not last.groups  # a top-level final softmax
            self._source = generate(self.program, graph.name, self.origin, self.params, softmax)
        return self._source

    @clear_imports  # without torch: a CnnError that says to install it
    def build(self, channels_last: bool = False):
        """The network as an nn.Module, built from the generated source (what `compile` writes).

        channels_last=True stores 4-D weights NHWC, which is faster for convolutions on many CPUs and
        GPUs; feed it inputs converted with `x.to(memory_format=torch.channels_last)`.
        """
        from cnndsl.build import build_module
        from cnndsl.memory import check_weights

        check_weights(self.check())  # before torch allocates terabytes for `dense (10**12)`
        model = build_module(self.source(), self.class_name(), self.graph.params)
        if channels_last:
            import torch

            model = model.to(memory_format=torch.channels_last)
        return model


def load(spec: str | Path, network: str | None = None, max_layers: int | None = None, *,
         limits: Limits | None = None, **params) -> Spec:
    """Loads a spec from a path or from its text. Keyword arguments set network parameters.

    A string is a path when it is one line without `{` that ends in .cnn, names a file, or has a `/`.
    `limits` bounds the file sizes, layers and statements (see cnndsl.limits); `max_layers` is short
    for `limits=Limits(layers=...)`.
    """
    limits = _limits(limits, max_layers)
    plugins.enable_environment()
    if isinstance(spec, Path) or _looks_like_path(spec):
        return Spec(_checked(_read(spec, limits), network), str(spec), network, params, limits, Path(spec))
    return loads(spec, network, limits=limits, **params)


def loads(text: str, network: str | None = None, max_layers: int | None = None, name: str = "<string>", *,
          limits: Limits | None = None, files: dict[str, str] | None = None, **params) -> Spec:
    """Loads a spec from its text; relative `use` paths start at the current directory.

    `files` ({name: text}, e.g. `spec.program.sources` or a checkpoint's `files`) holds the files the text
    uses: then only those texts (and the standard library) are read, never a file on disk.
    """
    limits = _limits(limits, max_layers)
    plugins.enable_environment()
    return Spec(_checked(load_tolerant(text, name, limits=limits, files=files), network), name, network, params,
                limits)


def _read(path: str | Path, limits: Limits) -> Loaded:
    """A spec file read and parsed; a missing file is a UsageError (the caller named it)."""
    p = Path(path)
    try:
        text = read_text(p, limits.spec_bytes, str(path))
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    return load_tolerant(text, str(path), p.resolve(), limits)


def _checked(loaded: Loaded, network: str | None) -> Program:
    """The program, or every error of a file that could not be read whole: its syntax errors, and the
    checks that need no shapes on what the parser recovered (shapes would only repeat the damage)."""
    raise_all(_with_semantic(loaded, network))
    return loaded.program


def _with_semantic(loaded: Loaded, network: str | None) -> list[CnnError]:
    if not loaded.errors:
        return []
    from cnndsl.elaborate.validate import collect

    semantic = [e for e in collect(loaded.program, _roots(loaded.program, network)) if not loaded.is_damaged(e.span)]
    return loaded.program.in_source_order(loaded.errors + semantic)


def _roots(program: Program, network: str | None) -> list:
    """What to check when a file has errors: the network asked for, else the main file's networks, else
    all its definitions."""
    if network is not None and network in program.definitions:
        return [program.definitions[network]]
    own = [d for d in program.main if program.definitions.get(d.name) is d]  # not one a syntax error left unnamed
    return [d for d in own if d.kind == "network"] or own


@dataclass
class Diagnosis:
    """What an editor shows for a text: the program as far as it could be read, every error and warning
    found, in source order, and the report of each network checked whole (none where the text has errors)."""

    program: Program
    errors: list[CnnError]
    warnings: list[Diagnostic]
    reports: list[Report] = field(default_factory=list)


def diagnose(text: str, name: str = "<string>", network: str | None = None, *, origin: str | Path | None = None,
             limits: Limits | None = None, files: dict[str, str] | None = None, **params) -> Diagnosis:
    """Every error and warning of a spec's text, without raising (`check` raises the same errors).

    A text with syntax errors gets them and the errors of the checks that need no shapes, outside the
    statements the syntax errors broke; a text without gets what `check` finds, shapes included, for the
    network named, else for each network of the text (a text of blocks only gets the checks that need no
    shapes). `origin` is the file the text is of (relative `use`s start there)."""
    loaded = load_tolerant(text, name, Path(origin).resolve() if origin else None, limits or Limits(), files)
    program = loaded.program
    try:
        plugins.enable_environment()
    except CnnError as e:  # CNNDSL_PLUGINS names a plugin that is not installed: say so, as the editor's first error
        return Diagnosis(program, [e, *loaded.errors], [])
    if loaded.errors:
        return Diagnosis(program, _with_semantic(loaded, network), [])
    names = [network] if network is not None else [d.name for d in program.main if d.kind == "network"]
    errors: dict[tuple, CnnError] = {}  # a block's error is found once for each network that calls it
    warnings: dict[tuple, Diagnostic] = {}
    reports = []
    for each in names:
        try:
            report = Spec(program, name, each, params, limits or Limits()).check()
        except UsageError:  # a parameter without a default, or no such network: check what needs none
            found = _semantic(program, network)
        except CnnError as e:
            found = getattr(e, "errors", [e])
        else:
            reports.append(report)
            found = []
            warnings.update(((w.message, str(w.span)), w) for w in report.warnings)
        errors.update(((e.message, str(e.span)), e) for e in found)
    if not names:
        errors.update(((e.message, str(e.span)), e) for e in _semantic(program, None))
    return Diagnosis(program, program.in_source_order(list(errors.values())), list(warnings.values()), reports)


def _semantic(program: Program, network: str | None) -> list[CnnError]:
    """The checks that need no shapes, of what `_roots` picks."""
    from cnndsl.elaborate.validate import collect

    return collect(program, _roots(program, network))


def _limits(limits: Limits | None, max_layers: int | None) -> Limits:
    limits = limits or Limits()
    return limits if max_layers is None else replace(limits, layers=max_layers)


def _looks_like_path(text: str) -> bool:
    if "\n" in text or "{" in text or "\0" in text:
        return False
    return text.endswith(".cnn") or "/" in text or Path(text).is_file()


def check(spec: str | Path, network: str | None = None, **params) -> Report:
    """The figures of a spec (shapes, parameters, MACs, receptive field), without torch."""
    return load(spec, network, **params).check()


__all__ = ["Diagnosis", "Report", "Spec", "check", "diagnose", "load", "loads"]
