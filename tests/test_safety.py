"""A spec is data: nothing in it runs, no spec crashes or hangs the tool, every bomb is refused at once.

Each test names the defect of issue 7 it covers. The training side (recipes, checkpoints, datasets,
images, run folders) is in test_train_safety.py.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnndsl
from cnndsl.build import vet
from cnndsl.cli import main
from cnndsl.errors import CnnError, UsageError
from cnndsl.ops.source import docstring, literal
from conftest import ROOT, module_of

CLI = [sys.executable, "-m", "cnndsl.cli"]
TINY = "{{\n    input 1x8x8\n    flatten\n    dense classes\n}}\n"


def run(*args: str, cwd=ROOT, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def error_of(text: str, **params) -> CnnError:
    with pytest.raises(CnnError) as info:
        cnndsl.loads(text, **params).check()
    return info.value


def net(*lines: str, prelude: str = "", head: str = "network n") -> str:
    return prelude + head + " {\n" + "\n".join(f"    {line}" for line in lines) + "\n}\n"


def where(e: CnnError) -> tuple[int, int]:
    assert e.span is not None, e.render()
    return e.span.line, e.span.col


# ---- no user text runs as code ---------------------------------------------------------------------------


PAYLOAD = '"""; open("PWNED", "w"); """'  # writes PWNED in the current folder, if it ever runs


def test_a_comment_before_the_brace_does_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = f"network n(classes = 10)   # {PAYLOAD}\n" + TINY.format()
    spec = cnndsl.loads(text)
    spec.build()
    assert not (tmp_path / "PWNED").exists()
    assert "open(" not in spec.source()  # comments are not copied into the generated source at all


def test_a_file_name_does_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"x{PAYLOAD}\n\\.cnn"
    path.write_text("network n(classes = 10) " + TINY.format())
    cnndsl.load(path).build()
    out = tmp_path / "out.py"
    assert main(["compile", str(path), "-o", str(out)]) == 0
    done = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "N: input (2, 1, 8, 8) -> output (2, 10)" in done.stdout
    assert not (tmp_path / "PWNED").exists()
    module = ast.parse(out.read_text())
    # the file's name alone, never the path of the machine it was compiled on
    assert ast.get_docstring(module).startswith(f"n, compiled by cnndsl {cnndsl.__version__} from {path.name}.")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_literals_round_trip_any_text(text):
    assert ast.literal_eval(literal(text)) == text
    assert ast.literal_eval(docstring(text, text)) == text + "\n" + text


def _shape_of(source: str) -> str:
    """The module's statements with every string's text blanked: what the code does, not what it says."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
        elif isinstance(node, ast.JoinedStr):  # f-strings of the __main__ smoke test
            node.values = []
    return ast.dump(tree)


HOSTILE = st.lists(st.sampled_from(['"', "'", '"""', "\\", "\n", "\r", "\u2028", "\x00", "\x1b", "#", "{", "}",
                                    "é", " ", "x", "; open('PWNED', 'w');", "\\n", "\t"]), max_size=12).map("".join)
BASE = ("block unit(tag = \"{string}\") {{  # {comment}\n    conv 4 kernel=3 padding=same  # {comment}\n}}\n"
        "network n(classes = 10, name = \"{string}\")   # {comment}\n{{\n    input 1x8x8\n    unit\n    flatten\n"
        "    dense classes\n}}\n")
BASELINE = _shape_of(cnndsl.loads(BASE.format(string="s", comment="c")).source())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(comment=HOSTILE, string=HOSTILE, name=HOSTILE)
def test_hostile_text_in_comments_strings_and_file_names_changes_no_statement(tmp_path_factory, comment, string,
                                                                              name):
    folder = tmp_path_factory.mktemp("inject")
    os.chdir(folder)  # a payload that ran would write PWNED here
    try:
        comment = comment.replace("\n", " ")  # a newline ends a comment: that text is spec, not comment
        string = re.sub(r'["\n]', "", string)  # a string literal of the language holds neither
        try:
            spec = cnndsl.loads(BASE.format(string=string, comment=comment), name=name)
            source = spec.source()
        except CnnError:  # \r or \x00 where the grammar has no place for them: refused, nothing to run
            return
        assert _shape_of(source) == BASELINE
        spec.build()
        assert not (folder / "PWNED").exists()
    finally:
        os.chdir(ROOT)


def test_generated_code_is_vetted_before_it_runs():
    for path in sorted((ROOT / "specs").glob("*.cnn")) + sorted((ROOT / "examples").glob("*.cnn")):
        vet(cnndsl.load(path).source())
    for bad in ("import os", "from subprocess import run", "x = __import__('os')", "open('f')",
                "().__class__.__bases__", "getattr(x, 'y')"):
        with pytest.raises(CnnError, match="refusing to run the generated code"):
            vet(bad)


