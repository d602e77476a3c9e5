"""`cnndsl show filters|maps|cam`: pictures whose content is checked against the network's own tensors."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

import numpy as np  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.cli import main  # noqa: E402
from cnndsl.data.datasets import load_dataset  # noqa: E402
from cnndsl.errors import UsageError  # noqa: E402
from cnndsl.training.loop import train  # noqa: E402
from cnndsl.training.recipe import load_recipe  # noqa: E402
from cnndsl.viz import tiles  # noqa: E402
from cnndsl.viz.cam import cam_structure, class_map, last_maps  # noqa: E402
from cnndsl.viz.capture import capture, module_of  # noqa: E402
from cnndsl.viz.learned import (  # noqa: E402
    colours,
    draw_filters,
    draw_maps,
    feature_maps,
    filter_grid,
    filters_title,
    first_stage,
)
from cnndsl.viz.trained import Sample, Trained, read_checkpoint, sample  # noqa: E402
from conftest import ROOT  # noqa: E402

# conv1 keeps 8x8, so the first stage is conv1 and conv2; conv3 works on 4x4. `width` is trained as 6.
DIGITS = """network digits_net(classes = 10, width = 16) {
    input 1x8x8
    conv width kernel=3 padding=same activation=relu
    conv 8 kernel=3 padding=same activation=relu
    maxpool 2
    conv 12 kernel=3 padding=same activation=relu
    globalavgpool
    dense classes activation=softmax
}"""

RESIDUAL = """network res_net(classes = 2) {
    input 1x12x12
    conv 4 kernel=3 padding=1
    relu
    residual {
        conv 4 kernel=3 padding=1
        batchnorm
        relu
        conv 4 kernel=3 padding=1
        batchnorm
    }
    relu
    globalavgpool
    dense classes
}"""


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run of the real runner: 2 epochs on the digits, normalised, with --set width=6."""
    out = tmp_path_factory.mktemp("show") / "run"
    train(cnndsl.loads(DIGITS, width=6), load_recipe(None, epochs=2, lr=0.01, normalize=True, seed=5), out, log=quiet)
    return out


@pytest.fixture(scope="module")
def trained(run):
    return read_checkpoint(run)


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()  # the whole file decodes
        return image.size


def figure_pixels(fig, dpi: int = 110) -> tuple[int, int]:
    w, h = fig.get_size_inches()
    return int(w * dpi), int(h * dpi)  # as Agg sizes its canvas


# ---- reading a run ----------------------------------------------------------------------------------------------

def test_a_run_is_read_with_its_spec_set_values_classes_and_normalisation(run, trained):
    saved = torch.load(run / "best.pt", weights_only=True)
    assert trained.path == run / "best.pt"
    assert trained.spec.params["width"] == 6  # the run's --set, not the spec's default of 16
    assert trained.report.layer("conv1").layer.shape == (6, 8, 8)
    assert trained.classes == [str(i) for i in range(10)]
    assert trained.normalization == saved["normalization"] and len(trained.normalization["mean"]) == 1
    for name, tensor in trained.model.state_dict().items():
        assert torch.equal(tensor, saved["model"][name])
    assert not trained.model.training
    assert read_checkpoint(run / "last.pt").path == run / "last.pt"


def test_a_bare_state_dict_needs_the_spec(tmp_path, run, spec_file):
    bare = tmp_path / "weights.pt"
    torch.save(torch.load(run / "best.pt", weights_only=True)["model"], bare)
    with pytest.raises(UsageError, match="holds no spec text") as e:
        read_checkpoint(bare)
    assert "--spec FILE" in e.value.diagnostic.hint
    spec = spec_file(DIGITS)
    with pytest.raises(cnndsl.CnnError, match="weights.pt"):  # width 16 against weights of width 6
        read_checkpoint(bare, str(spec))
    assert read_checkpoint(bare, str(spec), sets={"width": 6}).report.layer("conv1").layer.shape == (6, 8, 8)
    assert read_checkpoint(bare, str(spec), sets={"width": 6}).classes == [str(i) for i in range(10)]


def test_a_test_sample_is_the_runs_test_image_normalised_as_training_did(trained):
    data = load_dataset("digits", (1, 8, 8), seed=5)
    one = sample(trained, index=7)
    assert torch.equal(one.shown, data.test.x[7])
    mean, std = trained.normalization["mean"][0], trained.normalization["std"][0]
    assert torch.allclose(one.x[0], (data.test.x[7] - mean) / std)
    assert one.label == str(int(data.test.y[7])) and one.tag == "test7"
    with pytest.raises(UsageError, match=r"--index 179: the test split of digits has 179 images \(0 to 178\)"):
        sample(trained, index=179)
    with pytest.raises(UsageError, match="not both"):
        sample(trained, "x.png", 1)


