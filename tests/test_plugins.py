"""Plugins: the example plugin plugins/cnndsl-cbam through check, compile, build and train, and enabling.

The plugin is installed into the venv (editable, offline) if it is not yet: `make` installs it. The commands that
must start from a registry without it run in subprocesses; this process enables it for the module and restores
the registry afterwards, so that other test files on the same worker see the built-in kinds alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from torch.nn import functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.errors import CnnError  # noqa: E402
from cnndsl.ops import ALIASES, REGISTRY, Op, plugins  # noqa: E402
from conftest import ROOT  # noqa: E402

PLUGIN = ROOT / "plugins/cnndsl-cbam"
SPEC = PLUGIN / "examples/cbam_digits.cnn"
CLI = [sys.executable, "-m", "cnndsl.cli"]


def _installed() -> bool:
    try:
        metadata.distribution("cnndsl-cbam")
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module", autouse=True)
def installed():
    """The plugin installed as `make` installs it: editable, offline (hatchling from the dev extras)."""
    if not _installed():
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                               "-e", str(PLUGIN)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        plugins.offers.cache_clear()
    assert _installed()


@pytest.fixture(scope="module")
def enabled(installed):
    """cnndsl-cbam enabled in this process for the module's tests; the registry as it was afterwards."""
    saved = dict(REGISTRY), dict(ALIASES), dict(plugins._ENABLED)
    cnndsl.enable_plugins("cnndsl-cbam")
    yield
    for live, before in zip((REGISTRY, ALIASES, plugins._ENABLED), saved):
        live.clear()
        live.update(before)


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != plugins.ENVIRONMENT} | (env or {})
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, env=environment)


def python(code: str, env: dict | None = None) -> list[str]:
    """The lines a fresh interpreter prints (CNNDSL_PLUGINS unset unless `env` sets it)."""
    environment = {k: v for k, v in os.environ.items() if k != plugins.ENVIRONMENT} | (env or {})
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=environment)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


# ---- enabling: listed, named by the hint, never loaded by a spec ---------------------------------------------


def test_the_plugin_kind_is_listed_only_when_enabled():
    plain = cli("layers")
    assert plain.returncode == 0
    assert not any(line.startswith("cbam ") for line in plain.stdout.splitlines())
    assert plain.stdout.endswith("installed plugins, not enabled (--plugin NAME or CNNDSL_PLUGINS=NAME):\n"
                                 "  cnndsl-cbam: cbam\n")
    for done in (cli("layers", "--plugin", "cnndsl-cbam"), cli("layers", env={"CNNDSL_PLUGINS": "cnndsl_CBAM"})):
        assert done.returncode == 0, done.stderr
        assert "cbam             reduction=16 kernel=7  [plugin cnndsl-cbam]" in done.stdout.splitlines()
        assert "not enabled" not in done.stdout
    described = cli("layers", "cbam", "--plugin", "cnndsl-cbam").stdout
    assert "Convolutional Block Attention Module" in described and "reduction (also reduction_ratio, r)" in described


def test_a_spec_naming_a_kind_of_a_plugin_not_enabled_gets_a_hint_naming_it():
    for command in ("check", "compile"):
        done = cli(command, str(SPEC.relative_to(ROOT)))
        assert done.returncode == 1 and "Traceback" not in done.stderr
        lines = done.stderr.splitlines()
        assert lines[0] == "plugins/cnndsl-cbam/examples/cbam_digits.cnn:6:5: error: unknown layer `cbam`: its " \
                           "plugin is not enabled"
        assert lines[3] == "  hint: `cbam` is a layer of the plugin cnndsl-cbam, installed but not enabled: run " \
                           "with `--plugin cnndsl-cbam` or set CNNDSL_PLUGINS=cnndsl-cbam (a spec never loads code " \
                           "by itself)"
        assert "cbam_digits.cnn:9:5: error: unknown layer `cbam`" in done.stderr  # both uses, at once


def test_a_plugin_not_installed_is_a_command_line_mistake():
    done = cli("check", str(SPEC), "--plugin", "cnndsl-nothing")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == "cnndsl: error: --plugin cnndsl-nothing: no installed cnndsl plugin of " \
                                          "that name"
    assert "installed plugins: cnndsl-cbam" in done.stderr
    done = cli("check", str(SPEC), env={"CNNDSL_PLUGINS": "cnndsl-cbam,nothing"})
    assert done.returncode == 2 and "CNNDSL_PLUGINS=nothing: no installed cnndsl plugin" in done.stderr


def test_diagnose_reports_a_plugin_not_installed_instead_of_raising(monkeypatch):
    monkeypatch.setenv("CNNDSL_PLUGINS", "nothing")  # an editor's server reads the same variable: it must not fail
    found = cnndsl.diagnose(SPEC.read_text(encoding="utf-8"))
    assert [e.message for e in found.errors] == ["CNNDSL_PLUGINS=nothing: no installed cnndsl plugin of that name"]


