"""`cnndsl export`: ONNX files that onnxruntime runs as the module does, for specs covering every kind of layer
(every spec with CNNDSL_ALL_SPECS=1); TorchScript; bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import cnndsl  # noqa: E402
from cnndsl.errors import CnnError  # noqa: E402
from cnndsl.exporter import export  # noqa: E402
from conftest import ROOT, SMALL, load_to_run  # noqa: E402

SPECS = sorted(p.relative_to(ROOT).as_posix() for p in [*ROOT.glob("specs/*.cnn"), *ROOT.glob("examples/*.cnn")])
CLI = [sys.executable, "-m", "cnndsl.cli"]
# The specs whose layers, with the arguments they are given, cover every spec's (a test below keeps it so):
# ResNet-152 or VGG-19 add no kind of layer ResNeXt or AlexNet lack, and cost the suite two minutes.
# CNNDSL_ALL_SPECS=1 exports every spec.
ONNX_SPECS = SPECS if os.environ.get("CNNDSL_ALL_SPECS") else [
    "examples/airbench94.cnn", "examples/alexnet_paper.cnn", "examples/cifar_cnn_bn.cnn", "examples/one_filter.cnn",
    "examples/unet_small.cnn", "examples/vit_digits.cnn", "specs/alexnet.cnn", "specs/convnext_tiny.cnn",
    "specs/efficientnet_b0.cnn", "specs/googlenet.cnn", "specs/lenet5.cnn", "specs/mobilenet_v2.cnn",
    "specs/mobilenet_v3_large.cnn", "specs/resnext50_32x4d.cnn", "specs/shufflenet_v2_x1_0.cnn", "specs/xception.cnn"]


def layer_kinds(path: str) -> set[str]:
    """The kinds of layer a spec uses, each with the arguments it is given other than their plain values."""
    plain = (None, False, 0, 1, (1, 1), "valid")
    return {f.layer.op + ":" + ",".join(sorted(k for k, v in f.layer.args.items() if v not in plain))
            for f in cnndsl.load(ROOT / path).check().layers}


def test_the_onnx_sample_covers_every_kind_of_layer():
    every = set().union(*(layer_kinds(p) for p in SPECS))
    assert every - set().union(*(layer_kinds(p) for p in ONNX_SPECS)) == set()


def onnx_scores(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


@pytest.mark.slow
@pytest.mark.parametrize("path", ONNX_SPECS)
def test_every_spec_exports_to_onnx_that_onnxruntime_runs_alike(tmp_path, path):
    # every spec through the exporter's translation; the optimiser (twice the time) on a few below
    spec = load_to_run(path)
    done = export(spec, None, tmp_path / "net.onnx", optimize=False)
    assert done.verified_by == "onnxruntime" and done.max_difference <= 1e-4
    model = onnx.load(str(tmp_path / "net.onnx"))
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert tuple(meta["cnndsl.input"]) == spec.check().input
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # a named, dynamic batch axis


@pytest.mark.parametrize("path", ["examples/cifar_cnn_bn.cnn", "specs/resnet18.cnn"])
def test_the_optimised_graph_runs_alike(tmp_path, path):
    plain = export(cnndsl.load(ROOT / path), None, tmp_path / "plain.onnx", optimize=False)
    done = export(cnndsl.load(ROOT / path), None, tmp_path / "net.onnx")
    assert done.verified_by == "onnxruntime" and done.max_difference <= 1e-4
    count = lambda f: len(onnx.load(str(f)).graph.node)
    assert count(tmp_path / "net.onnx") < count(tmp_path / "plain.onnx") and plain.max_difference <= 1e-4


def run_small(tmp_path):
    (tmp_path / "small.cnn").write_text(SMALL)
    done = subprocess.run([*CLI, "train", str(tmp_path / "small.cnn"), "--epochs", "1", "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path / "small.cnn", tmp_path / "run" / "best.pt"


def test_a_trained_run_exports_with_its_classes_and_normalisation(tmp_path):
    spec_path, best = run_small(tmp_path)
    out = tmp_path / "small.onnx"
    done = subprocess.run([*CLI, "export", str(spec_path), "--weights", str(best), "-o", str(out)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "onnxruntime gives the module's outputs within" in done.stderr
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(out)).metadata_props}
    saved = torch.load(best, weights_only=True)
    assert meta["cnndsl.classes"] == saved["classes"] == [str(i) for i in range(10)]
    assert meta["cnndsl.normalization"] == saved["normalization"]
    model = cnndsl.loads(SMALL).build().eval()
    model.load_state_dict(saved["model"])
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(onnx_scores(out, x), model(x), atol=1e-5)


def test_torchscript_loads_back_with_any_batch(tmp_path):
    spec = cnndsl.loads(SMALL)
    done = export(spec, None, tmp_path / "small.pt", "torchscript")
    assert done.verified_by == "torch.jit.load" and done.max_difference == 0
    extra = {"cnndsl.network": ""}
    loaded = torch.jit.load(str(tmp_path / "small.pt"), _extra_files=extra)
    assert json.loads(extra["cnndsl.network"]) == "small"
    assert loaded(torch.rand(7, 1, 8, 8)).shape == (7, 10)


def test_weights_of_another_network_are_refused_and_nothing_is_written(tmp_path):
    other = cnndsl.loads(SMALL.replace("conv 32", "conv 24"))
    state = tmp_path / "w.pt"
    torch.save(other.build().state_dict(), state)
    with pytest.raises(CnnError) as e:
        export(cnndsl.loads(SMALL), state, tmp_path / "x.onnx")
    assert str(state) in e.value.message and "the weights were trained with" in e.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pt"]


def test_command_line_errors(tmp_path):
    (tmp_path / "small.cnn").write_text(SMALL)
    bad = subprocess.run([*CLI, "export", str(tmp_path / "small.cnn"), "--format", "tflite"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and "invalid choice: 'tflite'" in bad.stderr
    missing = subprocess.run([*CLI, "export", str(tmp_path / "small.cnn"), "-o", str(tmp_path / "no/x.onnx")],
                             capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "small.onnx").write_bytes(b"mine")  # the default name is taken: small-2.onnx, never over it
    free = subprocess.run([*CLI, "export", str(tmp_path / "small.cnn")], capture_output=True, text=True, cwd=tmp_path)
    assert free.returncode == 0 and (tmp_path / "small.onnx").read_bytes() == b"mine"
    assert (tmp_path / "small-2.onnx").is_file() and "wrote small-2.onnx" in free.stderr
