"""The Python API: a function for each thing cnndsl does; the command line is a thin layer over it.

The facade: it imports every part (the core, a saved run, training, pictures, export), and nothing inside the
package imports it but `cnndsl/__init__.py` and `cli.py`. Loading and checking a spec come from cnndsl.spec;
everything else imports torch, the runner or the pictures only when called, so importing this stays cheap.
A missing optional package (torch, matplotlib, onnx...) becomes a CnnError that says what to install.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cnndsl import spec as _specs
from cnndsl.analysis import Analysis
from cnndsl.elaborate import parse_value
from cnndsl.errors import CnnError, UsageError, did_you_mean
from cnndsl.files import atomic_write, check_output, check_output_folder, free_path, read_bytes, run_folder_of
from cnndsl.limits import Limits
from cnndsl.optional import clear_imports
from cnndsl.spec import Diagnosis, Report, Spec, diagnose
from cnndsl.training.callbacks import Callback, EarlyStopping
from cnndsl.weights import load_weights

# -- specs: loaded and checked by cnndsl.spec; those given out here draw their diagram in a notebook


def load(spec: str | Path, network: str | None = None, max_layers: int | None = None, *,
         limits: Limits | None = None, **params) -> Spec:
    """Loads a spec from a path or from its text (see cnndsl.spec.load); keyword arguments set network parameters.
    In a notebook the Spec shows its table, and its diagram where Graphviz's `dot` is installed."""
    return _drawn(_specs.load(spec, network, max_layers, limits=limits, **params))


def loads(text: str, network: str | None = None, max_layers: int | None = None, name: str = "<string>", *,
          limits: Limits | None = None, files: dict[str, str] | None = None, **params) -> Spec:
    """Loads a spec from its text (see cnndsl.spec.loads); relative `use` paths start at the current directory."""
    return _drawn(_specs.loads(text, network, max_layers, name, limits=limits, files=files, **params))


def check(spec: str | Path, network: str | None = None, **params) -> Report:
    """The figures of a spec (shapes, parameters, MACs, receptive field), without torch."""
    return load(spec, network, **params).check()


def _drawn(spec: Spec) -> Spec:
    spec.draw = _diagram
    return spec


def _diagram(analysis: Analysis) -> str | None:
    """The diagram of a Spec's or a Report's display (graphviz loads only when a notebook shows one)."""
    from cnndsl.viz.page import notebook_diagram

    return notebook_diagram(analysis)


# -- the runner: each function imports torch when called


@dataclass
class TrainingPlan:
    """What `train` runs, checked before anything starts: the spec, the resolved recipe (a training.recipe.Recipe),
    the run folder, whether the run in it is resumed, and whether the folder was named (a default name,
    runs/NAME-TIME, takes -2, -3... when another run has it as this one starts)."""

    spec: Spec
    recipe: object
    out: Path
    resume: bool = False
    named: bool = True


