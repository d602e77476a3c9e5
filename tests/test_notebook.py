"""examples/fashion_cnn_honkong.ipynb, the tutorial notebook, executed in a real Jupyter kernel (nbclient) offline
(an empty data cache: the digits stand in for Fashion-MNIST, as the notebook says), three epochs instead of the
book's twenty; its outputs' mime bundles asserted cell by cell; then rendered by nbconvert and opened in headless
Chromium, where every picture must decode."""

from __future__ import annotations

import base64
import io
import re

import pytest

from conftest import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = ROOT / "examples/fashion_cnn_honkong.ipynb"
BATCHES = 36  # ceil(1149 / 32): the digits' training part, the default batch size


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook as run in `folder` (its working directory), and that folder."""
    folder = tmp_path_factory.mktemp("notebook")
    (folder / "empty-cache").mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    [cell] = [c for c in nb.cells if "epochs = 20" in c.source]
    cell.source = cell.source.replace("epochs = 20", "epochs = 3", 1)  # the tests' short run
    with pytest.MonkeyPatch.context() as env:  # the kernel inherits the environment (and conftest's one thread)
        env.setenv("CNNDSL_DATA", str(folder / "empty-cache"))
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(folder)}}).execute()
    return nb, folder


def outputs(nb, text: str, whole: bool = False) -> list:
    """The outputs of the one code cell whose source holds `text` (or is `text`, if `whole`)."""
    [cell] = [c for c in nb.cells if c.cell_type == "code" and (c.source == text if whole else text in c.source)]
    return cell.outputs


def stdout(cell_outputs) -> str:
    return "".join(o.text for o in cell_outputs if o.output_type == "stream" and o.name == "stdout")


def html_of(cell_outputs) -> list[str]:
    return [o.data["text/html"] for o in cell_outputs if "text/html" in o.get("data", {})]


def pngs(page: str) -> list:
    """The pictures of an HTML output, decoded (PIL images)."""
    from PIL import Image

    found = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    return [Image.open(io.BytesIO(base64.b64decode(data))) for data in found]


def cells(row: str) -> list[str]:
    row = re.sub(r"<pre>.*?</pre>", "", row, flags=re.S)
    return [re.sub(r"<[^>]+>", "", c).replace("&gt;", ">") for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_the_magic_shows_the_report(executed):
    nb, _ = executed
    [page] = html_of(outputs(nb, "%%cnn model"))
    assert ("<p><b>fashion_cnn_honkong</b> · &lt;cell&gt; · input <code>1x28x28</code> → output <code>10</code> · "
            "333,526 parameters · 4.2 M MACs · receptive field 34 · 12 layers</p>") in page
    rows = {cells(r)[1]: cells(r) for r in re.findall(r'<tr class="layer"[^>]*>.*?</tr>', page, re.S)}
    assert rows["conv1"] == ["1", "conv1", "conv 3x3 → 32", "32x28x28", "320", "225.8 K", "3"]
    assert rows["conv2"] == ["4", "conv2", "conv 3x3 → 64", "64x14x14", "18,496", "3.6 M", "8"]
    assert rows["dense1"] == ["8", "dense1", "dense 3136 → 100", "100", "313,700", "313.6 K", "34"]
    assert rows["dropout1"] == ["10", "dropout1", "dropout 0.4", "100", "0", "—", "34"]
    assert rows["dense2"] == ["11", "dense2", "dense 100 → 10", "10", "1,010", "1.0 K", "34"]
    assert "<tr><td>Total params</td><td>333,526  (trainable 333,526, frozen 0)</td></tr>" in page
    if "<svg" in page:  # Graphviz's dot is installed here: the diagram, a node per layer and the input
        assert page.count('class="node"') == 13


def test_summary_prints_the_table(executed):
    import cnndsl

    nb, _ = executed
    printed = stdout(outputs(nb, "model.summary()"))
    table = cnndsl.check(ROOT / "examples/fashion_cnn_honkong.cnn").text().split("\n", 1)[1]
    assert printed == ("fashion_cnn_honkong · <cell> · input 1x28x28\n" + table + "\n"
                       "<Spec fashion_cnn_honkong: 1x28x28 -> 10, 333,526 params>\n")


def test_a_broken_spec_is_shown_located_without_a_traceback(executed):
    nb, _ = executed
    [error] = outputs(nb, "maxpol 2")
    assert error.output_type == "error" and error.ename == "CnnError"
    assert error.traceback == ["<cell>:4:5: error: unknown layer or block `maxpol`", " 4 |     maxpol 2",
                               "   |     ^^^^^^^^", "  hint: did you mean `maxpool`?"]


def test_the_notebook_says_which_data_it_used(executed):
    nb, _ = executed
    assert stdout(outputs(nb, "train_test_split(")) == (
        "Fashion-MNIST is not in the cache: scikit-learn's 8x8 digits, enlarged to 28x28, instead\n"
        "train (1149, 28, 28) uint8, validation (288, 28, 28), test (360, 28, 28)\n")


def test_training_from_arrays_shows_a_bar_per_epoch(executed):
    nb, _ = executed
    got = outputs(nb, "cnndsl.train(model")
    lines = stdout(got).splitlines()
    assert lines[:4] == [
        "data: data given in Python as Keras' (N, H, W, C), moved to (N, C, H, W), uint8 scaled to 0..1",
        "data: validation_data given in Python as Keras' (N, H, W, C), moved to (N, C, H, W), uint8 scaled to 0..1",
        "data: test_data given in Python as (N, H, W), grey, uint8 scaled to 0..1",
        "training fashion_cnn_honkong (333,526 parameters) on python:arrays: 1149 train, 288 validation, 360 test "
        "images; device cpu"]
    assert [line.split("  ")[0] for line in lines if line.startswith("epoch ")] == ["epoch 1/3", "epoch 2/3",
                                                                                   "epoch 3/3"]
    bars = html_of(got)
    assert len(bars) == 3  # one finished bar per epoch, each updated in place while it ran
    for epoch, bar in enumerate(bars, 1):
        assert re.fullmatch(rf'<div class="cnndsl-progress" [^>]*>epoch {epoch}/3 <progress value="{BATCHES}" '
                            rf'max="{BATCHES}" [^>]*></progress> {BATCHES}/{BATCHES} · loss \d\.\d{{4}} · acc '
                            rf"\d\.\d{{4}} · [\d.]+ batch/s · [\d.]+s</div>", bar), bar


def test_the_run_shows_its_epochs_and_curves(executed):
    nb, folder = executed
    [result] = outputs(nb, "run", whole=True)
    text = result.data["text/plain"]
    out = re.fullmatch(r"<Run (runs/fashion_cnn_honkong-\d{8}-\d{6}): 3 epochs, best epoch [123] val_loss "
                       r"\d\.\d{4}, test_accuracy \d\.\d{4}>", text)
    assert out and (folder / out.group(1) / "report.html").is_file()
    page = result.data["text/html"]
    assert len(re.findall(r"<tr(?: class=best)?><td>\d</td>", page)) == 3 and page.count("<tr class=best>") == 1
    [curves] = pngs(page)
    assert curves.size[0] > 600


def test_what_it_learned_is_drawn_inline(executed):
    nb, _ = executed
    [filters] = html_of(outputs(nb, 'show("filters"'))
    [maps] = html_of(outputs(nb, 'show("maps"'))
    [cam] = html_of(outputs(nb, 'show("cam"'))
    assert "<figcaption>filters-conv1.png</figcaption>" in filters
    assert "<figcaption>maps-image-conv1.png</figcaption>" in maps
    assert re.search(r"<figcaption>(grad)?cam-image-\d\.png · Grad-CAM of class \d \([\d.]+%\) at maxpool2: peak "
                     r"at row \d+, column \d+</figcaption>", cam), cam
    for page in (filters, maps, cam):
        [picture] = pngs(page)
        assert picture.format == "PNG" and min(picture.size) > 200


def test_the_rendered_notebook_shows_in_a_browser(executed, tmp_path):
    from nbconvert import HTMLExporter
    from test_report_page import browser, chromium

    if browser() is None:
        pytest.skip("no Chromium found (make test installs chromium-headless-shell)")
    nb, _ = executed
    body, _ = HTMLExporter().from_notebook_node(nb)
    page = tmp_path / "fashion_cnn_honkong.html"
    page.write_text(body)
    probe, _ = chromium(page, tmp_path, "notebook.png", height=9000)
    assert len(probe["imgs"]) == 4 and all(probe["imgs"])  # the curves, filters, maps and CAM: each one decoded
    assert probe["rows"] == ["conv1", "relu1", "maxpool1", "conv2", "relu2", "maxpool2", "flatten1", "dense1",
                             "relu3", "dropout1", "dense2", "softmax1"]
    assert probe["svg"] in (0, 13)
    # nbconvert's page loads require.js and MathJax from a CDN, which an offline test cannot reach: those two
    # loads may fail (an error event without a message); a script's own error would carry its message
    assert body.count('<script src="https://cdnjs.cloudflare.com/') == 2
    assert len(probe["errors"]) <= 2 and set(probe["errors"]) <= {"error"}
    assert (tmp_path / "notebook.png").stat().st_size > 100_000
