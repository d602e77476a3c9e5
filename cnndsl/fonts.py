"""Fonts for pictures and pages: class names, spec names and file names in any script.

matplotlib (3.6 on) draws a text with the first family of rcParams["font.family"] that has a font, and each
glyph that font lacks with the next family that has it. `pictures()` is an rc_context with such a list: DejaVu
Sans (matplotlib's own: Latin, Greek, Cyrillic, Arabic, Hebrew), then those of FALLBACK that this machine has,
for Hangul, Chinese, Japanese and emoji. matplotlib shapes Arabic itself (libraqm), and draws outline fonts only:
a colour emoji font (Noto Color Emoji: bitmaps) is not one it can use, so emoji are monochrome (Symbola).

The pages name the same families, and the usual ones of each system, in their CSS (`CSS_FAMILIES`); a browser
falls back glyph by glyph too. Nothing here is imported by the checker; matplotlib is imported when called.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
import warnings
from pathlib import Path

from cnndsl.errors import UserNote

FIRST = "DejaVu Sans"  # shipped inside matplotlib: always there
# (family, the scripts it draws, the Debian package that installs it), the first found drawing a character first
FALLBACK = (
    ("Noto Sans CJK JP", "Hangul, Chinese and Japanese", "fonts-noto-cjk"),
    ("WenQuanYi Micro Hei", "Hangul, Chinese and Japanese", "fonts-wqy-microhei"),
    ("Noto Emoji", "emoji", "fonts-noto-emoji"),
    ("Symbola", "emoji", "fonts-symbola"),
)
PACKAGES = "fonts-wqy-microhei fonts-symbola"  # the smallest set that covers them all (8 MB installed)

# the pages' font-family: each system's own faces first, then the families above, then any sans-serif face
CSS_FAMILIES = ('system-ui, -apple-system, "Segoe UI", Helvetica, Arial, "DejaVu Sans", "Noto Sans", '
                '"Apple SD Gothic Neo", "Malgun Gothic", "Noto Sans CJK KR", "Noto Sans CJK JP", '
                '"WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC", "Hiragino Sans", "Noto Sans Arabic", '
                '"Apple Color Emoji", "Segoe UI Emoji", "Noto Color Emoji", "Noto Emoji", Symbola, sans-serif')

CSS_MONO = ('ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", "Noto Sans Mono CJK KR", "WenQuanYi Micro Hei Mono", '
            'monospace')

GLYPH_MISSING = re.compile(r"Glyph (\d+) .*missing from font")  # matplotlib's warning for each such character


@functools.cache
def families() -> tuple[str, ...]:
    """FIRST, then the FALLBACK families matplotlib can find here (only those: a family it cannot find costs a
    warning at every text). Once a process."""
    from matplotlib import font_manager

    known = _known(font_manager)
    if _uncovered(known):  # a script without a font: installed after matplotlib's font cache was made, perhaps
        _add_new_system_fonts(font_manager)
        known = _known(font_manager)
    return (FIRST, *(name for name, _, _ in FALLBACK if name in known))


def _uncovered(known: set[str]) -> set[str]:
    """The scripts of FALLBACK that none of the `known` families draws."""
    return {script for _, script, _ in FALLBACK} - {script for name, script, _ in FALLBACK if name in known}


def _known(font_manager) -> set[str]:
    return {entry.name for entry in font_manager.fontManager.ttflist}


def _add_new_system_fonts(font_manager) -> None:
    """matplotlib lists the system's fonts once, in a cache it keeps until its version changes: fonts installed
    since (`make test` installs some) are added here, and the cache is written again as matplotlib writes it,
    so that the next process finds them without looking (the look costs fc-list, 15-30 ms)."""
    import matplotlib

    listed = {entry.fname for entry in font_manager.fontManager.ttflist}
    added = 0
    for path in font_manager.findSystemFonts():
        if path not in listed:
            with contextlib.suppress(Exception):  # a font file FreeType cannot read is no font for us
                font_manager.fontManager.addfont(path)
                added += 1
    if added:
        cache = Path(matplotlib.get_cachedir(), f"fontlist-v{font_manager.FontManager.__version__}.json")
        font_manager.json_dump(font_manager.fontManager, cache)  # locked while written, as matplotlib does


@contextlib.contextmanager
def pictures():
    """Figures made and saved inside draw every script the fonts here have. A character none of them has is
    drawn as an empty box, and said once a process (a UserNote naming the packages), not once a character."""
    import matplotlib

    with warnings.catch_warnings(record=True) as caught, matplotlib.rc_context({"font.family": list(families())}):
        warnings.simplefilter("always")  # recorded here, each one; re-issued below but for the missing glyphs
        yield
    missing = []
    for w in caught:
        found = GLYPH_MISSING.search(str(w.message)) if issubclass(w.category, UserWarning) else None
        if found:
            missing.append(chr(int(found.group(1))))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    if missing:
        _note_missing(tuple(dict.fromkeys(missing))[:8])


def _note_missing(characters: tuple[str, ...]) -> None:
    if next(_NOTES):  # said already: a run draws two pictures and a page, and each would say it again
        return
    warnings.warn(f"no font on this machine draws {' '.join(characters)}: the pictures show empty boxes for them. "
                  f"Install fonts for Hangul, Chinese, Japanese and emoji, e.g. `apt-get install {PACKAGES}` "
                  "(`make test` does)", UserNote, stacklevel=4)


_NOTES = itertools.count()  # the notes asked for in this process: only the first is said