@clear_imports
def train(spec, recipe=None, *, out: str | Path | None = None, resume: str | Path | None = None, device: str = "auto",
          log=print, data=None, validation_data=None, test_data=None, classes: list[str] | None = None,
          callbacks: list | None = None, fast_dev_run: bool = False, find_lr: bool = False, preflight: bool = True,
          **overrides):
    """Trains a spec as `cnndsl train` does and returns its RunResult (out, history, test_accuracy,
    test_loss, best_epoch, best and last checkpoint paths, notes); the run's folder gets report.html too.

    `spec` is a path, spec text or a Spec; `recipe` a YAML file, a dict or a Recipe; `overrides` are recipe
    keys over it (`epochs=3, lr=0.01`). `data` is a dataset's name (the recipe key: "mnist", "npz:x.npz"), or
    data held in Python: (x, y) arrays in Keras' layout (N, H, W, C) or torch's (N, C, H, W), a torch Dataset or
    a DataLoader, with `validation_data` and `test_data` the same way and `classes` their names (see
    cnndsl.data.arrays). `callbacks` are objects with Keras' methods (on_epoch_end(epoch, logs)...; one stops
    the run with `self.model.stop_training = True`), and EarlyStopping(...) for the recipe's early stopping.
    `out` is a new or empty folder (default runs/NAME-TIME). `resume` is the folder of a run to finish from its
    last checkpoint, with its own recipe (only `tensorboard=` may change; data given in Python is given again).
    `log` receives each line of the log (default print; `log=None` is silent).

    Before epoch 1 the run checks its loss, labels, inputs and last layer (`preflight=False` skips it);
    `find_lr=True` runs the learning-rate range test first (as `lr="auto"` does, which then trains with its
    suggestion). `fast_dev_run=True` runs every step on one batch of each split, through a checkpoint and a
    resume, in a temporary folder that is removed after (see docs/training.md).
    """
    from cnndsl.data.arrays import PREFIX, is_given
    from cnndsl.training.guard import Guard
    from cnndsl.training.loop import train as run
    from cnndsl.viz.runpage import ReportPage

    own, stopping = _callbacks(callbacks, overrides)
    given = None
    if is_given(data):
        spec = _spec(spec)
        report = spec.check()
        given = _given(data, validation_data, test_data, classes, report)
    elif validation_data is not None or test_data is not None or classes is not None:
        raise UsageError("validation_data, test_data and classes go with data given in Python",
                         hint="data=(x_train, y_train), a torch Dataset or a DataLoader; a named dataset has "
                         "its own splits and classes")
    if fast_dev_run and (out is not None or resume is not None):
        raise UsageError(f"a fast dev run keeps nothing, so it takes no {'out' if out is not None else 'resume'}",
                         hint="leave it out; train without fast_dev_run to keep a run")
    keys = {**overrides, **stopping}
    if given is None and data is not None:
        keys["data"] = data  # a dataset's name: the recipe key
    elif given is not None and resume is None:
        keys["data"] = given.name  # what the run records: python:arrays...
    plan = plan_training(spec, recipe, out=out, resume=resume, **keys)
    if resume is not None and given is not None and not plan.recipe.data.startswith(PREFIX):
        raise UsageError(f"resume={str(resume)!r} trained on {plan.recipe.data}, which it reads again; data= is for a "
                         "run trained on data given in Python", hint="leave out data=")
    guard = Guard(preflight=preflight, find_lr=find_lr)
    if fast_dev_run:
        from cnndsl.training.devrun import fast_dev_run as dev_run

        return dev_run(plan.spec, plan.recipe, device, log or _quiet, lambda: [ReportPage()], given, own, guard)
    return run(plan.spec, plan.recipe, plan.out, resume=plan.resume, device=device, log=log or _quiet,
               steps=[ReportPage()], named=plan.named, data=given, callbacks=own, guard=guard)


def _callbacks(callbacks, overrides: dict) -> tuple[list, dict]:
    """(the callbacks the runner calls, the recipe keys an EarlyStopping among them sets), which no key given
    beside them may set too."""
    from cnndsl.training.callbacks import split

    own, stopping = split(callbacks)
    both = sorted(set(stopping) & set(overrides))
    if both:
        raise UsageError(f"EarlyStopping sets {', '.join(both)}, given also as {'a key' if len(both) == 1 else 'keys'}",
                         hint="give one of them")
    return own, stopping


def _given(data, validation_data, test_data, classes, report: Report):
    """Data given in Python, checked against the network's input and outputs (data.arrays.given)."""
    from cnndsl.data.arrays import given

    if len(report.output) != 1:
        raise CnnError(f"the network's output is {'x'.join(map(str, report.output))}, not one score per class",
                       hint="end the network with `flatten` or `globalavgpool` and `dense classes`")
    return given(data, validation_data, test_data, classes, input_shape=report.input, outputs=report.output[0])


