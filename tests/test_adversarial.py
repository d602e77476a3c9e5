"""The fifteen defects of the adversarial round (issue "Nothing hangs, nothing is lost"), one test or more each,
named by the defect's number. The fuzz that would have found them is in fuzz_specs.py, fuzz_files.py and
test_fuzz*.py."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

import cnndsl
from cnndsl.elaborate import ranks, validate
from cnndsl.errors import CnnError, printable
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


def _doubling(levels: int, calls: int) -> str:
    lines = ["def f0(x) {\n    return x\n}"]
    lines += [f"def f{i}(x) {{\n    return f{i - 1}(x) + f{i - 1}(x)\n}}" for i in range(1, levels + 1)]
    uses = "\n".join(f"    conv (f{levels}({k}) - f{levels}({k}) + 2) kernel=1" for k in range(calls))
    network = f"network n(p = f{levels}(1)) {{\n    input 1x8x8\n{uses}\n    flatten\n    dense 2\n}}\n"
    return "\n".join(lines) + "\n" + network


@pytest.mark.parametrize("calls", [1, 60])
def test_functions_calling_the_one_below_twice_are_refused_by_the_same_budget(calls):
    """A sibling of 9: 40 functions each calling the one below twice are 2**40 calls; a function call counts
    as work, shared by everything one check evaluates, so sixty such expressions cost no more than one."""
    limits = Limits(layers=500)
    e = error_of(_doubling(40, calls), limits=limits)
    every = [e, *getattr(e, "errors", [])]
    assert all(f"more than {WORK * 500:,} steps" in x.message for x in every)
    assert all(x.span is not None for x in every)  # each where a call is made
    report = cnndsl.loads(_doubling(8, 1)).check()  # 2**8 calls a use: fine
    assert report.analysis.graph.params == {"p": 256} and report.params == (1 * 2 + 2) + (2 * 8 * 8 * 2 + 2)


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
    monkeypatch.setattr(ranks, "Env", Counted)  # (the walk over ranks copied the table at each default: the deep fuzz)
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


# ---- the command line in this process, each command within a time limit ----------------------------------------

class TookTooLong(BaseException):
    """Raised by the timer of `within`: a BaseException, so that no `except OSError` or `except Exception` of the
    code under test takes it for a failure of its own."""


@contextmanager
def within(seconds: int):
    """Fails a block that takes more than `seconds` (a read that blocks): SIGALRM interrupts the system call."""
    import signal

    def expire(signum, frame):
        raise TookTooLong(f"more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def cli(capsys):
    """Runs `cnndsl ARGS...` in this process: (exit code, stdout, stderr); a command that takes more than
    `seconds` or ends in an internal error fails the test."""
    from cnndsl.cli import main

    def run(*args, seconds: int = 60) -> tuple[int, str, str]:
        with within(seconds):
            try:
                code = main([str(a) for a in args])
            except SystemExit as e:  # argparse
                code = e.code
        out, err = capsys.readouterr()
        assert "internal error" not in err and "Traceback" not in err, err
        return code, out, err

    return run


SMALL = "network small(classes = 10) {\n    input 1x8x8\n    conv 4 kernel=3 padding=same\n    globalavgpool\n" \
        "    dense classes\n}\n"


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """A spec, an image, and a run folder whose checkpoints hold that spec's fresh weights (made, not trained)."""
    torch = pytest.importorskip("torch")
    np = pytest.importorskip("numpy")
    from PIL import Image

    from cnndsl import saved

    root = tmp_path_factory.mktemp("made")
    (root / "small.cnn").write_text(SMALL)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "img.png")
    run = root / "run"
    run.mkdir()
    model = cnndsl.loads(SMALL).build()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = [{"epoch": 1, "loss": 2.3, "accuracy": 0.1, "val_loss": 2.3, "val_accuracy": 0.1, "lr": 0.1,
                "seconds": 1.0}]
    checkpoint = saved.Checkpoint(
        model=model.state_dict(), spec=SMALL, network="small", classes=[str(i) for i in range(10)],
        data={"name": "digits", "splits": {}, "seed": 0, "input": [1, 8, 8], "notes": []},
        recipe={"epochs": 1, "lr": 0.1, "optimizer": "sgd"}, history=history,
        resume={"phase": 0, "optimizer": optimizer.state_dict(), "schedule": {}, "steps": {},
                "rng": {"shuffle": torch.Generator().get_state(), "augment": torch.Generator().get_state(),
                        "torch": torch.get_rng_state()}})
    for name in ("best.pt", "last.pt"):
        saved.save(run / name, checkpoint)
    (run / "metrics.csv").write_text("epoch,loss\n1,2.3\n")
    return {"root": root, "spec": root / "small.cnn", "image": root / "img.png", "run": run,
            "checkpoint": checkpoint}


