"""`cnndsl train`: models that learn, runs that resume, and bad recipes that say what is wrong."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import cnndsl  # noqa: E402
from cnndsl.errors import CnnError  # noqa: E402
from cnndsl.train.loop import train  # noqa: E402
from cnndsl.train.recipe import load_recipe  # noqa: E402
from conftest import ROOT  # noqa: E402

# A small CNN on the 8x8 digits as they are: a few seconds per run
SMALL = """network small(classes = 10) {
    input 1x8x8
    conv 16 kernel=3 padding=same activation=relu
    maxpool 2
    conv 32 kernel=3 padding=same activation=relu
    globalavgpool
    dense classes activation=softmax
}"""


def quiet(_line: str) -> None:
    pass


def test_a_small_cnn_learns_the_digits(tmp_path):
    result = train(cnndsl.loads(SMALL), load_recipe(None, epochs=12, lr=0.01), tmp_path, log=quiet)
    assert result.test_accuracy >= 0.9
    assert result.history[-1]["loss"] < result.history[0]["loss"] / 3
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_accuracy"] == result.test_accuracy and len(metrics["epochs"]) == 12
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0] == \
        "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds"


def test_checkpoints_load_with_weights_only_and_rebuild_the_model(tmp_path):
    train(cnndsl.loads(SMALL), load_recipe(None, epochs=1), tmp_path, log=quiet)
    state = torch.load(tmp_path / "best.pt", weights_only=True)
    assert state["recipe"]["epochs"] == 1 and "network small" in state["spec"]
    model = cnndsl.loads(state["spec"]).build()
    model.load_state_dict(state["model"])


def test_resuming_gives_the_same_run_as_not_stopping(tmp_path):
    straight = train(cnndsl.loads(SMALL), load_recipe(None, epochs=4), tmp_path / "a", log=quiet)
    train(cnndsl.loads(SMALL), load_recipe(None, epochs=2), tmp_path / "b", log=quiet)
    resumed = train(cnndsl.loads(SMALL), load_recipe(None, epochs=4), tmp_path / "b", resume=True, log=quiet)
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in straight.history]
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in resumed.history] == strip
    assert resumed.test_accuracy == straight.test_accuracy


def test_same_seed_same_metrics(tmp_path):
    runs = [train(cnndsl.loads(SMALL), load_recipe(None, epochs=2, seed=3), tmp_path / str(i), log=quiet)
            for i in range(2)]
    assert [r["val_loss"] for r in runs[0].history] == [r["val_loss"] for r in runs[1].history]


def test_a_run_killed_mid_training_resumes_to_the_end(tmp_path):
    spec = tmp_path / "small.cnn"
    spec.write_text(SMALL)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "cnndsl.cli", "train", str(spec), "--epochs", "30", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = json.loads((out / "metrics.json").read_text())["epochs"]
    assert 1 <= len(done) < 30
    resumed = subprocess.run([sys.executable, "-m", "cnndsl.cli", "train", str(spec), "--resume", str(out)],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {out} after epoch" in resumed.stdout
    assert len(json.loads((out / "metrics.json").read_text())["epochs"]) == 30
    assert not list(out.glob("*.tmp"))


def test_classes_that_do_not_match_the_data(tmp_path):
    with pytest.raises(CnnError) as info:
        train(cnndsl.loads(SMALL, classes=5), load_recipe(None, epochs=1), tmp_path, log=quiet)
    assert "5 outputs but digits has 10 classes" in info.value.message
    assert "--set classes=10" in info.value.hint


def test_images_are_adapted_to_the_spec_and_the_log_says_so(tmp_path):
    lines = []
    train(cnndsl.load(ROOT / "examples/cifar_small_cnn.cnn"), load_recipe(None, epochs=1), tmp_path,
          log=lines.append)
    assert "data: images resized 8x8 -> 32x32 (bilinear)" in lines
    assert "data: grey images repeated to 3 channels" in lines


def test_a_diverging_loss_stops_the_run(tmp_path):
    with pytest.raises(CnnError, match="the loss became"):
        train(cnndsl.loads(SMALL), load_recipe(None, epochs=3, lr=1e12, optimizer="sgd"), tmp_path, log=quiet)
    assert not (tmp_path / "last.pt").exists() or torch.load(tmp_path / "last.pt", weights_only=True)


def test_recipes_are_validated(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("epochs: 3\noptimiser: sgd\n")
    with pytest.raises(CnnError) as info:
        load_recipe(path)
    assert "unknown recipe key `optimiser`" in info.value.message and "did you mean `optimizer`" in info.value.hint
    path.write_text("epochs: three\n")
    with pytest.raises(CnnError, match="`epochs` takes a number"):
        load_recipe(path)
    path.write_text("optimizer: adamm\n")
    with pytest.raises(CnnError, match="`optimizer` takes one of"):
        load_recipe(path)
    path.write_text("epochs: [1\n")
    with pytest.raises(CnnError, match="not valid YAML"):
        load_recipe(path)
    path.write_text("epochs: 3\nlr: 0.05\n")
    assert load_recipe(path, epochs=5).to_dict()["epochs"] == 5 and load_recipe(path).lr == 0.05


def test_plots_eval_and_predict(tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    from cnndsl.train.infer import evaluate, predict

    result = train(cnndsl.loads(SMALL), load_recipe(None, epochs=10, lr=0.01), tmp_path, log=quiet)
    for name in ("curves.png", "confusion.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loss, accuracy = evaluate(cnndsl.loads(SMALL), tmp_path / "best.pt")
    assert accuracy == pytest.approx(result.test_accuracy) and loss == pytest.approx(result.test_loss, rel=1e-4)
    digits = load_digits()
    paths = []
    for i in range(10):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray((digits.images[i] * 255 / 16).astype("uint8")).save(path)
        paths.append(str(path))
    results = predict(cnndsl.loads(SMALL), tmp_path / "best.pt", paths, top=3)
    assert all(len(best) == 3 and sum(p for _, p in best) <= 1.0001 for best in results)
    assert sum(best[0][0] == str(digits.target[i]) for i, best in enumerate(results)) >= 8
    (tmp_path / "not.png").write_text("not an image")
    with pytest.raises(CnnError, match="cannot read"):
        predict(cnndsl.loads(SMALL), tmp_path / "best.pt", [str(tmp_path / "not.png")])


def test_eval_and_predict_commands(tmp_path):
    spec = tmp_path / "small.cnn"
    spec.write_text(SMALL)
    run = subprocess.run([sys.executable, "-m", "cnndsl.cli", "train", str(spec), "--epochs", "2", "--out",
                          str(tmp_path / "run")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    ev = subprocess.run([sys.executable, "-m", "cnndsl.cli", "eval", str(spec), "--weights",
                         str(tmp_path / "run/best.pt")], capture_output=True, text=True)
    assert ev.returncode == 0 and ev.stdout.startswith("test accuracy ")
    missing = subprocess.run([sys.executable, "-m", "cnndsl.cli", "predict", str(spec), "x.png", "--weights",
                              str(tmp_path / "run/best.pt")], capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode == 1 and "no such image: x.png" in missing.stderr
