"""Generated files, folders, names and command lines for the fuzz of what surrounds a spec (issue "Nothing hangs,
nothing is lost, no internal error"): what the user's machine holds where a command reads or writes.

Four surfaces, each a strategy of scenarios and a function that runs one in this process (`cnndsl.cli.main`,
each command within a time limit) and says what happened:

- `special_reads()`: every path argument of every command aimed at what is not a regular file (a FIFO, a device,
  a link loop, a dangling link, a folder, a file that is empty, random bytes, or a truncated checkpoint): the
  command must answer within its time (a read that blocks is a failure) with exit 1 or 2 and a message.
- `claims()`: two to four claims of a run folder made at once, into one `--out`, with the default name in the
  same second, or as a `--resume` of a run: at most one holds a folder, the others are refused or take a
  folder of their own, and no file of a run changes under another; `whole_runs()`: whole trainings so.
- `outputs()`: every `-o` (and `--html`, `show --out`) aimed at every input and run file, by its own name, a
  link, a hard link or a roundabout path, and at new files: refused with exit 2 and nothing changed, or (a
  file no rule protects) written.
- `control_texts()`: control characters (C0, DEL, C1, escape sequences that set the title, clear the screen or
  write the clipboard, bidirectional overrides, line separators) in every user string: spec strings, file and
  folder names, class names, recipe values, --set values, network names: nothing printed holds one raw.

An internal error, a traceback, an exit code other than 0, 1 or 2, or a command past its time is a failure
(raised, or logged with CNNDSL_FUZZ_LOG as fuzz_specs does).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from fuzz_specs import count, fail

SECONDS = 20  # a command that takes longer is a failure: nothing the user's machine holds may hang the tool

# -- running a command in this process


class TookTooLong(BaseException):
    """The timer of `run`: a BaseException, so that no `except Exception` of the tool takes it for its own."""


@dataclass
class Said:
    code: int
    out: str
    err: str


def run(*args, seconds: int = SECONDS) -> Said:
    """`cnndsl ARGS...` in this process (the main thread: SIGALRM interrupts a read that blocks)."""
    from cnndsl.cli import main

    out, err = io.StringIO(), io.StringIO()

    def expire(signum, frame):
        raise TookTooLong(f"more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire) if threading.current_thread() is threading.main_thread() else None
    signal.alarm(seconds) if previous is not None else None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as e:  # argparse
                code = e.code if isinstance(e.code, int) else 2
    finally:
        if previous is not None:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    return Said(code, out.getvalue(), err.getvalue())


def judged(surface: str, shown: str, said: Said, codes=(0, 1, 2)) -> bool:
    """Counts the outcome; a failure (an internal error, a traceback, another exit code, a refusal without a
    message) is raised or logged. True when the command ended as it may."""
    count(f"{surface}: exit {said.code}")
    if "internal error" in said.err or "Traceback" in said.err:
        kind = said.err.split("internal error: ", 1)[-1].split(":", 1)[0].strip() if "internal error" in said.err \
            else "Traceback"
        fail(surface, shown, f"exit {said.code}: {said.err[-2000:]}", kind)
        return False
    if said.code not in codes:
        fail(surface, shown, f"exit {said.code}, not {codes}: {said.err[-2000:]}")
        return False
    if said.code and not said.err.strip() and '"errors": [' not in said.out:  # check --json: the errors as JSON
        fail(surface, shown, f"exit {said.code} without a message")
        return False
    return True


def timed(surface: str, shown: str, *args, seconds: int = SECONDS) -> Said | None:
    """`run`, with a command past its time counted and failed (None then)."""
    try:
        return run(*args, seconds=seconds)
    except TookTooLong:
        count(f"{surface}: took too long")
        fail(surface, shown, f"did not finish in {seconds} s", "TookTooLong")
        return None


# -- a scene: a spec, a file it uses, an image, a run (made, not trained), and tiny data

SPEC = """use "lib"
network small(classes = 10, tag = "x") {
    input 1x8x8
    conv 4 kernel=3 padding=same
    b tag
    globalavgpool
    dense classes
}
"""
LIB = "block b(label) { relu }\n"


def scene(root: Path) -> dict[str, Path]:
    """The files a command may read, in `root`: {name: path}. About 0.1 s (a checkpoint is saved, not trained)."""
    import numpy as np
    import torch
    from PIL import Image

    import cnndsl
    from cnndsl import saved

    (root / "small.cnn").write_text(SPEC)
    (root / "lib.cnn").write_text(LIB)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "img.png")
    rng = np.random.default_rng(0)
    np.savez(root / "d.npz", x=rng.integers(0, 256, (40, 8, 8), dtype=np.uint8), y=np.arange(40) % 10)
    (root / "r.yaml").write_text("epochs: 1\nbatch_size: 8\n")
    run = root / "run"
    run.mkdir()
    spec = cnndsl.load(root / "small.cnn")
    model = spec.build()
    optimizer = torch.optim.Adam(model.parameters())
    history = [{"epoch": 1, "loss": 2.3, "accuracy": 0.1, "val_loss": 2.3, "val_accuracy": 0.1, "lr": 0.001,
                "seconds": 1.0}]
    from cnndsl.training.recipe import Recipe

    recipe = {**Recipe().to_dict(), "epochs": 2, "batch_size": 8, "data": f"npz:{root / 'd.npz'}"}
    checkpoint = saved.Checkpoint(
        model=model.state_dict(), spec=SPEC, files={"lib.cnn": LIB}, network="small",
        classes=[str(i) for i in range(10)],
        data={"name": recipe["data"], "splits": {}, "seed": 0, "input": [1, 8, 8], "notes": []},
        recipe=recipe, history=history,
        resume={"phase": 0, "optimizer": optimizer.state_dict(), "schedule": {"best": None, "wait": 0, "scale": 1.0},
                "steps": {}, "rng": {"shuffle": torch.Generator().get_state(), "augment": torch.Generator().get_state(),
                                     "torch": torch.get_rng_state()}})
    for name in ("best.pt", "last.pt"):
        saved.save(run / name, checkpoint)
    for name, text in (("metrics.csv", "epoch,loss\n1,2.3\n"), ("metrics.json", "{}"), ("recipe.yaml", "epochs: 2\n"),
                       (".cnndsl-run", "")):
        (run / name).write_text(text)
    (run / "curves.png").write_bytes((root / "img.png").read_bytes())
    return {"spec": root / "small.cnn", "lib": root / "lib.cnn", "image": root / "img.png", "npz": root / "d.npz",
            "recipe": root / "r.yaml", "run": run, "best": run / "best.pt", "last": run / "last.pt"}


def snapshot(*folders: Path) -> dict[str, bytes]:
    """Every file under the folders, by path: what no refused command may change."""
    out = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                out[str(path)] = path.read_bytes()
    return out


# -- surface 1: special files where a file is read

SPECIALS = ["fifo", "dev-zero", "dev-null", "dev-urandom", "loop", "loop2", "dangling", "folder", "fifo-link",
            "empty", "random-bytes", "truncated-checkpoint", "no-read-permission"]

# {p}: the special path; the scene's files by name
READS = {
    "check SPEC": ["check", "{p}"],
    "check --json SPEC": ["check", "{p}", "--json"],
    "compile SPEC": ["compile", "{p}"],
    "plot SPEC": ["plot", "{p}", "-o", "{root}/out.dot"],
    "train SPEC": ["train", "{p}", "--data", "npz:{npz}", "--epochs", "1", "--out", "{root}/new"],
    "train --recipe": ["train", "{spec}", "--recipe", "{p}", "--data", "npz:{npz}", "--epochs", "1", "--out",
                       "{root}/new"],
    "train --data npz:": ["train", "{spec}", "--data", "npz:{p}", "--epochs", "1", "--out", "{root}/new"],
    "train --data folder:": ["train", "{spec}", "--data", "folder:{p}", "--epochs", "1", "--out", "{root}/new"],
    "train --init": ["train", "{spec}", "--init", "{p}", "--data", "npz:{npz}", "--epochs", "1", "--out",
                     "{root}/new"],
    "train --resume": ["train", "{spec}", "--resume", "{p}"],
    "eval RUN": ["eval", "{p}"],
    "eval --weights": ["eval", "{spec}", "--weights", "{p}"],
    "eval --spec": ["eval", "{best}", "--spec", "{p}"],
    "eval --data npz:": ["eval", "{run}", "--data", "npz:{p}"],
    "predict RUN": ["predict", "{p}", "{image}"],
    "predict IMAGE": ["predict", "{run}", "{p}"],
    "predict --weights": ["predict", "{spec}", "{image}", "--weights", "{p}"],
    "export RUN": ["export", "{p}", "--format", "torchscript", "-o", "{root}/x.pt"],
    "export --weights": ["export", "{spec}", "--weights", "{p}", "--format", "torchscript", "-o", "{root}/x.pt"],
    "show filters RUN": ["show", "filters", "{p}", "--out", "{root}"],
    "show maps IMAGE": ["show", "maps", "{run}", "{p}", "--out", "{root}"],
    "show cam IMAGE": ["show", "cam", "{run}", "{p}", "--out", "{root}"],
    "show --spec": ["show", "filters", "{best}", "--spec", "{p}", "--out", "{root}"],
}


def make_special(folder: Path, kind: str, name: str) -> Path:
    """`kind` (one of SPECIALS) at folder/name."""
    path = folder / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind.startswith("dev-"):
        path.symlink_to(f"/dev/{kind[4:]}")
    elif kind == "loop":
        path.symlink_to(path.name)
    elif kind == "loop2":
        path.symlink_to(f"{path.name}.other")
        (folder / f"{path.name}.other").symlink_to(path.name)
    elif kind == "dangling":
        path.symlink_to("nowhere/at/all")
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo-link":
        os.mkfifo(folder / f"{name}.fifo")
        path.symlink_to(f"{name}.fifo")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random-bytes":
        path.write_bytes(os.urandom(3000))
    elif kind == "truncated-checkpoint":
        import torch

        buffer = io.BytesIO()
        torch.save({"model": {"w": torch.zeros(100)}, "version": 2}, buffer)
        path.write_bytes(buffer.getvalue()[:300])
    elif kind == "no-read-permission":
        path.write_text("network n {\n input 8\n dense 2\n}\n")
        path.chmod(0)
    return path


@st.composite
def special_reads(draw) -> tuple[str, str, str]:
    """(command, kind of special file, its suffix)."""
    command = draw(st.sampled_from(sorted(READS)))
    kind = draw(st.sampled_from(SPECIALS))
    suffix = draw(st.sampled_from([".cnn", ".pt", ".png", ".yaml", ".npz", ".safetensors", ""]))
    return command, kind, suffix


def run_special_read(files: dict[str, Path], root: Path, command: str, kind: str, suffix: str) -> None:
    p = make_special(root, kind, f"special{suffix}")
    argv = [w.format(p=p, root=root, **files) for w in READS[command]]
    shown = f"cnndsl {' '.join(argv)}  # {kind}"
    said = timed(f"special file ({command})", shown, *argv)
    if said is not None and judged(f"special file ({command})", shown, said):
        if kind in ("fifo", "dev-zero", "dev-urandom", "loop", "loop2", "fifo-link") and said.code == 0:
            fail(f"special file ({command})", shown, "a special file was read as a file", "Accepted")


# -- surface 2: runs started at once


@st.composite
def claims(draw) -> tuple[str, int, list[float]]:
    """(how the runs are started, how many, each one's delay after the others are released: 0 to 2 ms)."""
    how = draw(st.sampled_from(["same --out", "default name", "resume", "resume and new", "existing empty --out"]))
    n = draw(st.integers(2, 4))
    return how, n, draw(st.lists(st.sampled_from([0.0, 0.0, 1e-4, 5e-4, 1e-3, 2e-3]), min_size=n, max_size=n))


def run_claims(root: Path, files: dict[str, Path], how: str, n: int, delays: list[float]) -> None:
    """`n` claims of run folders at one moment, as `train` makes them: at most one holds a folder."""
    import time

    from cnndsl.errors import CnnError
    from cnndsl.training import runs

    shown = f"{n} runs at once: {how}, delays {delays}"
    target = {"same --out": root / "same", "default name": root / "runs" / "s-20260101-000000",
              "existing empty --out": root / "empty"}.get(how, files["run"])
    if how == "existing empty --out":
        target.mkdir(exist_ok=True)
    before = snapshot(files["run"])
    start, results = threading.Barrier(n), [None] * n

    def go(i: int) -> None:
        start.wait()
        time.sleep(delays[i])
        try:
            resume = how == "resume" or (how == "resume and new" and i % 2 == 0)
            results[i] = runs.claim(target, resume=resume, named=how != "default name")
        except CnnError as e:
            results[i] = e
        except Exception as e:  # noqa: BLE001
            results[i] = e

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS)
    held = [r for r in results if isinstance(r, runs.Claim)]
    others = [r for r in results if not isinstance(r, runs.Claim)]
    count(f"claims: {how}: {len(held)} held, {len(others)} refused")
    problems = [f"{type(r).__name__}: {r}" for r in others if not isinstance(r, CnnError)]
    folders = [os.path.realpath(c.folder) for c in held]
    if len(set(folders)) != len(folders):
        problems.append(f"{len(folders) - len(set(folders))} folders held twice")
    if how != "default name" and len(held) != 1:
        problems.append(f"{len(held)} claims hold {target}")
    if how == "default name" and others:
        problems.append(f"refused, where a default name takes a suffix: {others}")
    for c in held:
        c.release()
    if snapshot(files["run"]) != before and how != "resume" and how != "resume and new":
        problems.append("the run's files changed")
    if problems:
        fail("claims", shown, "; ".join(problems), "Collision")