# 11: every file the tool reads is checked before a byte is read -----------------------------------------------

SPECIAL = {"fifo": "a pipe (FIFO)", "device": "a character device", "loop": "symbolic links form a loop",
           "folder": "a directory"}


def special(folder, kind: str, suffix: str = "", name: str | None = None):
    """A FIFO, a link to /dev/zero, a link that leads to itself, or a folder, named `name` (or `kind` + `suffix`)."""
    import os

    path = folder / (name or f"{kind}{suffix}")
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "loop":
        path.symlink_to(path.name)
    else:
        path.mkdir()
    return path


# every path argument that names a file to read, of every command ({p}: the special file)
READS = {
    "check SPEC": ["check", "{p}"],
    "compile SPEC": ["compile", "{p}"],
    "plot SPEC": ["plot", "{p}", "-o", "{out}/x.dot"],
    "train SPEC": ["train", "{p}", "--out", "{out}/r"],
    "train --recipe": ["train", "{spec}", "--recipe", "{p}", "--out", "{out}/r"],
    "train --data npz:": ["train", "{spec}", "--data", "npz:{p}", "--out", "{out}/r"],
    "train --init": ["train", "{spec}", "--init", "{p}", "--epochs", "1", "--out", "{out}/r"],
    "eval RUN": ["eval", "{p}"],
    "eval --weights": ["eval", "{spec}", "--weights", "{p}"],
    "eval --spec": ["eval", "{run}/best.pt", "--spec", "{p}"],
    "eval --data npz:": ["eval", "{run}", "--data", "npz:{p}"],
    "predict RUN": ["predict", "{p}", "{image}"],
    "predict IMAGE": ["predict", "{run}", "{p}"],
    "predict --weights": ["predict", "{spec}", "{image}", "--weights", "{p}"],
    "export RUN": ["export", "{p}", "--format", "torchscript", "-o", "{out}/x.pt"],
    "export --weights": ["export", "{spec}", "--weights", "{p}", "--format", "torchscript", "-o", "{out}/x.pt"],
    "export --spec": ["export", "{run}/best.pt", "--spec", "{p}", "--format", "torchscript", "-o", "{out}/x.pt"],
    "show RUN": ["show", "filters", "{p}", "--out", "{out}"],
    "show IMAGE": ["show", "maps", "{run}", "{p}", "--out", "{out}"],
    "show --spec": ["show", "filters", "{run}/best.pt", "--spec", "{p}", "--out", "{out}"],
}
# those that name a folder to read: a special file there is refused as not a folder
READ_FOLDERS = {
    "train --resume": ["train", "{spec}", "--resume", "{p}"],
    "train --data folder:": ["train", "{spec}", "--data", "folder:{p}", "--out", "{out}/r"],
}


def _argv(words: list[str], made: dict, p, out) -> list[str]:
    return [w.format(p=p, out=out, spec=made["spec"], run=made["run"], image=made["image"]) for w in words]


@pytest.mark.parametrize("command", READS)
def test_a_fifo_a_device_a_link_loop_or_a_folder_is_refused_for_every_file_read(tmp_path, made, cli, command):
    pytest.importorskip("sklearn")
    suffix = ".cnn" if command.endswith("SPEC") or "--spec" in command else ".pt" if "RUN" in command else ""
    for kind, said in SPECIAL.items():
        p = special(tmp_path, kind, suffix)
        out = tmp_path / f"out-{kind}"
        out.mkdir()
        code, _, err = cli(*_argv(READS[command], made, p, out), seconds=30)
        if ("RUN" in command or "--weights" in command) and kind == "folder":  # a run's folder, holding no run
            said = "holds no best.pt or last.pt"
        assert code in (1, 2) and said in err, (kind, err)
        assert not (out / "r").exists()


