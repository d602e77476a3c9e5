"""What surrounds a spec, fuzzed (issue "Nothing hangs, nothing is lost, no internal error"): special files for
every path argument, runs started at once, every output aimed at every input and run file, and control
characters in every user string (tests/fuzz_files.py has the generators). Each command runs in this process
within a time limit. 161 inputs here, in well under a minute; CNNDSL_FUZZ=deep runs about 4,600
(docs/testing.md)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from fuzz_files import (
    claims,
    control_texts,
    outputs,
    run_claims,
    run_control_text,
    run_output,
    run_special_read,
    run_whole_runs,
    scene,
    special_reads,
    whole_runs,
)
from hypothesis import given

from fuzz_specs import DEEP, fuzz_settings

pytest.importorskip("torch")
pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The scene, made once: each input gets a copy of its own."""
    root = tmp_path_factory.mktemp("scene")
    scene(root)
    return root


class Copy:
    """A fresh copy of the scene, and its files by name, for one input (removed after it)."""

    def __init__(self, template: Path):
        self.template = template

    def __enter__(self) -> tuple[Path, dict]:
        self.folder = tempfile.mkdtemp(prefix="fuzz-")
        root = Path(shutil.copytree(self.template, Path(self.folder) / "s", symlinks=True))
        files = {"spec": root / "small.cnn", "lib": root / "lib.cnn", "image": root / "img.png", "npz": root / "d.npz",
                 "recipe": root / "r.yaml", "run": root / "run", "best": root / "run/best.pt",
                 "last": root / "run/last.pt"}
        return root, files

    def __exit__(self, *exc) -> None:
        for path in Path(self.folder).rglob("*"):  # (a file made unreadable by the input)
            if not path.is_symlink():
                os.chmod(path, 0o700)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def limits(monkeypatch):
    monkeypatch.setenv("CNNDSL_MAX_MEMORY", "16G")
    monkeypatch.setenv("MPLBACKEND", "Agg")


@fuzz_settings(ci=50, deep=2100)  # deep: every (command, file, ending) there is
@given(special_reads())
def test_special_files_wherever_a_file_is_read(template, scenario):
    with Copy(template) as (root, files):
        run_special_read(files, root, *scenario)


@fuzz_settings(ci=30, deep=1000)
@given(claims())
def test_runs_started_at_once(template, scenario):
    with Copy(template) as (root, files):
        run_claims(root, files, *scenario)


@fuzz_settings(ci=1, deep=40)
@given(whole_runs())
def test_whole_runs_started_at_once(template, scenario):
    with Copy(template) as (root, files):
        run_whole_runs(root, files, *scenario)


@fuzz_settings(ci=60, deep=1000)  # deep: every (writer, target, ending) there is
@given(outputs())
def test_every_output_at_every_input_and_run_file(template, scenario):
    with Copy(template) as (root, files):
        run_output(root, files, *scenario)


@fuzz_settings(ci=20, deep=600)
@given(control_texts())
def test_control_characters_in_every_user_string(template, scenario):
    with Copy(template) as (root, files):
        run_control_text(root, files, *scenario, train=DEEP)