@clear_imports
def plan_training(spec, recipe=None, *, out: str | Path | None = None, resume: str | Path | None = None,
                  **overrides) -> TrainingPlan:
    """What `train` with these arguments would run, or the error it would stop with, before any work: the spec
    loaded, the recipe resolved, the folder chosen (`out` checked new or empty; by default runs/NAME-TIME, which
    the run claims as it starts, or -2, -3... when taken; or the run `resume` names, its last checkpoint read).
    The command line plans a run this way before starting its processes."""
    from cnndsl.training import distributed, runs

    spec = _spec(spec)
    if resume is not None:
        return TrainingPlan(spec, _resumed_recipe(Path(resume), recipe, out, overrides), Path(resume), True)
    folder = Path(out) if out is not None else runs.default_folder(_name(spec))
    recipe = _recipe(recipe, overrides)
    if distributed.world().main:  # under torchrun the folder is rank 0's: the others may find its files already
        runs.check_new(folder) if out is not None else runs.check_creatable(folder)
    return TrainingPlan(spec, recipe, folder, named=out is not None)


@clear_imports
def launch_training(nproc: int, argv: list[str], device: str = "auto", plan: TrainingPlan | None = None) -> int:
    """Runs `cnndsl train ARGV` in `nproc` processes under torchrun on this machine, each on its share of every
    epoch (refused when the machine lacks the devices or the memory for them); returns torchrun's exit code.
    `cnndsl train --nproc N` plans the run first (plan_training), then starts its processes this way: with the
    `plan`, this process claims the run folder for them (the default name's, added to ARGV as --out) and holds
    the claim until they end."""
    from cnndsl.training import distributed, runs

    if plan is None:
        return distributed.launch(nproc, argv, device)
    distributed.check_count(nproc, device)  # refused before the folder is claimed: a refusal leaves no folder
    with runs.claimed(plan.out, plan.resume, plan.named, hand_on=True) as claim:
        out = [] if plan.named or plan.resume else ["--out", str(claim.folder)]
        return distributed.launch(nproc, argv + out, device, env={runs.CLAIM_ENV: claim.token})


@clear_imports
def load_recipe(path: str | Path | None = None, flags: dict | None = None, **values):
    """A training recipe (training.recipe.Recipe): the YAML file's values over the defaults, then `values`, then
    `flags`, command-line values whose errors name the flag (`{"lr": 0.1}` is `--lr 0.1`; None: not given)."""
    from cnndsl.training.recipe import load_recipe as resolve

    return resolve(path, flags, **values)


def _recipe(recipe, overrides: dict):
    from cnndsl.training.recipe import Recipe

    if isinstance(recipe, Recipe):
        return load_recipe(None, **{**recipe.to_dict(), **overrides})
    if isinstance(recipe, dict):
        return load_recipe(None, **{**recipe, **overrides})
    return load_recipe(recipe, **overrides)


def _resumed_recipe(folder: Path, recipe, out, overrides: dict):
    """The recipe the run in `folder` saved; only `tensorboard` may change, which adds or stops a log."""
    from cnndsl.training import runs
    from cnndsl.training.recipe import recipe_of_checkpoint

    given = (["recipe"] if recipe is not None else []) + (["out"] if out is not None and Path(out) != folder else [])
    given += sorted(key for key in overrides if key != "tensorboard")
    if given:
        raise UsageError(f"resume={str(folder)!r} continues that run with its own recipe and folder; "
                         f"{', '.join(given)} cannot change them", hint=f"leave out {', '.join(given)}; or start a "
                         f"new run from that run's weights: init={str(folder / 'last.pt')!r}")
    saved = recipe_of_checkpoint(runs.last_checkpoint(folder).recipe, str(folder / "last.pt"))
    if overrides.get("tensorboard") is None:
        return saved
    return load_recipe(None, **{**saved.to_dict(), "tensorboard": overrides["tensorboard"]})