@pytest.mark.parametrize("command", READ_FOLDERS)
def test_a_special_file_where_a_folder_is_read_is_refused(tmp_path, made, cli, command):
    for kind in ("fifo", "device", "loop"):
        code, _, err = cli(*_argv(READ_FOLDERS[command], made, special(tmp_path, kind), tmp_path), seconds=30)
        assert code in (1, 2) and "no such folder" in err, (kind, err)
    assert not (tmp_path / "r").exists()


def test_a_folder_dataset_skips_special_files_and_reads_none(tmp_path, made, cli):
    np = pytest.importorskip("numpy")
    from PIL import Image

    from cnndsl.data.datasets import load_dataset

    for cls in ("a", "b"):
        (tmp_path / "f" / cls).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((8, 8), i * 40, np.uint8)).save(tmp_path / "f" / cls / f"{i}.png")
        for kind in ("fifo", "device", "loop"):
            special(tmp_path / "f" / cls, kind, ".png")
        (tmp_path / "f" / cls / "sub").symlink_to("..")  # a folder link loop: never walked
    data = load_dataset(f"folder:{tmp_path / 'f'}", (1, 8, 8))
    assert data.classes == ["a", "b"] and len(data.train) + len(data.val) + len(data.test) == 10


def test_a_fifo_in_the_dataset_cache_is_refused(tmp_path, monkeypatch):
    from cnndsl.data import sources

    monkeypatch.setenv("CNNDSL_DATA", str(tmp_path))
    (tmp_path / "mnist").mkdir()
    for name in sources._IDX_FILES:
        special(tmp_path / "mnist", "fifo", name=name)  # a FIFO named like each file: "there", so never downloaded
    with pytest.raises(CnnError, match=r"it is a pipe \(FIFO\), not a file"), within(20):
        sources.load_idx("mnist")
    (tmp_path / "cifar10").mkdir()
    special(tmp_path / "cifar10", "device", name="cifar-10-python.tar.gz")
    with pytest.raises(CnnError, match="it is a character device, not a file"), within(20):
        sources.load_cifar("cifar10")


def test_a_gzip_bomb_in_the_dataset_cache_is_refused(tmp_path, monkeypatch):
    import gzip

    from cnndsl.data import sources

    monkeypatch.setattr(sources, "MAX_FILE", 1 << 20)
    bomb = tmp_path / "bomb.gz"
    with gzip.open(bomb, "wb") as f:
        for _ in range(4):
            f.write(bytes(1 << 20))  # 4 MiB of zeros in 4 KiB
    with pytest.raises(CnnError, match="more than 1 MiB once decompressed"):
        sources.read_idx(bomb)


# 7: every field of a checkpoint is checked by type as it is read -------------------------------------------------

FIELDS = ["model", "spec", "params", "files", "network", "classes", "normalization", "data", "recipe", "history",
          "resume"]
# every command that reads a checkpoint, in the folder {run}
READERS = {"eval": ["eval", "{run}"], "predict": ["predict", "{run}", "{image}"],
           "show": ["show", "filters", "{run}", "--out", "{out}"],
           "export": ["export", "{run}", "--format", "torchscript", "-o", "{out}/x.pt"],
           "--init": ["train", "{spec}", "--init", "{run}/best.pt", "--epochs", "1", "--out", "{out}/new"],
           "--resume": ["train", "{spec}", "--resume", "{run}"]}


def damaged(made: dict, folder, **fields):
    """A copy of the made run whose checkpoints hold `fields` instead of their own (written with torch.save)."""
    import torch

    run = folder / "run"
    run.mkdir()
    data = {**made["checkpoint"].to_dict(), **fields}
    for name in ("best.pt", "last.pt"):
        torch.save(data, run / name)
    return run


@pytest.mark.parametrize("field", FIELDS)
def test_a_checkpoint_field_holding_a_tensor_is_named_by_every_reader(tmp_path, made, cli, field):
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    run = damaged(made, tmp_path, **{field: torch.zeros(3)})
    for command, words in READERS.items():
        argv = [w.format(run=run, out=tmp_path, image=made["image"], spec=made["spec"]) for w in words]
        code, _, err = cli(*argv, seconds=60)
        assert code == 1, (command, err)
        assert f"the checkpoint's `{field}` is a tensor of shape (3,)" in err and "damaged or not cnndsl's" in err, \
            (command, err)
    assert not (tmp_path / "new").exists() and sorted(p.name for p in run.iterdir()) == ["best.pt", "last.pt"]


