"""report.html of a training run: the run's results and pictures, then the spec part of `check --html`.

Written by the run's `report_page` step (ReportPage, which cnndsl.train adds to the runner's steps: training
never imports pictures): after every epoch a page of the epochs so far
(cheap: the spec part is made once, no plot is drawn), and when the run finishes the whole page: the
curves and the confusion matrix (the PNGs the `plots` step wrote, embedded), per-class precision, recall
and F1 (those of metrics.json), the worst misclassified test images and the first conv's filters. Every
picture is inline (base64 PNG): the page is one file that opens from file://.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cnndsl.errors import CnnError
from cnndsl.files import read_bytes
from cnndsl.optional import require
from cnndsl.viz.page import document, esc, spec_section
from cnndsl.viz.tiles import NUMBERED

if TYPE_CHECKING:
    from cnndsl.training.setup import Run

WORST = 16  # misclassified test images shown
THUMB = 112  # pixels a side that small images are enlarged to (nearest), larger ones reduced to
PICTURE_BYTES = 64 << 20  # a plot the run drew is far smaller


class ReportPage:
    """report.html: after each epoch the epochs so far (the spec part made once), the whole run at the end.

    An epoch-end step of the runner (training/steps.py's EpochStep), added by the caller; it keeps nothing
    across a resume."""

    name = "report_page"
    writes = ("report.html",)

    def __init__(self):
        self.spec_html = None  # the diagram and the check table: the same all run long

    def check(self) -> None:
        require("PIL.Image", "the run's page (report.html)")  # the pictures it draws: said before the run starts
        require("matplotlib", "the run's page (report.html)")

    def on_epoch_end(self, row: dict, run: Run) -> None:
        self._write(run, None)

    def on_train_end(self, final: dict, run: Run) -> None:
        self._write(run, final)

    def state(self) -> dict:
        return {}

    def load(self, state: dict) -> None:
        pass

    def _write(self, run: Run, final: dict | None) -> None:
        if run.world.main:
            self.spec_html = write(run, final, self.spec_html)


@dataclass
class Mistake:
    """A misclassified test image: what the network said, and how sure it was of the true class."""

    index: int  # in the test split
    true: str
    predicted: str
    p_true: float
    p_predicted: float
    image: str  # a data: URI of a PNG


def write(run: Run, final: dict | None = None, spec_html: str | None = None) -> str:
    """report.html in the run's folder (final None: the run is under way); gives the spec part, to reuse."""
    from cnndsl.viz.page import write as write_page

    if spec_html is None:
        spec_html = spec_section(run.spec.check(), run.spec.text)
    write_page(run.out / "report.html", run_page(run, final, spec_html))
    return spec_html


def run_page(run: Run, final: dict | None, spec_html: str) -> str:
    name = run.spec.graph.name
    parts = [f"<h1>{esc(name)} <span class=\"sub\">· run {esc(run.out.name)}</span></h1>", _facts(run, final),
             _nav(final is not None)]
    checked = _checked(run.out)
    if final is None:
        parts.append(_under_way(run))
    else:
        parts += [_results(final), _picture(run.out / "curves.png", "curves", "Learning curves",
                                            _curves_caption(final)),
                  _picture(run.out / "confusion.png", "confusion", "Confusion matrix", "the test set, with the "
                           f"weights of epoch {final['best_epoch']}"), _class_table(final),
                  _gallery(worst_mistakes(run)), _filters(run)]
    parts.append(_before_epoch_1(run.out, checked))
    best = final["best_epoch"] if final else run.step("best_checkpoint").epoch
    parts += [_epochs(run.history, best), spec_html]
    return document(f"{name} · run {run.out.name}", "\n".join(p for p in parts if p))


def _facts(run: Run, final: dict | None) -> str:
    d, r = run.data, run.recipe
    done = f"{len(run.history)} of {r.epochs} epochs" if final is None else f"{len(run.history)} epochs"
    return (f'<p class="sub">{esc(str(run.out))} · data {esc(r.data)}: {len(d.train)} train, {len(d.val)} '
            f"validation, {len(d.test)} test images, {len(d.classes)} classes · {done}</p>")


def _nav(finished: bool) -> str:
    links = [("curves", "curves"), ("confusion", "confusion matrix"), ("classes", "per class"),
             ("mistakes", "worst mistakes"), ("filters", "filters")] if finished else []
    links += [("preflight", "before epoch 1"), ("epochs", "epochs"), ("network", "network"), ("layers", "layers")]
    return "<nav>" + "".join(f'<a href="#{ident}">{label}</a>' for ident, label in links) + "</nav>"


def _under_way(run: Run) -> str:
    return (f'<p class="note">The run is under way, or was stopped, after epoch {len(run.history)} of '
            f"{run.recipe.epochs}: the curves, test figures and pictures come when it finishes (<code>cnndsl "
            f"train SPEC --resume {esc(str(run.out))}</code> finishes a stopped run).</p>")


def _results(final: dict) -> str:
    m = final.get("macro", {})
    macro = (f" · macro precision {m['precision']:.4f}, recall {m['recall']:.4f}, F1 {m['f1']:.4f}" if m else "")
    return (f'<p class="result">Test accuracy <b>{final["test_accuracy"]:.4f}</b>, loss {final["test_loss"]:.4f}, '
            f"best epoch {final['best_epoch']}{macro}</p>")


def _curves_caption(final: dict) -> str:
    return (f"loss, accuracy and learning rate per epoch; dotted red: the best epoch ({final['best_epoch']}, "
            "best.pt's), dashed grey: where a phase begins")


def _picture(path: Path, ident: str, title: str, caption: str) -> str:
    """A PNG the run wrote, embedded; a note where it is missing."""
    try:
        data = read_bytes(path, limit=PICTURE_BYTES)
    except CnnError:
        return f'<h2 id="{ident}">{esc(title)}</h2><p class="note">{esc(path.name)} was not written.</p>'
    return (f'<h2 id="{ident}">{esc(title)}</h2><figure><img class="plot" alt="{esc(title)}" '
            f'src="{data_uri(data)}"><figcaption>{esc(caption)}</figcaption></figure>')


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _class_table(final: dict) -> str:
    table = final.get("per_class")
    if not table:
        return ""
    head = ("<tr><th>class</th><th class=\"num\">precision</th><th class=\"num\">recall</th>"
            "<th class=\"num\">F1</th><th class=\"num\">support</th></tr>")
    body = "".join(f'<tr><td>{esc(name)}</td><td class="num">{s["precision"]:.4f}</td><td class="num">'
                   f'{s["recall"]:.4f}</td><td class="num">{s["f1"]:.4f}</td><td class="num">{s["support"]}</td>'
                   "</tr>" for name, s in table.items())
    m = final["macro"]
    total = sum(s["support"] for s in table.values())
    foot = (f'<tr class="group"><td>macro average</td><td class="num">{m["precision"]:.4f}</td><td class="num">'
            f'{m["recall"]:.4f}</td><td class="num">{m["f1"]:.4f}</td><td class="num">{total}</td></tr>')
    return (f'<h2 id="classes">Per class</h2><p class="sub">Precision, recall and F1 on the test set, as '
            f'metrics.json holds them.</p><div class="scroll"><table class="classes"><thead>{head}</thead>'
            f"<tbody>{body}{foot}</tbody></table></div>")


def worst_mistakes(run: Run, count: int = WORST) -> list[Mistake]:
    """The misclassified test images with the lowest probability of their true class (the highest loss)."""
    import torch

    test, classes = run.data.test, run.data.classes
    if len(test) == 0 or test.x.dim() != 4:
        return []
    scores = getattr(run, "test_scores", None)  # the test pass's, where the run kept them
    with torch.no_grad():
        if not scores:
            scores = [run.net.evaluate(test.x[i:i + run.recipe.batch_size]).float()
                      for i in range(0, len(test), run.recipe.batch_size)]
        probs = torch.softmax(torch.cat(scores), 1).cpu()
    truth = test.y.cpu()
    predicted = probs.argmax(1)
    p_true = probs[torch.arange(len(truth)), truth]
    wrong = (predicted != truth).nonzero().flatten()
    order = wrong[p_true[wrong].argsort()][:count].tolist()
    return [Mistake(i, classes[int(truth[i])], classes[int(predicted[i])], float(p_true[i]),
                    float(probs[i, predicted[i]]), data_uri(image_png(test.x[i], run.data.normalization)))
            for i in order]


def image_png(x, normalization: dict) -> bytes:
    """One input (C, H, W) as the network sees it before normalisation, as a PNG: grey, or RGB for 3 channels."""
    import numpy as np
    from PIL import Image

    data = x.detach().float().cpu()
    if normalization:
        mean = data.new_tensor(normalization["mean"]).view(-1, 1, 1)
        std = data.new_tensor(normalization["std"]).view(-1, 1, 1)
        data = data * std + mean
    a = data.numpy()
    low, high = float(a.min()), float(a.max())
    if low < 0 or high > 1:  # not an image in 0..1: stretched to it
        a = (a - low) / (high - low) if high > low else np.zeros_like(a)
    a = (a.clip(0, 1) * 255).round().astype("uint8")
    image = Image.fromarray(a.transpose(1, 2, 0)) if a.shape[0] == 3 else Image.fromarray(a.mean(0).astype("uint8"))
    return _png(_sized(image, THUMB))


def _sized(image, side: int):
    """Enlarged by a whole factor (nearest: the pixels stay sharp) up to `side`, or reduced to it."""
    from PIL import Image

    largest = max(image.size)
    if largest > side:
        scale = side / largest
        return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                            Image.Resampling.BILINEAR)
    factor = max(1, side // largest)
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # (optimize=True: 2% smaller, 5 ms more an image)
    return buffer.getvalue()


def _gallery(mistakes: list[Mistake]) -> str:
    head = '<h2 id="mistakes">The worst mistakes</h2>'
    if not mistakes:
        return head + "<p>No test image was misclassified (or the inputs are not images).</p>"
    figures = "".join(f'<figure><img alt="test image {m.index}" src="{m.image}"><figcaption>test image {m.index}'
                      f'<span title="{esc(m.true)}">true <b>{esc(m.true)}</b> {m.p_true:.1%}</span>'
                      f'<span title="{esc(m.predicted)}">predicted <b>{esc(m.predicted)}</b> {m.p_predicted:.1%}'
                      "</span></figcaption></figure>" for m in mistakes)
    return (f'{head}<p class="sub">The {len(mistakes)} misclassified test images with the lowest probability '
            f'of their true class (the highest loss), as the network sees them.</p><div class="gallery">{figures}'
            "</div>")


def _filters(run: Run) -> str:
    """The first conv's kernels: the picture `cnndsl show filters` draws (viz/learned.py, one drawing for both),
    numbered, on its colour scale, with a caption that says how its colours read (RGB or one channel)."""
    from cnndsl.viz import learned
    from cnndsl.viz.trained import Trained

    head = '<h2 id="filters">The first layer\'s filters</h2>'
    d = run.data
    trained = Trained(run.out / "best.pt", run.spec, run.net.model, d.classes, d.normalization)
    try:
        grid, png = learned.filters_png(trained)
    except CnnError as e:
        return f"{head}<p>{esc(e.message)}.</p>"
    f, c, kh, kw = grid.shape
    numbered = ("a row per filter, a column per input channel" if grid.per_channel else
                "numbered" if len(grid.tiles) <= NUMBERED else "each row labelled with its first filter")
    alt = f"the {grid.shown_filters} filters of {grid.layer}, {kh}x{kw}x{c} each, {numbered}"
    return (f'{head}<figure><img class="plot" alt="{esc(alt)}" src="{data_uri(png)}"><figcaption>'
            f"{esc(learned.colours(grid))}. <code>cnndsl show filters RUN</code> draws this picture, and "
            "<code>--layer NAME</code> another layer's.</figcaption></figure>")


def _checked(out: Path) -> dict | None:
    """preflight.json, which the run's `preflight` step writes with its first epoch (training/guard.py)."""
    import json

    try:
        data = json.loads(read_bytes(out / "preflight.json", limit=PICTURE_BYTES))
    except (CnnError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _before_epoch_1(out: Path, checked: dict | None) -> str:
    """What the checks before epoch 1 found, the data cut, and the learning-rate range test's plot."""
    head = '<h2 id="preflight">Before epoch 1</h2>'
    if checked is None:
        return f'{head}<p class="note">No checks were kept for this run (--no-preflight, or an earlier cnndsl).</p>'
    parts = [head]
    if checked.get("cut"):
        parts.append(f'<p class="note">{esc(str(checked["cut"]))}</p>')
    figures = checked.get("figures") or {}
    if figures:
        stats = figures.get("input") if isinstance(figures.get("input"), dict) else {}
        parts.append(f'<p class="sub">Initial loss {_number(figures, "loss"):.3f} against ln(classes) = '
                     f'{_number(figures, "ln_classes"):.3f}; inputs {_number(stats, "min"):.3g} to '
                     f'{_number(stats, "max"):.3g}, mean {_number(stats, "mean"):.3g}, deviation '
                     f'{_number(stats, "std"):.3g}.</p>')
    findings = [f for f in checked.get("findings") or [] if isinstance(f, dict)]
    items = "".join(f'<li><b>{esc(str(f.get("level", "warning")))}</b> ({esc(str(f.get("check", "")))}'
                    f'{", " + esc(str(f["where"])) if f.get("where") else ""}): {esc(str(f.get("message", "")))}'
                    f'<br>fix: {esc(str(f.get("fix", "")))}</li>' for f in findings)
    if items:
        parts.append(f'<ul class="findings">{items}</ul>')
    elif figures:
        parts.append("<p>The checks found nothing.</p>")
    sweep = checked.get("lr_find")
    if isinstance(sweep, dict):
        auto = checked.get("lr_auto")
        trained = "; the run trained with it (lr: auto)" if auto else ""
        parts.append(_picture(out / "lr_find.png", "lr-find", "Learning-rate range test",
                              f"the loss of each step against its rate, 1e-7 up to 10 (log scale), and its average "
                              f"over about 50 steps; suggested rate {_number(sweep, 'suggestion'):.3g}{trained}"))
    return "\n".join(parts)


def _number(values: dict, key: str) -> float:
    """A figure of preflight.json (a file of the run's folder: anything else in it reads as NaN)."""
    value = values.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")


def _epochs(history: list[dict], best: int) -> str:
    """metrics.csv as a table for people (see _cell), the best epoch's row marked."""
    if not history:
        return ""
    keys = list(history[0])
    head = "".join(f'<th class="num">{esc(k)}</th>' for k in keys)
    body = "".join(f'<tr{" class=best" if row.get("epoch") == best else ""}>'
                   + "".join(f'<td class="num">{_cell(k, row.get(k))}</td>' for k in keys) + "</tr>" for row in history)
    return (f'<h2 id="epochs">Epochs</h2><p class="sub">Losses and accuracies to 4 decimals (as the terminal prints '
            "them), the learning rate in scientific notation, each epoch's time in seconds.</p>"
            f'<details{" open" if len(history) <= 12 else ""}><summary>every epoch\'s row (metrics.csv)</summary>'
            f'<div class="scroll"><table class="epochs"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
            "</div></details>")


def _cell(key: str, value) -> str:
    """A value of metrics.csv rounded for people, one form a column: seconds to a tenth (`8.1 s`), the learning
    rate in scientific notation with 3 significant digits (`1.00e-03` beside `2.00e-07`, never `0.0010` beside
    `2e-07`), losses and accuracies (fractions) to 4 decimals."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return esc(value)
    if key == "seconds":
        return f"{value:.1f} s" if value >= 0.1 else f"{value:.2f} s"  # a tiny run's 0.04 s is not 0.0 s
    if key == "lr":
        return f"{value:.2e}"
    return str(value) if isinstance(value, int) else f"{value:.4f}"
