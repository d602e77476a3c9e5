"""Issue 7: a spec is data, nothing in it runs, and no input crashes the tool.

Generated specs (tests/fuzz_specs.py) go through every command: `check` answers with a report (which
renders as text, JSON, Markdown and --explain) or a CnnError (which renders); a spec that checks must
compile and build, and the module must give the reported output shape and parameter count; `train
--epochs 1` on tiny data exits 0, 1 or 2, never with a traceback. About 2,000 inputs here;
CNNDSL_FUZZ=deep runs 21,000 (docs/testing.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz_specs import (
    DEEP,
    EXPECT_REFUSED,
    count,
    deep_specs,
    expression_specs,
    fail,
    fuzz_settings,
    layer_specs,
    run_spec,
    specs,
    trainable_specs,
    work_specs,
)

torch = pytest.importorskip("torch")


# ---- check, compile, build --------------------------------------------------------------------------------


@fuzz_settings(ci=400, deep=7000)
@given(specs())
def test_generated_programs_check_compile_and_build(text):
    run_spec(text)


@fuzz_settings(ci=700, deep=5000)
@given(expression_specs())
def test_expressions_with_every_operator_and_edge_number(text):
    run_spec(text)


@fuzz_settings(ci=600, deep=4000)
@given(layer_specs())
def test_every_layer_with_edge_arguments(text):
    run_spec(text)


@fuzz_settings(ci=60, deep=2000)
@given(deep_specs())
def test_deep_nesting_of_every_construct(text):
    run_spec(text)


@fuzz_settings(ci=40, deep=1500)
@given(work_specs())
def test_work_that_makes_little_ends_within_the_time_limit(text):
    """Calls, repeats and functions that expand to nothing, and thousands of parameters: check answers within
    the harness's time limit (a report, or the work budget's error), as does whatever follows it."""
    run_spec(text)


@fuzz_settings(ci=250, deep=2000)
@given(specs(wild=0, depth=4, budget=60))
def test_valid_programs_build_to_what_check_reports(text):
    run_spec(text)


# Inputs issue 7 names: each must check or be refused with a CnnError (those marked EXPECT_REFUSED: refused),
# and compile and build if it checks.
ISSUE_7 = {
    "zero to a negative power": "network n {\n input 3x8x8\n conv (0 ** -1) kernel=1\n}",
    "1e308": "network n {\n input 8\n dense 1e308\n}",
    "a 4,301-digit integer": "network n {\n input 8\n dense " + "9" * 4301 + "\n}",
    "a complex power": "network n {\n input 8\n dense ((-2) ** 0.5)\n}",
    "a complex power compared": "network n {\n input 8\n if ((-2) ** 0.5) > 1 { relu }\n}",
    "min of one value": "network n {\n input 8\n dense min(4)\n}",
    "max of one value": "network n {\n input 8\n dense max(4)\n}",
    "300 nested if": "network n {\n input 8\n" + "if true {\n" * 300 + "relu\n" + "}\n" * 300 + "}",
    "300 nested repeat": "network n {\n input 8\n" + "repeat 1 {\n" * 300 + "relu\n" + "}\n" * 300 + "}",
    "500 chained else if": "network n(a = 500) {\n input 8\n if a == 0 { relu }"
    + "".join(f" else if a == {i} {{ relu }}" for i in range(1, 501)) + "\n}",
    "an unknown argument in a branch not taken": EXPECT_REFUSED + "\n"
        "block b(x = 1) {\n if x == 2 { conv 4 kernel=1 bogus=3 } else { relu }\n}\nnetwork n {\n input 3x8x8\n b\n}",
    "a non-integer repeat count in code that never runs": EXPECT_REFUSED + "\n"
        "block inner(go = false) {\n if go { repeat 1.5 { relu } }\n}\n"
        "block outer(go = false) {\n inner go=go\n}\nnetwork n {\n input 3x8x8\n outer\n}",
    "a huge input": "network n {\n input 3x100000x100000\n conv 4 kernel=3\n}",
    "a huge conv": "network n {\n input 3x8x8\n conv (10**12) kernel=1\n}",
}


@pytest.mark.parametrize("text", ISSUE_7.values(), ids=ISSUE_7.keys())
def test_the_inputs_of_issue_7(text):
    run_spec(text)


# ---- --set values past every limit, through the command line --------------------------------------------

SET_VALUES = ["0", "-1", "1", "1.5", "1e308", "1e309", "-1e309", "inf", "-inf", "nan", "1" * 5000, "9" * 4301,
              "1_000", "0x10", "1x1", "0x0", "3x100000x100000", "true", "false", '"x"', '""', "relu", "same", " ",
              "=", "a=b", "١٢", "²", "1e-400", str(2**62 + 1), str(2**63), "-0", "0.0", "(1, 2)", "min(4)"]
SET_SPEC = """network n(f = 4, rate = 0.5, deep = true, act = relu, size = 2x2, label = "x", pad = same) {
    input 3x8x8
    conv f kernel=3 padding=pad
    if act == relu { relu } else { gelu }
    dropout rate
    if deep { adaptiveavgpool size }
    repeat (f % 3) { relu }
    flatten
    dense (f * 2)
}
"""


@fuzz_settings(ci=80, deep=1000)
@given(st.lists(st.tuples(st.sampled_from(["f", "rate", "deep", "act", "size", "label", "pad", "nokey"]),
                          st.sampled_from(SET_VALUES)), min_size=1, max_size=3),
       st.sampled_from([[], ["--json"], ["--markdown"], ["--keras"], ["--explain"], ["--depth", "1"],
                        ["--max-layers", "3"]]))
def test_set_values_past_every_limit(tmp_path_factory, pairs, options):
    from cnndsl.cli import main

    path = tmp_path_factory.mktemp("set") / "spec.cnn"
    path.write_text(SET_SPEC)
    sets = [w for k, v in pairs for w in ("--set", f"{k}={v}")]
    shown = SET_SPEC + "# cnndsl check spec.cnn " + " ".join(sets + options)
    code, said = _run(main, ["check", str(path), *sets, *options])
    count(f"--set: check exit {code}")
    if code not in (0, 1, 2):
        fail("check --set", shown, f"exit {code}: {said}", _internal(said))
        return
    compiled, said = _run(main, ["compile", str(path), *sets, "-o", str(path.with_suffix(".py"))])
    if compiled not in (0, 1, 2) or (code == 0 and compiled != 0):
        fail("compile --set", shown, f"check exits {code}, compile {compiled}: {said}", _internal(said))


def _run(fn, argv) -> tuple[int, str]:
    """The exit code of a cnndsl.cli.main call, and what it printed on stderr."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = fn(argv)
        except SystemExit as e:  # argparse refusing the command line
            code = e.code if isinstance(e.code, int) else 2
    return code, err.getvalue()[-2000:]