@pytest.mark.parametrize("field, value, said", [
    ("classes", ["a", 7], "`classes` is a list holding a number"),
    ("classes", ["x" * 5000], "`classes` is a list holding text of 5,000 characters"),
    ("data", {"name": "digits", "seed": "0"}, "`data.seed` is text, not a seed"),
    ("data", {"splits": {"train": 5}}, "`data.splits` is a mapping holding a number"),
    ("recipe", {"data": "digits", "seed": 0, "epochs": [[[]]] * 2, "splits": {"test": None}},
     "`recipe.splits` is a mapping holding empty (None)"),
    ("history", [{"epoch": 1, "loss": "low"}], "`history` is a list holding text"),
    ("files", {"lib.cnn": b"bytes"}, "`files` is a mapping holding a bytes"),
    ("params", {"classes": [10]}, "`params` is a mapping holding a list"),
    ("normalization", {"mean": [0.5], "std": "1"}, "`normalization` is a mapping holding text"),
])
def test_a_field_deep_in_a_checkpoint_is_named(tmp_path, made, cli, field, value, said):
    pytest.importorskip("torch")
    run = damaged(made, tmp_path, **{field: value})
    code, _, err = cli("eval", run)
    assert code == 1 and said in err, err


@pytest.mark.parametrize("part, change", [
    ("resume.phase", lambda r: r.update(phase=7)),
    ("resume.optimizer", lambda r: r.update(optimizer={"state": {}})),
    ("resume.schedule", lambda r: r.update(schedule={"bogus": 1})),
    ("resume.rng", lambda r: r["rng"].pop("torch")),
    ("resume.steps.early_stopping", lambda r: r["steps"].update(early_stopping={"best": 0.5})),
])
def test_a_resume_part_that_does_not_fit_the_run_is_named(tmp_path, made, cli, part, change):
    import copy

    pytest.importorskip("sklearn")
    resume = copy.deepcopy(made["checkpoint"].resume)
    change(resume)
    run = damaged(made, tmp_path, resume=resume)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    code, _, err = cli("train", made["spec"], "--resume", run)
    assert code == 1 and f"its `{part}` does not fit this run" in err, err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.name != ".cnndsl-run"} == before


# 13: a run claims its folder before it starts; two runs never share one ------------------------------------------

def _tiny_data(folder):
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    np.savez(folder / "d.npz", x=rng.integers(0, 256, (40, 8, 8), dtype=np.uint8), y=np.arange(40) % 10)
    return f"npz:{folder / 'd.npz'}"


def _at_once(n: int, work) -> list:
    """`work(i)` in n threads released together: what each returned, or the CnnError it raised."""
    import threading

    start, results = threading.Barrier(n), [None] * n

    def go(i: int) -> None:
        start.wait()
        try:
            results[i] = work(i)
        except CnnError as e:
            results[i] = e

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_claims_made_at_the_same_moment_give_one_folder_to_one_run(tmp_path):
    from cnndsl.errors import UsageError
    from cnndsl.training import runs

    out = tmp_path / "same"
    for _ in range(5):  # the same --out: one claim holds it, the others are refused
        claims = _at_once(6, lambda i: runs.claim(out))
        held = [c for c in claims if isinstance(c, runs.Claim)]
        assert len(held) == 1 and all(isinstance(c, UsageError) for c in claims if c not in held), claims
        assert "a run that is going now" in str(next(c for c in claims if c not in held))
        held[0].release()
        assert not out.exists() or list(out.iterdir()) == []  # it saved nothing: no marker is left
        out.rmdir() if out.exists() else None  # (made by a claim that was then refused: left, empty)
    runs.claim(out).release()
    assert not out.exists()  # made for a run that saved nothing: it goes
    base = tmp_path / "runs" / "n-20260101-000000"  # the default name: each claim takes a folder of its own
    claims = _at_once(6, lambda i: runs.claim(base, named=False))
    folders = sorted(c.folder.name for c in claims)
    assert folders == ["n-20260101-000000", *(f"n-20260101-000000-{i}" for i in range(2, 7))]
    for c in claims:
        c.release()
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_run_being_resumed_is_locked_and_an_empty_folder_is_claimed_once(tmp_path):
    from cnndsl.errors import UsageError
    from cnndsl.files import RUN_MARKER
    from cnndsl.training import runs

    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"a run")
    first = runs.claim(run, resume=True)
    with pytest.raises(UsageError, match="a `cnndsl train` is writing that run now"):
        runs.claim(run, resume=True)
    with pytest.raises(UsageError, match="holds a run already"):
        runs.claim(run)
    first.release()
    runs.claim(run, resume=True).release()  # free again
    assert (run / RUN_MARKER).exists() and (run / "last.pt").read_bytes() == b"a run"
    empty = tmp_path / "empty"
    empty.mkdir()
    claim = runs.claim(empty)
    with pytest.raises(UsageError):
        runs.claim(empty)
    claim.release()
    assert empty.is_dir() and list(empty.iterdir()) == []  # not made for the run: left as it was, empty
    (empty / RUN_MARKER).write_text("a run killed before its first epoch")  # no lock: no run holds it
    runs.claim(empty).release()
    (empty / "notes.txt").write_text("keep")
    with pytest.raises(UsageError, match="is not empty"):
        runs.claim(empty)
    assert sorted(p.name for p in empty.iterdir()) == ["notes.txt"]


