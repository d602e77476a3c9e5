"""Every script renders: class names in Hangul, Chinese, Japanese, Arabic and emoji are drawn with glyphs, not
the empty box of a missing one, in the pictures and on the run's page; without the fonts, one note, no flood."""

from __future__ import annotations

import itertools
import re
import warnings

import pytest

pytest.importorskip("matplotlib")

import numpy as np  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from cnndsl import fonts  # noqa: E402
from cnndsl.errors import UserNote  # noqa: E402

# two different characters of each script: drawn alone, their pixels differ unless both are the missing-glyph box
SCRIPTS = {"Hangul": ("장", "미"), "Chinese": ("玫", "瑰"), "Japanese": ("ば", "ら"), "Arabic": ("و", "ر"),
           "emoji": ("🌹", "🌻")}


def font_with(character: str) -> str | None:
    """The family of fonts.families() whose font has a glyph for `character` (FreeType's index is not 0)."""
    for family in fonts.families():
        path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        if font_manager.get_font(path).get_char_index(ord(character)):
            return family
    return None


def drawn(text: str) -> np.ndarray:
    """`text` alone, drawn as the pictures draw it (fonts.pictures), as grey pixels."""
    from cnndsl.viz.tiles import figure

    with fonts.pictures():
        fig = figure(figsize=(1, 1))
        fig.text(0.5, 0.5, text, fontsize=40, ha="center", va="center")
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].mean(-1)


def needs(script: str) -> None:
    if font_with(SCRIPTS[script][0]) is None:
        pytest.skip(f"no font here draws {script} (`make test` installs {fonts.PACKAGES})")


@pytest.fixture
def fresh_notes(monkeypatch):
    """This test's notes said as if it were the process's first pictures (a note is said once a process)."""
    monkeypatch.setattr(fonts, "_NOTES", itertools.count())


def glyph_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "missing from font" in str(w.message) or w.category is UserNote]


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_script_is_drawn_with_glyphs_and_no_warning(script, fresh_notes):
    if script == "Arabic":  # DejaVu Sans, inside matplotlib, has it: on every machine
        assert font_with("و") == "DejaVu Sans"
    needs(script)
    first, second = SCRIPTS[script]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a, b = drawn(first), drawn(second)
    assert glyph_warnings(caught) == []
    assert (a < 128).sum() > 20 and (b < 128).sum() > 20  # ink
    assert not np.array_equal(a, b)  # two glyphs, not twice the same box


def test_the_box_is_what_a_missing_font_draws(monkeypatch, fresh_notes):
    """Why the test above compares two characters: without a font for them, both are the same empty box."""
    monkeypatch.setattr(fonts, "families", lambda: (fonts.FIRST,))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert np.array_equal(drawn("장"), drawn("미"))