def test_an_image_file_is_prepared_as_predict_prepares_it(tmp_path, trained):
    from cnndsl.data.datasets import input_image

    pixels = (np.arange(16 * 16, dtype=np.uint8).reshape(16, 16))
    Image.fromarray(pixels).save(tmp_path / "ramp 1.png")
    one = sample(trained, str(tmp_path / "ramp 1.png"))
    assert one.shown.shape == (1, 8, 8)
    assert torch.equal(one.shown, input_image(tmp_path / "ramp 1.png", (1, 8, 8))[0])
    assert one.tag == "ramp_1" and one.label is None and one.source == "ramp 1.png"


# ---- capture: in-place ReLUs and sums do not reach what was captured ----------------------------------------

def test_a_conv_is_captured_before_the_in_place_relu_that_follows_it(trained):
    x = sample(trained, index=3).x
    conv = trained.model.conv1
    assert trained.model.relu1.inplace  # the generated module computes in place...
    _, got = capture(trained.model, trained.report, x, ["conv1"])
    expected = F.conv2d(x, conv.weight, conv.bias, padding=1)
    assert got["conv1"].min() < 0  # ...yet the capture holds the conv's output, negative values and all
    assert torch.allclose(got["conv1"], expected, atol=1e-6)
    assert trained.model.relu1.inplace  # and is left as it was

    naive = {}  # what a plain hook keeps: the tensor the ReLU then overwrote
    hook = conv.register_forward_hook(lambda m, i, o: naive.setdefault("out", o))
    with torch.no_grad():
        trained.model(x)
    hook.remove()
    assert naive["out"].min() >= 0


def test_a_residual_body_is_captured_before_the_in_place_sum():
    spec = cnndsl.loads(RESIDUAL)
    report, model = spec.check(), spec.build().eval()
    add = next(f.layer for f in report.analysis.layers if f.layer.op == "add")
    body_last, shortcut = add.inputs  # names from the report, whatever the residual's internals are called
    before = report.layer(body_last).layer.inputs[0]
    x = torch.randn(1, 1, 12, 12)
    _, got = capture(model, report, x, [before, body_last, add.id, shortcut])
    with torch.no_grad():
        body = module_of(model, report, body_last)(got[before])
    assert torch.allclose(got[body_last], body, atol=1e-6) and got[body_last].min() < 0
    assert torch.allclose(got[add.id], got[body_last] + got[shortcut], atol=1e-6)


def test_an_unknown_layer_is_named_with_a_suggestion(trained):
    with pytest.raises(UsageError, match="no layer `conv7` in digits_net") as e:
        module_of(trained.model, trained.report, "conv7")
    assert e.value.diagnostic.hint == "did you mean `conv3`?"
    with pytest.raises(UsageError) as e:
        module_of(trained.model, trained.report, "stage1")
    assert e.value.diagnostic.hint == ("its layers: conv1, relu1, conv2, relu2, maxpool1, conv3, relu3, "
                                       "globalavgpool1, dense1, softmax1")


# ---- filters ------------------------------------------------------------------------------------------------------

def test_filters_are_one_tile_per_filter_on_a_symmetric_scale(trained):
    grid = filter_grid(trained)
    weight = trained.model.conv1.weight.detach().numpy()
    assert grid.layer == "conv1" and len(grid.tiles) == 6 and not grid.rgb and not grid.per_channel
    assert grid.vmax == pytest.approx(float(abs(weight).max()))
    fig = draw_filters(grid, "t")
    drawn = fig.axes[0].images[0]
    assert drawn.get_clim() == (-grid.vmax, grid.vmax) and drawn.get_cmap().name.startswith("RdBu_r")
    image = np.ma.getdata(drawn.get_array())
    assert image.shape == (2 * 3 + 1, 3 * 3 + 2)  # 6 tiles of 3x3 in 3 columns, a pixel between
    for f in range(6):
        assert np.array_equal(tiles.tile_of(image, f, (3, 3), 3), weight[f, 0])
    assert np.isnan(image[3]).all() and np.isnan(image[:, [3, 7]]).all()  # the gaps
    assert len(fig.axes[0].texts) == 6  # each tile numbered