@clear_imports
def read_run(run, *, spec=None, network: str | None = None, limits: Limits | None = None, **params):
    """A run's weights read once, with their network (a saved.Weights: state, saved, spec, where), for
    `evaluate`, `predict`, `export` and `show` to share: `run` is a run folder (its best.pt, else last.pt), a
    checkpoint or weights file, or a RunResult. The network is the checkpoint's own (its spec text, the files it
    uses, its --set values with `params` over them, `network` and `limits` for reading it), or `spec` (a path,
    text or Spec) for weights that hold none."""
    from cnndsl.saved import weights_of

    given = None if spec is None else _spec(spec, params, network, limits)
    return weights_of(getattr(run, "out", run), given, network, params, limits)


@clear_imports
def evaluate(run, data: str | None = None, *, spec=None, network: str | None = None, limits: Limits | None = None,
             seed: int | None = None, device: str = "auto", log=print, **params):
    """Test loss and accuracy of a run (its folder, a checkpoint, a RunResult or a read_run) as an Evaluation
    (loss, accuracy, data, seed, splits, notes).

    The network, dataset, splits, seed and normalisation are the run's own; `data` and `seed` change them
    (a note to `log` says so). `spec` (path, text or Spec) is for weights without one (a state_dict);
    `params` are network parameters over the run's own; `network` and `limits` are for the run's spec text.
    """
    from cnndsl.training.infer import evaluation

    given, weights = _trained(run, spec, network, limits, params)
    return evaluation(given, weights, data, seed, device=device, log=log or _quiet)


@clear_imports
def predict(run, images, top: int = 3, *, spec=None, network: str | None = None, limits: Limits | None = None,
            device: str = "auto", **params) -> list[list[tuple[str, float]]]:
    """The `top` (class name, probability) pairs of each image file (a path or a list of them), prepared as
    the run's images were. `run`, `spec`, `network`, `limits` and `params` as for `evaluate`."""
    from cnndsl.training.infer import predict as classify

    paths = [str(images)] if isinstance(images, (str, Path)) else [str(p) for p in images]
    given, weights = _trained(run, spec, network, limits, params)
    return classify(given, weights, paths, top, device)


@clear_imports
def export(run=None, out: str | Path | None = None, format: str = "onnx", *, spec=None, network: str | None = None,
           limits: Limits | None = None, check: bool = True, **params):
    """Writes a run's network with its weights as ONNX or TorchScript (see cnndsl.exporter.export); returns
    the Exported (path, format, verified_by, max_difference).

    `run` None exports `spec` with freshly initialised weights. `out` defaults to NAME.onnx (or .pt) here, or
    NAME-2... when taken: NAME is the spec file's, else the network's. `check=False` writes ONNX without
    running it in onnxruntime. `run`, `spec`, `network`, `limits` and `params` as for `evaluate`.
    """
    from cnndsl.exporter import FORMATS
    from cnndsl.exporter import export as write
    from cnndsl.saved import weights_of

    if format not in FORMATS:
        raise CnnError(f"unknown export format {format!r}", hint="use onnx or torchscript")
    if run is None:
        if spec is None:
            raise CnnError("export needs a run, or a spec to export with fresh weights")
        network_spec, weights = _spec(spec, params, network, limits), None
    else:
        given, source = _trained(run, spec, network, limits, params)
        weights = weights_of(source, given)  # read once: the checkpoint names the network
        network_spec = weights.spec
    out = free_path(Path(Path(_name(network_spec)).stem + FORMATS[format])) if out is None else Path(out)
    where = getattr(weights, "where", None)
    check_output(out, _inputs(network_spec) + ([(where, "the weights it exports")] if isinstance(where, Path) else []))
    return write(network_spec, weights, out, format, check=check)


def _trained(run, spec, network: str | None, limits: Limits | None, params: dict):
    """(the spec given, or None; the weights, or where to read them): a RunResult is its folder; with no spec
    the checkpoint's network is read with the weights, `params` over its own --set values."""
    from cnndsl.saved import Weights

    if isinstance(run, Weights):
        if spec is not None or network or limits or params:
            raise CnnError("the run was read with its network already", hint="give the spec, network and "
                           "parameters to read_run()")
        return None, run
    if spec is not None:
        return _spec(spec, params, network, limits), getattr(run, "out", run)
    return None, read_run(run, network=network, limits=limits, **params)


