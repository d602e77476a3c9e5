"""Specs, reports, runs and pictures as a Python user meets them: a short repr on a terminal, summary() that
prints the table of `cnndsl check`, Jupyter's display (IPython's `_repr_html_`), the `%%cnn` cell magic (run
in an in-process IPython shell), errors shown as the command line prints them, and dir(cnndsl)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cnndsl
from cnndsl.training.loop import RunResult
from conftest import ROOT

LENET = ROOT / "specs/lenet5.cnn"
HAS_DOT = shutil.which("dot") is not None


def test_repr_is_one_short_line():
    spec = cnndsl.load(LENET)
    assert repr(spec) == "<Spec lenet5: 1x32x32 -> 10, 61,706 params>"
    assert str(spec) == repr(spec)  # print(spec) is the same line, not the dataclass's fields
    assert repr(spec.check()) == f"<Report lenet5 ({LENET}): 1x32x32 -> 10, 61,706 params, 416.5 K MACs>"
    assert repr(cnndsl.load(ROOT / "specs/resnet50.cnn", classes=5)) == \
        "<Spec resnet50 (classes=5): 3x224x224 -> 5, 23,518,277 params>"
    broken = cnndsl.loads("network n {\n    input 1x4x4\n    conv 8 kernel=9\n}\n")
    assert repr(broken) == "<Spec <string>: error: conv kernel 9x9 is larger than its 4x4 input>"


def test_a_report_with_warnings_counts_them():
    report = cnndsl.loads("network n {\n    input 1x7x7\n    maxpool 2\n}\n").check()
    assert len(report.warnings) == 1
    assert repr(report) == "<Report n (<string>): 1x7x7 -> 1x3x3, 0 params, 0 MACs, 1 warning>"


def test_summary_prints_the_table_of_check(capsys):
    cnndsl.load(LENET).summary()
    printed = capsys.readouterr().out
    assert printed == cnndsl.check(LENET).text() + "\n"
    assert printed.splitlines()[0] == f"lenet5 · {LENET} · input 1x32x32"
    assert " 1  conv1     conv 5x5 → 6    6x28x28      156  117.6 K   5" in printed
    assert "Total params    61,706  (trainable 61,706, frozen 0)" in printed
    cnndsl.load(ROOT / "specs/resnet18.cnn").summary(depth=1)
    assert capsys.readouterr().out == cnndsl.check(ROOT / "specs/resnet18.cnn").text(depth=1) + "\n"


def _cells(row: str) -> list[str]:
    """A table row's cells as text: tags, and the arithmetic folded in a layer's <details>, left out."""
    row = re.sub(r"<pre>.*?</pre>", "", row, flags=re.S)
    return [re.sub(r"<[^>]+>", "", c).replace("&gt;", ">") for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_the_notebook_display_is_the_table_of_check():
    report = cnndsl.check(LENET)
    page = report._repr_html_()
    assert page.startswith('<div class="cnndsl-report"><style>')
    assert (f"<p><b>lenet5</b> · {LENET} · input <code>1x32x32</code> → output <code>10</code> · 61,706 parameters "
            "· 416.5 K MACs · receptive field 32 · 12 layers</p>") in page
    rows = re.findall(r'<tr class="layer"[^>]*>.*?</tr>', page, re.S)
    printed = [line.split() for line in report.text().splitlines()[2:14]]
    assert [" ".join(_cells(r)).split() for r in rows] == printed  # every row, every cell, as check prints it
    assert _cells(rows[0]) == ["1", "conv1", "conv 5x5 → 6", "6x28x28", "156", "117.6 K", "5"]
    why = re.findall(r'<tr class="why">.*?</tr>', page, re.S)  # the --explain row under each layer's
    assert len(why) == len(rows)
    assert "<pre>out H,W = floor((32 + 2*0 - 5) / 1) + 1 = 28\nparams = (5*5*1 + 1) * 6 = 156\n" in why[0]
    assert "<tr><td>Total params</td><td>61,706  (trainable 61,706, frozen 0)</td></tr>" in page
    assert "<tr><td>MACs</td><td>416,520  (416.5 K; conv and dense multiply-accumulates, bias excluded)</td></tr>" \
        in page
    if HAS_DOT:  # the diagram beside the table: a node per layer, the input's included
        assert page.count('class="node"') == 13 and '<div class="diagram"><svg' in page
    assert cnndsl.load(LENET)._repr_html_() == page


def test_without_dot_the_display_is_the_table_alone(monkeypatch):
    from cnndsl.spec import load

    core = load(LENET).check()  # the core's own Spec draws nothing: `check` never loads graphviz
    assert "<svg" not in core._repr_html_() and 'class="layers"' in core._repr_html_()
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no `dot` on PATH
    page = cnndsl.check(LENET)._repr_html_()
    assert "<svg" not in page and _cells(re.findall(r'<tr class="layer"[^>]*>.*?</tr>', page, re.S)[0])[1] == "conv1"


def test_user_text_reaches_the_display_escaped():
    spec = cnndsl.loads('network n {\n    input 1x8x8\n    conv 4 kernel=3\n}\n', name="<b>x</b>.cnn")
    page = spec._repr_html_()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;.cnn" in page
    broken = cnndsl.loads("network n {\n    input 1x4x4\n    conv 8 kernel=9 # <script>\n}\n")
    shown = broken._repr_html_()
    assert shown.startswith('<pre class="cnndsl-error">&lt;string&gt;:3:5: error: conv kernel 9x9')
    assert "<script>" not in shown and "# &lt;script&gt;" in shown


def _run(tmp_path: Path, curves: bool = True) -> RunResult:
    history = [{"epoch": e, "loss": 1.0 / e, "accuracy": 0.5 + e / 10, "val_loss": [0.9, 0.4, 0.6][e - 1],
                "val_accuracy": [0.7, 0.9, 0.85][e - 1], "lr": 0.001, "seconds": 1.25} for e in (1, 2, 3)]
    if curves:
        from PIL import Image

        Image.new("RGB", (4, 3), "red").save(tmp_path / "curves.png")
    return RunResult(tmp_path, history, 0.8875, 0.41, 2, "val_loss")


def test_a_run_shows_its_epochs(tmp_path, capsys):
    run = _run(tmp_path)
    assert repr(run) == f"<Run {tmp_path}: 3 epochs, best epoch 2 val_loss 0.4000, test_accuracy 0.8875>"
    run.summary()
    assert capsys.readouterr().out.splitlines() == [
        "epoch   loss    acc val_loss val_acc    lr seconds",
        "    1 1.0000 0.6000   0.9000  0.7000 0.001     1.2",
        "    2 0.5000 0.7000   0.4000  0.9000 0.001     1.2 *",
        "    3 0.3333 0.8000   0.6000  0.8500 0.001     1.2",
        f"test accuracy 0.8875 (loss 0.4100) with the weights of epoch 2 (*); the run's folder: {tmp_path}"]
    page = run._repr_html_()
    assert "<tr class=best><td>2</td><td>0.5000</td><td>0.7000</td><td>0.4000</td><td>0.9000</td><td>0.001</td>" \
           "<td>1.2</td></tr>" in page
    assert page.count("<tr") == 4 and "test accuracy <b>0.8875</b> (loss 0.4100) with the weights of epoch 2" in page
    picture = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(picture) == (tmp_path / "curves.png").read_bytes()
    (tmp_path / "plain").mkdir()
    assert "<img" not in _run(tmp_path / "plain", curves=False)._repr_html_()  # no curves.png: the table alone


def test_shown_pictures_display_inline(tmp_path):
    from PIL import Image

    Image.new("L", (5, 5)).save(tmp_path / "cam-<x>.png")
    shown = cnndsl.Shown([tmp_path / "cam-<x>.png"], "Grad-CAM of class <b> (99.0%)")
    page = shown._repr_html_()
    data = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(data) == (tmp_path / "cam-<x>.png").read_bytes()
    assert "<figcaption>cam-&lt;x&gt;.png · Grad-CAM of class &lt;b&gt; (99.0%)</figcaption>" in page


def test_dir_lists_the_public_api_without_torch():
    code = ("import sys, cnndsl; cnndsl.check('specs/lenet5.cnn'); names = dir(cnndsl); "
            "print(sorted(names) == sorted(cnndsl.__all__), 'api' in names, 'spec' in names, "
            "{'load', 'check', 'train', 'Callback', 'EarlyStopping'} <= set(names), 'torch' in sys.modules, "
            "'IPython' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.split() == ["True", "False", "False", "True", "False", "False"], done.stderr


# ---- IPython: the %%cnn magic and errors without a traceback, in an in-process shell ---------------------------

IPython = pytest.importorskip("IPython")


@pytest.fixture(scope="module")
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "cnndsl")
    return ip


def run_cell(shell, text: str):
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        result = shell.run_cell(text)
    return result, captured


TINY = "network tiny(classes = 10) {\n    input 1x8x8\n    conv 4 kernel=3\n    flatten\n    dense classes\n}\n"


def test_the_magic_checks_displays_and_binds_the_spec(shell):
    result, captured = run_cell(shell, "%%cnn tiny --set classes=3\n" + TINY)
    assert result.success and captured.stdout == ""
    [shown] = captured.outputs
    page = shown.data["text/html"]
    assert "<p><b>tiny</b> · &lt;cell&gt; · input <code>1x8x8</code> → output <code>3</code> · 475 parameters" in page
    assert _cells(re.findall(r'<tr class="layer"[^>]*>.*?</tr>', page, re.S)[2]) == \
        ["3", "dense1", "dense 144 → 3", "3", "435", "432", "8"]
    spec = shell.user_ns["tiny"]
    assert isinstance(spec, cnndsl.Spec) and repr(spec) == "<Spec tiny (classes=3): 1x8x8 -> 3, 475 params>"
    result, captured = run_cell(shell, "%%cnn --depth 1\n" + TINY)  # no name: displayed, nothing bound
    assert result.success and len(captured.outputs) == 1


def test_the_magic_shows_errors_located_without_a_traceback(shell):
    result, captured = run_cell(shell, "%%cnn broken\nnetwork broken {\n    input 1x4x4\n    conv 8 kernel=9\n}\n")
    assert isinstance(result.error_in_exec, cnndsl.CnnError) and "broken" not in shell.user_ns
    assert captured.stdout == ("<cell>:3:5: error: conv kernel 9x9 is larger than its 4x4 input\n"
                               " 3 |     conv 8 kernel=9\n"
                               "   |     ^^^^^^^^^^^^^^^\n"
                               "  hint: use padding=same, a smaller kernel, or fewer downsampling layers before it\n")
    assert "Traceback" not in captured.stdout + captured.stderr and captured.outputs == []
    result, captured = run_cell(shell, "%%cnn 2model\n" + TINY)
    assert captured.stdout.splitlines()[0] == "error: %%cnn 2model: NAME must be a Python name, to bind the Spec to"
    result, captured = run_cell(shell, "%%cnn --set classes\n" + TINY)
    assert captured.stdout.splitlines()[0] == "error: %%cnn --set takes KEY=VALUE, got `classes`"


def test_any_cnn_error_shows_as_the_command_line_prints_it(shell):
    result, captured = run_cell(shell, "import cnndsl\ncnndsl.check('no/such.cnn')")
    assert isinstance(result.error_in_exec, cnndsl.UsageError)
    assert captured.stdout == "error: no such file: no/such.cnn\n"