def test_a_layer_seeing_many_channels_has_a_row_per_filter(trained):
    grid = filter_grid(trained, "conv3")  # 12 filters over 8 channels
    weight = trained.model.conv3.weight.detach().numpy()
    assert grid.per_channel and grid.columns == 8 and len(grid.tiles) == 12 * 8
    assert np.array_equal(grid.tiles[5 * 8 + 2], weight[5, 2])
    with pytest.raises(UsageError, match="`maxpool1` has no 2-D kernels"):
        filter_grid(trained, "maxpool1")


def test_large_layers_show_their_first_filters_and_say_so():
    spec = cnndsl.loads("network wide { input 1x8x8\n conv 300 kernel=3\n conv 40 kernel=3\n flatten\n dense 2 }")
    wide = Trained(None, spec, spec.build().eval(), ["0", "1"], {})
    first, second = filter_grid(wide), filter_grid(wide, "conv2")
    assert len(first.tiles) == 256 and first.columns == 16
    assert filters_title(wide, first) == ("wide · conv1: 300 filters of 3x3x1, the first 256\nwhite is 0, red "
                                          f"positive, blue negative\none scale for all: ±{first.vmax:.3g}")
    assert len(second.tiles) == 32 * 16 and second.columns == 16 and second.shown_filters == 32
    assert np.array_equal(second.tiles[31 * 16 + 15], wide.model.conv2.weight.detach().numpy()[31, 15])
    assert filters_title(wide, second) == ("wide · conv2: 40 filters of 3x3x300, the first 32; the first 16 input "
                                           "channels a row\nwhite is 0, red positive, blue negative\n"
                                           f"one scale for all: ±{second.vmax:.3g}")
    fig = draw_filters(first, "t")
    assert len(fig.axes[0].texts) == 0 and len(fig.axes[0].get_yticks()) == 16  # rows labelled, not tiles


def test_rgb_filters_are_colour_images_with_grey_for_zero(tmp_path):
    rgb = DIGITS.replace("input 1x8x8", "input 3x8x8")
    train(cnndsl.loads(rgb), load_recipe(None, epochs=1), tmp_path, log=quiet)  # grey digits, repeated to RGB
    grid = filter_grid(read_checkpoint(tmp_path))
    weight = read_checkpoint(tmp_path).model.conv1.weight.detach().numpy()
    assert grid.rgb and len(grid.tiles) == 16 and grid.tiles[0].shape == (3, 3, 3)
    for f in (0, 15):
        assert np.allclose(grid.tiles[f], 0.5 + weight[f].transpose(1, 2, 0) / (2 * grid.vmax))
    low, high = min(t.min() for t in grid.tiles), max(t.max() for t in grid.tiles)
    assert 0 <= low and high <= 1 and (low == pytest.approx(0, abs=1e-6) or high == pytest.approx(1))
    fig = draw_filters(grid, "t")
    assert fig.axes[0].images[0].get_array().shape == (4 * 3 + 3, 4 * 3 + 3, 3)
    assert len(fig.axes) == 1 and [t.get_text() for t in fig.axes[0].texts] == [str(i) for i in range(16)]
    assert filter_grid(read_checkpoint(tmp_path), rgb=False).per_channel
    # the caption says how colour tiles read: grey is 0 (not white, as for one channel's diverging map)
    v = f"{grid.vmax:.3g}"
    assert colours(grid) == ("each filter as an RGB image: mid grey is 0; a channel brighter than grey is a positive "
                             f"weight, darker a negative one; one scale for all: a channel at full brightness is +{v}, "
                             f"at none -{v}")
    assert filters_title(read_checkpoint(tmp_path), grid).splitlines() == [
        "digits_net · conv1: 16 filters of 3x3x3", "each filter as an RGB image: mid grey is 0",
        "a channel brighter than grey is a positive weight, darker a negative one",
        f"one scale for all: a channel at full brightness is +{v}, at none -{v}"]


def test_one_channel_filters_read_white_as_zero(trained):
    grid = filter_grid(trained)
    assert colours(grid) == f"white is 0, red positive, blue negative; one scale for all: ±{grid.vmax:.3g}"
    assert "grey" not in filters_title(trained, grid)


# ---- feature maps -----------------------------------------------------------------------------------------------

def test_the_first_stage_is_the_convs_at_the_first_convs_size(trained):
    assert first_stage(trained) == ["conv1", "conv2"]


def test_grids_have_full_rows_where_a_divisor_allows():
    assert [tiles.columns_for(n) for n in (6, 7, 8, 16, 32, 64, 96, 512, 1000)] == [3, 3, 4, 4, 8, 8, 12, 32, 40]


