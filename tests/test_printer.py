"""The printer and `cnndsl fmt`: one canonical text, comments kept, meaning unchanged, idempotent."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from hypothesis import given

import cnndsl
from cnndsl.errors import CnnError, Span
from cnndsl.syntax import ast, parse
from cnndsl.syntax.printer import format_text, print_module
from conftest import ROOT
from fuzz_specs import expression_specs, fuzz_settings, layer_specs, specs

FILES = sorted([*ROOT.glob("specs/*.cnn"), *ROOT.glob("examples/*.cnn"), *ROOT.glob("cnndsl/std/*.cnn")])


def typed(node) -> list:
    """A tree's fields with each value's type (`==` says 1 == 1.0 == True), spans left out."""
    if isinstance(node, Span):
        return []
    if dataclasses.is_dataclass(node):
        return [type(node).__name__, *(part for f in dataclasses.fields(node) if f.compare
                                       for part in [f.name, *typed(getattr(node, f.name))])]
    if isinstance(node, (list, tuple)):
        return ["[", *(part for item in node for part in typed(item)), "]"]
    return [f"{type(node).__name__}:{node!r}"]


def round_trip(text: str) -> str:
    """The text printed: its tree parses back to the same tree, and printing that gives the same text."""
    tree = parse(text)
    printed = format_text(text)
    again = parse(printed)
    assert again == tree and typed(again) == typed(tree)
    assert format_text(printed) == printed
    assert print_module(tree) and parse(print_module(tree)) == tree  # without its comments and layout too
    return printed


def figures(text: str):
    """What `check` says of a text: its figures, or its first error."""
    try:
        report = cnndsl.loads(text, max_layers=3000).check()
    except CnnError as e:
        return ("error", e.message)
    return (report.params, report.macs, report.buffers, report.output,
            [(f.layer.id, f.layer.shape, f.receptive_field) for f in report.layers])


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_spec_std_file_and_example_prints_back_to_its_tree_and_figures(path):
    text = path.read_text()
    printed = round_trip(text)
    assert printed == text, "run `cnndsl fmt specs examples cnndsl/std`"
    if path.parent.name != "std":
        assert figures(printed) == figures(text)


def test_fmt_check_passes_on_the_repository_specs():
    done = subprocess.run([sys.executable, "-m", "cnndsl.cli", "fmt", "--check", "specs", "examples", "cnndsl/std"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith(f"0 files would be reformatted, {len(FILES)} left unchanged")


@fuzz_settings(ci=60, deep=3000)
@given(specs())
def test_generated_programs_print_back_to_their_tree_and_figures(text):
    try:
        parse(text)
    except CnnError:
        return
    assert figures(round_trip(text)) == figures(text)


@fuzz_settings(ci=60, deep=2000)
@given(expression_specs())
def test_generated_expressions_print_back_to_their_tree(text):
    try:
        parse(text)
    except CnnError:
        return
    round_trip(text)


@fuzz_settings(ci=40, deep=2000)
@given(layer_specs())
def test_generated_layer_calls_print_back_to_their_tree(text):
    try:
        parse(text)
    except CnnError:
        return
    round_trip(text)


# ---- the canonical layout -----------------------------------------------------------------------------------

MESSY = """# header comment
use "std/se"
network   n( a=2,b = 3 ,) {   # trailing on the header
  input 3x8x8


      conv (a*4)   kernel = 3 padding=same   # a conv
  # about relu
  relu;tanh
  let c = ( a + b ) * 2 ** (-1)
  if not(a<b) {relu} else if a == 2 { tanh }
  else {
  sigmoid
     # at the end of the else
  }
  concat { branch { conv 2 kernel=1 } branch { } }
  residual {
      conv c kernel=1
  } shortcut if (a<b)<true { conv c kernel=1 }
}
# the end
"""

CANONICAL = """# header comment
use "std/se"

