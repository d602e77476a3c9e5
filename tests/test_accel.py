"""The runner's speed keys (training/accel.py): channels_last, amp, compile, data_on_device. Each gives the
results it must on the CPU, or an error that says why a device cannot do it."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import cnndsl  # noqa: E402
from cnndsl.errors import CnnError  # noqa: E402
from cnndsl.training import accel  # noqa: E402
from cnndsl.training.augment import Augment  # noqa: E402
from cnndsl.training.loop import train  # noqa: E402
from cnndsl.training.recipe import load_recipe  # noqa: E402
from conftest import ROOT  # noqa: E402

# batchnorm and a dense head: the layers whose kernels differ between the layouts and precisions
NET = """network speedy(classes = 10) {
    input 1x8x8
    conv 16 kernel=3 padding=same bias=false
    batchnorm
    relu
    maxpool 2
    conv 32 kernel=3 padding=same activation=relu
    globalavgpool
    dense classes
}"""


SHORT = {"train": "train[:40%]"}  # 575 training images: epochs of 18 batches


def run(tmp_path, name: str, log=None, resume: bool = False, **keys):
    keys = {"epochs": 2, "lr": 0.01, **keys}
    return train(cnndsl.loads(NET), load_recipe(None, **keys), tmp_path / name, resume=resume,
                 log=log or (lambda line: None))


def rows(result) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in result.history]


def test_channels_last_trains_as_the_default_layout_to_float_tolerance(tmp_path):
    plain, last = run(tmp_path, "plain", splits=SHORT), run(tmp_path, "last", splits=SHORT, channels_last=True)
    # measured: the same to about 1e-6 (NHWC kernels sum in another order), never bit for bit
    for a, b in zip(rows(plain), rows(last)):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert b[key] == pytest.approx(a[key], abs=2e-4), key
    assert last.test_accuracy == pytest.approx(plain.test_accuracy, abs=0.006)  # one image of 179 at most


def test_bf16_autocast_learns_the_digits(tmp_path):
    plain, half = run(tmp_path, "plain", epochs=4), run(tmp_path, "bf16", epochs=4, amp="bf16")
    assert half.test_accuracy >= 0.85
    assert half.history[-1]["loss"] < half.history[0]["loss"] / 2
    assert rows(half) != rows(plain)  # bfloat16 arithmetic really ran: other roundings, other figures
    assert abs(half.history[-1]["val_loss"] - plain.history[-1]["val_loss"]) < 0.1


def test_fp16_on_the_cpu_warns_and_its_scaler_resumes_exactly(tmp_path):
    lines = []
    straight = run(tmp_path, "a", log=lines.append, epochs=3, amp="fp16")
    assert any(line.startswith("warning: `amp: fp16` on the CPU") for line in lines)
    run(tmp_path, "b", epochs=2, amp="fp16")
    halfway = torch.load(tmp_path / "b/last.pt", weights_only=True)["resume"]["scaler"]
    # this run overflowed float16 in its first 2 epochs: the scale was halved from 65,536, the step skipped
    assert halfway["scale"] < 65536.0
    resumed = run(tmp_path, "b", resume=True, epochs=3, amp="fp16")
    assert rows(resumed) == rows(straight) and resumed.test_accuracy == straight.test_accuracy
    scalers = [torch.load(tmp_path / f"{name}/last.pt", weights_only=True)["resume"]["scaler"] for name in "ab"]
    assert scalers[0] == scalers[1]


def test_training_images_held_on_the_host_give_the_same_run(tmp_path):
    """The order and the augmentations come from the run's CPU generators wherever the images are, so the run is
    the same bit for bit; on the CPU both paths slice the same tensors (the copy path itself runs on CUDA)."""
    augment = {"hflip": True, "crop": 2}
    held = run(tmp_path, "device", augment=augment, splits=SHORT)
    host = run(tmp_path, "host", augment=augment, splits=SHORT, data_on_device=False)
    assert rows(host) == rows(held) and host.test_accuracy == held.test_accuracy


class PerImage(torch.utils.data.Dataset):
    """What a torchvision-style loader does: each image flipped with probability 1/2, padded and cropped back
    at a uniformly random place, one image at a time."""

    def __init__(self, image, count: int, pad: int):
        self.image, self.count, self.pad = image, count, pad

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i):
        x = self.image.flip(-1) if torch.rand(()) < 0.5 else self.image
        padded = torch.nn.functional.pad(x, (self.pad,) * 4)
        dy, dx = torch.randint(0, 2 * self.pad + 1, (2,)).tolist()
        return padded[:, dy:dy + x.shape[1], dx:dx + x.shape[2]]


def where_the_dot_went(batch) -> torch.Tensor:
    """Each image's one bright pixel's place (row * 8 + column), or 64 where the crop cut it off."""
    flat = batch.reshape(len(batch), -1)
    return torch.where(flat.max(1).values > 0, flat.argmax(1), torch.full((len(batch),), 64))


def test_batch_augmentation_draws_as_a_per_image_loader_does():
    image = torch.zeros(1, 8, 8)
    image[0, 2, 5] = 1.0  # off-centre: a flip and each shift move it somewhere else
    count, pad = 5000, 2
    ours = Augment(hflip=True, crop=pad)(image.expand(count, 1, 8, 8).clone(), torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(PerImage(image, count, pad), batch_size=500)
    theirs = torch.cat(list(loader))
    ours_hist = torch.bincount(where_the_dot_went(ours), minlength=65).float() / count
    theirs_hist = torch.bincount(where_the_dot_went(theirs), minlength=65).float() / count
    # every flip and shift equally likely: 2 x 5 x 5 draws of 1/50 each, enumerated
    expected = torch.zeros(65)
    for flip in (False, True):
        for dy in range(2 * pad + 1):
            for dx in range(2 * pad + 1):
                row, col = 2 + pad - dy, (2 if flip else 5) + pad - dx
                expected[row * 8 + col if 0 <= row < 8 and 0 <= col < 8 else 64] += 1 / 50
    for hist in (ours_hist, theirs_hist):
        assert torch.equal(hist > 0, expected > 0)  # the same 40 places (a flip and a shift can meet)
        assert (hist - expected).abs().max() < 0.015  # a cell's standard deviation is at most 0.003 here
    assert (ours_hist - theirs_hist).abs().max() < 0.015


@pytest.mark.slow  # inductor compiles the forward and backward passes: 20 s and more on a small CPU
@pytest.mark.skipif(not any(shutil.which(c) for c in accel.COMPILERS), reason="no C++ compiler for inductor")
def test_compile_trains_as_eager_does(tmp_path):
    eager = run(tmp_path, "eager", epochs=1, splits=SHORT)
    compiled = run(tmp_path, "compiled", epochs=1, splits=SHORT, compile=True)
    assert compiled.history[0]["val_loss"] == pytest.approx(eager.history[0]["val_loss"], abs=1e-3)
    assert compiled.test_accuracy == pytest.approx(eager.test_accuracy, abs=0.02)


def test_compile_without_a_compiler_is_said_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(accel.shutil, "which", lambda name: None)
    with pytest.raises(CnnError, match="needs a C.. compiler") as e:
        run(tmp_path, "c", compile=True)
    assert "apt install g++" in e.value.hint and not (tmp_path / "c/last.pt").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_when_absent_is_a_clear_error(tmp_path):
    with pytest.raises(CnnError, match="no CUDA device is available"):
        train(cnndsl.loads(NET), load_recipe(None, epochs=1), tmp_path / "r", device="cuda", log=lambda line: None)


def test_bf16_on_a_gpu_without_it_says_so_and_auto_takes_fp16(monkeypatch):
    """A CUDA card before Ampere (a T4, a V100) has no bfloat16; no GPU is needed to check what is said."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    cuda = torch.device("cuda")
    with pytest.raises(CnnError, match=r"`amp: bf16`: this GPU \(Tesla T4\) has no bfloat16") as e:
        accel.amp_for("bf16", cuda)
    assert "amp: fp16" in e.value.hint
    with pytest.warns(UserWarning) if not torch.cuda.is_available() else _nothing():
        auto = accel.amp_for("auto", cuda)  # (torch warns that its CUDA scaler is off without CUDA)
    assert auto.name == "fp16" and auto.scaler is not None
    assert accel.amp_for("auto", torch.device("cpu")).name == "bf16" and accel.amp_for(True, cuda).name == "fp16"


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def test_cudnn_benchmark_is_set_for_cuda_only():
    before = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = False
        accel.prepare(torch.device("cpu"))
        assert torch.backends.cudnn.benchmark is False
        accel.prepare(torch.device("cuda"))
        assert torch.backends.cudnn.benchmark is True
    finally:
        torch.backends.cudnn.benchmark = before