def test_two_runs_started_together_into_one_folder_one_runs_the_other_is_refused(tmp_path):
    pytest.importorskip("torch")
    data, out = _tiny_data(tmp_path), tmp_path / "run"
    results = _at_once(2, lambda i: cnndsl.train(SMALL, out=out, data=data, epochs=1, seed=i, log=None))
    done = [r for r in results if not isinstance(r, CnnError)]
    assert len(done) == 1 and "--out" in str(next(r for r in results if isinstance(r, CnnError))), results
    seed = results.index(done[0])  # the folder holds the run that ran, whole
    assert cnndsl.read_run(out).saved.recipe["seed"] == seed and f"seed: {seed}\n" in (out / "recipe.yaml").read_text()
    assert {"best.pt", "last.pt", "metrics.json", "recipe.yaml"} <= {p.name for p in out.iterdir()}


def test_two_runs_with_the_default_name_in_the_same_second_each_get_a_folder(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from cnndsl.training import runs

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runs.time, "strftime", lambda fmt: "20260101-000000")
    data = _tiny_data(tmp_path)
    results = _at_once(2, lambda i: cnndsl.train(SMALL, data=data, epochs=1, seed=i, log=None))
    assert sorted(str(r.out) for r in results) == ["runs/small-20260101-000000", "runs/small-20260101-000000-2"]
    for r in results:  # each run's own results, whole
        assert cnndsl.read_run(r.out).saved.recipe["seed"] == results.index(r)
        assert {"best.pt", "last.pt", "metrics.json"} <= {p.name for p in r.out.iterdir()}


def test_a_launch_claims_the_folder_for_its_processes_and_a_refused_one_leaves_none(tmp_path, monkeypatch):
    import os

    from cnndsl.files import RUN_MARKER
    from cnndsl.training import runs

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runs.time, "strftime", lambda fmt: "20260101-000000")
    (tmp_path / "runs/small-20260101-000000").mkdir(parents=True)  # taken: the launch claims -2
    seen = []

    def processes(argv, env=None):
        folder = argv[argv.index("--out") + 1]
        seen.append((folder, env[runs.CLAIM_ENV], (tmp_path / folder / RUN_MARKER).read_text()))
        with monkeypatch.context() as m:  # what a started process finds: its folder, claimed for it
            m.setenv(runs.CLAIM_ENV, env[runs.CLAIM_ENV])
            runs.check_new(Path(folder))
            runs.claim(Path(folder)).release()
            m.delenv(runs.CLAIM_ENV)
            with pytest.raises(CnnError, match="going now"):
                runs.claim(Path(folder))
        return 1  # the processes failed before their first epoch

    monkeypatch.setattr("subprocess.call", processes)
    cpus = len(os.sched_getaffinity(0))
    spec = tmp_path / "small.cnn"
    spec.write_text(SMALL)
    plan = cnndsl.plan_training(spec, epochs=1)
    assert cnndsl.launch_training(min(2, cpus), ["train", str(spec)], "cpu", plan) == 1
    folder, token, marker = seen[0]
    assert folder == "runs/small-20260101-000000-2" and token == marker
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["small-20260101-000000"]  # none left behind
    monkeypatch.setenv("CNNDSL_MAX_MEMORY", "1M")  # refused before anything is claimed
    with pytest.raises(CnnError):
        cnndsl.launch_training(min(2, cpus), ["train", str(spec)], "cpu", plan)
    assert len(seen) == 1 and sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["small-20260101-000000"]


