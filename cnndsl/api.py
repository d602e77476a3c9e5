"""The Python API: load a spec, check it, read its figures. The CLI is a thin layer over this."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from cnndsl import collector, report
from cnndsl.analysis import Analysis, analyse, memory_warnings
from cnndsl.elaborate import elaborate
from cnndsl.errors import CnnError, Diagnostic, UsageError, raise_all
from cnndsl.graph import Graph
from cnndsl.limits import Limits
from cnndsl.syntax.loader import Loaded, Program, load_tolerant, read_text


@dataclass
class Report:
    """What `cnndsl check` prints, as data."""

    analysis: Analysis
    warnings: list[Diagnostic]
    source: str

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


@dataclass
class Spec:
    """A loaded spec: one network of a program, with its parameter values."""

    program: Program
    origin: str  # the file, or <string>
    network: str | None = None
    params: dict = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    _elaborated: object = None
    _source: tuple[str, str] | None = None

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

    def check(self) -> Report:
        elaborated = self._elaborate()
        with collector.paused():
            analysis = analyse(elaborated.graph)
        return Report(analysis, elaborated.warnings + memory_warnings(analysis), self.origin)

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
    if isinstance(spec, Path) or _looks_like_path(spec):
        return Spec(_checked(_read(spec, limits), network), str(spec), network, params, limits)
    return loads(spec, network, limits=limits, **params)


def loads(text: str, network: str | None = None, max_layers: int | None = None, name: str = "<string>", *,
          limits: Limits | None = None, files: dict[str, str] | None = None, **params) -> Spec:
    """Loads a spec from its text; relative `use` paths start at the current directory.

    `files` ({name: text}, e.g. `spec.program.sources` or a checkpoint's `files`) holds the files the text
    uses: then only those texts (and the standard library) are read, never a file on disk.
    """
    limits = _limits(limits, max_layers)
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
    """What an editor shows for a text: the program as far as it could be read, and every error and
    warning found, in source order."""

    program: Program
    errors: list[CnnError]
    warnings: list[Diagnostic]


def diagnose(text: str, name: str = "<string>", network: str | None = None, *, origin: str | Path | None = None,
             limits: Limits | None = None, files: dict[str, str] | None = None, **params) -> Diagnosis:
    """Every error and warning of a spec's text, without raising (`check` raises the same errors).

    A text with syntax errors gets them and the errors of the checks that need no shapes, outside the
    statements the syntax errors broke; a text without gets what `check` finds, shapes included.
    `origin` is the file the text is of (relative `use`s start there)."""
    loaded = load_tolerant(text, name, Path(origin).resolve() if origin else None, limits or Limits(), files)
    if loaded.errors:
        return Diagnosis(loaded.program, _with_semantic(loaded, network), [])
    spec = Spec(loaded.program, name, network, params, limits or Limits())
    try:
        report = spec.check()
    except UsageError:  # which network, or a parameter without a default: check what needs none
        from cnndsl.elaborate.validate import collect

        found = collect(loaded.program, _roots(loaded.program, None))
        return Diagnosis(loaded.program, loaded.program.in_source_order(found), [])
    except CnnError as e:
        return Diagnosis(loaded.program, loaded.program.in_source_order(getattr(e, "errors", [e])), [])
    return Diagnosis(loaded.program, [], report.warnings)


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


def format_spec(text: str, name: str = "<string>") -> str:
    """The canonical text of a spec (what `cnndsl fmt` writes): comments kept, meaning unchanged. Raises the
    text's syntax errors; a text with errors is not formatted."""
    from cnndsl.syntax.printer import format_text

    return format_text(text, name)


def replace_text(path: Path, text: str) -> None:
    """Writes `text` over the file at `path` atomically (a temporary file beside it, then a rename), keeping
    the file's permissions: a reader sees the old text or the new, never half of one."""
    import contextlib
    import os

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        mode = path.stat().st_mode & 0o7777
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise CnnError(f"cannot write {path}: {e.strerror or e}", hint="check that the folder is writable") from None


# -- the runner: each function imports torch when called


def train(spec, recipe=None, *, out: str | Path | None = None, device: str = "auto", log=print, **overrides):
    """Trains a spec as `cnndsl train` does and returns its RunResult (out, history, test_accuracy,
    test_loss, best_epoch, best and last checkpoint paths).

    `spec` is a path, spec text or a Spec; `recipe` a YAML file, a dict or a Recipe; `overrides` are recipe
    keys over it (`epochs=3, lr=0.01, data="npz:x.npz"`). `out` is a new or empty folder (default
    runs/NAME-TIME). `log` receives each line of the log (default print; `log=None` is silent).
    """
    from cnndsl.training import runs
    from cnndsl.training.loop import train as run

    spec = _spec(spec)
    folder = Path(out) if out is not None else runs.default_folder(_name(spec))
    return run(spec, _recipe(recipe, overrides), folder, device=device, log=log or (lambda line: None))


def _recipe(recipe, overrides: dict):
    from cnndsl.training.recipe import Recipe, load_recipe

    if isinstance(recipe, Recipe):
        return load_recipe(None, **{**recipe.to_dict(), **overrides})
    if isinstance(recipe, dict):
        return load_recipe(None, **{**recipe, **overrides})
    return load_recipe(recipe, **overrides)


def evaluate(run, data: str | None = None, *, spec=None, seed: int | None = None, device: str = "auto", log=print,
             **params):
    """Test loss and accuracy of a run (its folder, a checkpoint, or a RunResult) as an Evaluation
    (loss, accuracy, data, seed, splits, notes).

    The network, dataset, splits, seed and normalisation are the run's own; `data` and `seed` change them
    (a note to `log` says so). `spec` (path, text or Spec) is for weights without one (a state_dict);
    `params` are network parameters over the run's own.
    """
    from cnndsl.training.infer import evaluation

    weights = _weights(run, spec, params)
    return evaluation(None, weights, data, seed, device=device, log=log or (lambda line: None))


def predict(run, images, top: int = 3, *, spec=None, device: str = "auto", **params) -> list[list[tuple[str, float]]]:
    """The `top` (class name, probability) pairs of each image file (a path or a list of them), prepared as
    the run's images were."""
    from cnndsl.training.infer import predict as classify

    paths = [str(images)] if isinstance(images, (str, Path)) else [str(p) for p in images]
    return classify(None, _weights(run, spec, params), paths, top, device)


def export(run, out: str | Path | None = None, format: str = "onnx", *, spec=None, **params):
    """Writes a run's network with its weights as ONNX or TorchScript (see cnndsl.exporter.export); returns
    the Exported (path, format, verified_by, max_difference). `out` defaults to NETWORK.onnx (or .pt) here,
    or NETWORK-2... when taken."""
    from cnndsl.exporter import FORMATS
    from cnndsl.exporter import export as write

    if format not in FORMATS:
        raise CnnError(f"unknown export format {format!r}", hint="use onnx or torchscript")
    weights = _weights(run, spec, params)
    if out is None:
        out, n = Path(weights.spec.graph.name + FORMATS[format]), 2
        while out.exists() or out.is_symlink():
            out, n = Path(f"{weights.spec.graph.name}-{n}{FORMATS[format]}"), n + 1
    return write(weights.spec, weights, out, format)


def _weights(run, spec, params: dict):
    from cnndsl.training.infer import weights_of

    source = getattr(run, "out", run)  # a RunResult: its folder
    if spec is not None:
        return weights_of(source, _spec(spec, params))
    return weights_of(source, None, sets=params)


def _spec(spec, params: dict | None = None) -> Spec:
    if isinstance(spec, Spec):
        if params:
            raise CnnError("network parameters go to cnndsl.load() when the spec is already loaded")
        return spec
    return load(spec, **(params or {}))


def _name(spec: Spec) -> str:
    """The stem of the default run folder: the spec file's name, else the network's."""
    return spec.origin if spec.origin.endswith(".cnn") else spec.graph.name


__all__ = ["CnnError", "Diagnosis", "Limits", "Report", "Spec", "check", "diagnose", "evaluate", "export",
           "format_spec", "load", "loads", "predict", "train"]