# -- pictures: graphviz and matplotlib load when called


@dataclass
class Shown:
    """What `show` wrote, and for a class activation map the sentence that says what it found. In a notebook
    it shows the pictures themselves."""

    paths: list[Path]
    note: str | None = None

    def _repr_html_(self) -> str:
        """Each picture inline (a PNG as a data: address), its file's name and the note beneath."""
        import base64

        from cnndsl.report import esc

        figures = []
        for path in self.paths:
            data = base64.b64encode(read_bytes(path, limit=64 << 20)).decode("ascii")
            caption = esc(path.name) + (f" · {esc(self.note)}" if self.note else "")
            figures.append(f'<figure style="margin:.3em 0"><img style="max-width:100%" alt="{esc(path.name)}" '
                           f'src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>')
        return "".join(figures)


SHOW = ("filters", "maps", "cam")


@clear_imports
def show(what: str, run, image=None, *, index: int | None = None,
         layer: str | list[str] | None = None, out: str | Path | None = None, scale: str = "shared",
         target: str | None = None, method: str = "auto") -> Shown:
    """Pictures of what a run's network learned, as `cnndsl show` draws them, into `out` (default: the run's
    folder), never over a file: "filters" (a conv layer's kernels; `layer`, default the first), "maps" (the
    feature maps an image makes at `layer`, one name or a list, default the first stage's convs; `scale`
    shared or tile) or "cam" (where it found its evidence for class `target`, default the predicted one, by
    `method`: auto, cam or gradcam; `layer` for Grad-CAM).

    `run` is a run folder, a checkpoint, a RunResult, or a read_run(...) (a spec file, other --set values).
    The image is a file, an array or tensor (one image, as `train` takes them: (H, W), (H, W, C) or (C, H, W)),
    or the test-set image `index` of the run's data (default 0). In a notebook the Shown shows the pictures.
    """
    from cnndsl.viz.trained import sample, trained

    if what not in SHOW:
        raise CnnError(f"show draws {', '.join(SHOW)}, not {what!r}", hint=did_you_mean(what, SHOW))
    network = trained(read_run(run))
    folder = Path(out) if out is not None else network.path.parent
    check_output_folder(folder, run_folder_of(network.path.parent))  # new pictures of its own run, or elsewhere
    if what == "filters":
        from cnndsl.viz.learned import show_filters

        if image is not None or index is not None:
            raise CnnError("show filters draws the kernels alone: it takes no image", hint="leave out the image")
        return Shown([show_filters(network, layer, folder)])
    picture = sample(network, str(image) if isinstance(image, (str, Path)) else image, index)
    if what == "maps":
        from cnndsl.viz.learned import show_maps

        layers = [layer] if isinstance(layer, str) else list(layer or []) or None
        return Shown(show_maps(network, picture, layers, folder, scale))
    from cnndsl.viz.cam import show_cam, summary

    path, found = show_cam(network, picture, folder, target, method, layer)
    return Shown([path], summary(network, found))


@clear_imports
def plot(spec, out: str | Path | None = None, *, depth: int | None = None, figures: bool = False) -> Path:
    """Draws the network's diagram into `out`, whose ending gives the format (.svg, .png, .pdf, .dot or .gv),
    replaced if there; by default NAME.svg here, or NAME-2.svg... when taken. Returns the file written.
    `depth` folds block calls as `check --depth` does; `figures` adds params, MACs and receptive field."""
    from cnndsl.viz.render import FORMATS, render, write

    spec = _spec(spec)
    target = free_path(Path(Path(_name(spec)).stem + ".svg")) if out is None else Path(out)
    fmt = "dot" if target.suffix.lower() == ".gv" else target.suffix[1:].lower()
    if fmt not in FORMATS:
        raise CnnError(f"cannot tell a diagram's format from {target}", hint="end it in .svg, .png, .pdf or .dot")
    check_output(target, _inputs(spec))
    write(target, render(spec, fmt, depth, figures))
    return target