def test_without_the_fonts_there_is_one_note_and_no_flood(monkeypatch, fresh_notes):
    from cnndsl.training import plots

    monkeypatch.setattr(fonts, "families", lambda: (fonts.FIRST,))  # a machine with matplotlib's own font only
    classes = ["장미", "튤립", "해바라기", "水仙", "🌻"]
    import torch

    truth = torch.arange(5).repeat(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fonts.pictures():
            fig = plots.confusion_figure(truth, truth.flip(0), classes)
            fig.canvas.draw()
        with fonts.pictures():  # a second picture in the same process (a run draws several)
            drawn("장미")
    said = [w for w in caught if w.category is UserNote]
    assert len(caught) == len(said) == 1  # not matplotlib's warning for each of the 11 characters, at each draw
    assert str(said[0].message).startswith("no font on this machine draws 장 미 튤 립 해 바 라 기: the pictures show "
                                           "empty boxes for them. Install fonts")
    assert f"apt-get install {fonts.PACKAGES}" in str(said[0].message)


def test_pictures_leave_matplotlib_as_they_found_it():
    import matplotlib

    before = list(matplotlib.rcParams["font.family"])
    with fonts.pictures():
        assert matplotlib.rcParams["font.family"][0] == "DejaVu Sans"
        assert list(matplotlib.rcParams["font.family"]) == list(fonts.families())
    assert list(matplotlib.rcParams["font.family"]) == before  # an rc_context, no global setting


def test_other_warnings_pass_through():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fonts.pictures():
            warnings.warn("something else", RuntimeWarning, stacklevel=1)
    assert [(w.category, str(w.message)) for w in caught] == [(RuntimeWarning, "something else")]


def test_the_pages_name_the_same_families():
    from cnndsl.viz.page import document

    page = document("t", "<p>장미</p>")
    body = re.search(r"body \{ font: 14px/1.45 ([^;]*);", page).group(1)
    assert body == fonts.CSS_FAMILIES and body.endswith("sans-serif")
    assert all(f'"{name}"' in body for name, _, _ in fonts.FALLBACK if name != "Symbola") and "Symbola" in body


# ---- a real run on a folder of images whose classes are named in Hangul ------------------------------------------

HANGUL = ["장미", "튤립", "해바라기"]


@pytest.fixture(scope="module")
def hangul_run(tmp_path_factory):
    """Two epochs of the real runner on a `folder:` dataset whose class folders are 장미, 튤립 and 해바라기."""
    pytest.importorskip("torch")
    from PIL import Image

    import cnndsl
    from cnndsl.training.loop import train
    from cnndsl.training.recipe import load_recipe
    from cnndsl.viz.runpage import ReportPage

    root = tmp_path_factory.mktemp("hangul")
    rng = np.random.default_rng(0)
    for k, name in enumerate(HANGUL):
        (root / "flowers" / name).mkdir(parents=True)
        for i in range(12):
            pixels = rng.normal(80 + 60 * k, 30, (8, 8, 3)).clip(0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "flowers" / name / f"{i}.png")
    spec = cnndsl.loads("network flowers(classes = 3) {\n input 3x8x8\n conv 4 kernel=3 padding=same activation=relu\n"
                        " globalavgpool\n dense classes\n}")
    recipe = load_recipe(None, data=f"folder:{root / 'flowers'}", epochs=2, lr=0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.MonkeyPatch.context() as m:
            m.setattr(fonts, "_NOTES", itertools.count())
            result = train(spec, recipe, root / "run", log=lambda line: None, steps=[ReportPage()])
    return result, caught


def test_a_run_with_hangul_classes_draws_them(hangul_run):
    needs("Hangul")
    result, caught = hangul_run
    assert glyph_warnings(caught) == []  # confusion.png, curves.png and the page's filters: every glyph found
    from PIL import Image

    with Image.open(result.out / "confusion.png") as image:
        assert image.format == "PNG" and image.size[0] > 400
    import torch

    from cnndsl.training import plots

    fig = plots.confusion_figure(torch.tensor([0, 1, 2]), torch.tensor([0, 2, 1]), HANGUL)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == HANGUL  # as confusion.png labels its rows
    text = (result.out / "report.html").read_text(encoding="utf-8")
    for name in HANGUL:
        assert f"<tr><td>{name}</td>" in text  # the per-class table, as text the page's fonts draw
    assert all(f'"{family}"' in text for family in ("WenQuanYi Micro Hei", "Noto Sans CJK KR", "Malgun Gothic"))


def test_show_cam_of_the_hangul_run_names_the_class_without_a_note(hangul_run, capsys, tmp_path, monkeypatch):
    from cnndsl.cli import main

    needs("Hangul")
    result, _ = hangul_run
    monkeypatch.setattr(fonts, "_NOTES", itertools.count())
    assert main(["show", "cam", str(result.out), "--index", "0", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert re.match(r"CAM of class (장미|튤립|해바라기) \(", out) and err == ""
    written = out.splitlines()[-1].removeprefix("wrote ")
    assert re.fullmatch(r"cam-test0-(장미|튤립|해바라기)\.png", written.rsplit("/", 1)[1])  # the class's own name

    monkeypatch.setattr(fonts, "families", lambda: (fonts.FIRST,))  # as on a machine without the fonts
    assert main(["show", "cam", str(result.out), "--index", "0", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert err.count("note: no font on this machine draws") == 1 and "Glyph" not in err and len(err.splitlines()) == 1