def test_a_spec_never_imports_a_plugin_that_is_not_enabled():
    code = ("import sys, cnndsl\n"
            f"text = open({str(SPEC)!r}).read()\n"
            "try:\n    cnndsl.check(text)\nexcept cnndsl.CnnError as e:\n    print(len(e.errors))\n"
            "print(len(cnndsl.diagnose(text).errors), cnndsl.installed_plugins())\n"
            "print(any(m.startswith('cnndsl_cbam') for m in sys.modules), 'torch' in sys.modules)")
    assert python(code) == ["2", "2", "{'cnndsl-cbam':", "['cbam']}", "False", "False"]


def test_check_of_a_spec_using_the_plugin_imports_no_torch():
    code = ("import sys, cnndsl\n"
            f"r = cnndsl.check({str(SPEC)!r})\n"
            "print(r.params, r.macs, 'cnndsl_cbam.entries' in sys.modules, 'cnndsl_cbam.layers' in sys.modules, "
            "'torch' in sys.modules)")
    assert python(code, {"CNNDSL_PLUGINS": "cnndsl-cbam"}) == ["5686", "90592", "True", "False", "False"]


def test_generated_code_imports_only_the_enabled_plugins_classes(enabled):
    from cnndsl.codegen.vet import vet

    line = "from cnndsl_cbam.layers import CBAM\n"
    vet(line)  # enabled here
    code = f"from cnndsl.codegen.vet import vet\ntry:\n    vet({line!r})\nexcept Exception as e:\n    print(e.message)"
    assert python(code) == "refusing to run the generated code: it uses `from cnndsl_cbam.layers` (line 1)".split()
    for other in ("from cnndsl_cbam.layers import CBAM as nn\n", "from cnndsl_cbam import layers\n",
                  "from cnndsl_cbam.entries import CBAM_ENTRY\n", "import cnndsl_cbam.layers\n"):
        with pytest.raises(CnnError, match="refusing to run the generated code"):
            vet(other)


# ---- check, compile, build, train --------------------------------------------------------------------------


@pytest.mark.parametrize("shape, reduction, kernel", [((16, 8, 8), 4, 7), ((32, 4, 4), 8, 3), ((24, 9, 7), 6, 5)])
def test_params_and_macs_equal_the_torch_modules(enabled, shape, reduction, kernel):
    from cnndsl_cbam.layers import CBAM

    c, h, w = shape
    report = cnndsl.loads(f"network n {{\n    input {c}x{h}x{w}\n    cbam {reduction} kernel={kernel}\n}}").check()
    module = CBAM(c, reduction, kernel)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(torch.randn(1, c, h, w))
    assert report.params == sum(p.numel() for p in module.parameters())
    assert report.macs == counter.get_total_flops() // 2
    hidden = c // reduction  # and by hand, as docs/plugins.md and the plugin's README write them
    assert report.params == 2 * c * hidden + hidden + c + 2 * kernel * kernel
    assert report.macs == 4 * c * hidden + 2 * kernel * kernel * h * w


def test_a_block_passes_its_parameters_to_the_plugin_kind(enabled):
    text = """block gated(filters, r) {
    conv filters kernel=3 padding=same activation=relu
    cbam r kernel=(2 * r + 1)
}
network n(width = 24) {
    input 3x12x12
    gated width 3
    gated (width * 2) 4
}"""
    spec = cnndsl.loads(text)
    source = spec.source()
    assert "CBAM(filters, reduction=r, kernel=2 * r + 1)" in source
    for width in (24, 16):
        report = spec.check() if width == 24 else cnndsl.loads(text, width=width).check()
        model = (spec if width == 24 else cnndsl.loads(text, width=width)).build()
        assert report.params == sum(p.numel() for p in model.parameters())
        assert model(torch.randn(2, 3, 12, 12)).shape == (2, 2 * width, 12, 12)


def test_from_torch_reads_an_equal_module_back(enabled):
    from cnndsl_cbam.entries import CBAM_ENTRY
    from cnndsl_cbam.layers import CBAM

    for c, r, k in ((16, 4, 7), (24, 5, 3), (64, 16, 7)):
        module = CBAM(c, r, k)
        args = CBAM_ENTRY.from_torch(module)
        again = CBAM(c, **args)
        assert args["kernel"] == k and [p.shape for p in again.parameters()] == [p.shape for p in module.parameters()]


