"""`cnndsl check` as a user runs it: output formats, exit codes, and no torch on the way."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from cnndsl.cli import main
from conftest import ROOT

CLI = [sys.executable, "-m", "cnndsl.cli"]


def run(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd)


def test_check_prints_the_table_and_totals(capsys):
    assert main(["check", str(ROOT / "specs/resnet34.cnn")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("resnet34 · ") and lines[0].endswith("input 3x224x224")
    assert lines[1].split() == ["#", "layer", "op", "output", "params", "MACs", "RF"]
    assert lines[2].split() == ["1", "conv1", "conv", "7x7/2", "→", "64", "64x112x112", "9,408", "118.0", "M", "7"]
    assert "Total params    21,797,672  (trainable 21,797,672, frozen 0)" in out
    assert "Buffers         17,024" in out
    assert "MACs            3,663,761,408" in out
    assert "83.2 MiB weights" in out


def test_depth_folds_block_calls(capsys):
    assert main(["check", str(ROOT / "specs/resnet34.cnn"), "--depth", "1"]) == 0
    rows = capsys.readouterr().out.split("\n\n")[0].splitlines()[2:]
    stage2 = next(r for r in rows if r.split()[0] == "stage2")
    assert "stage 128 (blocks=4, stride=2)" in stage2
    assert stage2.split()[-5:] == ["128x28x28", "1,116,416", "873.5", "M", "179"]
    assert len(rows) == 10  # conv, bn, relu, pool, 4 stages, pool, dense


def test_depth_two_shows_blocks_inside_stages(capsys):
    main(["check", str(ROOT / "specs/resnet18.cnn"), "--depth", "2"])
    rows = capsys.readouterr().out.split("\n\n")[0].splitlines()[2:]
    names = [r.split()[0] for r in rows if not r.split()[0].isdigit()]
    assert names == ["stem1", "stage1", "basic1", "basic2", "stage2", "basic1", "basic2", "stage3", "basic1", "basic2",
                     "stage4", "basic1", "basic2"]


def test_json_has_every_figure(capsys):
    assert main(["check", str(ROOT / "specs/lenet5.cnn"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("network", "input", "output", "params", "trainable_params", "frozen_params", "buffers", "macs",
                "receptive_field", "layers"):
        assert key in data
    assert (data["network"], data["input"], data["output"]) == ("lenet5", [1, 32, 32], [10])
    assert (data["params"], data["macs"], data["receptive_field"]) == (61_706, 416_520, 32)
    conv = data["layers"][1]
    assert {k: conv[k] for k in ("name", "op", "output", "params", "macs", "receptive_field")} == {
        "name": "conv1", "op": "conv 5x5 → 6", "output": [6, 28, 28], "params": 156, "macs": 117_600,
        "receptive_field": 5}
    assert sum(layer["params"] for layer in data["layers"]) == data["params"]


def test_markdown(capsys):
    assert main(["check", str(ROOT / "examples/cifar_mlp.cnn"), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| # | layer | op | output | params | MACs | RF |" in out
    assert "| 2 | `dense1` | dense 3072 → 200 | 200 | 614,600 | 614,400 | 32 |" in out
    assert "| params | 646,260 |" in out


def test_explain_shows_the_arithmetic(capsys):
    main(["check", str(ROOT / "examples/fashion_cnn_honkong.cnn"), "--explain"])
    out = capsys.readouterr().out
    assert "out H,W = ceil(28 / 1) = 28  (same: pads 1 before, 1 after)" in out
    assert "params = (3*3*32 + 1) * 64 = 18,496" in out
    assert "params = (3136 + 1) * 100 = 313,700" in out
    assert "out H,W = floor((28 + 2*0 - 2) / 2) + 1 = 14" in out


def test_set_overrides_parameters(capsys):
    assert main(["check", str(ROOT / "specs/resnet18.cnn"), "--set", "classes=10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["output"] == [10] and data["parameters"] == {"classes": 10}
    assert data["params"] == 11_689_512 - 513 * 990


def test_warnings_go_to_stderr_and_do_not_fail(spec_file, capsys):
    path = spec_file("network n {\n    input 3x7x7\n    maxpool 2\n}\n")
    assert main(["check", str(path)]) == 0
    err = capsys.readouterr().err
    assert "spec.cnn:3:5: warning: maxpool never sees the last 1 row and 1 column of its 7x7 input: 7x7 -> 3x3" in err


@pytest.mark.parametrize("text", [
    "network n {\n input 3x8x8\n conv 8 kernel=9\n}\n",
    "network n {\n input 3x8x8\n conv 8 kernel=3,\n}\n",
    "network n {\n input 3x8x8\n convv 8\n}\n",
    "network n {\n input 3x8x8\n",
    "use \"missing\"\n",
    "",
    "\x00\x01",
    "network n { input 3x8x8\n repeat 99999999 { relu } }",
    "network n { input 3x8x8\n conv (" + "(1 + " * 500 + "1" + ")" * 500 + ") kernel=1 }",
])
def test_bad_specs_exit_1_with_a_located_message_and_no_traceback(spec_file, text):
    result = run("check", str(spec_file(text)))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "error:" in result.stderr
    assert result.stdout == ""


def test_command_line_errors_exit_2():
    assert run("check").returncode == 2
    assert run("check", "specs/lenet5.cnn", "--depth", "x").returncode == 2
    bad_set = run("check", "specs/lenet5.cnn", "--set", "clases=3")
    assert bad_set.returncode == 2 and "did you mean `classes`" in bad_set.stderr
    assert run("check", "specs/lenet5.cnn", "--set", "classes").returncode == 2
    assert run("check", "specs/lenet5.cnn", "--set", "classes=2.5").returncode == 2
    assert "Traceback" not in bad_set.stderr


def test_missing_file_is_reported():
    result = run("check", "nope.cnn")
    assert result.returncode == 2 and "no such file: nope.cnn" in result.stderr


def test_layers_lists_the_registry():
    result = run("layers")
    assert result.returncode == 0
    assert any(line.split()[0] == "conv" and "kernel" in line for line in result.stdout.splitlines())
    one = run("layers", "sepconv")
    assert "depthwise" in one.stdout and "multiplier" in one.stdout


def test_help_texts():
    result = run("check", "--help")
    for flag in ("--set", "--json", "--markdown", "--explain", "--html", "--depth", "--network", "--max-layers"):
        assert flag in result.stdout


def test_import_and_check_never_import_torch():
    code = ("import sys, cnndsl; assert 'torch' not in sys.modules and 'lark' not in sys.modules; "
            "from cnndsl.cli import main; main(['check', 'specs/seresnet50.cnn', '--json']); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_layers_accepts_aliases_and_rejects_unknown_names():
    assert run("layers", "conv2d").stdout.startswith("conv ")
    unknown = run("layers", "convv")
    assert unknown.returncode == 2 and "did you mean `conv`" in unknown.stderr


def test_option_conflicts_and_ranges_are_usage_errors():
    assert run("check", "specs/lenet5.cnn", "--depth", "0").returncode == 2
    assert run("check", "specs/lenet5.cnn", "--json", "--explain").returncode == 2
    assert run("check", "specs/lenet5.cnn", "--max-layers", "-5").returncode == 2


def test_version():
    from importlib import metadata

    import cnndsl

    result = run("--version")
    assert result.returncode == 0
    try:
        installed = metadata.version("cnndsl")
    except metadata.PackageNotFoundError:
        installed = cnndsl.__version__
    assert result.stdout == f"cnndsl {installed}\n"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'\nversion = "{cnndsl.__version__}"\n' in pyproject


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_in_terminal(*args: str, **env: str) -> str:
    """The command's output as a terminal shows it: under a pseudo-terminal, so stdout is a tty."""
    import pty

    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    environ.update(TERM="xterm-256color", PYTHONPATH=str(ROOT), **env)
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the command
        os.chdir(ROOT)
        os.execve(sys.executable, [*CLI, *args], environ)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:  # the child has closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.mark.parametrize("args", [("specs/resnet34.cnn",), ("specs/googlenet.cnn", "--depth", "2"),
                                  ("examples/cifar_small_cnn.cnn", "--explain")])
