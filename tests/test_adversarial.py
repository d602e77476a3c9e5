"""The fifteen defects of the adversarial round (issue "Nothing hangs, nothing is lost"), one test or more each,
named by the defect's number. The fuzz that would have found them is in fuzz_specs.py and test_fuzz*.py."""

from __future__ import annotations

import pytest

import cnndsl
from cnndsl.elaborate import validate
from cnndsl.errors import CnnError
from cnndsl.limits import WORK, Limits


def error_of(text: str, **kwargs) -> CnnError:
    with pytest.raises(CnnError) as info:
        cnndsl.loads(text, **kwargs).check()
    return info.value


def error_of_file(path, limits: Limits | None = None) -> CnnError:
    with pytest.raises(CnnError) as info:
        cnndsl.load(path, limits=limits).check()
    return info.value


# 9: block calls that expand to no layers count as work --------------------------------------------------------

def _tower(levels: int, leaf: str) -> str:
    lines = [f"block b0(f = 1) {{ {leaf} }}"]
    for i in range(1, levels + 1):
        lines.append(f"block b{i}(f = 1, g = f) {{ {'; '.join([f'b{i - 1} f'] * 4)} }}")
    return "\n".join(lines) + f"\nnetwork n {{\n    input 1x8x8\n    b{levels} 1\n    flatten\n    dense 2\n}}\n"


@pytest.mark.parametrize("leaf", ["", "if false { relu }", "let z = f", "repeat 0 { relu }"])
def test_empty_expansions_are_refused_once_their_work_passes_the_budget(leaf):
    limits = Limits(layers=500)
    e = error_of(_tower(39, leaf), limits=limits)  # 4**39 calls: never ends without the budget
    assert f"more than {WORK * 500:,} steps" in e.message
    assert e.span is not None and e.span.line <= 40


def test_the_work_budget_leaves_real_networks_alone():
    # the repository's networks run at most 1.8 statements a layer; the budget is WORK a layer
    report = cnndsl.check("specs/resnet152.cnn")
    assert report.params == 60_192_808
    tower = cnndsl.loads(_tower(5, "relu"), limits=Limits(layers=2000)).check()  # 1,365 calls, 1,024 relus
    assert len(tower.analysis.graph.layers) == 4**5 + 3


# 10: many network parameters are checked in linear time --------------------------------------------------------

def test_many_network_parameters_are_validated_in_linear_work(monkeypatch):
    made = []

    class Counted(validate.Env):
        def __init__(self, vars, *rest, **kwargs):
            made.append(len(vars))
            super().__init__(vars, *rest, **kwargs)

    monkeypatch.setattr(validate, "Env", Counted)
    n = 40_000  # 349 KB, under the size limit
    params = ",".join(f"a{i}=1" for i in range(n))
    report = cnndsl.loads(f"network n({params}) {{\n input 1x8x8\n flatten\n dense 2\n}}\n").check()
    assert report.params == 130
    assert sum(made) <= 2 * n  # one table of the names, not one per default


# 15: control characters in user text never reach the terminal raw ----------------------------------------------

