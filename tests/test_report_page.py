"""The spec and the run as pages: `cnndsl check --html` and every run's report.html, read as HTML and in Chromium."""

from __future__ import annotations

import base64
import html
import html.parser
import json
import re
import shutil
import subprocess
import sys

import pytest

import cnndsl
from cnndsl.cli import main
from cnndsl.report import rows
from conftest import ROOT, SMALL

HOSTILE = """# </pre><script>alert(1)</script>
block tagged(tag = "x") {
    conv 4 kernel=3 padding=same
}
network hostile {
    input 1x8x8
    tagged tag="<script>alert(2)</script>"
    flatten
    dense 10
}
"""
HOSTILE_NAME = "<img src=x onerror=alert(3)>.cnn"


class Page(html.parser.HTMLParser):
    """What a test reads of a page: its elements, the layer table's rows and the text of each element kind."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def rows(self, kind: str) -> list[str]:
        return [a["data-id"] for t, a in self.tags if t == "tr" and kind in a.get("class", "").split()]

    def count(self, tag: str) -> int:
        return sum(t == tag for t, _ in self.tags)


def test_the_table_has_one_row_per_check_row_and_each_layer_its_arithmetic(tmp_path):
    out = tmp_path / "resnet18.html"
    assert main(["check", "specs/resnet18.cnn", "--html", str(out)]) == 0
    text = out.read_text()
    page = Page(text)
    a = cnndsl.load(ROOT / "specs/resnet18.cnn").check().analysis
    assert page.rows("layer") == [f.layer.id for f in a.layers[1:]]  # every layer but the input, in order
    table = rows(a)
    assert len(page.rows("group")) == sum(r.figures is None for r in table) == 13
    assert page.count("details") >= len(a.layers) - 1 and page.count("svg") == 1
    links = [attrs["xlink:href"] for tag, attrs in page.tags if tag == "a" and "xlink:href" in attrs]
    assert sorted(links) == sorted(f"#row-{f.layer.id}" for f in a.layers[1:])  # each node links to its row
    conv = a.by_id["stage2.basic1.conv1"]
    why = "\n".join(conv.explain())
    assert why.startswith("out H,W = floor((56 + 2*1 - 3) / 2) + 1 = 28")
    body = re.search(r'<tbody><tr class="layer" data-id="stage2\.basic1\.conv1".*?</tbody>', text, re.S).group(0)
    row, below = body[len("<tbody>"):].split("</tr>", 1)
    assert "conv 3x3/2 → 128" in row and ">28x28x128<" not in row and "<pre>" not in row
    # the arithmetic in a row of its own under the layer's, the whole table wide (not in the narrow name column)
    assert below == f'<tr class="why"><td></td><td colspan="6"><pre>{why}</pre></td></tr></tbody>'
    assert '<details class="why"><summary>conv1</summary></details>' in row  # the name, a click to show it
    # the figures check prints: 3*3*64*128 weights, 28*28 positions * 128 filters * 576 multiplications
    assert ">128x28x28<" in row and ">73,728<" in row and ">57.8 M<" in row and ">19<" in row
    assert "11,689,512" in text and not list(tmp_path.glob("*.tmp"))


def test_depth_folds_the_table_and_the_diagram_as_check_does(tmp_path):
    out = tmp_path / "r.html"
    assert main(["check", "specs/resnet152.cnn", "--html", str(out), "--depth", "2"]) == 0
    page = Page(out.read_text())
    a = cnndsl.load(ROOT / "specs/resnet152.cnn").check().analysis
    folded = [r.id for r in rows(a, 2) if r.folded]
    assert page.rows("folded") == folded and len(folded) == 50  # the 50 bottleneck blocks
    assert "block calls folded at depth 2" in out.read_text()


def test_a_long_network_unfolded_gets_a_folded_diagram_and_every_row(tmp_path):
    out = tmp_path / "r.html"
    assert main(["check", "specs/resnet152.cnn", "--html", str(out)]) == 0
    text = out.read_text()
    assert len(Page(text).rows("layer")) == len(cnndsl.load(ROOT / "specs/resnet152.cnn").graph.layers) - 1
    assert "block calls folded at depth 2" in text and "cnndsl plot SPEC</code> draws every layer" in text


def test_a_diagram_too_large_at_every_depth_is_left_out_with_a_note():
    from cnndsl.viz.page import spec_page

    text = "network flat {\n    input 1x8x8\n" + "    relu\n" * 700 + "    flatten\n    dense 10\n}\n"
    page = Page(spec_page(cnndsl.loads(text).check(), text))
    assert page.count("svg") == 0 and len(page.rows("layer")) == 702
    assert "No diagram: the diagram would have 703 nodes, more than a page shows (600)." in "".join(page.text)


def test_user_text_is_escaped_everywhere(tmp_path):
    spec = tmp_path / HOSTILE_NAME
    spec.write_text(HOSTILE)
    out = tmp_path / "page.html"
    assert main(["check", str(spec), "--html", str(out)]) == 0
    page = Page(out.read_text())
    assert page.count("script") == 0 and page.count("img") == 0
    assert not [a for _, attrs in page.tags for a in attrs if a.startswith("on")]
    text = "".join(page.text)
    assert HOSTILE_NAME in text and "# </pre><script>alert(1)</script>" in text  # shown, as text
    assert 'tagged (tag="<script>alert(2)</script>")' in text


def test_without_dot_the_page_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` on it
    out = tmp_path / "page.html"
    assert main(["check", "specs/lenet5.cnn", "--html", str(out)]) == 0
    page = Page(out.read_text())
    assert page.count("svg") == 0 and len(page.rows("layer")) == 12
    assert "No diagram: Graphviz's `dot` program is not installed" in "".join(page.text)


def test_html_never_replaces_the_spec_and_check_html_never_imports_torch(tmp_path):
    spec = tmp_path / "s.cnn"
    spec.write_text(SMALL)
    assert main(["check", str(spec), "--html", str(spec)]) == 2 and spec.read_text() == SMALL
    assert main(["check", str(spec), "--html", str(tmp_path / "no/such/folder.html")]) == 2
    code = ("import sys; from cnndsl.cli import main; "
            f"main(['check', 'specs/seresnet50.cnn', '--html', {str(tmp_path / 'p.html')!r}]); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stderr and (tmp_path / "p.html").stat().st_size > 10_000


WRONG = """# </pre><script>alert(1)</script>
network wrong {
    input 1x8x8
    conv 8 kernal=3
    dense "<b>x</b>"
    poool 2
}
"""


def test_a_wrong_spec_gets_a_page_of_its_located_errors_and_exit_1(tmp_path, capsys):
    spec = tmp_path / HOSTILE_NAME
    spec.write_text(WRONG)
    out = tmp_path / "wrong.html"
    assert main(["check", str(spec), "--html", str(out)]) == 1
    err = capsys.readouterr().err
    with pytest.raises(cnndsl.CnnError) as e:
        cnndsl.load(spec).check()
    rendered = [x.render() for x in e.value.errors]
    assert len(rendered) == 3 and err.startswith("\n\n".join(rendered)) and err.endswith(f"wrote {out}\n")
    text = out.read_text()
    page = Page(text)
    assert page.count("script") == 0 and page.count("img") == 0 and page.count("b") == 0  # all of it escaped
    errors = re.findall(r'<pre class="error">(.*?)</pre>', text, re.S)
    assert [html.unescape(x) for x in errors] == rendered  # the terminal's messages, in source order
    first = html.unescape(errors[0]).splitlines()
    assert first == [f"{spec}:4:12: error: `conv` has no argument `kernal`", " 4 |     conv 8 kernal=3",
                     "   |            ^^^^^^^^", "  hint: did you mean `kernel`?"]  # the source line and its carets
    assert '`units` of dense expects an integer, got &quot;&lt;b&gt;x&lt;/b&gt;&quot;' in errors[1]
    assert "3 errors: " in text and "".join(page.text).count("# </pre><script>alert(1)</script>") == 1  # the text
    assert main(["check", str(spec), "--html", str(spec)]) == 2 and spec.read_text() == WRONG  # never over it


# ---- a run's page -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run stopped after its last epoch, before its end (as if killed), then finished by --resume: the result,
    metrics.json, and the page the stopped run had left."""
    pytest.importorskip("torch")
    from cnndsl.training import loop
    from cnndsl.training.recipe import load_recipe
    from cnndsl.viz.runpage import ReportPage  # the page is a step its caller adds (cnndsl.train does)

    def killed(run):
        raise KeyboardInterrupt

    out = tmp_path_factory.mktemp("report") / "run"
    with pytest.MonkeyPatch.context() as m:
        m.setattr(loop, "finish", killed)
        with pytest.raises(KeyboardInterrupt):
            loop.train(cnndsl.loads(SMALL), load_recipe(None, epochs=2, lr=0.01), out, log=lambda line: None,
                       steps=[ReportPage()])
    stopped = (out / "report.html").read_text()
    result = loop.train(cnndsl.loads(SMALL), load_recipe(None, epochs=2, lr=0.01), out, resume=True,
                        log=lambda line: None, steps=[ReportPage()])
    return result, json.loads((out / "metrics.json").read_text()), stopped


