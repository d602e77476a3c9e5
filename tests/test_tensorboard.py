"""`tensorboard: true` / --tensorboard: RUN/tensorboard/ holds metrics.csv's figures, read back as TensorBoard
reads them."""

from __future__ import annotations

import csv
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("tensorboard")

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.cli import main  # noqa: E402
from cnndsl.errors import CnnError, UsageError  # noqa: E402
from cnndsl.training.loop import train  # noqa: E402
from cnndsl.training.recipe import Recipe, load_recipe  # noqa: E402
from conftest import SMALL  # noqa: E402

CURVES = {"train": {"epoch_loss": "loss", "epoch_accuracy": "accuracy", "epoch_learning_rate": "lr",
                    "epoch_seconds": "seconds"},
          "validation": {"epoch_loss": "val_loss", "epoch_accuracy": "val_accuracy"}}


def quiet(_line: str) -> None:
    pass


def read(folder) -> dict:
    """{tag: [(step, value)]} of one TensorBoard run folder, as TensorBoard shows it (restarts purged)."""
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def f32(x: float) -> float:
    return float(np.float32(x))


def assert_curves(out, history: list[dict]) -> None:
    """Each split's tags hold exactly one value per epoch, 1..N, the history's (in float32)."""
    for split, tags in CURVES.items():
        scalars = read(out / "tensorboard" / split)
        assert sorted(scalars) == sorted(tags)
        for tag, key in tags.items():
            assert scalars[tag] == [(row["epoch"], f32(row[key])) for row in history], (split, tag)


def test_the_scalars_are_the_metrics_files(tmp_path):
    result = train(cnndsl.loads(SMALL), load_recipe(None, epochs=2, tensorboard=True), tmp_path, log=quiet)
    with open(tmp_path / "metrics.csv") as f:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    assert [row["epoch"] for row in rows] == [1, 2]
    assert_curves(tmp_path, rows)
    assert_curves(tmp_path, result.history)
    test = EventAccumulator(str(tmp_path / "tensorboard/test"), size_guidance={"scalars": 0, "tensors": 0})
    test.Reload()
    best = result.best_epoch
    assert [(e.step, e.value) for e in test.Scalars("epoch_accuracy")] == [(best, f32(result.test_accuracy))]
    assert [(e.step, e.value) for e in test.Scalars("epoch_loss")] == [(best, f32(result.test_loss))]
    [text] = test.Tensors("test/text_summary")
    assert text.tensor_proto.string_val[0].decode() == \
        f"test accuracy {result.test_accuracy:.4f} (loss {result.test_loss:.4f}) with the weights of epoch {best}"


def test_a_resumed_run_continues_the_folder_with_one_value_per_epoch(tmp_path):
    spec, out = cnndsl.loads(SMALL), tmp_path / "run"
    train(spec, load_recipe(None, epochs=1, tensorboard=True), out, log=quiet)
    # what a run killed after writing epoch 2's events, before its last.pt, leaves: hidden by the resume's purge
    from torch.utils.tensorboard import SummaryWriter

    killed = SummaryWriter(str(out / "tensorboard/train"))
    killed.add_scalar("epoch_loss", 99.0, global_step=2)
    killed.close()
    resumed = train(spec, load_recipe(None, epochs=2, tensorboard=True), out, resume=True, log=quiet)
    assert [row["epoch"] for row in resumed.history] == [1, 2]
    assert_curves(out, resumed.history)
    assert len(list((out / "tensorboard/train").glob("events.out.tfevents.*"))) == 3  # appended, never rewritten


def test_off_by_default_and_turned_on_by_resume(tmp_path, capsys):
    assert Recipe().tensorboard is False
    spec = tmp_path / "small.cnn"
    spec.write_text(SMALL)
    out = tmp_path / "run"
    first = train(cnndsl.loads(SMALL), load_recipe(None, epochs=1), out, log=quiet)
    assert not (out / "tensorboard").exists()
    assert "tensorboard/" not in capsys.readouterr().out
    # the run is over: --resume trains no epoch, and TensorBoard gets the epochs and the test figures it lacks
    assert main(["train", str(spec), "--resume", str(out), "--tensorboard"]) == 0
    assert_curves(out, first.history)
    assert read(out / "tensorboard/test")["epoch_accuracy"] == [(1, f32(first.test_accuracy))]
    assert yaml.safe_load((out / "recipe.yaml").read_text())["tensorboard"] is True
    assert "tensorboard/" in capsys.readouterr().out.splitlines()[-1]  # the "wrote ..." line


def test_a_missing_tensorboard_is_said_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # `import` of it raises ImportError
    with pytest.raises(CnnError, match="pip install tensorboard"):
        train(cnndsl.loads(SMALL), load_recipe(None, epochs=1, tensorboard=True), tmp_path / "a", log=quiet)
    assert not (tmp_path / "a").exists()  # refused at set-up: no data, no folder
    spec = tmp_path / "small.cnn"
    spec.write_text(SMALL)
    assert main(["train", str(spec), "--tensorboard", "--out", str(tmp_path / "b")]) == 1
    assert "pip install tensorboard" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_the_flag_and_the_key(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("tensorboard: true\n")
    assert load_recipe(recipe).tensorboard is True
    assert load_recipe(recipe, {"tensorboard": False}).tensorboard is False  # --no-tensorboard over the file
    assert load_recipe(None, {"tensorboard": None}).tensorboard is False  # neither flag given
    with pytest.raises(UsageError, match="--tensorboard takes true or false"):
        load_recipe(None, {"tensorboard": "yes"})
    recipe.write_text("tensorboard: 1\n")
    with pytest.raises(CnnError, match="`tensorboard` takes true or false"):
        load_recipe(recipe)