network n(a = 2, b = 3) {  # trailing on the header
    input 3x8x8

    conv (a * 4) kernel=3 padding=same  # a conv
    # about relu
    relu
    tanh
    let c = (a + b) * 2 ** (-1)
    if not a < b {
        relu
    } else if a == 2 {
        tanh
    } else {
        sigmoid
        # at the end of the else
    }
    concat { branch { conv 2 kernel=1 } branch { } }
    residual {
        conv c kernel=1
    } shortcut if (a < b) < true {
        conv c kernel=1
    }
}
# the end
"""


def test_the_canonical_layout_keeps_comments_and_one_blank_line():
    assert format_text(MESSY) == CANONICAL
    round_trip(MESSY)


def test_consecutive_calls_are_aligned_in_columns_and_comments_of_a_paragraph_too():
    text = "network n {\n input 3x8x8\n conv 64 3 padding=1  # a\n conv 8 kernel=3  # b\n relu\n conv 128 kernel=3\n}\n"
    # a column is as wide as its widest word on the lines that go on after it; `relu` ends the run of convs
    assert format_text(text) == ("network n {\n    input 3x8x8\n    conv 64 3 padding=1  # a\n"
                                 "    conv 8  kernel=3     # b\n    relu\n    conv 128 kernel=3\n}\n")


def test_a_tree_made_in_code_prints_and_parses_back():
    conv = ast.Call("conv", [ast.Arg(None, ast.BinOp("*", ast.Name("width"), ast.Const(2))),
                             ast.Arg("kernel", ast.Const((3, 3)))])
    tree = ast.Module([ast.Use("std/resnet")], [
        ast.Definition("function", "half", [ast.Param("v", None)],
                       [ast.Let("h", ast.BinOp("//", ast.Name("v"), ast.Const(2))), ast.Return(ast.Name("h"))]),
        ast.Definition("network", "n", [ast.Param("width", ast.Const(8))], [
            ast.Call("input", [ast.Arg(None, ast.Const((3, 32, 32)))]), conv,
            ast.Labeled("e", ast.Frozen([ast.Call("relu", [])])),
            ast.Merge("add", [[], [ast.Call("conv", [ast.Arg(None, ast.Func("half", [ast.Name("width")])),
                                                     ast.Arg(None, ast.Const(1))])]]),
            ast.Call("leakyrelu", [ast.Arg(None, ast.Const(-0.1))])])])
    text = print_module(tree)
    assert text == ('use "std/resnet"\n\ndef half(v) {\n    let h = v // 2\n    return h\n}\n\n'
                    "network n(width = 8) {\n    input 3x32x32\n    conv (width * 2) kernel=3x3\n"
                    "    e: frozen relu\n    add {\n        branch { }\n        branch {\n"
                    "            conv half(width) 1\n        }\n    }\n    leakyrelu -0.1\n}\n")
    assert parse(text) == tree


def test_a_tree_the_grammar_cannot_read_back_is_refused():
    with pytest.raises(ValueError, match="not a name"):
        print_module(ast.Module([], [ast.Definition("block", "if", [], [])]))
    with pytest.raises(ValueError, match="spec string"):
        print_module(ast.Module([ast.Use('a"b')], []))


# ---- cnndsl fmt ----------------------------------------------------------------------------------------------


def test_fmt_rewrites_atomically_keeps_permissions_and_leaves_a_file_with_errors_alone(tmp_path, capsys):
    from cnndsl.cli import main

    messy, broken, tidy = tmp_path / "messy.cnn", tmp_path / "sub" / "broken.cnn", tmp_path / "tidy.cnn"
    broken.parent.mkdir()
    messy.write_text(MESSY)
    messy.chmod(0o640)
    broken.write_text("network n {\n    conv 8 kernel=,\n}\n")
    tidy.write_text(CANONICAL)
    assert main(["fmt", "--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"would reformat {messy}" in err and f"{broken}:2:19: error: unexpected `,`" in err
    assert messy.read_text() == MESSY
    assert main(["fmt", "--diff", str(messy)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"--- {messy}\n+++ {messy}\n") and "+    conv (a * 4) kernel=3 padding=same  # a conv" in out
    assert main(["fmt", str(tmp_path)]) == 1  # the broken file: exit 1, and the others are written
    assert messy.read_text() == CANONICAL and messy.stat().st_mode & 0o777 == 0o640
    assert broken.read_text() == "network n {\n    conv 8 kernel=,\n}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["messy.cnn", "sub", "tidy.cnn"]  # no temporary left
    capsys.readouterr()
    assert main(["fmt", "--check", str(messy), str(tidy)]) == 0
    assert main(["fmt", str(tmp_path / "missing.cnn")]) == 2