def test_a_run_leaves_its_page_with_the_results_and_pictures(run):
    result, metrics, _ = run
    text = (result.out / "report.html").read_text()
    page = Page(text)
    assert page.rows("layer") == [f.layer.id for f in cnndsl.loads(SMALL).check().analysis.layers[1:]]
    ids = {a.get("id") for _, a in page.tags}
    assert {"curves", "confusion", "classes", "mistakes", "filters", "epochs", "network", "layers"} <= ids
    per_class = re.search(r'<table class="classes">.*?</table>', text).group(0)
    for name, s in metrics["per_class"].items():
        assert f'<tr><td>{name}</td><td class="num">{s["precision"]:.4f}</td>' in per_class
    wrong = sum(s["support"] - round(s["recall"] * s["support"]) for s in metrics["per_class"].values())
    mistakes = re.findall(r"true <b>(\w+)</b> ([\d.]+)%</span><span title=\"\w+\">predicted <b>(\w+)</b>", text)
    assert len(mistakes) == min(16, wrong) and wrong > 0
    assert all(t != p for t, _, p in mistakes)
    assert [float(p) for _, p, _ in mistakes] == sorted(float(p) for _, p, _ in mistakes)  # the worst first
    curves = (result.out / "curves.png").read_bytes()
    assert base64.b64encode(curves).decode() in text  # the curves the plots step drew, best epoch marked
    assert "under way" not in text
    assert text.count("<tr class=best>") == 1 and len(re.findall(r"<tr(?: class=best)?><td class=\"num\">\d+</td>"
                                                                  r"<td class=\"num\">\d\.\d{4}</td>", text)) == 2