def test_the_lock_of_a_run_killed_with_sigkill_is_gone(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from cnndsl.errors import UsageError
    from cnndsl.training import runs

    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"a run")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
                               "from cnndsl.training import runs\nruns.claim(Path(sys.argv[1]), resume=True)\n"
                               "print('held', flush=True)\ntime.sleep(60)", str(run)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(UsageError, match="writing that run now"):  # another process's run: refused
            runs.claim(run, resume=True)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    time.sleep(0.1)
    runs.claim(run, resume=True).release()  # the kernel dropped the lock with the process



def test_writes_go_through_names_of_their_own_and_keep_the_permissions_of_what_they_replace(tmp_path):
    import os

    from cnndsl.files import atomic_write

    target = tmp_path / "best.pt"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    (tmp_path / "best.pt.tmp").symlink_to(tmp_path / "elsewhere")  # the name a writer used before: never followed
    assert atomic_write(target, b"new") == target and target.read_bytes() == b"new"
    assert os.stat(target).st_mode & 0o777 == 0o640 and not (tmp_path / "elsewhere").exists()
    assert atomic_write(target, b"other", replace=False) == tmp_path / "best-2.pt" and target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best-2.pt", "best.pt", "best.pt.tmp"]

# 14: no output replaces an input of its command, a file its spec uses, or anything in a run folder ---------------

def _outputs(made: dict, root) -> dict:
    """-o aimed at what it must not replace: {what: (argv, the file that must stay as it was)}."""
    import os

    run, spec = made["run"], made["spec"]
    (root / "lib.cnn").write_text("block b { relu }\n")
    main = root / "main.cnn"
    main.write_text('use "lib"\nnetwork m {\n    input 1x8x8\n    b\n    flatten\n    dense 2\n}\n')
    (root / "ext.pt").write_bytes((run / "best.pt").read_bytes())
    os.link(spec, root / "hard.py")
    (root / "soft.py").symlink_to(spec)
    torchscript = ["--format", "torchscript"]
    return {
        "compile -o RUN/last.pt": (["compile", spec, "-o", run / "last.pt"], run / "last.pt"),
        "check --html RUN/best.pt": (["check", spec, "--html", run / "best.pt"], run / "best.pt"),
        "plot -o a new file in RUN": (["plot", spec, "-o", run / "new.png"], run / "metrics.csv"),
        "plot -o RUN/curves.png": (["plot", spec, "-o", run / "curves.png"], run / "metrics.csv"),
        "export RUN -o RUN/best.pt": (["export", run, *torchscript, "-o", run / "best.pt"], run / "best.pt"),
        "export --weights RUN/best.pt -o it": (["export", spec, "--weights", run / "best.pt", *torchscript, "-o",
                                                 run / "best.pt"], run / "best.pt"),
        "export --weights W -o W": (["export", spec, "--weights", root / "ext.pt", *torchscript, "-o", root / "ext.pt"],
                                    root / "ext.pt"),
        "compile main -o a file it uses": (["compile", main, "-o", root / "lib.cnn"], root / "lib.cnn"),
        "compile -o the spec": (["compile", spec, "-o", spec], spec),
        "compile -o a hard link of the spec": (["compile", spec, "-o", root / "hard.py"], spec),
        "compile -o a link to the spec": (["compile", spec, "-o", root / "soft.py"], spec),
        "check --html the spec": (["check", main, "--html", main], main),
        "plot -o a file the spec uses": (["plot", main, "-o", root / "lib.cnn.dot"], root / "lib.cnn"),
        "show --out another run": (["show", "filters", run / "best.pt", "--out", root / "other"], run / "best.pt"),
    }


def test_no_output_replaces_an_input_or_a_file_of_a_run(tmp_path, made, cli):
    import shutil

    pytest.importorskip("torch")
    other = tmp_path / "other"  # a second run, into which show must not write another run's pictures
    other.mkdir()
    shutil.copy(made["run"] / "metrics.csv", other)
    shutil.copy(made["run"] / "best.pt", other / "last.pt")
    run_before = {p.name: p.read_bytes() for p in made["run"].iterdir()}
    for what, (argv, kept) in _outputs(made, tmp_path).items():
        if what == "plot -o a file the spec uses":  # (a name that the plot's format allows)
            (tmp_path / "lib.cnn.dot").symlink_to(tmp_path / "lib.cnn")
        before = kept.read_bytes()
        code, _, err = cli(*argv)
        assert code == 2 and "error: " in err, (what, err)
        assert kept.read_bytes() == before, what
    assert {p.name: p.read_bytes() for p in made["run"].iterdir()} == run_before
    assert sorted(p.name for p in other.iterdir()) == ["last.pt", "metrics.csv"]