@st.composite
def whole_runs(draw) -> tuple[str, int, list[float]]:
    """(where the runs go: one --out, or the default name in one second; how many; each one's delay)."""
    how, n = draw(st.sampled_from(["same --out", "default name"])), draw(st.integers(2, 3))
    return how, n, draw(st.lists(st.sampled_from([0.0, 0.005, 0.01, 0.03]), min_size=n, max_size=n))


def run_whole_runs(root: Path, files: dict[str, Path], how: str, n: int, delays: list[float]) -> None:
    """`n` one-epoch trainings started at one moment (cnndsl.train, threads): each ends with its results whole
    in a folder of its own, or is refused before it writes; none is lost or mixed with another."""
    import time

    import cnndsl
    from cnndsl.errors import CnnError
    from cnndsl.training import runs

    shown = f"{n} trainings at once: {how}, delays {delays}"
    out = None if how == "default name" else root / "same"
    start, results = threading.Barrier(n), [None] * n

    def go(i: int) -> None:
        start.wait()
        time.sleep(delays[i])
        try:
            results[i] = cnndsl.train(files["spec"], out=out, data=f"npz:{files['npz']}", epochs=1, batch_size=8,
                                      seed=i, log=None)
        except CnnError as e:
            results[i] = e
        except Exception as e:  # noqa: BLE001
            results[i] = e

    cwd, strftime = os.getcwd(), runs.time.strftime
    os.chdir(root)
    runs.time.strftime = lambda fmt: "20260101-000000"  # one second for all
    try:
        threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        os.chdir(cwd)
        runs.time.strftime = strftime
    done = [(i, r) for i, r in enumerate(results) if hasattr(r, "out")]
    problems = [f"{type(r).__name__}: {r}" for r in results if not hasattr(r, "out") and not isinstance(r, CnnError)]
    folders = [os.path.realpath(root / r.out) for _, r in done]
    if len(set(folders)) != len(folders):
        problems.append("two runs reported one folder")
    if not done or (out is not None and len(done) != 1) or (out is None and len(done) != n):
        problems.append(f"{len(done)} of {n} runs ran")
    for i, r in done:  # each folder holds its own run, whole
        saved = cnndsl.read_run(root / r.out).saved
        if saved.recipe.get("seed") != i or len(saved.history) != 1:
            problems.append(f"{r.out} holds seed {saved.recipe.get('seed')}, not run {i}'s")
    count(f"whole runs: {how}: {len(done)} ran, {n - len(done)} refused")
    if problems:
        fail("whole runs", shown, "; ".join(problems), "Collision")