def test_figures_of_the_example_spec(enabled):
    report = cnndsl.check(SPEC)
    assert (report.params, report.macs, report.output) == (5686, 90592, (10,))
    rows = report.analysis.by_id
    assert (rows["cbam1"].params, rows["cbam1"].macs, rows["cbam2"].params, rows["cbam2"].macs) == (246, 6528, 310, 800)
    assert rows["cbam1"].rf == (3 + 7, 3 + 7)  # after a 3x3 conv, the whole 8x8 map: the channel gate pools it
    assert rows["cbam1"].explain()[-1] == "MACs = 2 * (16 * 4 + 4 * 16) + 2 * 7 * 7 * 8 * 8 = 6,528"


def test_bad_arguments_are_located_errors(enabled):
    for line, message in (("cbam 32", "cbam's MLP would have 16 // 32 = 0 hidden units for 16 channels"),
                          ("cbam kernel=6", "cbam's spatial kernel must be odd, got 6")):
        with pytest.raises(CnnError) as caught:
            cnndsl.loads(f"network n {{\n    input 16x8x8\n    {line}\n}}").check()
        assert caught.value.message == message and caught.value.span.line == 3


def test_the_generated_source_imports_the_plugin_and_equals_the_layer_written_by_hand(enabled):
    spec = cnndsl.load(SPEC)
    source = spec.source()
    assert "\n\nfrom cnndsl_cbam.layers import CBAM\n" in source
    assert "self.cbam1 = CBAM(16, reduction=4)" in source and "self.cbam2 = CBAM(32, reduction=8, kernel=3)" in source
    torch.manual_seed(0)
    model = spec.build().eval()
    assert sum(p.numel() for p in model.parameters()) == 5686
    p = dict(model.named_parameters())
    x = torch.randn(5, 1, 8, 8)

    def cbam(x, name, kernel):  # CBAM as the paper writes it, from the built module's weights
        def mlp(v):
            v = F.relu(F.linear(v, p[f"{name}.mlp.0.weight"], p[f"{name}.mlp.0.bias"]))
            return F.linear(v, p[f"{name}.mlp.2.weight"], p[f"{name}.mlp.2.bias"])

        x = x * torch.sigmoid(mlp(x.mean(dim=(2, 3))) + mlp(x.amax(dim=(2, 3))))[:, :, None, None]
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(F.conv2d(pooled, p[f"{name}.spatial.weight"], padding=kernel // 2))

    with torch.no_grad():
        y = F.relu(F.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=1))
        y = F.max_pool2d(cbam(y, "cbam1", 7), 2)
        y = cbam(F.relu(F.conv2d(y, p["conv2.weight"], p["conv2.bias"], padding=1)), "cbam2", 3)
        y = torch.softmax(F.linear(y.mean(dim=(2, 3)), p["dense1.weight"], p["dense1.bias"]), dim=1)
        assert torch.equal(model(x), y)


def test_compile_writes_source_that_runs_by_itself(tmp_path):
    out = tmp_path / "cbam_digits.py"
    done = cli("compile", str(SPEC), "--plugin", "cnndsl-cbam", "-o", str(out))
    assert done.returncode == 0, done.stderr
    ran = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "CbamDigits: input (2, 1, 8, 8) -> output (2, 10), 5,686 parameters"


def test_the_example_learns_the_digits(enabled, tmp_path):
    run = cnndsl.train(SPEC, epochs=4, lr=0.01, seed=0, out=tmp_path / "run", log=lambda line: None)
    assert run.test_accuracy >= 0.6  # chance is 0.1; 0.83 after 3 epochs with this seed
    assert run.history[-1]["loss"] < run.history[0]["loss"] / 2
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    assert metrics["test_accuracy"] == run.test_accuracy
    state = torch.load(tmp_path / "run/best.pt", weights_only=True)
    model = cnndsl.loads(state["spec"]).build()  # the run's own spec rebuilds with the plugin enabled
    model.load_state_dict(state["model"])


# ---- the Python API for plugin authors -----------------------------------------------------------------------


def test_register_adds_a_kind_and_refuses_a_taken_name(enabled):
    with pytest.raises(CnnError, match="layer `conv` is taken by cnndsl's `conv`"):
        plugins.register(Op("conv", "x", "misc"), plugin="mine")
    with pytest.raises(CnnError, match="layer `cbam` is taken by cnndsl-cbam's `cbam`"):
        plugins.register(Op("cbam", "x", "misc"), plugin="mine")
    with pytest.raises(CnnError, match="is not a dotted path"):
        plugins.register(Op("twice", "x", "misc", torch_class="Twice"), plugin="mine")
    twice = plugins.register(Op("twice", "Doubles its input.", "elementwise",
                                torch=lambda g: "Scale(2.0)"), plugin="mine")  # a helper of the generated code
    assert cnndsl.plugin_of("twice") == "mine" and cnndsl.layers("twice") == [twice]
    spec = cnndsl.loads("network n {\n    input 3x4x4\n    twice\n}")
    assert spec.check().params == 0
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(spec.build()(x), 2 * x)