# ---- bounded input --------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/dev/zero", "link", "fifo", "folder"])
def test_what_is_not_a_file_is_refused_before_reading(tmp_path, target):
    (tmp_path / "link").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    done = run("check", target if target.startswith("/") else str(tmp_path / target), timeout=20)
    assert done.returncode == 1
    kind = {"/dev/zero": "a character device", "link": "a character device", "fifo": "a pipe (FIFO)",
            "folder": "a directory"}[target]
    assert f"it is {kind}, not a file" in done.stderr


def test_a_use_of_a_link_to_dev_zero_is_refused_at_the_use(spec_file, tmp_path):
    (tmp_path / "zero.cnn").symlink_to("/dev/zero")
    path = spec_file('use "zero"\nnetwork n { input 3x8x8 }\n')
    with pytest.raises(CnnError, match="it is a character device") as e:
        cnndsl.load(path)
    assert where(e.value) == (1, 1)


def test_spec_files_are_capped_and_the_cap_can_be_raised(spec_file):
    path = spec_file(net("input 3x8x8", *["relu"] * 3000))  # 30 KB
    small = cnndsl.Limits(spec_bytes=20_000)
    with pytest.raises(CnnError, match=r"is [\d,]+ bytes, more than the limit of 20,000") as e:
        cnndsl.load(path, limits=small)
    assert "--max-spec-size" in e.value.hint
    assert main(["check", str(path), "--max-spec-size", "20K"]) == 1
    assert main(["check", str(path), "--max-spec-size", "1M", "--depth", "1"]) == 0
    with pytest.raises(SystemExit) as bad:
        main(["check", str(path), "--max-spec-size", "lots"])
    assert bad.value.code == 2


def test_the_statement_limit_applies_while_parsing():
    # a file of more statements than the layer limit is refused where the limit is passed, not after it
    text = net("input 3x8x8", *["relu"] * 50)
    e = error_of(text, max_layers=20)
    assert "more than 20 statements" in e.message and where(e) == (22, 5)  # the 21st: input and 20 relus


def test_a_megabyte_on_one_line_is_refused_quickly():
    e = error_of("network n { input 3x8x8; " + "relu;" * 100_000 + " }", max_layers=1000)
    assert "more than 1,000 statements" in e.message
    assert len(e.render()) < 1000  # the line is shown around the caret, not whole


def test_check_warns_about_networks_no_machine_can_train(capsys, spec_file):
    assert main(["check", str(spec_file(net("input 3x100000x100000", "conv 8 kernel=3"))), "--depth", "1"]) == 0
    err = capsys.readouterr().err
    assert "spec.cnn:3:5: warning: one sample makes 298.0 GiB of activations (float32)" in err
    assert main(["check", str(spec_file(net("input 3x32x32", "conv (10**12) kernel=3"))), "--depth", "1"]) == 0
    assert "spec.cnn:3:5: warning: the network has 101.9 TiB of weights" in capsys.readouterr().err
    quiet = cnndsl.loads(net("input 3x224x224", "conv 64 kernel=3", "globalavgpool", "dense 10")).check()
    assert quiet.warnings == []


def test_build_refuses_weights_that_do_not_fit():
    with pytest.raises(CnnError, match="building the network .* needs about 101.9 TiB"):
        cnndsl.loads(net("input 3x32x32", "conv (10**12) kernel=3")).build()


# ---- expressions and numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize("expr, message", [
    ("(0 ** -1)", "zero to a negative power"),
    ("((-2) ** 0.5)", "has no real value"),
    ("1e308", "too large"),
    ("9" * 4400, "too large"),
    ("(1e200 * 1e200)", "too large"),
    ("(" + "0" * 5000 + "1e999)", "too large"),
    ("(2 ** 64 ** 2)", "too large"),
    ("(" + "-" * 200 + "1)", "nests more than 64"),
    ("(" + "1 + " * 70 + "1)", "nests more than 64"),
])
def test_bad_numbers_are_located(expr, message):
    e = error_of(net("input 8", f"dense {expr}"))
    assert message in e.message
    assert where(e)[0] == 3
    assert len(e.render()) < 1500


def test_one_value_min_and_max_compile_as_they_check():
    spec = cnndsl.loads(net("input 8", "dense min(4)", "dense max(5)", "dense min(3, 7)"))
    assert spec.check().output == (3,)
    model = spec.build()
    assert [m.out_features for m in model.modules() if hasattr(m, "out_features")] == [4, 5, 3]