def _internal(said: str) -> str:
    """`OverflowError` from `cnndsl: internal error: OverflowError: ...`."""
    head = said.split("internal error: ", 1)[-1]
    return head.split(":", 1)[0].strip() if "internal error: " in said else "Mismatch"


# ---- train --------------------------------------------------------------------------------------------------

CLASSES = 3
MEMORY_LIMIT = 6 * 2**30  # address space of a training process: a huge model fails, it does not swap
TRAIN = """import resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from cnndsl.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(30, 8, 8), dtype=np.uint8)
    y = np.arange(30) % CLASSES
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x=x, y=y)
    return path


@pytest.mark.skipif(sys.platform == "win32", reason="uses resource limits")
@fuzz_settings(ci=4, deep=60)
@given(trainable_specs(CLASSES))
@example("network n {\n input 3x100000x100000\n globalavgpool\n dense 3\n}\n")  # issue 7's huge shapes
@example("network n {\n input 1x8x8\n conv (10**12) kernel=1\n globalavgpool\n dense 3\n}\n")
def test_train_one_epoch_exits_cleanly(tmp_path_factory, tiny_data, text):
    pytest.importorskip("sklearn")
    folder = tmp_path_factory.mktemp("train")
    spec = folder / "spec.cnn"
    spec.write_text(text)
    argv = ["train", str(spec), "--epochs", "1", "--data", f"npz:{tiny_data}", "--out", str(folder / "run"),
            "--batch-size", "8", "--device", "cpu"]
    import cnndsl

    here = str(Path(cnndsl.__file__).resolve().parent.parent)  # the cnndsl this process tests
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])),
           "MPLBACKEND": "Agg"}
    env.pop("CNNDSL_DEBUG", None)
    try:
        done = subprocess.run([sys.executable, "-c", TRAIN, str(MEMORY_LIMIT), *argv], capture_output=True,
                              text=True, timeout=300 if DEEP else 120, env=env, cwd=folder)
    except subprocess.TimeoutExpired:
        fail("train", text, "did not finish one epoch in time", "TookTooLong")
        return
    said = (done.stdout + done.stderr)[-3000:]
    count(f"train: exit {done.returncode}")
    if done.returncode not in (0, 1, 2) or "Traceback" in done.stderr or "internal error" in done.stderr:
        fail("train", text, f"exit {done.returncode}: {said}", _internal(done.stderr))
    elif done.returncode and not done.stderr.strip():
        fail("train", text, f"exit {done.returncode} without a message")
