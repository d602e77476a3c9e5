"""The `cnndsl` command: one thin function per verb over the Python API.

It imports only the API (cnndsl.api, loaded when a command runs), and cnndsl.errors and cnndsl.limits for its
exit codes and option defaults; every command's work is an API function's.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from cnndsl import limits
from cnndsl.errors import CnnError, CnnErrors, Printable, UsageError, UserNote, terminal

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _params(pairs: list[str]) -> dict:
    from cnndsl.api import parse_value

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"--set takes KEY=VALUE, got `{pair}`", hint="e.g. --set classes=10")
        out[key.strip()] = parse_value(value)
    return out


def _load(args: argparse.Namespace, path: str | None = None):
    """The spec the command line names: always a file (never spec text), within the limits given."""
    from cnndsl.api import load

    return load(Path(path or args.spec), args.network, limits=_limits(args), **_params(args.set))


def _limits(args: argparse.Namespace) -> limits.Limits:
    return limits.Limits(spec_bytes=args.max_spec_size, layers=args.max_layers)


def _trained(args: argparse.Namespace):
    """(spec or None, weights) of eval, predict and export: `RUN [--spec FILE]`, or the older `SPEC --weights CKPT`.

    With no spec file the weights' checkpoint gives the network (its text, files and --set values; --set
    values given here go over them): then the weights are read here, once, with it (api.read_run).
    """
    spec, weights = _named(args)
    if spec is None:
        from cnndsl.api import read_run

        weights = read_run(weights, network=args.network, limits=_limits(args), **_params(args.set))
    return spec, weights


def _named(args: argparse.Namespace):
    """(the spec file loaded, or None; the weights' path) as the command line names them."""
    if args.weights is not None:
        if args.spec is not None and hasattr(args, "images") and not args.spec.endswith(".cnn"):
            args.images, args.spec = [args.spec, *args.images], None  # `predict IMAGE... --weights CKPT`
        if args.spec is None:
            return (_load(args, args.spec_file) if args.spec_file else None), args.weights
        if args.spec_file is not None:
            raise UsageError(f"--weights {args.weights} and --spec {args.spec_file}: {args.spec} is then a spec too",
                             hint=f"give the run or checkpoint alone: {args.command} {args.weights} --spec "
                             f"{args.spec_file}")
        return _load(args), args.weights
    if args.spec is None:
        raise UsageError(f"{args.command} needs a run folder or checkpoint (or --weights CKPT)",
                         hint=f"e.g. cnndsl {args.command} runs/NAME")
    if args.spec.endswith(".cnn") and os.path.isfile(args.spec):
        raise UsageError(f"{args.spec} is a spec, and there are no weights to {args.command} it with",
                         hint=f"give a run folder or its checkpoint ({args.command} runs/NAME), or the weights: "
                         f"{args.command} {args.spec} --weights CKPT")
    return (_load(args, args.spec_file) if args.spec_file else None), args.spec


def cmd_check(args: argparse.Namespace) -> int:
    import gc

    collecting = gc.isenabled()
    gc.disable()  # the whole command: a check makes many small objects and no cycles (see cnndsl/collector.py)
    try:
        return _check(args)
    except UsageError:
        raise
    except CnnError as e:
        if args.html:  # the page of a wrong spec: its errors, as they are printed below
            return _error_page(args, e)
        if not args.json:
            raise
        import json

        errors = getattr(e, "errors", [e])  # every error of the spec, in source order
        print(json.dumps({"file": args.spec, "errors": [x.diagnostic.as_dict() for x in errors]}, indent=2))
        return EXIT_SPEC
    finally:
        if collecting:
            gc.enable()


def _check(args: argparse.Namespace) -> int:
    spec = _load(args)
    result = spec.check()
    if not args.json:
        for w in result.warnings:
            print(w.render(), file=sys.stderr)
    if args.html:
        _write_page(args, spec)
    elif args.json:
        print(result.json())
    elif args.markdown:
        print(result.markdown(args.depth))
    elif args.keras:
        _print_keras(result, args)
    elif _colour(args.color, sys.stdout):
        _print_coloured(result, args)
    else:
        print(result.text(args.depth, args.explain))
    return EXIT_OK


def _error_page(args: argparse.Namespace, error: CnnError) -> int:
    """check --html FILE of a spec that does not check: the errors on stderr, as always, and on the page."""
    from cnndsl.api import error_page

    target = error_page(args.spec, error, args.html)  # refused (exit 2) where the spec's own file would be lost
    _print_errors(error, args)
    print(f"wrote {target}", file=sys.stderr)
    return EXIT_SPEC


def _print_errors(error: CnnError, args: argparse.Namespace) -> None:
    print(error.render(), file=sys.stderr)
    if isinstance(error, CnnErrors):  # after them all, as rustc does: how many
        spec = getattr(args, "spec", "the spec")
        print(f"\nerror: could not check {spec}: {len(error.errors):,} errors", file=sys.stderr)


def _write_page(args: argparse.Namespace, spec) -> None:
    """check --html FILE: the spec as a page, written whole or not at all, never over the spec."""
    from cnndsl.api import page

    target = Path(args.html)
    page(spec, target, depth=args.depth)  # never over the spec, a file it uses, or into a run (files.check_output)
    print(f"wrote {target}", file=sys.stderr)


def _colour(choice: str, stream) -> bool:
    """--color auto: colour on a terminal, unless NO_COLOR is set (https://no-color.org) or TERM is dumb;
    FORCE_COLOR asks for it anywhere. The flag's always and never win over both variables."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty() and os.environ.get("TERM") != "dumb"


def _print_coloured(result, args: argparse.Namespace) -> None:
    from rich.console import Console  # only here: rich costs import time that a piped `check` never pays

    console = Console(file=terminal(sys.stdout), force_terminal=True, no_color=False, color_system="standard",
                      highlight=False, soft_wrap=True, emoji=False, markup=False)  # its colours: the text is escaped
    console.print(result.coloured(args.depth, args.explain))


def _print_keras(result, args: argparse.Namespace) -> None:
    """check --keras: Keras' model.summary(), in Keras' colours on a terminal (rich draws both)."""
    if not _colour(args.color, sys.stdout):
        sys.stdout.write(result.keras_summary())
        return
    from rich.console import Console

    Console(file=terminal(sys.stdout), force_terminal=True, color_system="256", highlight=False,
            emoji=False).print(result.keras_table())


def cmd_fmt(args: argparse.Namespace) -> int:
    """As black and `ruff format` do: rewrite files in place, or with --check/--diff only say what would change."""
    from pathlib import Path

    from cnndsl.api import format_file

    changed = failed = unchanged = 0
    for path in _spec_files([Path(p) for p in args.files]):
        try:
            done = format_file(path, write=not (args.check or args.diff))
        except CnnError as e:  # left untouched, its errors shown
            print(e.render(), file=sys.stderr)
            print(f"error: cannot format {path}", file=sys.stderr)
            failed += 1
            continue
        if not done.changed:
            unchanged += 1
            continue
        changed += 1
        if args.diff:
            import difflib

            sys.stdout.writelines(difflib.unified_diff(done.before.splitlines(keepends=True),
                                                       done.after.splitlines(keepends=True), f"{path}", f"{path}"))
        print(f"{'would reformat' if args.check or args.diff else 'reformatted'} {path}", file=sys.stderr)
    done = "would be reformatted" if args.check or args.diff else "reformatted"
    print(f"{changed} file{'s' * (changed != 1)} {done}, {unchanged} left unchanged"
          + (f", {failed} with errors" if failed else ""), file=sys.stderr)
    return EXIT_SPEC if failed or (args.check and changed) else EXIT_OK


def _spec_files(paths: list) -> list:
    """The files named, and the .cnn files under the folders named (sorted); a missing one is a usage error."""
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.cnn") if p.is_file())
        elif path.exists():
            found.append(path)
        else:
            raise UsageError(f"no such file or folder: {path}")
    return list(dict.fromkeys(found))


def cmd_train(args: argparse.Namespace) -> int:
    from cnndsl import api

    spec = _load(args)
    if args.resume:  # the run's own recipe: only --tensorboard may change, which adds or stops a log
        _resume_alone(args)
        recipe, board = None, ({} if args.tensorboard is None else {"tensorboard": args.tensorboard})
    else:
        recipe, board = api.load_recipe(args.recipe, dict(
            data=args.data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, init=args.init,
            amp=args.amp or None, compile=args.compile or None, channels_last=args.channels_last or None,
            tensorboard=args.tensorboard, overfit_batches=args.overfit_batches)), {}
    guard = {"fast_dev_run": args.fast_dev_run, "find_lr": args.find_lr, "preflight": args.preflight}
    if args.fast_dev_run and (args.out or args.nproc > 1):
        raise UsageError(f"--fast-dev-run keeps nothing and runs in one process: {'--out' if args.out else '--nproc'} "
                         "does not go with it", hint=f"drop {'--out' if args.out else '--nproc'}")
    if args.nproc > 1:  # start the processes; each runs this command without --nproc, into the folder claimed
        plan = api.plan_training(spec, recipe, out=args.out, resume=args.resume, **board)  # refused here, not N times
        return api.launch_training(args.nproc, _without_nproc(args.argv), args.device, plan)
    api.train(spec, recipe, out=args.out, resume=args.resume, device=args.device,
              log=lambda line: print(line, flush=True), **board, **guard)
    return EXIT_OK


def _resume_alone(args: argparse.Namespace) -> None:
    """--resume continues a run with its own recipe and folder: flags that would change them are refused."""
    given = [flag for flag, value in (("--recipe", args.recipe), ("--data", args.data), ("--epochs", args.epochs),
                                      ("--batch-size", args.batch_size), ("--lr", args.lr), ("--seed", args.seed),
                                      ("--init", args.init), ("--amp", args.amp), ("--compile", args.compile),
                                      ("--channels-last", args.channels_last), ("--out", args.out),
                                      ("--overfit-batches", args.overfit_batches), ("--find-lr", args.find_lr),
                                      ("--fast-dev-run", args.fast_dev_run))
             if value is not None and value is not False]
    if given:
        raise UsageError(f"--resume continues {args.resume} with its own recipe and folder; "
                         f"{', '.join(given)} cannot change them",
                         hint=f"drop {', '.join(given)}; or start a new run from that run's weights: "
                         f"--init {args.resume}/last.pt")


def _without_nproc(argv: list[str]) -> list[str]:
    """The same arguments, less --nproc N."""
    kept, skip = [], False
    for word in argv:
        if skip:
            skip = False
            continue
        if word == "--nproc":
            skip = True
            continue
        if word.startswith("--nproc="):
            continue
        kept.append(word)
    return kept


def cmd_eval(args: argparse.Namespace) -> int:
    from cnndsl import api

    if args.seed is not None:
        api.load_recipe(None, {"seed": args.seed})  # a seed the training could have had, or a UsageError
    spec, weights = _trained(args)
    done = api.evaluate(weights, args.data, spec=spec, seed=args.seed, device=args.device,
                        log=lambda line: print(line, file=sys.stderr))
    print(f"test accuracy {done.accuracy:.4f} (loss {done.loss:.4f}) on {done.data}")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from cnndsl.api import predict

    spec, weights = _trained(args)
    for path, best in zip(args.images, predict(weights, args.images, args.top, spec=spec, device=args.device)):
        print(path + ": " + ", ".join(f"{name} {p:.1%}" for name, p in best))
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    from cnndsl.api import write_source

    spec = _load(args)
    source = spec.source()
    for w in spec.warnings:
        print(w.render(), file=sys.stderr)
    if args.output in (None, "-"):
        sys.stdout.write(source)
        return EXIT_OK
    write_source(spec, args.output)  # the whole file or none, never over the spec or a file it uses
    print(f"wrote {args.output}: class {spec.class_name()} ({len(source.splitlines())} lines)", file=sys.stderr)
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    """A .keras SOURCE is read as data (Keras); any other is a PyTorch factory, which runs."""
    if args.source.endswith(".keras"):
        return _import_keras(args)
    if args.custom:
        raise UsageError("--custom is for a .keras SOURCE", hint="a PyTorch model's layers map through the registry")
    from cnndsl.api import import_model

    imported = import_model(args.source, args.output, args.input, force=args.force, name=args.name)
    lines = len(imported.text.splitlines())
    renamed = sum(1 for ours, theirs in imported.names.items() if ours != theirs)
    sidecar = Path(args.output).with_suffix(".names.json")
    note = f"; {renamed} of {len(imported.names)} tensor names differ: see {sidecar}" if renamed else \
        f"; all {len(imported.names)} tensor names as the model's"
    print(f"wrote {args.output} ({lines} lines){note}", file=sys.stderr)
    for path in imported.unused:
        print(f"note: {path} is never called in eval mode: left out", file=sys.stderr)
    return EXIT_OK


def _import_keras(args: argparse.Namespace) -> int:
    from cnndsl.api import import_keras

    if args.name is not None or args.input != DEFAULT_IMPORT_INPUT:
        raise UsageError("--name and --input are for a PyTorch factory", hint="a .keras file gives its own")
    custom = {}
    for item in args.custom:
        cls, _, kind = item.partition("=")
        if not cls.strip() or not kind.strip():
            raise UsageError(f"--custom {item}: expected CLASS=KIND", hint="e.g. --custom MyConv=conv")
        custom[cls.strip()] = kind.strip()
    text = import_keras(args.source, args.output, force=args.force, custom=custom)
    print(f"wrote {args.output} ({len(text.splitlines())} lines; layer names as the Keras model's)", file=sys.stderr)
    return EXIT_OK


DEFAULT_IMPORT_INPUT = "3x224x224"


PLOT_SUFFIXES = (".svg", ".png", ".pdf", ".dot", ".gv")


def cmd_plot(args: argparse.Namespace) -> int:
    from cnndsl.api import plot

    if args.output is not None:  # the name is checked before the spec is read
        target = Path(args.output)
        if target.suffix.lower() not in PLOT_SUFFIXES:
            raise UsageError(f"-o {args.output}: cannot tell the format from the name",
                             hint=f"end it in {', '.join(PLOT_SUFFIXES[:-1])} (e.g. -o {Path(args.spec).stem}.svg)")
    spec = _load(args)
    for w in spec.warnings:
        print(w.render(), file=sys.stderr)
    target = plot(spec, args.output, depth=args.depth, figures=args.figures)  # by default SPEC.svg, never over a file
    print(f"wrote {target}", file=sys.stderr)
    return EXIT_OK


EXPORT_SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}  # the formats, and the endings of their files


def cmd_export(args: argparse.Namespace) -> int:
    from cnndsl.api import export

    # `export SPEC` (no weights): freshly initialised weights, as before runs could be named
    fresh = args.weights is None and args.spec_file is None and (args.spec or "").endswith(".cnn")
    spec, weights = (_load(args), None) if fresh else _trained(args)
    if weights is None:
        print("note: no --weights: exporting freshly initialised weights", file=sys.stderr)
    done = export(weights, args.output, args.format, spec=spec, check=args.check)
    checked = (f"; {done.verified_by} gives the module's outputs within {done.max_difference:.1g}"
               if done.verified_by else "; not checked (--no-check)")
    print(f"wrote {done.path} ({args.format}, dynamic batch){checked}", file=sys.stderr)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from cnndsl.api import read_run, show

    run = read_run(args.source, spec=args.spec, network=args.network, **_params(args.set))
    options = {} if args.what == "filters" else {"image": args.image, "index": args.index}
    if args.what == "maps":
        options["scale"] = args.scale
    elif args.what == "cam":
        options.update(target=args.target, method=args.method)
    done = show(args.what, run, layer=args.layer or None, out=args.out, **options)
    if done.note:
        print(done.note)
    for path in done.paths:
        print(f"wrote {path}")
    return EXIT_OK


def cmd_layers(args: argparse.Namespace) -> int:
    from cnndsl.api import layers, plugin_of

    for op in layers(args.name):
        parts = [a.name if a.required else f"{a.name}={_show(a.default)}" for a in op.args]
        plugin = plugin_of(op.name)
        print(f"{op.name:16} {' '.join(parts)}" + (f"  [plugin {plugin}]" if plugin else ""))
        if args.name:
            print(f"\n{op.doc}\nshape: {op.shape_rule}")
            if op.foreign:
                print(f"Keras and PyTorch: {', '.join(f.shown for f in op.foreign)}")
            for a in op.args:
                alias = f" (also {', '.join(a.aliases)})" if a.aliases else ""
                print(f"  {a.name}{alias}: {a.doc or a.kind}")
    if not args.name:
        _not_enabled()
    return EXIT_OK


def _not_enabled() -> None:
    from cnndsl.api import installed_plugins, plugin_of

    idle = {name: kinds for name, kinds in installed_plugins().items()
            if not all(plugin_of(k) == name for k in kinds)}
    if idle:
        print("\ninstalled plugins, not enabled (--plugin NAME or CNNDSL_PLUGINS=NAME):")
        for name, kinds in idle.items():
            print(f"  {name}: {', '.join(kinds)}")


def _enable(args: argparse.Namespace) -> None:
    """--plugin NAME: the user's explicit choice to run an installed plugin's code (CNNDSL_PLUGINS is read where
    a spec is loaded)."""
    if getattr(args, "plugin", None):
        from cnndsl.api import enable_plugins

        enable_plugins(*args.plugin, source="--plugin")


def cmd_lsp(args: argparse.Namespace) -> int:
    from cnndsl.api import serve_language_server

    serve_language_server()
    return EXIT_OK


def _show(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):  # a pair's default, (1, 1), as it is written: 1
        return str(v[0]) if len(set(v)) == 1 else "x".join(map(str, v))
    return "kernel" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _rate(text: str) -> float | str:
    """--lr: a number, or `auto` (the range test's suggestion)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {text!r}") from None


def _size(text: str) -> int:
    try:
        return limits.parse_size(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(e.message) from None


def _spec_arguments(p: argparse.ArgumentParser, device: bool = False, spec: tuple[str, str] | None = None) -> None:
    """SPEC, --set and --network, which every command that reads a spec takes (and --device).

    `spec` is (metavar, help) where the first argument is another thing than a .cnn file."""
    metavar, what = spec or ("spec", "the .cnn file")
    p.add_argument("spec", metavar=metavar, help=what, nargs="?" if spec else None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a network parameter, e.g. --set classes=10 (repeatable)"
                   + ("; over the run's own" if spec else ""))
    p.add_argument("--network", help="which network, when the file defines several")
    _plugin_argument(p)
    p.add_argument("--max-layers", type=_positive, default=limits.LAYERS, metavar="N",
                   help=f"refuse specs that expand to more layers or repeat iterations, or files of more "
                   f"statements (default {limits.LAYERS:,})")
    p.add_argument("--max-spec-size", type=_size, default=limits.SPEC_BYTES, metavar="SIZE",
                   help=f"refuse specs (with the files they use) larger than this, e.g. 4M (default "
                   f"{limits.SPEC_BYTES >> 10}K)")
    if device:
        p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="where to run")


def _plugin_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugin", action="append", default=[], metavar="NAME",
                   help="enable an installed plugin's layer kinds, e.g. --plugin cnndsl-cbam (repeatable; "
                   "CNNDSL_PLUGINS=NAME,NAME enables them too; see docs/plugins.md)")


def _trained_arguments(p: argparse.ArgumentParser, device: bool = True) -> None:
    """RUN (or SPEC with --weights), --spec, --weights and the spec options: eval, predict and export."""
    _spec_arguments(p, device, spec=("RUN", "a run folder (its best.pt) or a checkpoint: the spec, --set values "
                                     "and data come from it; or, with --weights, the .cnn file (the older form)"))
    p.add_argument("--spec", dest="spec_file", metavar="FILE",
                   help="the .cnn file, for weights whose checkpoint holds no spec (a bare state_dict)")
    p.add_argument("--weights", metavar="CKPT", help="with SPEC as the first argument: a run's best.pt or a "
                   "state_dict file")


def version() -> str:
    """The installed package's version; the source's own where cnndsl runs uninstalled."""
    from importlib import metadata

    from cnndsl import __version__

    try:
        return metadata.version("cnndsl")
    except metadata.PackageNotFoundError:
        return __version__


class _Version(argparse.Action):
    """--version, looked up only when asked: importlib.metadata would slow every `check`."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"cnndsl {version()}")
        parser.exit()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cnndsl",
        description="A declarative compiler for convolutional networks: check .cnn specs without running them.",
    )
    p.add_argument("--version", action=_Version, help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("check", help="print every layer's shape, parameters, MACs and receptive field",
                       description="Parse and check a .cnn spec and print, without running anything, every "
                       "layer's output shape, parameter count, MACs and receptive field, with totals. "
                       "Exit codes: 0 ok, 1 the spec is wrong, 2 the command line is wrong.")
    _spec_arguments(c)
    out = c.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="every figure, per layer, as JSON; for a spec with errors, "
                     "{\"file\", \"errors\": [...]}, each error with its place, message and hint (exit 1)")
    out.add_argument("--markdown", action="store_true", help="the table as Markdown")
    out.add_argument("--keras", action="store_true", help="the table as Keras 3's model.summary() prints it: Keras' "
                     "layer names and types, (None, H, W, C) shapes, batchnorm's moving statistics and frozen "
                     "layers' weights as non-trainable params (88 columns, or the terminal's width less 4, as "
                     "Keras; COLUMNS sets it)")
    out.add_argument("--explain", action="store_true",
                     help="show the arithmetic behind each layer's figures (output size, params, MACs)")
    out.add_argument("--html", metavar="FILE", help="write the report as a self-contained HTML page: the diagram "
                     "(inline SVG; needs Graphviz's dot), the table with each layer's arithmetic a click away, "
                     "the totals and the spec's text (never over the spec, a file it uses, or into a run's folder); "
                     "for a spec with errors, a page of its errors as check prints them (exit 1)")
    c.add_argument("--depth", type=_positive, metavar="N",
                   help="fold block calls nested deeper than N into one row each (1: top-level rows only); "
                   "with --html, the diagram too")
    c.add_argument("--color", "--colour", choices=("auto", "always", "never"), default="auto",
                   help="colour the table: auto (default) on a terminal unless NO_COLOR is set; the text is the "
                   "same either way")
    c.set_defaults(run=cmd_check)

    tr = sub.add_parser("train", help="train a spec on a dataset (default: the offline digits)",
                        description="Train a spec with one shared runner: per-epoch loss and accuracy on the "
                        "training and validation data, atomic checkpoints (best.pt, last.pt), metrics.csv and "
                        "metrics.json in the run folder (and TensorBoard logs with --tensorboard), and the test "
                        "accuracy of the best epoch. Flags override the recipe. A run that would not fit in memory "
                        "is refused before it starts (CNNDSL_MAX_MEMORY=SIZE sets the limit).")
    _spec_arguments(tr, device=True)
    tr.add_argument("--recipe", metavar="FILE.yaml", help="training settings (see docs/training.md)")
    tr.add_argument("--data", metavar="NAME", help="digits (default; offline), mnist, fashion-mnist, kmnist, "
                    "cifar10, cifar100 (downloaded once into ~/.cache/cnndsl or $CNNDSL_DATA), npz:PATH")
    tr.add_argument("--epochs", type=_positive, metavar="N")
    tr.add_argument("--batch-size", type=_positive, metavar="N")
    tr.add_argument("--lr", type=_rate, metavar="X", help="learning rate (greater than 0), or auto: the learning-rate "
                    "range test's suggestion (see --find-lr)")
    tr.add_argument("--seed", type=int, metavar="N", help="seed of the weights, the split and the shuffling "
                    "(0 to 4294967295)")
    tr.add_argument("--out", metavar="DIR", help="run folder, new or empty, claimed by the run until it ends: a run "
                    "already there, or starting there at the same time, is never replaced (default runs/SPEC-TIME, "
                    "with -2, -3... when taken)")
    tr.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last finished epoch, with its "
                    "own recipe (flags that would change it are refused; --tensorboard and --no-tensorboard are "
                    "not); refused while another process trains it")
    tr.add_argument("--init", metavar="WEIGHTS", help="start from these weights (a run's best.pt, any state_dict, a "
                    "Keras model.keras or .weights.h5, or torchvision:NAME or timm:NAME, e.g. torchvision:resnet50 or "
                    "timm:xception, from the hub cache or downloaded); what fits by name or shape is loaded, and "
                    "the log says what")
    tr.add_argument("--amp", nargs="?", const="auto", choices=("off", "bf16", "fp16", "auto"),
                    help="mixed precision: bf16, fp16 (with a gradient scaler) or off; --amp alone is auto: bf16 "
                    "where the device has it, else fp16")
    tr.add_argument("--compile", action="store_true", help="torch.compile the model")
    tr.add_argument("--channels-last", action="store_true", help="NHWC memory layout for weights and images")
    tr.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=None,
                    help="write each epoch's figures for TensorBoard into RUN/tensorboard/ (recipe key "
                    "`tensorboard`; needs `pip install tensorboard`); also with --resume, which may turn it on "
                    "or off")
    tr.add_argument("--fast-dev-run", action="store_true", help="run every step (training, validation, test, "
                    "checkpoints, a resume, the plots, the page) on one batch of each split, in seconds, in a "
                    "temporary folder removed after: the error a long run would meet, found now")
    tr.add_argument("--overfit-batches", type=_positive, metavar="N", help="train on the same N batches every epoch, "
                    "validated on them too (recipe key `overfit_batches`): a network that can learn reaches a "
                    "training accuracy near 1")
    tr.add_argument("--find-lr", action="store_true", help="run the learning-rate range test before epoch 1 "
                    "(1e-7 to 10 over 100 steps; the weights are put back after): its plot, lr_find.png, goes into "
                    "the run folder and its page; `--lr auto` runs it and trains with its suggestion")
    tr.add_argument("--no-preflight", dest="preflight", action="store_false", help="skip the checks before epoch 1 "
                    "(the initial loss against ln(classes), the labels, the inputs' range, a final softmax or "
                    "sigmoid); labels outside 0..classes-1 are refused even so")
    tr.add_argument("--nproc", type=_positive, default=1, metavar="N",
                    help="train in N processes with DistributedDataParallel (gloo on CPU, NCCL on GPUs), through "
                    "torchrun on this machine; the batch size is per process")
    tr.set_defaults(run=cmd_train)

    ev = sub.add_parser("eval", help="test accuracy of trained weights",
                        description="Evaluate trained weights on the test split of the data they were trained "
                        "on: `cnndsl eval RUN` takes the spec (with its --set values and the files it uses), the "
                        "dataset, its splits and seed, the input's adaptation and the normalisation from the run's "
                        "checkpoint. --data, --seed, --spec and --set change them (a note says what differs). The "
                        "older form `cnndsl eval SPEC --weights CKPT` is still accepted.")
    _trained_arguments(ev)
    ev.add_argument("--data", metavar="NAME", help="another dataset (default: the run's own; digits for a bare "
                    "state_dict)")
    ev.add_argument("--seed", type=int, metavar="N", help="the seed of the split (default: the run's own)")
    ev.set_defaults(run=cmd_eval)

    pr = sub.add_parser("predict", help="the most likely classes of image files",
                        description="Classify images (PNG, JPEG, BMP, GIF, WEBP or TIFF) with trained weights: the "
                        "top classes with their names (from the checkpoint) and probabilities, the images prepared "
                        "as the run's were (resized, channels matched, normalised). `cnndsl predict RUN IMAGE...`; "
                        "the older form `cnndsl predict SPEC IMAGE... --weights CKPT` is still accepted. Images of "
                        "more than 40,000,000 pixels are refused (CNNDSL_MAX_PIXELS=N raises the limit).")
    _trained_arguments(pr)
    pr.add_argument("images", nargs="+", metavar="IMAGE")
    pr.add_argument("--top", type=_positive, default=3, metavar="K", help="how many classes to show (default 3)")
    pr.set_defaults(run=cmd_predict)

    co = sub.add_parser("compile", help="write the network as standalone PyTorch source",
                        description="Check a spec, then write readable PyTorch source for it: a class per block "
                        "definition and one for the network, importing only torch. `python OUT.py` builds the "
                        "network and runs a random batch through it.")
    _spec_arguments(co)
    co.add_argument("-o", "--output", metavar="FILE", help="where to write the source (default: standard output); "
                    "never the spec, a file it uses, or a file in a run's folder")
    co.set_defaults(run=cmd_compile)

    ex = sub.add_parser("export", help="write trained weights as ONNX or TorchScript",
                        description="Export the network with trained weights for other runtimes: ONNX through "
                        "torch.onnx with a dynamic batch axis, checked with onnxruntime (needs the onnx, onnxscript "
                        "and onnxruntime packages: pip install 'cnndsl[export]'), or TorchScript, checked by loading "
                        "it back. `cnndsl export RUN` takes the network from the run's checkpoint; `cnndsl "
                        "export SPEC --weights CKPT` is still accepted, and `cnndsl export SPEC` exports freshly "
                        "initialised weights. The file takes images as the network sees them (after the run's "
                        "normalisation, which its metadata records with the class names).")
    _trained_arguments(ex, device=False)
    ex.add_argument("--format", choices=tuple(EXPORT_SUFFIXES), default="onnx", help="default onnx")
    ex.add_argument("--no-check", dest="check", action="store_false", help="write the ONNX file without running it "
                    "in onnxruntime (for a machine without onnxruntime); by default its outputs are compared with "
                    "the module's")
    ex.add_argument("-o", "--output", metavar="FILE", help="where to write; replaced if it exists, but never the "
                    "weights read, the spec or a file in a run's folder (default NETWORK.onnx or NETWORK.pt here for "
                    "a run, SPEC.onnx for a spec, or NAME-2... when taken: never over a file)")
    ex.set_defaults(run=cmd_export)

    fm = sub.add_parser("fmt", help="rewrite specs in the canonical layout (as black does for Python)",
                        description="Rewrite .cnn files in the one canonical layout: 4-space indentation, one "
                        "statement a line (a construct written on one line stays so while it fits), one blank line "
                        "kept where there were several, arguments of consecutive calls of the same layer or block "
                        "aligned in columns, comments kept. The meaning never changes. Files are replaced "
                        "atomically, their permissions kept; a file with errors is left untouched and its errors "
                        "are shown. Exit 0: nothing left to change; 1: --check found a file to reformat, or a file "
                        "has errors; 2: a file or folder named does not exist.")
    fm.add_argument("files", nargs="+", metavar="FILE", help="spec files, or folders whose .cnn files to format")
    fm.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would be reformatted")
    fm.add_argument("--diff", action="store_true", help="change nothing; print what would change as a unified diff")
    fm.set_defaults(run=cmd_fmt)

    im = sub.add_parser("import", help="write a PyTorch model (runs the factory you name) or a .keras file as a spec",
                        description="Write an existing model as a spec. SOURCE is a PyTorch factory, "
                        "package.module:factory or path/to/file.py:factory: the model it makes is traced with "
                        "torch.fx in eval mode, the module tree gives the blocks, the instances of a class one "
                        "parameterised block, equal neighbours a `repeat`, sums `residual` and concats `concat`. "
                        "THIS RUNS THE CODE OF SOURCE, as `python -c` would: name only code you trust. Where a "
                        "tensor name of the built spec differs from the model's, the mapping is written to "
                        "OUT.names.json (built name -> model name). Or SOURCE is a Keras 3 MODEL.keras file: its "
                        "config.json is read as data (no Lambda layer or custom class runs), each layer keeps its "
                        "Keras name, so that load_weights pairs the file's weights by name. What the language "
                        "cannot say yet is shown as the model's tree with it marked, and nothing is written "
                        "(exit 1).")
    im.add_argument("source", metavar="SOURCE", help="package.module:factory (torchvision.models:resnet50), "
                    "path/to/file.py:factory (called with no arguments), or MODEL.keras")
    im.add_argument("-o", "--output", metavar="FILE", required=True, help="the spec to write (never over a file "
                    "unless --force)")
    im.add_argument("--input", default=DEFAULT_IMPORT_INPUT, metavar="CxHxW", help="PyTorch: the input shape "
                    f"(default {DEFAULT_IMPORT_INPUT})")
    im.add_argument("--name", help="PyTorch: the network's name (default: the model's class in lower case)")
    im.add_argument("--force", action="store_true", help="replace FILE (and FILE's .names.json) if they exist")
    im.add_argument("--custom", action="append", default=[], metavar="CLASS=KIND",
                    help="Keras: read a custom layer class as a registry kind (repeatable): --custom MyConv=conv")
    im.set_defaults(run=cmd_import)

    pl = sub.add_parser("plot", help="draw the architecture diagram (SVG, PNG, PDF or dot source)",
                        description="Draw the network with Graphviz: one node per layer with its name, op and "
                        "output shape; block calls as labelled clusters, a residual's shortcut and each arm of a "
                        "merge as a dashed cluster (the body on the left, arms in the spec's order), frozen layers "
                        "shaded. Needs Graphviz's `dot` program, except for -o FILE.dot.")
    _spec_arguments(pl)
    pl.add_argument("-o", "--output", metavar="FILE", help="where to write: the name's ending (.svg, .png, .pdf, "
                    ".dot) gives the format; replaced if it exists, but never the spec, a file it uses or a file in "
                    "a run's folder (default SPEC.svg here, or SPEC-2.svg... when taken: never over a file)")
    pl.add_argument("--depth", type=_positive, metavar="N",
                    help="fold block calls nested deeper than N into one node each, as `check --depth` folds rows")
    pl.add_argument("--figures", action="store_true", help="add each node's params, MACs and receptive field")
    pl.set_defaults(run=cmd_plot)

    _show_parser(sub)

    la = sub.add_parser("layers", help="list the layers and their arguments",
                        description="List the built-in layers, and those of the enabled plugins (marked with "
                        "their plugin), with their arguments and defaults; with a NAME, describe that layer. "
                        "Installed plugins that are not enabled are named at the end.")
    la.add_argument("name", nargs="?", help="one layer to describe")
    _plugin_argument(la)
    la.set_defaults(run=cmd_layers)

    ls = sub.add_parser("lsp", help="the language server for editors, over stdin and stdout (docs/editors.md)",
                        description="Serve the Language Server Protocol over stdin and stdout: diagnostics, hover "
                        "with shapes and figures, inlay hints, completion, go to definition, formatting, rename. "
                        "An editor starts it; it needs the `lsp` extra (pip install 'cnndsl[lsp]').")
    ls.set_defaults(run=cmd_lsp)
    return p


def _show_parser(sub) -> None:
    """`cnndsl show filters|maps|cam RUN ...`: pictures of what a trained network learned."""
    sh = sub.add_parser("show", help="pictures of what a trained network learned: filters, feature maps, CAM",
                        description="Pictures of a trained network, read from a run folder (its best.pt) or a "
                        "checkpoint: the spec, --set values, classes and normalisation come from the checkpoint. "
                        "PNGs go into the run folder (or --out DIR), never over an existing file (-2, -3... are "
                        "added).")
    kinds = sh.add_subparsers(dest="what", required=True, metavar="WHAT")
    fi = kinds.add_parser("filters", help="the kernels of a conv layer as a grid",
                          description="The kernels of a conv layer (default: the first) as a grid, one tile per "
                          "filter (as RGB when the layer sees 3 channels; one tile per input channel when it sees "
                          "more), with one symmetric colour scale (white or grey is 0). Writes filters-LAYER.png.")
    ma = kinds.add_parser("maps", help="the feature maps one image produces at a layer",
                          description="The feature maps one image produces at layers (default: every conv of the "
                          "first stage), one tile per channel, before the ReLU that follows. The image is a file "
                          "or the test-set image --index N of the run's data (default 0), prepared as `predict` "
                          "prepares it. Writes maps-IMAGE-LAYER.png.")
    ca = kinds.add_parser("cam", help="class activation map over an image (CAM or Grad-CAM)",
                          description="Where the network found its evidence for a class (default: the predicted "
                          "one): CAM where it ends in globalavgpool and dense, else Grad-CAM at the last layer of "
                          "maps before the pooling or flatten (or --layer). Writes cam-IMAGE-CLASS.png or "
                          "gradcam-IMAGE-CLASS.png.")
    for p in (fi, ma, ca):
        p.add_argument("source", metavar="RUN", help="a run folder (its best.pt) or a checkpoint file")
        p.add_argument("--spec", metavar="FILE", help="the spec, for a checkpoint that holds none (a bare state_dict)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="a network parameter over the run's own (repeatable)")
        p.add_argument("--network", help="which network, when the spec defines several")
        _plugin_argument(p)
        p.add_argument("--out", metavar="DIR", help="where to write the pictures (default: the run folder; never "
                       "another run's)")
        p.set_defaults(run=cmd_show)
    for p in (ma, ca):
        p.add_argument("image", nargs="?", metavar="IMAGE", help="an image file (default: a test-set image)")
        p.add_argument("--index", type=int, metavar="N", help="the test-set image N of the run's data (default 0)")
    fi.add_argument("--layer", metavar="NAME", help="a conv layer, as `cnndsl check` names it (default the first)")
    ma.add_argument("--layer", action="append", default=[], metavar="NAME",
                    help="a layer, as `cnndsl check` names it (repeatable; default every conv of the first stage)")
    ma.add_argument("--scale", choices=("shared", "tile"), default="shared",
                    help="one colour scale for all channels of a layer (default), or one per tile")
    ca.add_argument("--class", dest="target", metavar="CLASS", help="a class name or number (default: the predicted)")
    ca.add_argument("--method", choices=("auto", "cam", "gradcam"), default="auto",
                    help="auto (default): CAM where the network ends in globalavgpool and dense, else Grad-CAM")
    ca.add_argument("--layer", metavar="NAME", help="Grad-CAM's layer (default: the last maps before the pooling "
                    "or flatten)")


def main(argv: list[str] | None = None) -> int:
    """The command: every line it prints goes through errors.Printable (no escape sequence from a spec, a file
    name or a class name reaches the terminal)."""
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Printable(sys.stdout), Printable(sys.stderr)
    try:
        with warnings.catch_warnings():  # the command's notes as lines of its own, not as Python warnings
            warnings.showwarning = _show_note
            return _main(sys.argv[1:] if argv is None else argv)
    finally:
        sys.stdout, sys.stderr = streams
        if argv is None:  # the process ends with the command (a caller passing argv goes on)
            _skip_the_last_collection()


def _skip_the_last_collection() -> None:
    """Python's last garbage collection, as it exits, walks every object torch made: 0.4-0.5 s of CPU after a
    `show`, `eval` or `train` had finished (torch imported and nothing else: 0.55 s at exit, against 0.17 s
    frozen). Frozen objects are skipped by it; reference counting and atexit handlers still run as before."""
    import gc

    gc.freeze()


def _show_note(message, category, filename, lineno, file=None, line=None) -> None:
    """A UserNote as `note: TEXT` on stderr; any other warning as Python shows it."""
    if issubclass(category, UserNote):
        print(f"note: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), end="", file=file or sys.stderr)


def _main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    args.argv = argv
    try:
        _enable(args)
        return args.run(args)
    except UsageError as e:
        print(f"cnndsl: {e.render()}", file=sys.stderr)
        return EXIT_USAGE
    except CnnError as e:
        _print_errors(e, args)
        return EXIT_SPEC
    except RecursionError:
        print("error: the spec is nested too deeply to check", file=sys.stderr)
        return EXIT_SPEC
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # a bug of ours: say so briefly; CNNDSL_DEBUG=1 shows the traceback
        if os.environ.get("CNNDSL_DEBUG"):
            raise
        print(f"cnndsl: internal error: {type(e).__name__}: {e}\n"
              "  this is a bug in cnndsl, not in your spec; rerun with CNNDSL_DEBUG=1 for details and report it",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