def test_maps_are_the_captured_activations(trained):
    one = sample(trained, index=11)
    scores, found = feature_maps(trained, one)
    _, got = capture(trained.model, trained.report, one.x, ["conv1", "conv2"])
    assert [fm.layer for fm in found] == ["conv1", "conv2"]
    for fm in found:
        assert np.array_equal(fm.maps, got[fm.layer][0].numpy())
    assert torch.allclose(scores, trained.model.logits(one.x))
    conv2 = found[1]
    assert conv2.vmax == [float(abs(conv2.maps).max())] * 8  # one scale for the layer
    fig = draw_maps(conv2, one, "t")
    image = np.ma.getdata(fig.axes[1].images[0].get_array())
    assert image.shape == (2 * 8 + 1, 4 * 8 + 3)  # 8 maps of 8x8 in 2 full rows of 4
    for c in range(8):
        assert np.allclose(tiles.tile_of(image, c, (8, 8), 4), conv2.maps[c] / conv2.vmax[0])
    assert np.array_equal(np.ma.getdata(fig.axes[0].images[0].get_array()), one.shown[0].numpy())

    _, (tile_scaled,) = feature_maps(trained, one, ["conv2"], scale="tile")
    assert tile_scaled.vmax == [float(abs(m).max()) or 1.0 for m in conv2.maps]
    with pytest.raises(UsageError, match="`dense1` gives 10 values, not feature maps"):
        feature_maps(trained, one, ["dense1"])


# ---- class activation maps: a synthetic dataset whose class is a patch at a known place ------------------------

GAP_NET = """network gap_net {
    input 1x16x16
    conv 8 kernel=3 padding=same activation=relu
    conv 8 kernel=3 padding=same activation=relu
    globalavgpool
    dense 2
}"""

FLAT_NET = """network flat_net {
    input 1x16x16
    conv 8 kernel=3 padding=same activation=relu
    maxpool 2
    flatten
    dense 2
}"""


