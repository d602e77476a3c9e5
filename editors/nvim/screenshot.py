"""docs/images/editor-neovim.png: a real Neovim in tmux with the cnndsl language server, its inlay hints and a
hover, captured from the terminal (tmux capture-pane), drawn by rich as SVG and photographed by headless Chromium.

    .venv/bin/python editors/nvim/screenshot.py [SPEC LINE COLUMN]
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.text import Text

ROOT = Path(__file__).resolve().parent.parent.parent
OUT = ROOT / "docs" / "images" / "editor-neovim.png"
SESSION, WIDTH, HEIGHT = "cnndsl-screenshot", 128, 36


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def capture(spec: str, line: int, col: int) -> str:
    subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
    nvim = (f"CNNDSL_PYTHON={sys.executable} nvim --clean -u {ROOT / 'editors' / 'nvim' / 'demo.lua'} {spec}")
    tmux("new-session", "-d", "-s", SESSION, "-x", str(WIDTH), "-y", str(HEIGHT), "-e", "TERM=tmux-256color", nvim)
    try:
        deadline = time.monotonic() + 30
        while not _hinted(tmux("capture-pane", "-p", "-t", SESSION)):
            if time.monotonic() > deadline:
                raise SystemExit("no inlay hints within 30 s")
            time.sleep(0.3)
        tmux("send-keys", "-t", SESSION, f":call cursor({line}, {col})", "Enter")
        tmux("send-keys", "-t", SESSION, ":lua vim.lsp.buf.hover()", "Enter")
        time.sleep(2)
        return tmux("capture-pane", "-e", "-p", "-t", SESSION)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)


def _hinted(screen: str) -> bool:
    """Whether the server's inlay hints are drawn: the `input` line shows its shape twice."""
    return any(line.count("x") >= 4 and "input" in line for line in screen.splitlines())


def picture(ansi: str, title: str) -> None:
    console = Console(record=True, width=WIDTH, file=io.StringIO(), force_terminal=True, color_system="truecolor")
    console.print(Text.from_ansi(ansi.rstrip("\n")), no_wrap=True, crop=True)
    svg = console.export_svg(title=title)
    width, height = (float(v) for v in re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg).groups())
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "shot.html"
        page.write_text(f"<html><body style='margin:0;background:#fff'>{svg}</body></html>")
        subprocess.run(["chromium-headless-shell", "--no-sandbox", "--hide-scrollbars", f"--screenshot={OUT}",
                        f"--window-size={int(width)},{int(height)}", page.as_uri()], check=True, capture_output=True)


def main() -> None:
    spec, line, col = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (
        "examples/cifar_resnet_small.cnn", 25, 6)
    picture(capture(spec, line, col), f"nvim {spec}")
    print(OUT)


if __name__ == "__main__":
    main()