def test_the_run_page_shows_the_filters_as_show_filters_draws_them(run):
    from cnndsl.viz.learned import colours, draw_filters, filters_png, filters_title
    from cnndsl.viz.trained import read_checkpoint

    result, _, _ = run
    text = (result.out / "report.html").read_text()
    section = re.search(r'<h2 id="filters">.*?</figure>', text, re.S).group(0)
    trained = read_checkpoint(result.out)  # best.pt: the weights the run ends with
    grid, png = filters_png(trained)
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in section  # the same picture, byte for byte
    assert 'alt="the 16 filters of conv1, 3x3x1 each, numbered"' in section
    caption = re.search(r"<figcaption>(.*?)</figcaption>", section).group(1)
    assert caption.startswith(f"white is 0, red positive, blue negative; one scale for all: ±{grid.vmax:.3g}. ")
    assert caption == colours(grid) + (". <code>cnndsl show filters RUN</code> draws this picture, and <code>--layer "
                                       "NAME</code> another layer's.")
    fig = draw_filters(grid, filters_title(trained, grid))
    assert [t.get_text() for t in fig.axes[0].texts] == [str(i) for i in range(16)]  # each tile numbered
    assert fig.axes[1].get_ylabel() == "weight"  # and the colour scale beside them


def test_the_epochs_table_is_rounded_for_people(run):
    result, metrics, _ = run
    table = re.search(r'<table class="epochs">.*?</table>', (result.out / "report.html").read_text()).group(0)
    head = re.findall(r'<th class="num">(\w+)</th>', table)
    assert head == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"]
    rows = [re.findall(r'<td class="num">([^<]*)</td>', row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table)[1:]]
    assert len(rows) == 2
    for cells, row in zip(rows, metrics["epochs"]):
        assert cells[0] == str(row["epoch"]) and cells[1] == f"{row['loss']:.4f}" and cells[5] == "1.00e-02"
        assert re.fullmatch(r"\d+\.\d s|0\.0\d s", cells[6]) and abs(float(cells[6][:-2]) - row["seconds"]) <= 0.05
    from cnndsl.viz.runpage import _cell

    assert [_cell("seconds", 8.118), _cell("lr", 0.001), _cell("lr", 2e-07), _cell("val_loss", 0.0377)] == \
        ["8.1 s", "1.00e-03", "2.00e-07", "0.0377"]


def test_a_stopped_run_leaves_a_consistent_page_of_its_epochs(run):
    _, metrics, text = run
    assert "under way, or was stopped, after epoch 2 of 2" in text and text.rstrip().endswith("</html>")
    assert 'id="curves"' not in text and len(Page(text).rows("layer")) == 8
    epochs = re.search(r'<table class="epochs">.*?</table>', text).group(0)
    val_loss = r'<tr(?: class=best)?><td class="num">\d</td>(?:<td class="num">[\d.]+</td>){2}<td class="num">([\d.]+)'
    assert re.findall(val_loss, epochs) == [f"{row['val_loss']:.4f}" for row in metrics["epochs"]]


