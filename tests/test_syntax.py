"""The parser: Lark through its public API, its cache of the grammar's analysis, and recovery from syntax
errors (every error of a file in one run, each where it is)."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys

import pytest

import cnndsl
from cnndsl.errors import CnnError, CnnErrors, Span
from cnndsl.syntax import ast, parse_tolerant
from cnndsl.syntax.grammar import cache_path, grammar, make_lark
from conftest import ROOT

OLDEST_LARK = ROOT / ".venv" / "lark-oldest"  # `make .venv/.installed` puts the oldest Lark pyproject allows there
FILES = sorted([*ROOT.glob("specs/*.cnn"), *ROOT.glob("examples/*.cnn"), *ROOT.glob("cnndsl/std/*.cnn")])


def errors_of(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(CnnError) as info:
        cnndsl.check(text)
    return [(e.span.line, e.span.col, e.message) for e in getattr(info.value, "errors", [info.value])]


def shape(node) -> list:
    """Every field of a tree, spans as (line, col, end_line, end_col) and values with their type."""
    if isinstance(node, Span):
        return [(node.line, node.col, node.end_line, node.end_col)]
    if dataclasses.is_dataclass(node):
        return [part for f in dataclasses.fields(node) for part in [f.name, *shape(getattr(node, f.name))]]
    if isinstance(node, (list, tuple)):
        return [part for item in node for part in ["[", *shape(item), "]"]]
    return [f"{type(node).__name__}:{node!r}"]


# ---- every error at once -----------------------------------------------------------------------------------

FOUR = """network n {
    input 3x32x32
    conv 64 kernel=
    convv 8
    relu(
    dense 10
    conv 8 kernal=3
}
"""


def test_two_syntax_errors_and_two_semantic_errors_are_all_reported_where_they_are():
    assert errors_of(FOUR) == [
        (3, 20, "unexpected end of the line; expected one of `(`, `false`, `in`, `true`, a call such as `max(`, "
                "a name, ..."),
        (4, 5, "unknown layer or block `convv`"),
        (5, 9, "this `(` is never closed"),  # at the `(`, not at `dense` below it, parsed as a statement
        (7, 12, "`conv` has no argument `kernal`"),
    ]


def test_an_unclosed_paren_at_the_end_of_a_line_keeps_the_next_lines_errors():
    # the newlines inside the `(` were dropped: the lines after it are parsed again as statements of their own
    text = ("network n {\n    input 3x8x8\n    relu(\n    conv 32 kernal=3\n    flatten\n    dense 10 (\n"
            "    dense 5\n}\n")
    assert errors_of(text) == [
        (3, 9, "this `(` is never closed"),
        (4, 13, "`conv` has no argument `kernal`"),
        (6, 14, "this `(` is never closed"),
    ]
    parsed = parse_tolerant(text)
    assert [s.name for s in parsed.module.definitions[0].body] == ["input", "relu", "conv", "flatten", "dense", "dense"]


def test_the_command_line_prints_them_all_and_json_lists_them(tmp_path, capsys):
    from cnndsl.cli import main

    path = tmp_path / "four.cnn"
    path.write_text(FOUR)
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert [line.split(": error: ")[0] for line in err.splitlines() if ": error: " in line] == [
        f"{path}:3:20", f"{path}:4:5", f"{path}:5:9", f"{path}:7:12"]
    assert err.rstrip().endswith("4 errors")
    assert main(["check", str(path), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [(e["line"], e["column"], e["end_column"], e["severity"]) for e in out["errors"]] == [
        (3, 20, 21, "error"), (4, 5, 12, "error"), (5, 9, 10, "error"), (7, 12, 20, "error")]
    assert out["errors"][3]["hint"] == "did you mean `kernel`?" and out["errors"][3]["file"] == str(path)


def test_a_statement_broken_by_a_syntax_error_adds_no_semantic_error():
    # `convv` is unknown, but its statement is broken: one error there, and the next line's is kept
    assert errors_of("network n {\n    input 3x8x8\n    convv 8 kernel=3,\n    conv 8 kernal=1\n}\n") == [
        (3, 21, "unexpected `,`; expected one of `(`, `;`, `false`, `in`, `true`, `with`, ..."),
        (4, 12, "`conv` has no argument `kernal`"),
    ]


def test_one_error_per_statement_and_parsing_goes_on_after_the_statement():
    text = "network n {\n    input 3x8x8\n    conv 8 , , , kernel=3\n    relu 1 2 3 4 5 6 ,\n    tanh\n}\n"
    parsed = parse_tolerant(text)
    assert [(e.span.line, e.span.col) for e in parsed.errors] == [(3, 12), (4, 22)]
    assert [s.name for s in parsed.module.definitions[0].body] == ["input", "conv", "relu", "tanh"]


def test_an_unclosed_brace_before_the_next_definition_is_reported_where_it_opens():
    text = "network a {\n    input 3x8x8\n    residual {\n        relu\n\nblock b { tanh }\n"
    parsed = parse_tolerant(text)
    assert [(e.span.line, e.span.col, e.message) for e in parsed.errors] == [(3, 14, "this `{` is never closed")]
    assert [d.name for d in parsed.module.definitions] == ["a", "b"]  # the block after it is read


def test_an_unfinished_statement_gets_a_placeholder_the_tree_marks_missing():
    parsed = parse_tolerant("network n {\n    input 3x8x8\n    conv 8 kernel=\n    let x =\n}\n")
    conv, let = parsed.module.definitions[0].body[1:]
    assert isinstance(conv.args[1].value, ast.Missing) and conv.args[1].value.span.line == 3
    assert isinstance(let.value, ast.Missing)
    assert len(parsed.errors) == 2


def test_diagnose_gives_the_errors_without_raising_and_figures_errors_of_a_whole_text():
    found = cnndsl.diagnose(FOUR)
    assert [(e.span.line, e.span.col) for e in found.errors] == [(3, 20), (4, 5), (5, 9), (7, 12)]
    shapes = cnndsl.diagnose("network n {\n    input 3x4x4\n    conv 8 kernel=7\n}\n")
    assert [e.message for e in shapes.errors] == ["conv's kernel 7x7 is larger than its 4x4 input"] or \
        "larger than its 4x4 input" in shapes.errors[0].message
    assert cnndsl.diagnose("network n {\n    input 3x4x4\n}\n").errors == []


def test_errors_are_capped_and_the_rest_of_the_file_is_not_read():
    from cnndsl.syntax.parser import MAX_SYNTAX_ERRORS

    text = "network n {\n" + "    conv ,\n" * (MAX_SYNTAX_ERRORS + 50) + "}\n"
    parsed = parse_tolerant(text)
    assert len(parsed.errors) == MAX_SYNTAX_ERRORS + 1
    assert parsed.errors[-1].message.startswith(f"more than {MAX_SYNTAX_ERRORS} syntax errors")


def test_bad_characters_are_errors_and_lexing_goes_on_after_them():
    parsed = parse_tolerant("network n {\n    input 3x8x8\n    conv 8 kernel=3 padding='same'\n    relu ?\n}\n")
    assert [(e.span.line, e.span.col, e.message) for e in parsed.errors] == [
        (3, 29, "unexpected character `'`"), (4, 10, "unexpected character `?`")]
    assert [s.name for s in parsed.module.definitions[0].body] == ["input", "conv", "relu"]


# ---- Lark's public API, its cache, and the Lark versions pyproject allows -------------------------------------


def test_nothing_in_the_package_names_a_private_lark_object():
    import re

    for path in (ROOT / "cnndsl").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"lark\.\w*\._|_load_from_dict|\b_mres\b|parser\.parser\.parser|UnlessCallback", text), \
            path


def test_the_grammar_analysis_is_cached_in_a_private_folder_of_the_user(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = cache_path(grammar())
    assert path.parent == tmp_path / "cache" / "cnndsl" and path.parent.stat().st_mode & 0o777 == 0o700
    assert not path.exists()
    assert make_lark(None).parse("network n { input 3x8x8 }\n").data == "start"
    assert path.exists() and not path.stat().st_mode & 0o022
    assert sorted(p.name for p in path.parent.iterdir()) == [".lock", path.name]
    written = path.stat().st_mtime_ns
    assert make_lark(None).parse("network n { input 3x8x8 }\n").data == "start"
    assert path.stat().st_mtime_ns == written  # read, not written again


def test_a_cache_file_others_may_write_is_never_loaded(tmp_path, monkeypatch):
    """Lark's cache is a pickle: loading one someone else could write would run their code."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    marker = tmp_path / "planted-code-ran"
    path = cache_path(grammar())
    path.write_bytes(b"x\n" + pickle.dumps(_Planted(str(marker))))
    path.chmod(0o666)
    assert make_lark(None).parse("network n { input 3x8x8 }\n").data == "start"
    assert not marker.exists()
    assert not path.stat().st_mode & 0o022  # replaced by the user's own


class _Planted:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_cache_that_cannot_be_written_only_means_the_grammar_is_analysed(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # a file where the folder would be
    assert cache_path(grammar()) is None
    assert make_lark(None).parse("network n { input 3x8x8 }\n").data == "start"


def _trees(python_path: str | None) -> str:
    code = ("import sys, json, lark; sys.path.insert(0, 'tests'); from test_syntax import shape, FILES\n"
            "from cnndsl.syntax import parse_tolerant\n"
            "print(json.dumps([lark.__version__] + [repr(shape(parse_tolerant(p.read_text(), p.name).module)) "
            "for p in FILES]))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if python_path:
        env["PYTHONPATH"] = python_path
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_oldest_and_the_newest_lark_allowed_build_the_same_trees():
    if not (OLDEST_LARK / "lark").is_dir():
        pytest.skip(f"no oldest Lark in {OLDEST_LARK} (`make .venv/.installed` installs it)")
    import lark

    oldest, newest = json.loads(_trees(str(OLDEST_LARK))), json.loads(_trees(None))
    assert (oldest[0], newest[0]) != (newest[0], newest[0]) and newest[0] == lark.__version__
    assert oldest[1:] == newest[1:] and len(oldest) == len(FILES) + 1


def test_checking_a_spec_imports_no_torch():
    code = "import sys, cnndsl; cnndsl.check('specs/resnet18.cnn'); assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_a_syntax_error_in_a_used_file_is_reported_in_that_file(spec_file):
    spec_file("block b(f) {\n    conv f kernel=3,\n}\n", "lib.cnn")
    main = spec_file('use "lib"\nnetwork n {\n    input 3x8x8\n    b 4\n    convv\n}\n', "main.cnn")
    with pytest.raises(CnnErrors) as info:
        cnndsl.check(main)
    assert [(e.span.source.name.endswith("lib.cnn"), e.span.line) for e in info.value.errors] == [
        (False, 5), (True, 2)]