# -- surface 3: every output aimed at every input and run file

WRITERS = {  # the command, and the scene's files it reads
    "compile -o": (["compile", "{spec}", "-o", "{t}"], ("spec", "lib")),
    "check --html": (["check", "{spec}", "--html", "{t}"], ("spec", "lib")),
    "plot -o": (["plot", "{spec}", "-o", "{t}"], ("spec", "lib")),
    "export RUN -o": (["export", "{run}", "--format", "torchscript", "-o", "{t}"], ("best",)),
    "export --weights -o": (["export", "{spec}", "--weights", "{best}", "--format", "torchscript", "-o", "{t}"],
                            ("spec", "lib", "best")),
    "show filters --out": (["show", "filters", "{run}", "--out", "{t}"], ("best",)),
    "train --out": (["train", "{spec}", "--data", "npz:{npz}", "--epochs", "1", "--batch-size", "8", "--out", "{t}"],
                    ("spec", "lib", "npz")),
}
# where an output is aimed: an input or a run's file, by its name or another, special files, and places no rule
# protects ("fresh": a new file; "other folder": a folder that is no run's)
TARGETS = ["spec", "lib", "best", "last", "run/metrics.csv", "run/recipe.yaml", "run/curves.png", "run/.cnndsl-run",
           "run/new", "run/sub/new", "hard link of spec", "hard link of best", "link to lib", "link to best",
           "roundabout spec", "roundabout best", "link to run/new", "fresh", "fresh in new folder", "fifo", "folder",
           "loop", "dev-null", "run folder", "other folder"]


