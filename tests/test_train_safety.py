"""Issue 7, the training side: no run is lost, nothing a user gives runs code, no input crashes the tool.

Each bad input must end in a CnnError (exit 1) or a UsageError (exit 2) that says what to do, never in
a traceback or an internal error (exit 3); files that were there stay byte for byte as they were.
"""

from __future__ import annotations

import os
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")

import cnndsl  # noqa: E402
from cnndsl import memory  # noqa: E402
from cnndsl.cli import main  # noqa: E402
from cnndsl.data.datasets import load_dataset  # noqa: E402
from cnndsl.errors import CnnError, UsageError  # noqa: E402
from cnndsl.files import atomic_write  # noqa: E402
from cnndsl.training import runs  # noqa: E402
from cnndsl.training.recipe import load_recipe  # noqa: E402
from conftest import SMALL  # noqa: E402

OTHER = SMALL.replace("conv 16", "conv 24")  # the same layers, another width
HUGE_INPUT = "network huge {\n    input 3x100000x100000\n    conv 8 kernel=3\n    globalavgpool\n    dense 10\n}"
HUGE_DENSE = "network wide {\n    input 1x8x8\n    flatten\n    dense 1000000000000\n    dense 10\n}"


@pytest.fixture(autouse=True)
def limits(monkeypatch):
    """The same memory on every machine, and the default pixel limit."""
    monkeypatch.setenv("CNNDSL_MAX_MEMORY", "16G")
    monkeypatch.delenv("CNNDSL_MAX_PIXELS", raising=False)


@pytest.fixture
def cli(capsys):
    """Runs `cnndsl ARGS...` in this process: (exit code, stdout, stderr)."""

    def run(*args) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert "internal error" not in err and "Traceback" not in err, err
        return code, out, err

    return run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """A spec, 40 grey 8x8 images of 10 classes, and a finished one-epoch run on them (about a second)."""
    root = tmp_path_factory.mktemp("tiny")
    (root / "small.cnn").write_text(SMALL)
    (root / "other.cnn").write_text(OTHER)
    rng = np.random.default_rng(0)
    np.savez(root / "d.npz", x=rng.integers(0, 256, (40, 8, 8), dtype=np.uint8), y=np.arange(40) % 10)
    assert main(["train", str(root / "small.cnn"), "--data", f"npz:{root / 'd.npz'}", "--epochs", "1",
                 "--out", str(root / "run")]) == 0
    return {"spec": root / "small.cnn", "other": root / "other.cnn", "data": root / "d.npz", "run": root / "run"}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def a_copy(run: Path, where: Path) -> Path:
    return Path(shutil.copytree(run, where / "run"))