def test_amp_takes_its_modes_and_the_older_booleans(tmp_path):
    assert load_recipe(None, amp=True).amp == "auto" and load_recipe(None, amp=False).amp == "off"
    (tmp_path / "r.yaml").write_text("amp: off\n")  # YAML 1.1's off is false
    assert load_recipe(tmp_path / "r.yaml").amp == "off"
    with pytest.raises(CnnError, match="takes one of off, bf16, fp16, auto, got 'fp61'") as e:
        load_recipe(None, amp="fp61")
    assert "fp16" in e.value.hint
    done = subprocess.run([sys.executable, "-m", "cnndsl.cli", "train", "x.cnn", "--amp", "fp61"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "invalid choice: 'fp61'" in done.stderr


def test_the_airbench_spec_and_recipe_load_and_take_a_step():
    spec = cnndsl.load(ROOT / "examples/airbench94.cnn")
    report = spec.check()
    assert report.params == 1_972_792 and tuple(report.output) == (10,)
    recipe = load_recipe(ROOT / "examples/recipes/airbench94.yaml")
    assert (recipe.data, recipe.batch_size, recipe.label_smoothing, recipe.amp) == ("cifar10", 1024, 0.2, "auto")
    from cnndsl.build import scores
    from cnndsl.data.datasets import Split
    from cnndsl.training.epoch import Batches, train_pass

    torch.manual_seed(0)
    model = spec.build(channels_last=True).train()
    x = torch.randn(16, 3, 32, 32).to(memory_format=torch.channels_last)
    split = Split(x, torch.randint(0, 10, (16,)))
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum, nesterov=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # (float32: bfloat16 is slow on most CPUs, and other tests train with it)
    how = Batches(8, torch.Generator().manual_seed(0), Augment(**recipe.augment), torch.Generator().manual_seed(1))
    loss, _ = train_pass(scores(model), split, how, torch.nn.CrossEntropyLoss(label_smoothing=0.2), optimizer)
    assert 1.5 < loss < 3.5  # about ln 10 = 2.3 at the start, with smoothing
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert "dense1.weight" in changed and any(k.endswith("running_mean") for k in changed)


def test_gpu_bench_smoke_runs_on_the_cpu():
    done = subprocess.run([sys.executable, "bench/gpu_speed.py", "--smoke", "--models", "resnet18", "--no-amp"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    table = [line.split() for line in done.stdout.splitlines() if line.startswith("resnet18")]
    assert [row[1:3] for row in table] == [["32x32", "4"], ["48x48", "4"]]
    assert all(float(row[3]) > 0 and float(row[4]) > 0 for row in table)