PAYLOADS = ["\x1b]0;pwned\x07", "\x1b[2J", "\x1b]52;c;cHduZWQ=\x07", "\x9b2J", "a\rb", "\u202egnp.exe"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_control_characters_in_strings_and_file_names_are_shown_as_question_marks(tmp_path, payload):
    import re
    import subprocess
    import sys

    folder = tmp_path / ("dir" + payload.replace("/", ""))
    folder.mkdir()
    spec = folder / "n.cnn"
    spec.write_text(f'block b(tag) {{ relu }}\nnetwork n {{\n    input 1x8x8\n    b "{payload}"\n    flatten\n'
                    "    dense 2\n}\n")
    for args in ([], ["--color", "always"], ["--markdown"], ["--explain"], ["--depth", "1"]):
        out = subprocess.run([sys.executable, "-m", "cnndsl.cli", "check", str(spec), *args], capture_output=True,
                             text=True, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        shown = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout)  # rich's colours (SGR), with --color always
        assert all(c.isprintable() or c == "\n" for c in shown), repr(shown)
        assert "?" in shown


# 6: link loops and huge size limits -----------------------------------------------------------------------------

def test_a_use_of_a_link_to_itself_is_the_uses_error(tmp_path):
    (tmp_path / "self.cnn").symlink_to("self.cnn")
    (tmp_path / "main.cnn").write_text('use "self"\nnetwork n {\n    input 1x8x8\n    flatten\n    dense 2\n}\n')
    e = error_of_file(tmp_path / "main.cnn")
    assert "cannot read `self`" in e.message and (e.span.line, e.span.col) == (1, 1)


def test_the_size_limit_is_never_allocated_and_has_a_ceiling(tmp_path):
    from cnndsl.cli import main
    from cnndsl.limits import MAX_SPEC_BYTES

    assert main(["check", "specs/lenet5.cnn", "--max-spec-size", "1T"]) == 2
    assert main(["check", "specs/lenet5.cnn", "--max-spec-size", "64M"]) == 0  # the ceiling itself: read as ever
    zeros = tmp_path / "zeros.cnn"
    with open(zeros, "wb") as f:
        f.truncate(MAX_SPEC_BYTES - 1)  # sparse: 64 MiB of NUL bytes
    e = error_of_file(zeros, Limits(spec_bytes=MAX_SPEC_BYTES))
    assert "not a text file (a NUL byte at byte 0)" in e.message


# 8: a dataset too small to fill every split --------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["npz", "folder"])
def test_a_dataset_too_small_for_its_splits_says_which_is_empty_and_what_it_needs(tmp_path, kind):
    np = pytest.importorskip("numpy")
    pytest.importorskip("torch")
    from PIL import Image

    from cnndsl.data.datasets import load_dataset

    if kind == "npz":
        np.savez(tmp_path / "d.npz", x=np.zeros((2, 8, 8, 1), np.uint8), y=np.array([0, 1]))
        name = f"npz:{tmp_path / 'd.npz'}"
    else:
        for cls in ("장미", "tulip"):
            (tmp_path / "f" / cls).mkdir(parents=True)
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "f" / cls / "0.png")
        name = f"folder:{tmp_path / 'f'}"
    with pytest.raises(CnnError) as info:
        load_dataset(name, (1, 8, 8))
    assert info.value.message == (f"the validation and test splits are empty: {name} has 2 images to cut 10% for "
                                  "validation and 10% for the test")
    assert info.value.hint.startswith("give it at least 10 images (5 of each of its 2 classes)")
    if kind == "npz":  # as many as the hint says: each split gets one
        np.savez(tmp_path / "d.npz", x=np.zeros((10, 8, 8, 1), np.uint8), y=np.arange(10) % 2)
        data = load_dataset(name, (1, 8, 8))
        assert (len(data.train), len(data.val), len(data.test)) == (8, 1, 1)


# 12: --nproc is checked against the machine before anything starts ------------------------------------------

def test_more_processes_than_the_machine_has_devices_for_are_refused_before_launch(tmp_path, monkeypatch):
    import os

    from cnndsl.cli import main

    spec = tmp_path / "n.cnn"
    spec.write_text("network n {\n    input 1x8x8\n    flatten\n    dense 10\n}\n")
    monkeypatch.chdir(tmp_path)
    started = []
    monkeypatch.setattr("subprocess.call", lambda *a, **k: started.append(a) or 0)
    cpus = len(os.sched_getaffinity(0))
    assert main(["train", str(spec), "--nproc", str(cpus + 1), "--device", "cpu"]) == 2
    assert main(["train", str(spec), "--nproc", "1000"]) == 2
    assert not started and not (tmp_path / "runs").exists()
    if cpus >= 2:
        monkeypatch.setenv("CNNDSL_MAX_MEMORY", "500M")  # room for one process, not two
        assert main(["train", str(spec), "--nproc", "2", "--device", "cpu"]) == 1
    assert not started and not (tmp_path / "runs").exists()


# 5: numbers past float32 are bad values, on the command line (exit 2) and in a recipe (exit 1) -----------------

@pytest.mark.parametrize("key, value", [("lr", "1.0e+39"), ("weight_decay", "1.0e+39"), ("clip_grad_norm", "1e300")])
def test_recipe_values_past_float32_are_refused(tmp_path, key, value):
    from cnndsl.cli import main

    (tmp_path / "r.yaml").write_text(f"{key}: {value}\n")
    spec = tmp_path / "n.cnn"
    spec.write_text("network n {\n    input 1x8x8\n    flatten\n    dense 10\n}\n")
    assert main(["train", str(spec), "--recipe", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run")]) == 1
    assert main(["train", str(spec), "--lr", "1e308", "--out", str(tmp_path / "run")]) == 2