def test_set_refuses_numbers_past_the_limit(spec_file):
    path = str(ROOT / "specs/lenet5.cnn")
    for value in ("9" * 30, "9" * 5000, "nan", "inf", "1e400"):
        assert main(["check", path, "--set", f"classes={value}"]) == 2
    with pytest.raises(UsageError, match="larger than"):
        cnndsl.load(path, classes=10**40).check()


# ---- nesting ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opening", ["if a == 1 {", "repeat 1 {", "residual {", "concat { branch {"])
def test_deep_nesting_is_refused_where_it_gets_too_deep(opening):
    text = net("input 3x8x8", opening * 300 + " relu " + "}" * (300 * opening.count("{")), head="network n(a = 1)")
    e = error_of(text)
    assert "braces nest more than 16 levels deep here" in e.message and where(e)[0] == 3


def test_a_chain_of_500_else_ifs_checks_and_compiles():
    arms = " else ".join(f"if a == {i} {{ dense {i + 1} }}" for i in range(500))
    spec = cnndsl.loads(net("input 8", arms + " else { dense 999 }", head="network n(a = 1)"), a=499)
    assert spec.check().output == (500,)
    assert spec.source().count("elif a == ") == 499
    assert spec.build()(__import__("torch").zeros(1, 8)).shape == (1, 500)


def test_a_long_chain_of_blocks_is_refused_with_its_ends():
    blocks = "".join(f"block b{i} {{ b{i + 1} }}\n" for i in range(200)) + "block b200 { relu }\n"
    e = error_of(net("input 3x8x8", "b0", prelude=blocks))
    assert "nest more than 64 levels deep" in e.message
    rendered = e.render()
    assert "... 58 more" in rendered and "in block `b0` called here" in rendered


def test_the_deepest_nesting_allowed_compiles_and_builds():
    blocks = "".join(f"block b{i}(n = 1) {{ repeat n {{ if n > 0 {{ b{i + 1} }} }} }}\n" for i in range(18))
    text = net("input 3x8x8", "repeat 1 { " * 6 + "b0" + " }" * 6, prelude=blocks + "block b18 { relu }\n")
    spec = cnndsl.loads(text)
    assert spec.check().output == (3, 8, 8)
    spec.build()


# ---- what check accepts, compile and build accept ---------------------------------------------------------


@pytest.mark.parametrize("inner, message, col", [
    ("conv 8 kernal=3", "`conv` has no argument `kernal`", 16),
    ("repeat 2.5 { relu }", "a repeat count must be a whole number", 16),
    ("conv 8 kernel=(1 / 0)", "division by zero", 28),
    ("conv 8 kernel=0", "must be at least 1", 23),
    ("nothing 3", "unknown layer or block `nothing`", 9),
    ("if 3 { relu }", "a condition must be true or false", 12),
])
def test_errors_in_branches_not_taken_are_found_by_check(inner, message, col):
    text = net("input 3x8x8", "b", prelude="block b(deep = false) {\n    if deep {\n        " + inner + "\n    }\n}\n")
    e = error_of(text)
    assert message in e.message
    assert where(e) == (3, col)
    assert "in block `b` called here" in e.render()


def test_arithmetic_that_fails_only_in_a_branch_not_taken_compiles():
    body = ["let z = 0", "let h = 5", "if deep {", "    conv (8 // z) kernel=1", "    repeat (h / 2) { relu }",
            "    conv (2 ** (h * 100000)) kernel=1", "}"]
    text = net("input 3x8x8", "b", prelude=net(*body, head="block b(deep = false)"))
    spec = cnndsl.loads(text)
    assert spec.check().output == (3, 8, 8)
    assert "8 // 0" in spec.source()  # left as source: it would fail, as check does, only if deep were set
    spec.build()


# ---- messages -----------------------------------------------------------------------------------------------


def test_a_missing_spec_file_is_a_command_line_error():
    done = run("check", "nonexistent")
    assert done.returncode == 2 and "no such file: nonexistent" in done.stderr


def test_messages_quote_long_tokens_briefly_and_no_control_characters():
    e = error_of(net("input 3x8x8", "x" * 500_000 + " 3"))
    rendered = e.render()
    assert "characters)" in rendered and len(rendered) < 1000
    e = error_of(net("input 3x8x8", "conv \x1b[2J 3"))
    assert "\x1b" not in e.render() and "?[2J" in e.render()