def test_show_adds_pictures_to_its_own_run_never_over_a_file(tmp_path, made, cli):
    import shutil

    pytest.importorskip("torch")
    run = Path(shutil.copytree(made["run"], tmp_path / "run"))
    (run / "filters-conv1.png").write_bytes(b"an earlier picture")
    code, out, _ = cli("show", "filters", run)
    assert code == 0 and f"wrote {run / 'filters-conv1-2.png'}" in out
    assert (run / "filters-conv1.png").read_bytes() == b"an earlier picture"


@pytest.mark.parametrize("kind", ["fifo", "device", "loop", "folder"])
def test_an_output_that_is_not_a_file_is_refused(tmp_path, made, cli, kind):
    target = special(tmp_path, kind, ".py")
    for argv in (["compile", made["spec"], "-o", target], ["check", made["spec"], "--html", target],
                 ["plot", made["spec"], "-o", special(tmp_path, kind, ".dot")]):
        code, _, err = cli(*argv, seconds=30)
        assert code == 2 and ("not a file" in err or "is a folder" in err or "loop" in err), err
    assert target.is_symlink() or target.exists()


def test_a_run_is_never_made_inside_another_run(tmp_path, made, cli):
    code, _, err = cli("train", made["spec"], "--out", made["run"] / "nested")
    assert code == 2 and "is in the folder of another run" in err
    assert not (made["run"] / "nested").exists()


# 15 (the rest): no user text reaches the terminal raw from train, eval, predict, show, export or a warning ---------

def _raw(text: str) -> list[str]:
    """The control characters of printed text (a newline is not one)."""
    return [c for c in text if not c.isprintable() and c != "\n"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_class_names_file_names_and_paths_are_escaped_in_every_commands_output(tmp_path, made, cli, payload):
    torch = pytest.importorskip("torch")
    np = pytest.importorskip("numpy")
    from PIL import Image

    name = payload.replace("/", "")
    data = tmp_path / "data"
    for cls in (f"cat{name}", f"dog{name}"):  # class names: folder names, printed in train's per-class table
        (data / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(data / cls / f"{i}.png")
    image = tmp_path / f"img{name}.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    out = tmp_path / f"run{name}"
    spec = made["spec"]
    said = [cli("train", spec, "--data", f"folder:{data}", "--epochs", "1", "--set", "classes=2", "--out", out)]
    assert said[0][0] == 0, said[0][2]
    checkpoint = {**made["checkpoint"].to_dict(), "classes": [f"{i}{name}" for i in range(10)]}
    torch.save(checkpoint, tmp_path / f"c{name}.pt")
    said += [cli("eval", out), cli("eval", out, "--data", "digits"), cli("predict", out, image),
             cli("predict", tmp_path / f"c{name}.pt", image), cli("show", "maps", out, image),
             cli("export", out, "--format", "torchscript", "-o", tmp_path / f"x{name}.pt"),
             cli("eval", out, "--data", f"npz:{tmp_path / name}"), cli("check", spec, "--html", out / "x.html")]
    for _, stdout, stderr in said:
        assert not _raw(stdout) and not _raw(stderr), (stdout, stderr)
    assert printable(f"  cat{name}  ", False) in said[0][1]  # the per-class table


def test_class_names_and_file_names_are_plain_labels_in_pictures(tmp_path):
    pytest.importorskip("matplotlib")
    torch = pytest.importorskip("torch")
    from cnndsl.training import plots

    plots.confusion(torch.tensor([0, 1]), torch.tensor([1, 1]), ["$\\x$", "a$b\x1b[2J"], tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_the_command_lines_streams_escape_what_is_written_and_leave_the_terminal_beneath():
    import io

    from cnndsl.errors import Printable, terminal

    raw = io.StringIO()
    stream = Printable(raw)
    stream.write("plain\nlines\n")
    stream.write("a\x1b]52;c;cHduZWQ=\x07b\tc\n")
    assert raw.getvalue() == "plain\nlines\na?]52;c;cHduZWQ=?b c\n" and terminal(stream) is raw