class Evil:
    """Unpickling this would create the marker file (it would run `open`)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


# ---- 1. a run is never replaced -------------------------------------------------------------------------


def test_a_finished_run_is_never_replaced(tiny, cli):
    before = snapshot(tiny["run"])
    code, _, err = cli("train", tiny["spec"], "--data", f"npz:{tiny['data']}", "--out", tiny["run"])
    assert code == 2
    assert f"--out {tiny['run']} holds a run already" in err
    assert f"--resume {tiny['run']}" in err and f"--out {tiny['run']}-2" in err
    assert snapshot(tiny["run"]) == before


def test_a_folder_that_holds_anything_is_refused(tmp_path, tiny, cli):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes/todo.txt").write_text("keep me")
    code, _, err = cli("train", tiny["spec"], "--out", tmp_path / "notes")
    assert code == 2 and "is not empty" in err
    assert snapshot(tmp_path / "notes") == {"todo.txt": b"keep me"}
    from cnndsl.training.loop import train

    with pytest.raises(UsageError, match="holds a run already"):  # the Python API keeps runs too
        train(cnndsl.loads(SMALL), load_recipe(None), tiny["run"])


def test_the_default_folder_takes_a_suffix(tmp_path, tiny, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runs.time, "strftime", lambda fmt: "20260101-000000")
    taken = tmp_path / "runs/small-20260101-000000"
    taken.mkdir(parents=True)
    (taken / "last.pt").write_bytes(b"an earlier run")
    code, out, _ = cli("train", tiny["spec"], "--data", f"npz:{tiny['data']}", "--epochs", "1")
    assert code == 0 and "wrote runs/small-20260101-000000-2:" in out
    assert (tmp_path / "runs/small-20260101-000000-2/last.pt").exists()
    assert snapshot(taken) == {"last.pt": b"an earlier run"}
    assert runs.default_folder("x/small.cnn") == Path("runs/small-20260101-000000-3")


def test_run_folders_that_cannot_be_made(tmp_path, tiny, cli):
    (tmp_path / "file").write_text("not a folder")
    code, _, err = cli("train", tiny["spec"], "--out", tmp_path / "file")
    assert code == 2 and "is a file, not a folder" in err
    code, _, err = cli("train", tiny["spec"], "--out", tmp_path / "file/run")
    assert code == 2 and f"cannot be made: {tmp_path / 'file'} is a file" in err
    assert (tmp_path / "file").read_text() == "not a folder"
    if os.geteuid() != 0:  # root writes through file modes: the file-as-parent case above stands for it
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        code, _, err = cli("train", tiny["spec"], "--out", locked / "run")
        assert code == 2 and "is not writable" in err
    with pytest.raises(CnnError, match=f"cannot write {tmp_path / 'file/metrics.json'}"):
        atomic_write(tmp_path / "file/metrics.json", b"{}")  # a disk that fails mid-run: a message


def test_compile_output_that_cannot_be_written(tmp_path, tiny, cli):
    spec = tmp_path / "small.cnn"
    spec.write_text(SMALL)
    (tmp_path / "file").write_text("x")
    for target, message in ((tmp_path / "missing/net.py", "missing does not exist"),
                            (tmp_path / "file/net.py", "file is a file"),
                            (tmp_path, "is a folder"),
                            (spec, "is the spec itself")):
        code, _, err = cli("compile", spec, "-o", target)
        assert code == 2 and message in err, err
    assert spec.read_text() == SMALL
    code, _, _ = cli("compile", spec, "-o", tmp_path / "net.py")
    assert code == 0 and "class Small" in (tmp_path / "net.py").read_text()


# ---- 2. what a NaN loss leaves --------------------------------------------------------------------------


def test_a_nan_in_the_first_epoch_says_nothing_was_saved(tmp_path, tiny, cli):
    code, _, err = cli("train", tiny["spec"], "--data", f"npz:{tiny['data']}", "--batch-size", "4", "--lr", "1e30",
                       "--out", tmp_path / "run")
    assert code == 1 and "the loss became NaN or infinite at epoch 1" in err
    assert "No epoch finished, so nothing was saved." in err and "last.pt" not in err
    assert list((tmp_path / "run").iterdir()) == []  # so the same --out can be used again


def test_a_nan_later_names_the_last_checkpoint(tmp_path, tiny):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"data: npz:{tiny['data']}\nbatch_size: 4\nphases: [{{epochs: 1, lr: 0.001}}, "
                      "{epochs: 1, lr: 1e30}]\n")
    with pytest.raises(CnnError, match="at epoch 2") as info:
        from cnndsl.training.loop import train

        train(cnndsl.loads(SMALL), load_recipe(recipe), tmp_path / "run", log=lambda line: None)
    assert f"The last good checkpoint is {tmp_path / 'run/last.pt'} (epoch 1)." in info.value.message


# ---- 3. networks too large for memory ---------------------------------------------------------------------


def test_a_network_too_large_is_refused_before_anything_is_allocated(tmp_path, cli, monkeypatch):
    from cnndsl.training import setup

    monkeypatch.setattr(setup, "load_dataset", lambda *a, **k: pytest.fail("the data was loaded"))
    spec = tmp_path / "huge.cnn"
    spec.write_text(HUGE_INPUT)
    code, _, err = cli("train", spec, "--out", tmp_path / "run")
    assert code == 1
    assert "training with batches of 32 (1.2 KiB weights" in err and "298.0 GiB activations per sample x 32" in err
    assert "needs about 18.6 TiB, more than the 16.0 GiB that CNNDSL_MAX_MEMORY allows" in err
    assert "even --batch-size 1 does not fit: lower the input size or the layer widths" in err
    assert not (tmp_path / "run").exists()
    wide = tmp_path / "wide.cnn"
    wide.write_text(HUGE_DENSE)
    for command in (("eval", wide, "--weights", tmp_path / "none.pt"),
                    ("predict", wide, "x.png", "--weights", tmp_path / "none.pt")):
        code, _, err = cli(*command)
        assert code == 1 and "running the network on one image (272.8 TiB weights + 3.6 TiB activations" in err, err


def test_the_weights_guard_for_build(tmp_path):
    report = cnndsl.loads(HUGE_DENSE).check()
    with pytest.raises(CnnError, match=r"the network \(272\.8 TiB of weights\) needs about 272\.8 TiB") as info:
        memory.check_weights(report)
    assert "lower the layer widths" in info.value.hint and "CNNDSL_MAX_MEMORY=SIZE" in info.value.hint
    memory.check_weights(cnndsl.loads(SMALL).check())  # 20 KiB: fine


def test_the_memory_limit_says_which_batch_fits_and_can_be_set(monkeypatch):
    report = cnndsl.loads(SMALL).check()
    monkeypatch.setenv("CNNDSL_MAX_MEMORY", "1M")
    with pytest.raises(CnnError) as info:
        memory.check_training(report, 64)
    assert "more than the 1.0 MiB that CNNDSL_MAX_MEMORY allows" in info.value.message
    assert info.value.hint.startswith("--batch-size 35 fits")  # (1 MiB - 4 x 20 KiB) // (2 x 13.2 KiB)
    assert memory.check_inference(report, 256) == 76  # eval and predict take smaller batches instead
    monkeypatch.setenv("CNNDSL_MAX_MEMORY", "1.5G")
    assert memory.check_training(report, 64).total < 2 << 20
    monkeypatch.setenv("CNNDSL_MAX_MEMORY", "lots")
    with pytest.raises(UsageError, match="CNNDSL_MAX_MEMORY=lots: expected a size such as 1M"):
        memory.check_training(report, 64)
    monkeypatch.delenv("CNNDSL_MAX_MEMORY")
    have, where = memory.available()
    assert where == "RAM" and (have is None or have > 0)


def test_data_too_large_at_the_input_size_is_refused_before_resizing():
    with pytest.raises(CnnError, match=r"digits at the input's size \(1,797 images of 3x2000x2000: 80\.3 GiB\)"):
        load_dataset("digits", (3, 2000, 2000))


# ---- 4. images ------------------------------------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels and holds almost none: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_an_image_beyond_the_pixel_limit_is_refused_from_its_header(tmp_path, tiny, cli, monkeypatch):
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(30000, 30000))
    code, _, err = cli("predict", tiny["spec"], bomb, "--weights", tiny["run"] / "best.pt")
    assert code == 1
    assert f"{bomb} is 30000x30000 = 900,000,000 pixels, more than the limit of 40,000,000" in err
    assert "CNNDSL_MAX_PIXELS=900000000" in err
    digit = tmp_path / "digit.png"
    Image.fromarray(np.full((8, 8), 200, dtype=np.uint8)).save(digit)
    monkeypatch.setenv("CNNDSL_MAX_PIXELS", "63")
    code, _, err = cli("predict", tiny["spec"], digit, "--weights", tiny["run"] / "best.pt")
    assert code == 1 and "8x8 = 64 pixels, more than the limit of 63" in err
    monkeypatch.setenv("CNNDSL_MAX_PIXELS", "64")
    assert cli("predict", tiny["spec"], digit, "--weights", tiny["run"] / "best.pt")[0] == 0


def test_image_folders_have_the_same_limit_and_no_empty_class(tmp_path, monkeypatch):
    from PIL import Image

    from cnndsl.data.folders import load_folder

    for name in ("a", "b"):
        (tmp_path / "f" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((10, 10, 3), 40 * i, dtype=np.uint8)).save(tmp_path / "f" / name / f"{i}.png")
    (tmp_path / "f/b/bomb.png").write_bytes(png_header(20000, 20000))
    for workers in (0, 2):  # from a worker process, the message and its hint arrive as well
        with pytest.raises(CnnError, match=r"bomb\.png is 20000x20000 = 400,000,000 pixels") as info:
            load_folder(str(tmp_path / "f"), (3, 8, 8), workers=workers)
        assert info.value.hint.startswith("shrink the image, or raise the limit: CNNDSL_MAX_PIXELS=400000000")
    (tmp_path / "f/b/bomb.png").unlink()
    (tmp_path / "f/empty").mkdir()
    with pytest.raises(CnnError, match=f"the class folder {tmp_path / 'f/empty'} holds no PNG or JPEG images"):
        load_dataset(f"folder:{tmp_path / 'f'}", (3, 8, 8))


def test_an_eps_file_named_png_never_starts_ghostscript(tmp_path, tiny, cli, monkeypatch):
    from PIL import EpsImagePlugin

    marker = tmp_path / "ghostscript-ran"
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: marker.write_text("ran"))
    fake = tmp_path / "photo.png"
    fake.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n%%EndComments\nshowpage\n%%EOF\n")
    code, _, err = cli("predict", tiny["spec"], fake, "--weights", tiny["run"] / "best.pt")
    assert code == 1 and f"cannot read {fake} as an image: it is not a PNG, JPEG, BMP, GIF, WEBP or TIFF file" in err
    assert not marker.exists()


# ---- 5. recipes and flags -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("lr: .nan", "`lr` takes a number greater than 0, got nan"),
    ("lr: .inf", "`lr` takes a number greater than 0, got inf"),
    ("lr: 0", "`lr` takes a number greater than 0, got 0"),
    ("label_smoothing: 2", "`label_smoothing` takes a number from 0 up to (not including) 1, got 2"),
    ("momentum: 5", "`momentum` takes a number from 0 up to (not including) 1, got 5"),
    ("seed: 99999999999999999999999", "`seed` takes a whole number from 0 to 4,294,967,295, got 9999"),
    ("seed: -1", "`seed` takes a whole number from 0 to 4,294,967,295, got -1"),
    ("weight_decay: -0.1", "`weight_decay` takes a number of at least 0, got -0.1"),
    ("clip_grad_norm: .nan", "`clip_grad_norm` takes a number of at least 0, got nan"),
    ("warmup_epochs: 1.5", "`warmup_epochs` takes a whole number of at least 0, got 1.5"),
    ("plateau_patience: 0", "`plateau_patience` takes a whole number of at least 1, got 0"),
    ("epochs: 1e400", "`epochs` takes a whole number of at least 1, got inf"),
    ("augment: {rotate: .inf}", "`augment.rotate` takes a number from 0 to 180, got inf"),
    ("augment: {shear: 90}", "`augment.shear` takes a number from 0 up to (not including) 90, got 90"),
    ("augment: {color: 3}", "`augment.color` takes a number from 0 to 1, got 3"),
    ("augment: {crop: -2}", "`augment.crop` takes a whole number of at least 0, got -2"),
    ("phases: [{epochs: 1, lr: .nan}]", "`lr` of phase 1 takes a number greater than 0, got nan"),
    ("phases: [{epochs: 0}]", "`epochs` of phase 1 takes a whole number of at least 1, got 0"),
    ("optimizer: sgd\nnesterov: true\nmomentum: 0", "`nesterov` needs a `momentum` greater than 0"),
    ("{1: 2}", "unknown recipe key `1`"),
])
def test_recipe_values_out_of_range(tmp_path, text, message):
    path = tmp_path / "r.yaml"
    path.write_text(text + "\n")
    with pytest.raises(CnnError) as info:
        load_recipe(path)
    assert message in info.value.message and not isinstance(info.value, UsageError)


def test_recipe_numbers_as_yaml_1_2_reads_them(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("lr: 1e-3\nweight_decay: 5E-4\nmomentum: .95\n")
    recipe = load_recipe(path)
    assert (recipe.lr, recipe.weight_decay, recipe.momentum) == (0.001, 0.0005, 0.95)
    path.write_text("lr: 1e10\ndata: 1e5x\n")
    assert load_recipe(path).lr == 1e10 and load_recipe(path).data == "1e5x"


def test_a_crop_larger_than_the_images_is_refused(tmp_path):
    from cnndsl.training.loop import train

    with pytest.raises(CnnError, match=r"`augment.crop: 100` pads the 8x8 images by more than their size"):
        train(cnndsl.loads(SMALL), load_recipe(None, augment={"crop": 100}), tmp_path / "run")


@pytest.mark.parametrize("flags, message", [
    (("--lr", "nan"), "--lr takes a number greater than 0, got nan"),
    (("--lr", "-1"), "--lr takes a number greater than 0, got -1.0"),
    (("--seed", "-5"), "--seed takes a whole number from 0 to 4,294,967,295, got -5"),
    (("--seed", str(2**40)), "--seed takes a whole number from 0 to 4,294,967,295"),
])
def test_bad_flags_are_usage_errors(tmp_path, tiny, cli, flags, message):
    code, _, err = cli("train", tiny["spec"], *flags, "--out", tmp_path / "run")
    assert code == 2 and message in err
    assert not (tmp_path / "run").exists()


def test_eval_seed_and_resume_flags(tmp_path, tiny, cli):
    code, _, err = cli("eval", tiny["spec"], "--weights", tiny["run"] / "best.pt", "--seed", "-1")
    assert code == 2 and "--seed takes a whole number from 0 to 4,294,967,295, got -1" in err
    before = snapshot(tiny["run"])
    code, _, err = cli("train", tiny["spec"], "--resume", tiny["run"], "--epochs", "5", "--lr", "0.1")
    assert code == 2 and "--epochs, --lr cannot change them" in err and f"--init {tiny['run']}/last.pt" in err
    assert snapshot(tiny["run"]) == before


def test_resume_from_python_keeps_the_runs_recipe_and_folder(tmp_path, tiny):
    run = a_copy(tiny["run"], tmp_path)
    with pytest.raises(UsageError, match="; epochs, lr cannot change them") as info:
        cnndsl.train(tiny["spec"], resume=run, epochs=5, lr=0.1, log=None)
    assert f"init='{run / 'last.pt'}'" in info.value.hint
    with pytest.raises(UsageError, match="; out cannot change them"):
        cnndsl.train(tiny["spec"], resume=run, out=tmp_path / "elsewhere", log=None)
    with pytest.raises(UsageError, match="holds a run already"):
        cnndsl.plan_training(tiny["spec"], out=run)
    plan = cnndsl.plan_training(tiny["spec"], resume=run, tensorboard=True)  # the one key a resume may change
    assert (plan.out, plan.resume, plan.recipe.data, plan.recipe.tensorboard) == (run, True, f"npz:{tiny['data']}",
                                                                                  True)
    lines = []
    done = cnndsl.train(tiny["spec"], resume=run, log=lines.append)  # finished already: no epoch left, the end again
    assert len(done.history) == 1 and f"resuming {run} after epoch 1 of 1" in lines
    assert "under way" not in (run / "report.html").read_text()


# ---- 6. data --------------------------------------------------------------------------------------------


def npz(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return f"npz:{path}"


def test_npz_archives_that_cannot_train(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((6, 8, 8)).astype(np.float32)
    cases = [
        (dict(x=np.zeros((0, 8, 8), np.uint8), y=np.zeros(0, np.int64)), "holds no examples (x has shape (0, 8, 8))"),
        (dict(x=np.zeros((4, 0, 0), np.uint8), y=np.zeros(4, np.int64)), "the images have no pixels"),
        (dict(x=images, y=np.array([0, 1, -1, 1, 0, 1])), "labels must be 0 or more, but y[2] is -1"),
        (dict(x=images, y=np.array([0, 1, 10**12, 1, 0, 1])), "y[2] is 1,000,000,000,000, but labels are class"),
        (dict(x=np.where(np.arange(6 * 64).reshape(6, 8, 8) == 83, np.nan, images), y=np.arange(6) % 2),
         "x holds NaN or infinite values, the first at x[1, 2, 3] = nan"),
        (dict(x=np.full((6, 8, 8), "a"), y=np.arange(6)), "x holds <U1 values, not numbers"),
        (dict(x=images), "needs two arrays, `x` (images) and `y` (labels); it has x"),
    ]
    for i, (arrays, message) in enumerate(cases):
        with pytest.raises(CnnError) as info:
            load_dataset(npz(tmp_path / f"{i}.npz", **arrays), (1, 8, 8))
        assert message in info.value.message, (message, info.value.message)
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    np.save(tmp_path / "array.npy", images)
    for name in ("junk.npz", "array.npy"):
        with pytest.raises(CnnError, match=f"{name} is not a NumPy .npz archive") as info:
            load_dataset(f"npz:{tmp_path / name}", (1, 8, 8))
        assert "np.savez(PATH, x=images, y=labels)" in info.value.hint


def test_npz_headers_too_large_for_memory_are_refused_before_reading(tmp_path, monkeypatch):
    import zipfile

    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as archive:  # headers that claim 10**12 values, with no data behind them
        for key, shape in (("x", (10**6, 1000, 1000)), ("y", (10**6,))):
            header = {"descr": "|u1", "fortran_order": False, "shape": shape}
            with archive.open(f"{key}.npy", "w") as f:
                np.lib.format.write_array_header_1_0(f, header)
    with pytest.raises(CnnError, match=r"`x` of shape \(1000000, 1000, 1000\) \(uint8\) needs about 4\.5 TiB"):
        load_dataset(f"npz:{path}", (1, 8, 8))


# ---- 7. checkpoints -------------------------------------------------------------------------------------


def test_resuming_with_another_spec_says_how(tmp_path, tiny, cli):
    run = a_copy(tiny["run"], tmp_path)
    before = snapshot(run)
    code, _, err = cli("train", tiny["other"], "--resume", run)
    assert code == 1
    assert f"{run} was trained with another network or other --set values (and its spec text differs" in err
    assert "conv1.weight is (16, 1, 3, 3) in the checkpoint, (24, 1, 3, 3) here" in err
    assert "its --set values (none)" in err and f"--init {run / 'best.pt'}" in err
    assert snapshot(run) == before


def test_a_damaged_last_checkpoint_points_to_best(tmp_path, tiny, cli):
    run = a_copy(tiny["run"], tmp_path)
    (run / "last.pt").write_bytes((run / "last.pt").read_bytes()[:5000])
    before = snapshot(run)
    code, _, err = cli("train", tiny["spec"], "--resume", run)
    assert code == 1
    assert f"cannot read the checkpoint {run / 'last.pt'}: it is damaged or not a PyTorch file" in err
    assert "the run cannot be resumed" in err
    best = run / "best.pt"
    assert f"{best} (epoch 1) is intact: start a new run from its weights with `--init {best} --out {run}-2`" in err
    assert snapshot(run) == before


def test_weights_that_are_not_what_they_claim(tmp_path, tiny, cli):
    fake = tmp_path / "w.safetensors"
    fake.write_bytes(pickle.dumps({"conv1.weight": [1, 2, 3]}))
    code, _, err = cli("train", tiny["spec"], "--data", f"npz:{tiny['data']}", "--init", fake, "--out", tmp_path / "r")
    assert code == 1 and f"{fake} is not a valid safetensors file" in err
    torch.save([1, 2, 3], tmp_path / "list.pt")
    code, _, err = cli("eval", tiny["spec"], "--weights", tmp_path / "list.pt")
    assert code == 1 and "the weights are a list, not a state_dict" in err


def test_eval_with_weights_of_another_network_gives_a_command_line_hint(tmp_path, tiny, cli):
    code, _, err = cli("eval", tiny["other"], "--weights", tiny["run"] / "best.pt", "--data", f"npz:{tiny['data']}")
    assert code == 1 and "the weights do not fit the model exactly" in err
    assert "strict=False" not in err and "cnndsl train SPEC --init CKPT" in err


def test_eval_on_data_with_more_classes_than_outputs(tmp_path, tiny, cli, monkeypatch):
    data = npz(tmp_path / "c20.npz", x=np.zeros((40, 8, 8), np.uint8), y=np.arange(40) % 20)
    code, _, err = cli("eval", tiny["spec"], "--weights", tiny["run"] / "best.pt", "--data", data)
    assert code == 1 and f"the network has 10 outputs but {data} has 20 classes" in err
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("train", tiny["spec"], "--resume", ".")
    assert code == 1 and "--resume .: the folder holds no last.pt" in err and f"--out {tmp_path}-2" in err


# ---- nothing a user gives runs code ---------------------------------------------------------------------


def test_a_recipe_with_python_tags_runs_nothing(tmp_path, tiny, cli):
    marker = tmp_path / "marker"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"epochs: 1\nlr: !!python/object/apply:os.system ['touch {marker}']\n")
    code, _, err = cli("train", tiny["spec"], "--recipe", recipe, "--out", tmp_path / "run")
    assert code == 1 and "could not determine a constructor for the tag" in err and "!!python/... are not read" in err
    assert not marker.exists()


def test_pickled_code_in_weights_and_checkpoints_never_runs(tmp_path, tiny, cli):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {"conv1.weight": Evil(marker)}}, evil)
    run = a_copy(tiny["run"], tmp_path)
    shutil.copy(evil, run / "last.pt")
    for command in (("train", tiny["spec"], "--init", evil, "--out", tmp_path / "new"),
                    ("train", tiny["spec"], "--resume", run),
                    ("eval", tiny["spec"], "--weights", evil),
                    ("predict", tiny["spec"], "x.png", "--weights", evil)):
        code, _, err = cli(*command)
        assert code == 1 and "open), not only tensors" in err and "it holds a Python object (" in err, err
        assert "weights_only" not in err
        assert not marker.exists()


def test_an_npz_of_python_objects_is_not_unpickled(tmp_path):
    marker = tmp_path / "marker"
    objects = np.empty(2, dtype=object)
    objects[:] = [Evil(marker), Evil(marker)]
    path = tmp_path / "evil.npz"
    np.savez(path, x=objects, y=np.arange(2))
    with pytest.raises(CnnError, match="`x` is an array of Python objects, which is not read"):
        load_dataset(f"npz:{path}", (1, 8, 8))
    assert not marker.exists()