@st.composite
def outputs(draw) -> tuple[str, str, str]:
    """(writer, target, ending of a new file's name)."""
    return draw(st.sampled_from(sorted(WRITERS))), draw(st.sampled_from(TARGETS)), \
        draw(st.sampled_from([".py", ".html", ".dot", ".pt", ".png"]))


def aim(root: Path, files: dict[str, Path], target: str, ending: str) -> tuple[Path, str | None]:
    """The path `target` names in the scene (made where it is a link or a special file), and the scene's file it
    names by another name (None: a name of its own)."""
    run = files["run"]
    if target in files:
        return files[target], target
    if target.startswith("run/"):
        return run / target[4:].replace("new", f"new{ending}"), None
    if target.startswith("hard link of "):
        what = target.split()[-1]
        os.link(files[what], root / f"hard{ending}")
        return root / f"hard{ending}", what
    if target.startswith("link to "):
        what = target[len("link to "):]
        (root / f"link{ending}").symlink_to(files.get(what) or run / f"new{ending}")
        return root / f"link{ending}", what if what in files else None
    if target.startswith("roundabout "):
        what = target.split()[1]
        return Path(os.path.relpath(files[what].parent, Path.cwd())) / ".." / files[what].parent.name / \
            files[what].name, what
    if target == "fresh":
        return root / f"fresh{ending}", None
    if target == "fresh in new folder":
        (root / "made").mkdir(exist_ok=True)
        return root / "made" / f"fresh{ending}", None
    if target == "run folder":
        return run, None
    if target == "other folder":
        (root / "pictures").mkdir(exist_ok=True)
        return root / "pictures", None
    return make_special(root, target, f"{target}{ending}"), None