def patches(n: int, seed: int):
    """Grey noise with a dark 4x4 distractor; class 1 also has a bright 4x4 patch (at `where`), class 0 not."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 0.1, (n, 16, 16)).astype(np.float32)
    y = np.arange(n) % 2
    where = rng.integers(0, 13, (n, 2))
    for i, (r, c) in enumerate(where):
        if y[i]:
            x[i, r:r + 4, c:c + 4] = 1.0
        d = rng.integers(0, 13, 2)
        while abs(d[0] - r) < 5 and abs(d[1] - c) < 5:
            d = rng.integers(0, 13, 2)
        x[i, d[0]:d[0] + 4, d[1]:d[1] + 4] = 0.0
    return x, y, where


@pytest.fixture(scope="module")
def patch_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("patches")
    x, y, _ = patches(400, 0)
    np.savez(folder / "patches.npz", x=x, y=y)
    runs = {}
    for name, text in (("gap", GAP_NET), ("flat", FLAT_NET)):
        train(cnndsl.loads(text), load_recipe(None, data=f"npz:{folder / 'patches.npz'}", epochs=3, lr=0.01),
              folder / name, log=quiet)
        runs[name] = read_checkpoint(folder / name)
    return runs


def class_one_images():
    x, y, where = patches(40, 1)
    for i in np.flatnonzero(y):
        image = torch.tensor(x[i][None])
        yield Sample(image, image[None], f"image {i}", f"i{i}", "1"), where[i]


@pytest.mark.parametrize("name, method", [("gap", "cam"), ("gap", "gradcam"), ("flat", "gradcam")])
def test_the_class_map_peaks_on_the_patch(patch_runs, name, method):
    trained = patch_runs[name]
    count = 0
    for one, (r, c) in class_one_images():
        cm = class_map(trained, one, "1", method)
        assert cm.upsampled.shape == (16, 16) and cm.upsampled.min() == 0 and cm.upsampled.max() == 1
        row, col = cm.peak
        assert r <= row < r + 4 and c <= col < c + 4, (one.source, (r, c), cm.peak)
        count += 1
    assert count == 20


def test_cam_is_the_dense_weights_over_the_pooled_maps(patch_runs):
    trained = patch_runs["gap"]
    assert cam_structure(trained) == ("relu2", "dense1")
    one, _ = next(class_one_images())
    scores, got = capture(trained.model, trained.report, one.x, ["relu2"])
    dense = trained.model.dense1
    bias = dense.bias.detach()
    for target in (0, 1):
        cm = class_map(trained, one, str(target), "cam")
        assert cm.method == "CAM" and cm.layer == "relu2" and cm.target == target
        # the class's score is the map's mean plus the bias: CAM is the score, spread over the image
        assert float(cm.small.mean()) + float(bias[target]) == pytest.approx(float(scores[0, target]), abs=1e-5)
        # Grad-CAM on a global-average-pooled layer: the same map, ReLU'd, over the number of positions
        grad = class_map(trained, one, str(target), "gradcam", "relu2")
        assert np.allclose(grad.small, np.maximum(cm.small, 0) / 256, atol=1e-6)
    assert np.allclose(got["relu2"][0].numpy().mean((1, 2)) @ dense.weight.detach().numpy()[1]
                       + float(bias[1]), float(scores[0, 1]), atol=1e-5)


def test_grad_cam_defaults_to_the_last_maps_and_cam_needs_its_structure(patch_runs):
    trained = patch_runs["flat"]
    assert cam_structure(trained) is None and last_maps(trained) == "maxpool1"
    one, _ = next(class_one_images())
    cm = class_map(trained, one)
    assert cm.method == "Grad-CAM" and cm.layer == "maxpool1" and cm.small.shape == (8, 8)
    assert cm.target == cm.predicted
    with pytest.raises(UsageError, match="does not end in globalavgpool and dense"):
        class_map(trained, one, method="cam")
    with pytest.raises(UsageError, match="no class `cat`"):
        class_map(trained, one, "cat")


# ---- the command ----------------------------------------------------------------------------------------------

def test_show_filters_writes_a_png_and_never_replaces_one(run, capsys, tmp_path):
    assert main(["show", "filters", str(run), "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'filters-conv1.png'}\n"
    assert main(["show", "filters", str(run), "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'filters-conv1-2.png'}\n"
    trained = read_checkpoint(run)
    grid = filter_grid(trained)
    fig = draw_filters(grid, filters_title(trained, grid))  # three lines of title: a little taller than one
    assert png_size(tmp_path / "filters-conv1.png") == figure_pixels(fig)
    assert figure_pixels(fig)[1] > figure_pixels(draw_filters(grid, "t"))[1]


def test_show_maps_and_cam_write_into_the_run_folder(run, capsys):
    assert main(["show", "maps", str(run), "--index", "4"]) == 0
    assert capsys.readouterr().out == f"wrote {run / 'maps-test4-conv1.png'}\nwrote {run / 'maps-test4-conv2.png'}\n"
    trained = read_checkpoint(run)
    one = sample(trained, index=4)
    _, (conv2,) = feature_maps(trained, one, ["conv2"])
    assert png_size(run / "maps-test4-conv2.png") == figure_pixels(draw_maps(conv2, one, "t"))
    assert main(["show", "maps", str(run / "best.pt"), "--layer", "conv3", "--scale", "tile"]) == 0
    assert capsys.readouterr().out == f"wrote {run / 'maps-test0-conv3.png'}\n"
    assert main(["show", "cam", str(run), "--index", "4", "--class", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("CAM of class 3 (") and " at relu3: peak at row " in lines[0]
    assert lines[1] == f"wrote {run / 'cam-test4-3.png'}"
    assert png_size(run / "cam-test4-3.png") == (825, 440)


@pytest.mark.parametrize("argv, message", [
    (["maps", "{run}", "--layer", "conv9"], "no layer `conv9` in digits_net"),
    (["maps", "{run}", "--index", "500"], "--index 500: the test split of digits has 179 images"),
    (["cam", "{run}", "--class", "ten"], "no class `ten`"),
    (["filters", "{run}/nothing"], "no such run or checkpoint"),
    (["filters", "{run}", "--layer", "relu1"], "`relu1` has no 2-D kernels"),
])
def test_show_refuses_with_a_message(run, capsys, argv, message):
    assert main(["show", *[a.format(run=run) for a in argv]]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_make_run_mentions_the_show_commands():
    makefile = (ROOT / "Makefile").read_text()
    run = makefile[makefile.index("\nrun:"):].split("\n\n")[0]
    assert all(f"show {what}" in run for what in ("filters", "maps", "cam"))


def test_every_option_of_show_is_documented():
    from cnndsl.cli import parser

    doc = (ROOT / "docs/pictures.md").read_text()
    show = next(a for a in parser()._subparsers._group_actions[0].choices["show"]._actions if a.dest == "what")
    for what, sub in show.choices.items():
        assert f"### `show {what}`" in doc
        for action in sub._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"{option}" in doc, f"docs/pictures.md does not mention show {what} {option}"
            for choice in action.choices or ():
                assert choice in doc
    assert "cnndsl show maps" in (ROOT / "README.md").read_text()