@clear_imports
def page(spec, out: str | Path, *, depth: int | None = None) -> Path:
    """Writes the spec's report as one self-contained HTML page (`check --html`): the diagram, the table with
    each layer's arithmetic a click away, the totals and the spec's text. Returns the file written."""
    from cnndsl.viz import page as pages

    spec = _spec(spec)
    check_output(Path(out), _inputs(spec), "--html")
    pages.write(Path(out), pages.spec_page(spec.check(), spec.program.text, depth))
    return Path(out)


@clear_imports
def error_page(source: str | Path, error: CnnError, out: str | Path) -> Path:
    """Writes the page of a spec that does not check (`check --html` of a wrong spec): its errors as `check`
    prints them, with their source lines and carets, escaped, and the spec's text. Never over the spec or a
    file its errors are in. Returns the file written."""
    from cnndsl.viz import page as pages

    errors = getattr(error, "errors", [error])
    used = dict.fromkeys(e.span.source.name for e in errors if e.span is not None)
    inputs = [(Path(source), "the spec itself"), *((Path(n), "a file the spec uses") for n in used if n != str(source))]
    check_output(Path(out), inputs, "--html")
    pages.write(Path(out), pages.error_page(str(source), errors))
    return Path(out)


# -- the compiler's other outputs


def write_source(spec, out: str | Path) -> Path:
    """Writes the network's PyTorch source (`Spec.source()`, what `cnndsl compile -o` writes) to `out`, whole
    or not at all. Returns the file written."""
    spec = _spec(spec)
    check_output(Path(out), _inputs(spec))
    atomic_write(Path(out), spec.source().encode())
    return Path(out)


@clear_imports
def from_module(model, input_shape=(3, 224, 224), *, name: str | None = None, source: str | None = None):
    """A PyTorch module as a spec (docs/import.md): an `Imported` with the spec's `text` and `names`, the mapping
    from the built module's state_dict keys to the model's, so that
    `load_weights(loads(i.text).build(), i.state_dict(model.state_dict()))` pairs every tensor by name. Traced in
    eval mode with torch.fx; what the language cannot say yet raises a CnnError showing the model's tree with it
    marked. `input_shape` is (C, H, W) or "3x224x224"; `name` the network's (else from the class)."""
    from cnndsl.interop import emit
    from cnndsl.interop.torch_import import from_module as run

    if name is not None and not emit.is_name(name):
        raise UsageError(f"network name {name!r}", hint="a name is letters, digits and _, not starting with a digit")
    if isinstance(input_shape, str):
        input_shape = _shape(input_shape)
    return run(model, tuple(input_shape), name=name, source=source)


def import_model(source: str, out: str | Path, input_shape="3x224x224", *, force: bool = False,
                 name: str | None = None):
    """`cnndsl import`: makes the model with the factory `source` (`package.module:function` or
    `file.py:function`: this runs that code), imports it, and writes the spec to `out` and, where some names
    differ, the mapping of names to OUT.names.json (built key → the model's key). Refuses to write over a file
    unless `force`. Returns the `Imported`."""
    import json

    from cnndsl.interop import emit, factory

    out = Path(out)
    sidecar = out.with_suffix(".names.json")
    factory.split(source)  # a mistake of the command line before any code runs
    if name is not None and not emit.is_name(name):
        raise UsageError(f"--name {name!r}", hint="a name is letters, digits and _, not starting with a digit")
    shape = _shape(input_shape) if isinstance(input_shape, str) else tuple(input_shape)
    for path in (out, sidecar):
        if path.exists() and not force:
            raise UsageError(f"{path} exists", hint="pass --force to replace it, or name another file with -o")
    model = factory.make(source)
    if not _is_module(model):
        raise CnnError(f"{source} made a {type(model).__name__}, not a torch.nn.Module")
    imported = from_module(model, shape, name=name, source=source)
    atomic_write(out, imported.text.encode())
    renamed = {ours: theirs for ours, theirs in imported.names.items() if ours != theirs}
    if renamed:
        atomic_write(sidecar, (json.dumps(renamed, indent=1) + "\n").encode())
    elif sidecar.exists():
        sidecar.unlink()  # --force over an earlier import: a stale mapping would mislead
    return imported