# ---- in a real browser --------------------------------------------------------------------------------------

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "headless_shell")

# put first in <head>: records errors and alerts, then at load what the test reads (images decoded, SVG,
# rows, and whether a click on a layer shows its arithmetic), as an attribute of <html>
PROBE = """<script>
window.__errors = []; window.__alerts = 0;
window.addEventListener('error', e => window.__errors.push(String(e.message || e.type)), true);
window.alert = () => { window.__alerts += 1; };
window.addEventListener('load', () => {
  const imgs = [...document.images].map(i => i.complete && i.naturalWidth > 0);
  const d = document.querySelector('tr.layer details'), pre = d && d.closest('tbody').querySelector('tr.why pre');
  const before = pre ? pre.checkVisibility() : null;
  if (d) d.querySelector('summary').click();
  const after = pre ? pre.checkVisibility() && pre.getBoundingClientRect().height > 10 : null;
  const wide = pre ? pre.getBoundingClientRect().width > 2 * d.closest('td').getBoundingClientRect().width : null;
  document.documentElement.setAttribute('data-probe', JSON.stringify({
    imgs, svg: document.querySelectorAll('.diagram svg g.node').length,
    links: [...document.querySelectorAll('.diagram svg a')].map(a => a.getAttribute('xlink:href'))
      .map(h => h.startsWith('#row-') && document.getElementById(h.slice(1)).tagName === 'TR'),
    rows: [...document.querySelectorAll('tr.layer')].map(r => r.dataset.id),
    scripts: document.scripts.length, errors: window.__errors, alerts: window.__alerts,
    hidden: before, shown: after, wide, width: document.documentElement.scrollWidth}));
});
</script>"""


def browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def chromium(page, tmp_path, shot: str | None = None, height: int = 1600) -> tuple[dict, list[str]]:
    """Loads `page` (probed, from file://) in headless Chromium: the probe's record and the console's lines;
    `shot` names a screenshot of the page (1280 pixels wide, `height` high) in tmp_path."""
    exe = browser()
    if exe is None:
        pytest.skip("no Chromium found (make test installs chromium-headless-shell)")
    probed = tmp_path / f"probed-{page.name}"
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    flags = [exe, "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
             "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]
    done = subprocess.run(flags + ["--window-size=1280,1600", "--dump-dom", probed.as_uri()], capture_output=True,
                          text=True, timeout=120)
    found = re.search(r'data-probe="([^"]*)"', done.stdout)
    assert found, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    if shot:  # the page itself, not the probed copy
        subprocess.run(flags + [f"--window-size=1280,{height}", f"--screenshot={tmp_path / shot}", page.as_uri()],
                       capture_output=True, timeout=120, check=True)
    return json.loads(html.unescape(found.group(1))), console


def assert_sound(probe: dict, console: list[str]) -> None:
    assert console == [] and probe["errors"] == [] and probe["alerts"] == 0
    assert probe["scripts"] == 1  # the probe's: the page runs none of its own
    assert all(probe["links"]) and len(probe["links"]) == probe["svg"] - 1  # every node but the input: its row
    assert all(probe["imgs"]) and probe["hidden"] is False and probe["shown"] is True  # a click shows the arithmetic
    assert probe["wide"] is True  # under the layer's row, wider than the name column it was once wrapped in


def test_chromium_shows_the_spec_page(tmp_path):
    out = tmp_path / "googlenet.html"
    assert main(["check", "specs/googlenet.cnn", "--html", str(out)]) == 0
    probe, console = chromium(out, tmp_path, "googlenet.png")
    assert_sound(probe, console)
    a = cnndsl.load(ROOT / "specs/googlenet.cnn").check().analysis
    assert probe["rows"] == [f.layer.id for f in a.layers[1:]] and probe["imgs"] == []
    assert 10 < probe["svg"] <= 90 and probe["width"] <= 1280  # folded to fit; no sideways scrolling
    from PIL import Image

    assert Image.open(tmp_path / "googlenet.png").size == (1280, 1600)


def test_chromium_shows_the_run_page_and_runs_nothing_a_spec_says(run, tmp_path):
    result, _, _ = run
    probe, console = chromium(result.out / "report.html", tmp_path, "run.png", height=4000)
    assert_sound(probe, console)
    assert len(probe["imgs"]) >= 5 and probe["svg"] == 9 and probe["width"] <= 1280  # curves, confusion, filters
    spec = tmp_path / HOSTILE_NAME
    spec.write_text(HOSTILE)
    out = tmp_path / "hostile.html"
    assert main(["check", str(spec), "--html", str(out)]) == 0
    probe, console = chromium(out, tmp_path)
    assert_sound(probe, console)