def refused(writer: str, target: str, names: str | None, ending: str) -> bool:
    """Whether the command must refuse the output: a file it reads, by any name; a path in a run's folder; not what
    it writes (a special file or a folder for a file; for `show`, anything but a folder that is no other run's)."""
    if writer.startswith("show"):
        return target not in ("other folder", "folder", "run folder")
    if writer == "train --out":  # a new or empty folder that is in no run's
        return target not in ("other folder", "folder", "fresh", "fresh in new folder")
    in_run = target in ("best", "last", "roundabout best", "run folder") or target.startswith("run/")
    special = target in ("fifo", "folder", "loop", "dev-null", "other folder")
    unknown_format = writer == "plot -o" and ending not in (".dot", ".png")  # (.svg and .pdf: no file of the fuzz)
    return names in WRITERS[writer][1] or in_run or special or unknown_format


def run_output(root: Path, files: dict[str, Path], writer: str, target: str, ending: str) -> None:
    t, names = aim(root, files, target, ending)
    words, reads = WRITERS[writer]
    argv = [w.format(t=t, **files) for w in words]
    shown = f"cnndsl {' '.join(argv)}  # -o at {target}"
    kept = snapshot(files["run"]) | {str(files[n]): files[n].read_bytes() for n in reads if n in ("spec", "lib")}
    said = timed(f"output ({writer})", shown, *argv)
    if said is None or not judged(f"output ({writer})", shown, said):
        return
    must_refuse = refused(writer, target, names, ending)
    changed = [p for p, data in kept.items() if not Path(p).is_file() or Path(p).read_bytes() != data]
    if changed:
        fail(f"output ({writer})", shown, f"changed {', '.join(changed)}", "Overwritten")
    elif must_refuse and said.code == 0:
        fail(f"output ({writer})", shown, "wrote where no output may go", "Accepted")
    elif not must_refuse and said.code not in ((0, 1) if writer == "plot -o" else (0,)):  # (1: no Graphviz)
        fail(f"output ({writer})", shown, f"refused a file it may write: {said.err[-500:]}", "Refused")