def test_the_limits_hold_for_a_spec_and_the_files_it_uses_together(tmp_path):
    (tmp_path / "part.cnn").write_text("block part { relu }\n" + "# padding\n" * 1200)  # 12 KB
    main_file = tmp_path / "main.cnn"
    main_file.write_text('use "part"\n' + net("input 3x8x8", "part") + "# padding\n" * 1000)  # 10 KB
    assert cnndsl.load(main_file, limits=cnndsl.Limits(spec_bytes=30_000)).check().output == (3, 8, 8)
    with pytest.raises(CnnError, match="part.cnn takes the spec past the limit of 20,000 bytes") as e:
        cnndsl.load(main_file, limits=cnndsl.Limits(spec_bytes=20_000))
    assert where(e.value) == (1, 1)


def test_a_chain_of_a_thousand_used_files_is_read_without_recursion(tmp_path):
    for i in range(1000):
        (tmp_path / f"f{i}.cnn").write_text(f'use "f{i + 1}"\n' if i < 999 else "block last { relu }\n")
    (tmp_path / "main.cnn").write_text('use "f0"\n' + net("input 3x8x8", "last"))
    assert len(cnndsl.load(tmp_path / "main.cnn").program.files) == 1000
    (tmp_path / "f999.cnn").write_text('use "f0"\n')
    with pytest.raises(CnnError, match=r"`use` cycle: \S*f0.cnn → \S*f1.cnn → \S*f2.cnn → \(996 more\) → \S*f999.cnn "
                       r"→ \S*f0.cnn"):
        cnndsl.load(tmp_path / "main.cnn")


# ---- found by the fuzz (tests/test_fuzz_structure.py): each checked, compiled and built ---------------------


def built_as_reported(text: str, **params):
    """Checks, compiles and builds the spec; the module's parameters and output are the report's."""
    import torch

    spec = cnndsl.loads(text, **params)
    report = spec.check()
    model = spec.build().eval()
    assert sum(p.numel() for p in model.parameters()) == report.params
    with torch.no_grad():
        assert tuple(model(torch.randn(2, *report.input)).shape[1:]) == report.output
    modules = dict(model.named_modules())
    for f in report.layers[1:]:  # a module of its own, or a sum or merge its block's forward computes
        module_of(f.layer, modules)
    return spec, model


@pytest.mark.parametrize("text", [
    net("input 3x8x8", "relu", head="network y(x = 1)"),  # a parameter named like the forward's argument
    net("input 8", "dense 4 activation=elu", "dense 2 activation=leakyrelu"),  # activations with arguments
    net("input 3x8x8", "b 8", prelude=net("conv (f / 2) kernel=1", "repeat (f / 4) { relu }", head="block b(f)")),
    net("input ((3 / 1), 8, 8)", "conv 4 kernel=3"),
    net("input 3x8x8", "b (2 / 1)", prelude=net("conv f kernel=1", "repeat f { relu }", head="block b(f = 1)")),
    net("input 3x8x8", "b", prelude=net("repeat q { relu }", "conv 2 kernel=1", head="block b(q = 2.0)")),
    net("input 3x8x8", "b", prelude=net("conv 4 kernel=3 stride=2 padding=pad", head="block b(pad = same)")),
    net("input 3x9x9", "b (1, 2)", prelude=net("conv 4 kernel=3 stride=s padding=same", head="block b(s = 1)")),
    net("input 3x8x8", "repeat i in 5..3 { dense 2 }", "conv 2 kernel=1"),
    net("input 3x8x8", "relu", head="network none"),
    net("input 3x8x8", "relu", head="network n(eval = 8, input = 2)"),  # builtins as parameters: eval_, input_
    net("input 3x8x8", "b", prelude=net("if deep { add { branch { from nowhere } } }", head="block b(deep = false)")),
    net("input 3x8x8", "f", prelude="block f { relu }\n"),  # class F, not torch.nn.functional's F
    net("input 10", "e5: dense 10", "dense 7", "from e5"),  # from at the end: e5 is the output
    net("input 10", "residual {", "    e5: dense 10", "    dense 7", "    from e5", "}"),
    net("x: input 10", "dense 7", "concat x", "from x"),
    net("input 3x8x8", "if a { flatten } else { globalavgpool }", "dense 3", head="network n(a = false)"),
    net("input 3x8x8", "repeat i in 0..20 {", "    let s = 2", "}", "conv 4 kernel=1 stride=s"),
    net("input 4", "if a == 2 { conv 4 kernel=1 }", head="network n(a = 1)"),  # an arm for a vector: raises
    net("input 3x8x8", "relu", head="network n(flag = true or in.channels > 0)"),  # `or` short-circuits
    net("input 3x8x8", "globalavgpool keepdims=((false and (0.1 >= causal)) or true)", "lrn 3"),
    net("input 3x8x8", "maxpool a stride=1 padding=same", head="network n(a = 2)"),  # no padding="same" for pools
    net("input shape", "conv (16 * width) kernel=3", "flatten", "dense 10",
        head="network n(width = 0.5, shape = 1x8x8)"),
])
def test_what_checks_compiles_and_builds_as_reported(text):
    built_as_reported(text)