def _is_module(model) -> bool:
    from torch import nn

    return isinstance(model, nn.Module)


def _shape(text: str) -> tuple[int, ...]:
    parts = text.lower().split("x")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UsageError(f"input shape {text!r}", hint="write CxHxW, such as 3x224x224")
    return tuple(int(p) for p in parts)


def format_spec(text: str, name: str = "<string>") -> str:
    """The canonical text of a spec (what `cnndsl fmt` writes): comments kept, meaning unchanged. Raises the
    text's syntax errors; a text with errors is not formatted."""
    from cnndsl.syntax.printer import format_text

    return format_text(text, name)


@dataclass
class Formatted:
    """A spec file and its canonical text (`changed` when they differ)."""

    path: Path
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def format_file(path: str | Path, *, write: bool = True, limits: Limits | None = None) -> Formatted:
    """Formats one spec file; with `write`, writes the canonical text over it when it changes (atomically, its
    permissions kept). A file with errors is left untouched: its errors are raised."""
    from cnndsl.syntax.loader import read_text

    path = Path(path)
    try:
        text = read_text(path, (limits or Limits()).spec_bytes, str(path))
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    done = Formatted(path, text, format_spec(text, str(path)))
    if write and done.changed:
        atomic_write(path, done.after.encode("utf-8"))
    return done


def _inputs(spec: Spec) -> list[tuple[Path, str]]:
    """The files a spec was read from, as files.check_output takes them: what no output may replace."""
    return [(path, "the spec itself" if i == 0 and spec.file is not None else "a file the spec uses")
            for i, path in enumerate(spec.paths())]


@clear_imports
def serve_language_server() -> None:
    """Runs `cnndsl lsp`: the language server for editors, over stdin and stdout, until the editor exits."""
    from cnndsl.lsp.server import serve

    serve()


def layers(name: str | None = None) -> list:
    """The registry's layer kinds (ops.Op: name, args with their defaults, doc, shape rule), or the one that
    `name` (or an alias of it) names. Kinds of enabled plugins are among them (`plugin_of` says whose)."""
    from cnndsl.ops import REGISTRY, lookup, plugins
    from cnndsl.ops.foreign import suggestion

    plugins.enable_environment()
    if name is None:
        return list(REGISTRY.values())
    op = lookup(name)
    if op is None:
        hint = (plugins.enabling_hint(name) or suggestion(name) or did_you_mean(name, REGISTRY)
                or "`cnndsl layers` lists them")
        raise UsageError(f"no layer `{name}`", hint=hint)
    return [op]


def enable_plugins(*names: str, source: str = "plugin") -> list:
    """Enables installed plugins by their package's name (`cnndsl-cbam`): their layer kinds join the registry for
    the rest of the process. CNNDSL_PLUGINS=NAME,NAME does the same for every spec loaded. Returns the kinds
    added (ops.Op). A UsageError names the installed plugins when one is not installed (docs/plugins.md); `source`
    is how its message names what named it (the command line's `--plugin`)."""
    from cnndsl.ops import plugins

    return plugins.enable(*names, source=source)


def installed_plugins() -> dict[str, list[str]]:
    """The installed plugins (package name) and the layer kinds each offers, read from their metadata: nothing
    is imported, enabled or not."""
    from cnndsl.ops import plugins

    return plugins.installed()


def plugin_of(kind: str) -> str | None:
    """The plugin an enabled layer kind came from (its package's name); None for a built-in kind."""
    from cnndsl.ops import plugins

    return plugins.plugin_of(kind)


def _spec(spec, params: dict | None = None, network: str | None = None, limits: Limits | None = None) -> Spec:
    if isinstance(spec, Spec):
        if params or network or limits:
            raise CnnError("network parameters go to cnndsl.load() when the spec is already loaded")
        return spec
    return load(spec, network, limits=limits, **(params or {}))


