"""`cnndsl train`: models that learn, runs that resume, and bad recipes that say what is wrong."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import cnndsl  # noqa: E402
from cnndsl.errors import CnnError  # noqa: E402
from cnndsl.training.loop import train  # noqa: E402
from cnndsl.training.recipe import load_recipe  # noqa: E402
from conftest import ROOT, SMALL  # noqa: E402


@contextlib.contextmanager
def stopped_at(epoch: int):
    """A run inside interrupted (KeyboardInterrupt) as `epoch` begins; yields the epochs it began before that."""
    from cnndsl.training import loop

    original, begun = loop.train_epoch, []

    def stop(run, at):
        if at == epoch:
            raise KeyboardInterrupt
        begun.append(at)
        return original(run, at)

    loop.train_epoch = stop
    try:
        with pytest.raises(KeyboardInterrupt):
            yield begun
    finally:
        loop.train_epoch = original


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
    from cnndsl.viz.runpage import ReportPage  # the page is a step its caller adds (cnndsl.train does)

    resumed = train(cnndsl.loads(SMALL), load_recipe(None, epochs=4), tmp_path / "b", resume=True, log=quiet,
                    steps=[ReportPage()])
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in straight.history]
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in resumed.history] == strip
    assert resumed.test_accuracy == straight.test_accuracy
    page = (tmp_path / "b/report.html").read_text()  # the page of the whole run, written by the resumed part
    assert page.count('<tr><td class="num">') + page.count('<tr class=best><td class="num">') == 4
    assert "under way" not in page and 'id="mistakes"' in page


def test_same_seed_same_metrics(tmp_path):
    runs = [train(cnndsl.loads(SMALL), load_recipe(None, epochs=2, seed=3), tmp_path / str(i), log=quiet)
            for i in range(2)]
    assert [r["val_loss"] for r in runs[0].history] == [r["val_loss"] for r in runs[1].history]


def test_a_run_killed_mid_training_resumes_to_the_end(tmp_path):
    EPOCHS = 8  # killed 0.3 s after the first checkpoint, a few epochs in; the resumed run does the rest
    spec = tmp_path / "small.cnn"
    spec.write_text(SMALL)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "cnndsl.cli", "train", str(spec), "--epochs", str(EPOCHS), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = json.loads((out / "metrics.json").read_text())["epochs"]
    assert 1 <= len(done) < EPOCHS
    page = out / "report.html"  # written after the metrics: at most one epoch behind them, and whole
    if page.exists():
        text = page.read_text()
        assert text.rstrip().endswith("</html>") and "under way, or was stopped, after epoch" in text
        assert re.search(rf"after epoch (\d+) of {EPOCHS}", text).group(1) in (str(len(done)), str(len(done) - 1))
    resumed = subprocess.run([sys.executable, "-m", "cnndsl.cli", "train", str(spec), "--resume", str(out)],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {out} after epoch" in resumed.stdout
    assert len(json.loads((out / "metrics.json").read_text())["epochs"]) == EPOCHS
    assert "under way" not in (out / "report.html").read_text()
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
    with pytest.raises(CnnError, match="`epochs` takes a whole number of at least 1, got .three."):
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

    from cnndsl.training.infer import evaluate, predict

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


def test_learning_rate_schedules():
    from cnndsl.training.schedule import Schedule

    cosine = Schedule("cosine", 0.1, epochs=10, steps_per_epoch=5)
    assert cosine.lr(1, 0) == pytest.approx(0.1) and cosine.lr(10, 4) < 0.001
    assert Schedule("step", 0.1, 10, 5, step_size=3).lr(4, 0) == pytest.approx(0.01)
    warm = Schedule("none", 0.1, 10, 5, warmup_epochs=2)
    assert [round(warm.lr(1, s), 3) for s in range(5)] == [0.01, 0.02, 0.03, 0.04, 0.05]
    assert warm.lr(3, 0) == pytest.approx(0.1)
    one = Schedule("onecycle", 0.1, 10, 10)
    assert one.lr(1, 0) == pytest.approx(0.004) and one.lr(3, 9) == pytest.approx(0.1)  # torch peaks at step 29
    assert one.lr(10, 9) == pytest.approx(0.1 / 25 / 1e4)
    plateau = Schedule("plateau", 0.1, 10, 5, plateau_patience=2)
    notes = [plateau.end_epoch(loss) for loss in (1.0, 0.9, 0.95, 0.93)]
    assert notes[:3] == [None, None, None] and "x0.1" in notes[3] and plateau.lr(5, 0) == pytest.approx(0.01)


def test_augmentations_on_batches():
    from cnndsl.training.augment import Augment

    x = torch.arange(2 * 1 * 3 * 3, dtype=torch.float32).reshape(2, 1, 3, 3) + 1
    g = torch.Generator().manual_seed(0)
    flipped = Augment(hflip=True)(x, g)
    assert all(torch.equal(f, i) or torch.equal(f, i.flip(-1)) for f, i in zip(flipped, x))
    cropped = Augment(crop=1)(x.repeat(64, 1, 1, 1), torch.Generator().manual_seed(1))
    assert cropped.shape == (128, 1, 3, 3)
    sums = {float(c.sum()) for c in cropped}
    assert len(sums) > 3  # shifted by different amounts
    assert all(s <= float(x[1].sum()) for s in sums)  # zeros come in, nothing new


def test_options_train_and_resume_identically(tmp_path):
    """A run stopped after epoch 2 and resumed equals one that ran straight, with every option on."""
    options = dict(epochs=4, lr=0.01, schedule="onecycle", warmup_epochs=1, clip_grad_norm=1.0,
                   augment={"hflip": True, "crop": 1}, label_smoothing=0.1, optimizer="adamw")
    straight = train(cnndsl.loads(SMALL), load_recipe(None, **options), tmp_path / "a", log=quiet)
    stopped = load_recipe(None, **options)
    with stopped_at(3) as calls:
        train(cnndsl.loads(SMALL), stopped, tmp_path / "b", log=quiet)
    resumed = train(cnndsl.loads(SMALL), stopped, tmp_path / "b", resume=True, log=quiet)
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]  # noqa: E731
    assert calls == [1, 2] and strip(resumed.history) == strip(straight.history)


def test_init_amp_channels_last_and_compile(tmp_path):
    lines = []
    train(cnndsl.loads(SMALL), load_recipe(None, epochs=2, lr=0.01), tmp_path / "a", log=quiet)
    result = train(cnndsl.loads(SMALL), load_recipe(None, epochs=1, init=str(tmp_path / "a/best.pt"), amp=True,
                                                    channels_last=True, compile=True), tmp_path / "b",
                   log=lines.append)
    assert any(line.startswith(f"init from {tmp_path / 'a/best.pt'}: loaded 6 tensors (6 by name") for line in lines)
    assert result.test_accuracy > 0.5


def test_shipped_recipes_are_valid():
    from cnndsl.training.phases import check_phase_names

    for path in (ROOT / "examples/recipes").glob("*.yaml"):
        recipe = load_recipe(path)
        assert recipe.epochs >= 1, path
    transfer = load_recipe(ROOT / "examples/recipes/transfer.yaml")
    assert transfer.epochs == 13
    assert (transfer.init, transfer.normalize, transfer.phases[1]["lr"]) == ("torchvision:resnet50", "imagenet", 0.01)
    check_phase_names(cnndsl.load(ROOT / "specs/resnet50.cnn", classes=5).build(), transfer.phases)


def test_two_processes_on_this_machine(tmp_path):
    spec = tmp_path / "small.cnn"
    spec.write_text(SMALL)
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "cnndsl.cli", "train", str(spec), "--nproc", "2", "--epochs", "2",
                           "--lr", "0.01", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "device cpu x 2 processes" in done.stdout
    assert done.stdout.count("epoch 1/2") == 1  # only rank 0 logs
    state = torch.load(out / "best.pt", weights_only=True)
    model = cnndsl.loads(state["spec"]).build()
    model.load_state_dict(state["model"])
    assert json.loads((out / "metrics.json").read_text())["test_accuracy"] > 0.3


def test_split_recipes_are_validated(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text('splits: {train: "train[:10%]", valid: "train[90%:]"}\n')
    with pytest.raises(CnnError, match="unknown key `splits.valid`") as info:
        load_recipe(path)
    assert "did you mean `val`" in info.value.hint
    path.write_text('splits: {train: "train[:10%]"}\n')
    assert load_recipe(path).splits == {"train": "train[:10%]"}


def test_affine_and_colour_augmentations_keep_shapes_and_vary():
    from cnndsl.training.augment import Augment

    x = torch.rand(16, 3, 12, 12)
    for options in ({"rotate": 20.0}, {"shear": 15.0}, {"resized_crop": 0.5}, {"color": 0.3},
                    {"rotate": 10.0, "shear": 5.0, "resized_crop": 0.6, "hflip": True, "crop": 2, "color": 0.1}):
        out = Augment(**options)(x, torch.Generator().manual_seed(0))
        assert out.shape == x.shape and torch.isfinite(out).all()
        assert not torch.allclose(out, x), options
    same = Augment(rotate=0.0, shear=0.0, resized_crop=0.0)
    assert not same and torch.equal(same(x, torch.Generator()), x)


def test_normalisation_is_saved_and_used_by_eval(tmp_path):
    from cnndsl.training.infer import evaluate

    lines = []
    options = dict(epochs=3, lr=0.01, normalize=True, augment={"rotate": 10.0, "resized_crop": 0.8})
    result = train(cnndsl.loads(SMALL), load_recipe(None, **options), tmp_path, log=lines.append)
    assert any("normalised" in line for line in lines)
    saved = torch.load(tmp_path / "best.pt", weights_only=True)["normalization"]
    assert len(saved["mean"]) == 1 and saved["std"][0] > 0
    assert evaluate(cnndsl.loads(SMALL), tmp_path / "best.pt")[1] == pytest.approx(result.test_accuracy)


def test_phases_freeze_then_unfreeze(tmp_path):
    lines = []
    recipe = load_recipe(None, lr=0.01, phases=[{"epochs": 2, "freeze": ["conv1", "conv2"]},
                                                 {"epochs": 1, "lr": 0.001}])
    assert recipe.epochs == 3
    torch.manual_seed(0)
    initial = cnndsl.loads(SMALL).build().state_dict()
    train(cnndsl.loads(SMALL), recipe, tmp_path, log=lines.append)
    assert "phase 1/2: 2 epochs, lr 0.01, trainable 330, frozen 4,800 (conv1, conv2)" in lines
    assert "phase 2/2: 1 epochs, lr 0.001, trainable 5,130, frozen 0" in lines
    after = torch.load(tmp_path / "last.pt", weights_only=True)
    assert after["history"][1]["lr"] == 0.01 and after["history"][2]["lr"] == 0.001
    # the frozen convolutions changed only in the last phase: compare with a run of the first phase alone
    first = train(cnndsl.loads(SMALL), load_recipe(None, lr=0.01, phases=[{"epochs": 2,
                                                                          "freeze": ["conv1", "conv2"]}]),
                  tmp_path / "first", log=quiet)
    state = torch.load(tmp_path / "first/last.pt", weights_only=True)["model"]
    assert torch.equal(state["conv1.weight"], initial["conv1.weight"])
    assert not torch.equal(state["dense1.weight"], initial["dense1.weight"])
    assert not torch.equal(after["model"]["conv1.weight"], initial["conv1.weight"])
    assert first.history[0]["loss"] == pytest.approx(after["history"][0]["loss"])


def test_phases_resume_across_the_boundary(tmp_path):
    phases = [{"epochs": 2, "freeze": ["conv1"]}, {"epochs": 2, "lr": 0.002}]
    straight = train(cnndsl.loads(SMALL), load_recipe(None, phases=phases), tmp_path / "a", log=quiet)
    with stopped_at(3):
        train(cnndsl.loads(SMALL), load_recipe(None, phases=phases), tmp_path / "b", log=quiet)
    resumed = train(cnndsl.loads(SMALL), load_recipe(None, phases=phases), tmp_path / "b", resume=True, log=quiet)
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]  # noqa: E731
    assert strip(resumed.history) == strip(straight.history)


def test_phase_names_are_checked(tmp_path):
    with pytest.raises(CnnError, match="phase freezes `conv9`") as info:
        train(cnndsl.loads(SMALL), load_recipe(None, phases=[{"epochs": 1, "freeze": ["conv9"]}]), tmp_path,
              log=quiet)
    assert info.value.hint in ("did you mean `conv1`?", "did you mean `conv2`?")
    with pytest.raises(CnnError, match="phase 1 needs `epochs`"):
        load_recipe(None, phases=[{"lr": 0.1}])


def test_keras_initializer():
    from cnndsl.build import keras_initialization

    model = cnndsl.load(ROOT / "examples/fashion_cnn_honkong.cnn").build()
    keras_initialization(model)
    dense = model.dense1  # 3136 -> 100: Glorot bound sqrt(6 / (3136 + 100))
    bound = (6 / (3136 + 100)) ** 0.5
    assert float(dense.weight.abs().max()) <= bound and float(dense.weight.abs().max()) > 0.9 * bound
    assert all(float(m.bias.abs().sum()) == 0 for m in (model.conv1, model.conv2, model.dense1, model.dense2))
    assert load_recipe(None, initializer="keras").initializer == "keras"
    with pytest.raises(CnnError, match="`initializer` takes one of"):
        load_recipe(None, initializer="glorot")


# torch.optim's NAdam, Adamax, Adagrad and Adadelta, each at a rate that learns the digits in 6 epochs (Adadelta's
# rate multiplies its step: torch's default is 1.0, Keras' 0.001)
OPTIMIZERS = {"nadam": 0.01, "adamax": 0.05, "adagrad": 0.1, "adadelta": 5.0}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_keras_optimizers_learn_the_digits(tmp_path, optimizer):
    recipe = load_recipe(None, epochs=6, lr=OPTIMIZERS[optimizer], optimizer=optimizer)
    result = train(cnndsl.loads(SMALL), recipe, tmp_path, log=quiet)
    assert result.test_accuracy >= 0.8, result.test_accuracy
    assert result.history[-1]["loss"] < result.history[0]["loss"] / 3


def test_optimizer_defaults_keras_are_keras_settings():
    from cnndsl.training.phases import make_optimizer

    params = [torch.nn.Parameter(torch.zeros(2))]
    wanted = {"adam": {"eps": 1e-7}, "nadam": {"eps": 1e-7, "betas": (0.9, 0.999)}, "adamax": {"eps": 1e-7},
              "adagrad": {"eps": 1e-7, "initial_accumulator_value": 0.1}, "adadelta": {"eps": 1e-7, "rho": 0.95},
              "rmsprop": {"eps": 1e-7, "alpha": 0.9, "momentum": 0.9}}
    for name, settings in wanted.items():
        group = make_optimizer(load_recipe(None, optimizer=name, optimizer_defaults="keras"), params).param_groups[0]
        assert {k: group[k] for k in settings} == settings, name
    torch_own = make_optimizer(load_recipe(None, optimizer="adadelta"), params).param_groups[0]
    assert (torch_own["eps"], torch_own["rho"], torch_own["lr"]) == (1e-6, 0.9, 1e-3)  # the recipe's rate
    with pytest.raises(CnnError, match="`optimizer_defaults` takes one of pytorch, keras"):
        load_recipe(None, optimizer_defaults="tensorflow")


def test_monitor_patience_and_restore_best(tmp_path):
    lines = []
    result = train(cnndsl.loads(SMALL), load_recipe(None, epochs=30, lr=0.05, optimizer="sgd", monitor="val_loss",
                                                    patience=2), tmp_path, log=lines.append)
    assert any(line.startswith("early stop: val_loss has not improved for 2 epochs") for line in lines)
    losses = [row["val_loss"] for row in result.history]
    assert result.best_epoch == losses.index(min(losses)) + 1 and len(losses) == result.best_epoch + 2
    last = train(cnndsl.loads(SMALL), load_recipe(None, epochs=2, restore_best=False), tmp_path / "l", log=quiet)
    assert last.best_epoch == 2


def test_one_monitor_defines_improved_for_best_early_stop_and_plateau():
    from cnndsl.training.monitor import Monitor
    from cnndsl.training.schedule import Schedule

    loss, accuracy = Monitor("val_loss"), Monitor("val_accuracy")
    assert loss.lower_is_better and not accuracy.lower_is_better and Monitor("val_accuracy", "min").lower_is_better
    assert loss.improved(0.9, None) and loss.improved(0.9, 1.0) and not loss.improved(1.0, 1.0)
    assert accuracy.improved(0.51, 0.5) and not accuracy.improved(0.5, 0.5)
    assert not Monitor("val_accuracy", min_delta=0.01).improved(0.505, 0.5)
    assert Monitor("val_accuracy", min_delta=0.01).improved(0.515, 0.5)
    # the plateau schedule counts any lower loss as better (min_delta 0, as Keras' monitors; it was 1e-4)
    plateau = Schedule("plateau", 0.1, 10, 5, plateau_patience=2)
    notes = [plateau.end_epoch(value) for value in (1.0, 0.99999, 0.99998, 0.99998, 0.99998)]
    assert notes[:4] == [None] * 4 and "x0.1" in notes[4] and plateau.plateau.best == 0.99998


def v1_layout(path) -> None:
    """Rewrites a checkpoint as cnndsl wrote them before the format had a version (format 1)."""
    state = torch.load(path, weights_only=True)
    resume = state.pop("resume")
    steps = resume["steps"]
    state.pop("version"), state.pop("data")
    state.update(phase=resume["phase"], optimizer=resume["optimizer"], schedule=resume["schedule"],
                 shuffle_rng=resume["rng"]["shuffle"], augment_rng=resume["rng"]["augment"],
                 torch_rng=resume["rng"]["torch"], best=steps["best_checkpoint"],
                 stale=steps["early_stopping"]["wait"])
    torch.save(state, path)


def test_checkpoints_without_a_version_still_resume_evaluate_and_init(tmp_path):
    from cnndsl import saved as checkpoint
    from cnndsl.training.infer import evaluate

    recipe = load_recipe(None, epochs=4, lr=0.01, monitor="val_loss", patience=3)
    straight = train(cnndsl.loads(SMALL), recipe, tmp_path / "a", log=quiet)
    saved = checkpoint.load(tmp_path / "a/last.pt")
    assert saved.version == 2 and saved.data == {"name": "digits", "splits": {}, "seed": 0, "input": [1, 8, 8],
                                                  "notes": []}
    assert saved.resume["steps"]["best_checkpoint"]["epoch"] == straight.best_epoch
    with stopped_at(3):
        train(cnndsl.loads(SMALL), recipe, tmp_path / "b", log=quiet)
    before = evaluate(cnndsl.loads(SMALL), tmp_path / "b/best.pt")
    for name in ("last.pt", "best.pt"):
        v1_layout(tmp_path / "b" / name)
    old = checkpoint.load(tmp_path / "b/last.pt")
    assert old.version == 1 and old.data["input"] is None and len(old.history) == 2
    assert evaluate(cnndsl.loads(SMALL), tmp_path / "b/best.pt") == before
    assert cnndsl.load_weights(cnndsl.loads(SMALL).build(), tmp_path / "b/best.pt").complete
    resumed = train(cnndsl.loads(SMALL), recipe, tmp_path / "b", resume=True, log=quiet)
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]  # noqa: E731
    assert strip(resumed.history) == strip(straight.history) and resumed.best_epoch == straight.best_epoch
    assert checkpoint.load(tmp_path / "b/last.pt").version == 2
    newer = torch.load(tmp_path / "a/best.pt", weights_only=True)
    newer["version"] = 3
    torch.save(newer, tmp_path / "newer.pt")
    with pytest.raises(CnnError, match=r"newer.pt was written by a newer cnndsl \(checkpoint format 3\); this one "
                       "reads formats 1 to 2"):
        evaluate(cnndsl.loads(SMALL), tmp_path / "newer.pt")


def _sklearn_scores(truth, predicted, n):
    from sklearn.metrics import precision_recall_fscore_support

    return precision_recall_fscore_support(truth, predicted, labels=list(range(n)), zero_division=0)


def test_class_scores_are_sklearns():
    from cnndsl.training import scores

    truth = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    predicted = torch.tensor([0, 1, 0, 1, 2, 2, 2, 0, 2, 0])  # class 3 never predicted
    got = scores.per_class(truth, predicted, ["a", "b", "c", "d"])
    assert got["per_class"]["a"] == {"precision": 0.5, "recall": 0.666667, "f1": 0.571429, "support": 3}
    assert got["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    generator = torch.Generator().manual_seed(0)
    truth = torch.randint(0, 7, (500,), generator=generator)
    predicted = torch.where(torch.rand(500, generator=generator) < 0.6, truth,
                            torch.randint(0, 6, (500,), generator=generator))
    got = scores.per_class(truth, predicted, [f"c{i}" for i in range(7)])
    precision, recall, f1, support = _sklearn_scores(truth, predicted, 7)
    for i, row in enumerate(got["per_class"].values()):
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((precision[i], recall[i], f1[i]),
                                                                              abs=1e-6)
        assert row["support"] == support[i]
    assert got["macro"]["f1"] == pytest.approx(f1.mean(), abs=1e-6)
    assert got["macro"]["precision"] == pytest.approx(precision.mean(), abs=1e-6)


def test_class_score_tables():
    from cnndsl.training import scores

    truth = torch.arange(30).repeat(2)
    predicted = torch.where(truth < 5, (truth + 1) % 30, truth)  # classes 0-4 always wrong
    lines = scores.lines(scores.per_class(truth, predicted, [f"k{i}" for i in range(30)]))
    assert lines[0] == "test set: 30 classes, the 5 with the lowest F1"
    assert [line.split()[0] for line in lines[2:7]] == ["k0", "k1", "k2", "k3", "k4"]
    assert lines[2] == "  k0                0.0000  0.0000  0.0000        2"
    assert lines[-1] == "  macro average     0.8167  0.8333  0.8222       60"  # (24 + 1/2) / 30, 25 / 30
    few = scores.lines(scores.per_class(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), ["cat", "dog"]))
    assert few == ["test set per class (2 classes)",
                   "  class          precision  recall      f1  support",
                   "  cat               0.5000  1.0000  0.6667        1",
                   "  dog               1.0000  0.5000  0.6667        2",
                   "  macro average     0.7500  0.7500  0.6667        3"]


def test_curves_mark_the_best_epoch_and_phases_and_show_the_rate():
    from cnndsl.training import plots

    history = [{"epoch": e, "loss": 1 / e, "accuracy": e / 10, "val_loss": 1 / e, "val_accuracy": e / 11,
                "lr": 0.01 if e <= 2 else 0.001} for e in range(1, 6)]
    fig = plots.curves_figure(history, best_epoch=4, phase_starts=[2])
    loss, accuracy, rate = fig.axes
    for ax in fig.axes:
        marks = {line.get_label(): list(line.get_xdata()) for line in ax.get_lines()}
        assert marks["best epoch (4)"] == [4, 4] and marks["phase start"] == [2.5, 2.5]
    assert list(rate.get_lines()[0].get_ydata()) == [0.01, 0.01, 0.001, 0.001, 0.001]
    assert rate.get_yscale() == "log" and rate.get_title().startswith("learning rate")
    plain = plots.curves_figure(history[:2])
    assert [line.get_label() for line in plain.axes[0].get_lines()] == ["training", "validation"]


def test_confusion_matrices_counted_and_normalized_up_to_100_classes():
    from cnndsl.training import plots

    truth = torch.tensor([0, 0, 0, 1, 2, 2])
    predicted = torch.tensor([0, 1, 0, 1, 2, 0])
    counts, normalized = plots.confusion_figure(truth, predicted, ["a", "b", "c"]).axes[:2]
    assert counts.images[0].get_array().tolist() == [[2, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert normalized.images[0].get_array().ravel().tolist() == pytest.approx([2 / 3, 1 / 3, 0, 0, 1, 0, .5, 0, .5])
    # the cells that are not 0, row by row: an empty cell is 0
    assert [t.get_text() for t in counts.texts] == ["2", "1", "1", "1", "1"]
    assert [t.get_text() for t in normalized.texts] == ["0.67", "0.33", "1.00", "0.50", "0.50"]
    generator = torch.Generator().manual_seed(0)
    truth = torch.randint(0, 100, (5000,), generator=generator)
    fig = plots.confusion_figure(truth, torch.where(truth % 7 == 0, (truth + 1) % 100, truth),
                                 [f"class{i}" for i in range(100)])
    for ax in fig.axes[:2]:
        assert not ax.texts  # no numbers in 100x100 cells
        labels = ax.get_xticklabels()
        assert len(labels) == 100 and labels[99].get_text() == "class99" and labels[0].get_fontsize() == 7
    rows = fig.axes[1].images[0].get_array().sum(1)
    assert rows.tolist() == pytest.approx([1.0] * 100)


@pytest.mark.parametrize("n, name", [(10, "{}"), (10, "sunflowers_{}"), (10, "n02085620-a_very_long_folder_name_{}"),
                                     (3, "n02085620-a_very_long_folder_name_{}"), (100, "class{}"),
                                     (100, "n02085620-some_long_breed_name_{}")])
def test_confusion_labels_lie_inside_the_figure_and_apart(n, name):
    """Long class names (folder datasets) and 100 classes: every tick label, axis label and title, and the
    colorbar's labels, lie inside the figure, and no two of them of different kinds or axes overlap, nor any
    of them a panel or the colorbar."""
    import itertools

    from cnndsl.training import plots

    generator = torch.Generator().manual_seed(0)
    truth = torch.randint(0, n, (40 * n,), generator=generator)
    fig = plots.confusion_figure(truth, torch.where(truth % 3 == 0, (truth + 1) % n, truth),
                                 [name.format(i) for i in range(n)])
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    texts = []  # (kind, box)
    for k, ax in enumerate(fig.axes):  # the two panels and the colorbar
        texts += [(f"axes {k} ticks", label.get_window_extent(renderer))
                  for label in ax.get_xticklabels() + ax.get_yticklabels()]
        texts += [(f"axes {k} {text.get_text()}", text.get_window_extent(renderer))
                  for text in (ax.xaxis.label, ax.yaxis.label, ax.title) if text.get_text()]
    assert len(texts) > 4 * n
    inside = fig.bbox
    for kind, box in texts:
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1, kind
    for (kind, box), (other, other_box) in itertools.combinations(texts, 2):
        assert kind == other or not box.overlaps(other_box), (kind, other)
    for (kind, box), ax in itertools.product(texts, fig.axes):
        assert not box.overlaps(ax.get_window_extent(renderer)), kind


def test_a_run_reports_class_scores_and_marks_its_curves(tmp_path, monkeypatch):
    from cnndsl.training import plots, scores

    seen, marked = {}, {}
    real_scores, real_curves = scores.per_class, plots.curves

    def spy_scores(truth, predicted, classes):
        seen.update(truth=truth.cpu(), predicted=predicted.cpu())
        return real_scores(truth, predicted, classes)

    def spy_curves(history, path, best_epoch=0, phase_starts=()):
        marked.update(best=best_epoch, starts=list(phase_starts))
        real_curves(history, path, best_epoch, phase_starts)

    monkeypatch.setattr(scores, "per_class", spy_scores)
    monkeypatch.setattr(plots, "curves", spy_curves)
    lines = []
    result = train(cnndsl.loads(SMALL), load_recipe(None, lr=0.01, phases=[{"epochs": 1, "freeze": ["conv1"]},
                                                                             {"epochs": 1}]),
                   tmp_path, log=lines.append)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert marked == {"best": result.best_epoch, "starts": [1]}
    precision, recall, f1, support = _sklearn_scores(seen["truth"], seen["predicted"], 10)
    assert list(metrics["per_class"]) == [str(i) for i in range(10)]
    for i, row in enumerate(metrics["per_class"].values()):
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((precision[i], recall[i], f1[i]),
                                                                              abs=1e-6)
    assert sum(row["support"] for row in metrics["per_class"].values()) == 179
    # the recalls weighted by support are the test accuracy: the scores are of the weights that were tested
    hits = sum(row["recall"] * row["support"] for row in metrics["per_class"].values())
    assert hits / 179 == pytest.approx(result.test_accuracy, abs=1e-4)
    assert metrics["macro"]["f1"] == pytest.approx(f1.mean(), abs=1e-6)
    table = lines.index("test set per class (10 classes)")
    assert lines[table + 1].split() == ["class", "precision", "recall", "f1", "support"]
    assert lines[table + 12].startswith("  macro average") and lines[table + 13].startswith("test accuracy")