# -- surface 4: control characters in every user string

CONTROLS = ["\x1b]0;pwned\x07", "\x1b[2J", "\x1b]52;c;cHduZWQ=\x07", "\x9b2J", "\x1b[8m", "a\rb", "\x07", "\x08",
            "\x7f", "\x85", "\u202e", "\u2028", "\u200b", "\x1bP+q\x1b\\", "\t", "\x00"]
PLACES = ["spec string", "spec file name", "spec folder name", "used file name", "image name", "class name",
          "recipe data", "recipe init", "set value", "network name", "out name", "checkpoint class", "npz name"]


@st.composite
def control_texts(draw) -> tuple[str, str]:
    """(where the text goes, the text: one to three pieces of control characters and plain letters)."""
    pieces = draw(st.lists(st.sampled_from([*CONTROLS, "ok", "$\\x$", "é"]), min_size=1, max_size=3))
    if not any(p in CONTROLS for p in pieces):
        pieces.append(draw(st.sampled_from(CONTROLS)))
    return draw(st.sampled_from(PLACES)), "".join(pieces)


SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's colours, with --color always: the tool's own, not the user's


def raw(text: str) -> list[str]:
    return [c for c in SGR.sub("", text) if not c.isprintable() and c != "\n"]


def run_control_text(root: Path, files: dict[str, Path], place: str, text: str, train: bool) -> None:
    """The commands that print what `text` in `place` reaches: no control character reaches their output."""
    import numpy as np
    import torch
    from PIL import Image

    name = text.replace("/", "").replace("\x00", "") or "x"
    spec, image, run = files["spec"], files["image"], files["run"]
    commands: list[list] = []
    if place == "spec string":
        spec = root / "s.cnn"
        spec.write_text(SPEC.replace('tag = "x"', f"tag = {_quoted(text)}"), encoding="utf-8", errors="surrogatepass")
        commands = [["check", spec], ["check", spec, "--color", "always"], ["check", spec, "--markdown"],
                    ["check", spec, "--explain"], ["compile", spec], ["plot", spec, "-o", root / "d.dot"]]
    elif place in ("spec file name", "spec folder name", "used file name"):
        folder = root / (f"f{name}" if place == "spec folder name" else "f")
        folder.mkdir(exist_ok=True)
        lib = f"l{name}" if place == "used file name" else "lib"
        (folder / f"{lib}.cnn").write_text(LIB)
        spec = folder / (f"s{name}.cnn" if place == "spec file name" else "s.cnn")
        spec.write_text(SPEC.replace('use "lib"', f"use {_quoted(lib)}"))
        commands = [["check", spec], ["check", spec, "--color", "always"], ["compile", spec, "-o", root / "o.py"],
                    ["plot", spec, "-o", root / "d.dot"], ["check", spec, "--html", root / "p.html"],
                    ["check", folder / f"missing{name}.cnn"]]
    elif place == "image name":
        image = root / f"i{name}.png"
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
        commands = [["predict", run, image], ["show", "maps", run, image, "--out", root],
                    ["predict", run, root / f"no{name}.png"]]
    elif place in ("class name", "checkpoint class"):
        state = torch.load(files["best"], weights_only=True)
        state["classes"] = [f"{i}{name}" for i in range(10)]
        torch.save(state, root / "c.pt")
        commands = [["predict", root / "c.pt", image], ["show", "cam", root / "c.pt", image, "--out", root],
                    ["eval", root / "c.pt"]]
        if train and place == "class name":
            data = root / "folder"
            for cls in (f"a{name}", f"b{name}"):
                (data / cls).mkdir(parents=True)
                for i in range(5):
                    Image.fromarray(np.full((8, 8), 50 * i, np.uint8)).save(data / cls / f"{i}.png")
            commands.append(["train", files["spec"], "--data", f"folder:{data}", "--set", "classes=2", "--epochs", "1",
                             "--out", root / "t"])
    elif place in ("recipe data", "recipe init", "npz name"):
        key = {"recipe data": "data", "recipe init": "init", "npz name": "data"}[place]
        value = f"npz:{root / name}" if place == "npz name" else text
        (root / "r.yaml").write_text(f"{key}: {_quoted(value)}\n", encoding="utf-8", errors="surrogatepass")
        commands = [["train", files["spec"], "--recipe", root / "r.yaml", "--epochs", "1", "--out", root / "t"],
                    ["eval", run, "--data", value if key == "data" else text]]
    elif place == "set value":
        commands = [["check", files["spec"], "--set", f"tag={text}"], ["check", files["spec"], "--set", f"{text}=1"],
                    ["compile", files["spec"], "--set", f"tag={_quoted(text)}"]]
    elif place == "network name":
        commands = [["check", files["spec"], "--network", text], ["eval", run, "--network", text]]
    elif place == "out name":
        (root / f"o{name}").mkdir(exist_ok=True)
        tiny = ["--data", f"npz:{files['npz']}", "--epochs", "1", "--batch-size", "8"]
        commands = [["export", run, "--format", "torchscript", "-o", root / f"x{name}.pt"],
                    ["show", "filters", run, "--out", root / f"o{name}"],
                    ["plot", files["spec"], "-o", root / f"p{name}"],
                    ["train", files["spec"], *tiny, "--out", root / f"r{name}" / ".."]]
        if train:
            commands.append(["train", files["spec"], *tiny, "--out", root / f"r{name}"])
    for argv in commands:
        shown = f"cnndsl {' '.join(map(repr, map(str, argv)))}  # control characters in the {place}"
        said = timed(f"control characters ({place})", shown, *argv, seconds=60)
        if said is None or not judged(f"control characters ({place})", shown, said):
            continue
        if argv[0] == "compile" and "-o" not in argv:
            said.out = ""  # generated source: user text in it goes through repr()
        found = raw(said.out) + raw(said.err)
        if found:
            fail(f"control characters ({place})", shown, f"printed raw: {found!r} in {(said.out + said.err)[-800:]!r}",
                 "RawControl")


def _quoted(text: str) -> str:
    """`text` as a spec or YAML string literal: double quotes, with backslashes and quotes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
