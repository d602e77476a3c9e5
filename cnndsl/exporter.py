"""A trained network for other runtimes: ONNX (with a dynamic batch axis) or TorchScript.

The exported graph is the spec's module with the weights loaded exactly, in eval mode, verified after
writing: ONNX against onnxruntime (unless `check=False`), TorchScript by loading it back. It takes images as
the network sees them, that is after the normalisation the run used; that normalisation and the class names
travel in the file's metadata (ONNX `metadata_props`, TorchScript extra files) as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from cnndsl.errors import CnnError
from cnndsl.optional import require
from cnndsl.saved import TRAINED_WITH, weights_of

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
TOLERANCE = 1e-4


@dataclass
class Exported:
    path: Path
    format: str
    verified_by: str | None  # "onnxruntime", "torch.jit.load", or None when the check was turned off
    max_difference: float | None


def export(spec, weights, out: str | Path, format: str = "onnx", batch: int = 2, optimize: bool = True,
           check: bool = True) -> Exported:
    """Writes `spec` with `weights` (a run folder, checkpoint or state_dict; None: freshly initialised) to `out`.

    `spec` None takes the network from the checkpoint. `optimize` runs onnxscript's graph optimiser after
    the ONNX translation (constant folding, fusions). `check=False` leaves out running the ONNX file with
    onnxruntime (for a machine without it).
    """
    if format not in FORMATS:
        raise CnnError(f"unknown export format {format!r}", hint="use onnx or torchscript")
    if spec is None and weights is None:
        raise CnnError("export needs a spec or weights whose checkpoint holds one")
    if format == "onnx":  # every package the export needs, before anything is written
        if check:
            require("onnxruntime", "checking an ONNX export",
                    hint="or write it unchecked: cnndsl export --no-check (check=False in Python)")
        require("onnxscript", "ONNX export")  # torch.onnx's translator, which imports onnx
        require("onnx", "ONNX export")
    import torch

    model, metadata, spec = _model(spec, weights)
    example = torch.randn(batch, *spec.check().input, generator=torch.Generator().manual_seed(0))
    out = Path(out)
    if format == "onnx":
        _atomically(out, lambda part: _onnx(model, example, part, metadata, optimize))
    else:
        _atomically(out, lambda part: _torchscript(model, example, part, metadata))
    # verified on another batch size than the one traced, so the batch axis is proven dynamic
    probe = torch.randn(batch + 1, *example.shape[1:], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(probe)
    if format == "onnx" and not check:
        return Exported(out, format, None, None)
    runtime, got = (_run_onnx if format == "onnx" else _run_torchscript)(out, probe)
    difference = float((torch.as_tensor(got) - expected).abs().max())
    if not difference <= TOLERANCE:
        raise CnnError(f"{out}: {runtime} gives outputs up to {difference:.3g} away from the module's",
                       hint="please report this spec; the file was written so that you can inspect it")
    return Exported(out, format, runtime, difference)


def _model(spec, weights):
    saved = None
    if weights is not None:
        read = weights_of(weights, spec)
        spec, saved = read.spec, read.saved
        model = read.build(TRAINED_WITH)
    else:
        model = spec.build()
    metadata = {"cnndsl.network": spec.graph.name, "cnndsl.input": list(spec.check().input)}
    if saved is not None:
        metadata.update({"cnndsl.classes": saved.classes, "cnndsl.normalization": saved.normalization})
    return model.eval(), {k: json.dumps(v) for k, v in metadata.items()}, spec


def _atomically(out: Path, write) -> None:
    if out.is_dir():
        raise CnnError(f"-o {out} is a folder", hint=f"name a file in it, e.g. -o {out / 'model.onnx'}")
    if not out.parent.is_dir():
        raise CnnError(f"-o {out}: the folder {out.parent} does not exist", hint="create the folder first")
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    os.close(fd)
    part = Path(name)
    try:
        write(part)
        os.replace(part, out)
    finally:
        part.unlink(missing_ok=True)


def _onnx(model, example, path: Path, metadata: dict, optimize: bool) -> None:
    import onnx
    import torch

    batch = torch.export.Dim("batch", min=1)
    quiet = logging.getLogger("torch.onnx")  # it logs that torchvision's detection ops are not registered
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation chatter is not the user's concern
            program = torch.onnx.export(model, (example,), input_names=["images"], output_names=["scores"],
                                        dynamic_shapes=({0: batch},), dynamo=True, verbose=False,
                                        optimize=optimize)
    finally:
        quiet.setLevel(level)
    proto = program.model_proto
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))


def _torchscript(model, example, path: Path, metadata: dict) -> None:
    import torch

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream; it is still libtorch's format
        traced = torch.jit.trace(model, example)
        torch.jit.save(traced, str(path), _extra_files={k: v.encode() for k, v in metadata.items()})


def _run_onnx(path: Path, example):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return "onnxruntime", session.run(None, {session.get_inputs()[0].name: example.numpy()})[0]


def _run_torchscript(path: Path, example):
    import torch

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return "torch.jit.load", torch.jit.load(str(path))(example)