def _name(spec: Spec) -> str:
    """The stem of a default file or run folder: the spec file's name, else the network's."""
    return spec.origin if spec.origin.endswith(".cnn") else spec.graph.name


def _quiet(line: str) -> None:
    pass


__all__ = ["Callback", "CnnError", "Diagnosis", "EarlyStopping", "Formatted", "Limits", "Report", "Shown", "Spec",
           "TrainingPlan", "UsageError", "check", "diagnose", "enable_plugins", "error_page", "evaluate", "export",
           "format_file", "format_spec", "from_keras", "from_module", "import_keras", "import_model",
           "installed_plugins", "launch_training", "layers", "load", "load_recipe", "load_weights", "loads", "page",
           "parse_value", "plan_training", "plot", "plugin_of", "predict", "read_run", "serve_language_server", "show",
           "train", "write_source"]


# ---- import ------------------------------------------------------------------------------------------------------


def from_keras(model_or_path, custom: dict[str, str] | None = None) -> str:
    """The spec text of a Keras 3 model: a live `keras.Model` (read through its public get_config()) or a
    `.keras` file (its config.json read as JSON: nothing in it runs). `custom` maps a custom layer class's name
    to the registry kind that computes the same (`{"MyConv": "conv"}`); Lambda layers are always refused.

    Layers keep their Keras names, so `cnndsl.load_weights(module, "model.keras")` pairs them by name. A model
    with layers cnndsl cannot express raises a CnnError holding the model's tree with those layers marked;
    the spec written is checked to hold exactly as many parameters as the model."""
    from cnndsl.interop import keras_import

    if isinstance(model_or_path, (str, Path)):
        path = Path(model_or_path)
        config, source = keras_import.read_config(path), path.name
    else:
        config = keras_import.live_config(model_or_path)
        source = f"the Keras model `{config['config'].get('name', type(model_or_path).__name__)}`"
    text = keras_import.from_config(config, source, custom)
    _same_count(text, source, _keras_count(model_or_path))
    return text


def _keras_count(model_or_path) -> int | None:
    """The model's weights' count (Keras' count_params(): batchnorm statistics included); None when the file's
    weights cannot be read (no h5py)."""
    if not isinstance(model_or_path, (str, Path)):
        try:
            return int(model_or_path.count_params())
        except ValueError:  # a model not built yet: Keras knows no count
            return None
    import importlib.util

    from cnndsl.keras_weights import read_keras

    if importlib.util.find_spec("h5py") is None:
        return None
    return sum(int(a.size) for layer in read_keras(Path(model_or_path)) for a in layer.arrays.values())


def _same_count(text: str, source: str, count: int | None) -> None:
    """The spec checks (its values are the model's: a bad one is a located error) and holds the model's count."""
    report = loads(text, name="<imported spec>").check()
    if count is not None and report.params + report.buffers != count:
        raise CnnError(f"the spec imported from {source} holds {report.params + report.buffers:,} parameters and "
                       f"statistics where the model holds {count:,}: not written",
                       hint="a layer option the importer does not read; please report the model")


def import_keras(source: str | Path, out: str | Path, *, force: bool = False,
                 custom: dict[str, str] | None = None) -> str:
    """`cnndsl import MODEL.keras -o OUT`: the spec of a `.keras` file (`from_keras`) written to `out`, whole or
    not at all; never over a file unless `force`, never over the model. Returns the spec's text."""
    source, out = Path(source), Path(out)
    if source.suffix != ".keras":
        raise UsageError(f"{source}: a Keras model is imported from a .keras file", hint="save it with "
                         "model.save('NAME.keras')")
    if out.exists() and not force:
        raise UsageError(f"{out} exists", hint="pass --force to replace it, or name another file with -o")
    check_output(out, [(source, "the Keras model")])
    text = from_keras(source, custom)
    atomic_write(out, text.encode())
    return text