@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("after", ["conv 2 kernel=1", ""])
def test_a_from_in_an_if_decides_what_comes_next(skip, after):
    text = net("input 4x8x8", "e1: conv 4 kernel=1", "conv 6 kernel=1", "if skip { frozen { from e1 } }", after,
               head="network n(skip = false)")
    spec, _ = built_as_reported(text, skip=skip)
    assert "        if self.skip:\n            x = e1\n" in spec.source()  # the arm taken, kept as an attribute


@pytest.mark.parametrize("act, kind", [("relu", "relu"), ("swish", "silu"), ("none", None)])
def test_an_activation_given_as_a_parameter(act, kind):
    from cnndsl.ops.base import Symbol

    text = net("input 3x8x8", "conv 4 kernel=3 activation=act", head="network n(act = relu)")
    spec, model = built_as_reported(text, act=Symbol(act))
    assert [n for n, _ in model.named_children()] == ["conv1"] + ([f"{kind}1"] if kind else [])


def test_a_let_in_an_if_or_a_loop_rebinds_the_name_in_the_module_as_in_check():
    block = net("let g = 2", "if flag { let g = g * 3 }", "repeat n { let g = g * 2", "conv g kernel=1 }",
                "conv g kernel=1", head="block b(flag = false, n = 2)")
    for call in ("b", "b true", "b true 3", "b false 0"):
        spec, _ = built_as_reported(net("input 3x8x8", call, prelude=block))
        assert "g = g * 2" in spec.source()  # the loop carries g as a Python variable


def test_code_check_never_takes_raises_only_if_it_ever_runs():
    block = net("let k = 0", "if deep {", "    conv 3 kernel=k", "} else {", "    relu", "}",
                head="block b(deep = false)")
    spec, model = built_as_reported(net("input 3x8x8", "b", prelude=block))
    assert 'raise ValueError("<string>:4:16: `kernel` of conv must be at least 1, got 0")' in spec.source()
    with pytest.raises(ValueError, match="must be at least 1"):
        type(model.b1)(3, deep=True)


@pytest.mark.parametrize("text, message", [
    (net("input 8", "lrn"), "lrn needs a CxHxW input"),
    (net("input 3x8x8", "batchnorm eps=0"), "`eps` of batchnorm must be above 0"),
    (net("input 3x8x8", "b q=2", prelude="block b(p = 1, q) { relu }\n"), "parameter `q` has no default but follows"),
    (net("input 3x8x8", "relu", head="network n(__class__ = 1)"), "names that start with `__` are reserved"),
    (net("input 3x8x8", "let __builtins__ = 2"), "names that start with `__` are reserved"),
    (net("input 3x8x8", "out_channels: relu"), "`out_channels` cannot name an output"),
    (net("input 3x8x8", "_parameters: relu"), "`_parameters` cannot name an output: it starts with `_`"),
    (net("input 3x8x8", "None: relu"), "`None` cannot name an output: it is a Python keyword"),
    (net("input 3x8x8", "b", prelude=net("if deep { upsample mode=cubic }", head="block b(deep = false)")),
     "`mode` of upsample expects one of"),
    (net("input 3x4x4", "maxpool 1 stride=(2 ** 62) padding=same"), "must be below 2,147,483,648"),
    (net("input 3x4x4", "lrn 1000000000000"), "more than twice the 3 channels"),
    (net("input 3x2x1", "avgpool 65535 padding=same"), "far more padding than input"),
    (net("input 3x8x8", "globalmaxpool keepdims=k", head="network n(k = true)"), "decides the rank of its output"),
    (net("input 3", "if flag { input 3x8x8 }", head="network n(flag = false)"), "`input` must come once, first"),
])
def test_what_compile_could_not_write_is_refused_by_check(text, message):
    e = error_of(text)
    assert message in e.message and e.span is not None


def test_training_a_network_without_parameters_says_so(tmp_path, capsys):
    path = tmp_path / "none.cnn"
    path.write_text(net("input 1x8x8", "adaptiveavgpool 1x10", "flatten"))
    assert main(["train", str(path), "--epochs", "1", "--out", str(tmp_path / "run")]) == 1
    assert "nothing to train: no trainable parameters (the spec has none" in capsys.readouterr().err