def test_check_colours_a_terminal_and_prints_the_same_text(args):
    piped = run("check", *args)
    assert piped.returncode == 0 and "\x1b" not in piped.stdout
    shown = run_in_terminal("check", *args)
    assert "\x1b[" in shown and ANSI.sub("", shown) == piped.stdout
    assert "\x1b[" not in run_in_terminal("check", *args, NO_COLOR="1")
    assert run_in_terminal("check", *args, NO_COLOR="1") == piped.stdout
    assert run_in_terminal("check", *args, "--color", "never") == piped.stdout
    forced = run("check", *args, "--color", "always")
    assert "\x1b[" in forced.stdout and ANSI.sub("", forced.stdout) == piped.stdout
    environ = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    asked = subprocess.run([*CLI, "check", *args], capture_output=True, text=True, cwd=ROOT,
                           env=dict(environ, FORCE_COLOR="1"))
    assert asked.stdout == forced.stdout


def test_piped_check_loads_neither_rich_graphviz_nor_networkx():
    # networkx's import alone is longer than the rest of a check of ResNet-152: the graph's DiGraph is made
    # only when asked for (Graph.dag)
    code = ("import sys; from cnndsl.cli import main; main(['check', 'specs/resnet152.cnn']); "
            "assert not {'rich', 'graphviz', 'networkx'} & set(sys.modules), 'loaded'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_only_the_command_line_skips_the_last_collection(capsys):
    """The command line freezes the collector as it ends (Python's last pass over torch's objects cost 0.4-0.5 s
    of CPU at exit); a caller of main(argv) goes on, and its objects stay collectable."""
    import gc

    frozen = gc.get_freeze_count()
    assert main(["layers", "conv"]) == 0 and gc.get_freeze_count() == frozen
    capsys.readouterr()
    code = ("import gc, sys; sys.argv = ['cnndsl', 'layers', 'conv']; from cnndsl.cli import main; main(); "
            "assert gc.get_freeze_count() > 0")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0 and "conv" in done.stdout, done.stderr
