"""The editors' side of `cnndsl lsp`: a real headless Neovim reading diagnostics, a hover and inlay hints back, and
the VS Code extension's TextMate grammar against its snapshot tests (vscode-tmgrammar-test, from npm).

Each skips where its program is missing (`make test` installs Neovim, and the npm packages where node is)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnndsl.ops import ALIASES, REGISTRY

ROOT = Path(__file__).resolve().parent.parent
VSCODE = ROOT / "editors" / "vscode"
NVIM = shutil.which("nvim")


def _neovim(tmp_path: Path, text: str, hover: tuple[int, int]) -> dict:
    pytest.importorskip("pygls")
    spec, out = tmp_path / "spec.cnn", tmp_path / "out.json"
    spec.write_text(text)
    env = {**os.environ, "CNNDSL_SPEC": str(spec), "CNNDSL_PYTHON": sys.executable, "CNNDSL_OUT": str(out),
           "CNNDSL_HOVER": f"{hover[0]},{hover[1]}", "XDG_STATE_HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
    subprocess.run([NVIM, "--headless", "--clean", "-c", f"luafile {ROOT / 'editors' / 'nvim' / 'check.lua'}"],
                   env=env, cwd=tmp_path, timeout=90, check=True, capture_output=True)
    return json.loads(out.read_text())


@pytest.mark.skipif(NVIM is None, reason="Neovim (nvim) is not installed; `make test` installs it")
def test_neovim_shows_the_servers_diagnostics_hover_and_inlay_hints(tmp_path):
    broken = "network tiny {\n    input 3x32x32\n    conv 16 kernal=3\n    relu\n    flatten\n    dense 10\n}\n"
    got = _neovim(tmp_path, broken, (2, 5))
    assert [(d["line"], d["col"], d["end_col"], d["severity"]) for d in got["diagnostics"]] == [(2, 12, 20, 1)]
    assert got["diagnostics"][0]["message"] == "`conv` has no argument `kernal`\nhint: did you mean `kernel`?"
    # a spec with errors has no shapes: the hover gives the layer kind's documentation
    assert got["hover"].startswith("**conv** (convolution): 2-D convolution")

    fixed = broken.replace("kernal", "kernel")
    got = _neovim(tmp_path, fixed + "network other {\n    input 3x8x8\n    conv 4 kernal=1\n}\n", (2, 5))
    assert [d["line"] for d in got["diagnostics"]] == [9]  # the other network's error; this one has its shapes
    assert got["hover"].startswith("**conv1** · `conv 3x3 → 16` → **16x30x30**")
    assert [(h["line"], h["label"].strip()) for h in got["hints"]] == [
        (1, "3x32x32"), (2, "16x30x30"), (3, "16x30x30"), (4, "14400"), (5, "10")]


def _npx() -> list[str]:
    if shutil.which("node") is None or shutil.which("npx") is None:
        pytest.skip("node is not installed: the VS Code extension's grammar tests need it")
    if not (VSCODE / "node_modules" / "vscode-tmgrammar-test").is_dir():
        pytest.skip("npm packages not installed: run `make editors` (or `npm ci` in editors/vscode)")
    return ["npx", "--no-install", "vscode-tmgrammar-test", "-g", "syntaxes/cnn.tmLanguage.json"]


def test_the_textmate_grammar_passes_its_snapshot_tests():
    cmd = _npx()
    done = subprocess.run([*cmd, "tests/*.cnn"], cwd=VSCODE, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("run successfuly") == len(list((VSCODE / "tests").glob("*.cnn"))) >= 2


def test_a_wrong_scope_fails_the_grammar_test(tmp_path):
    cmd = _npx()
    wrong = tmp_path / "wrong.cnn"
    wrong.write_text('# SYNTAX TEST "source.cnn"\n    conv 8\n#   ^^^^ keyword.control.cnn\n')
    done = subprocess.run([*cmd, str(wrong)], cwd=VSCODE, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "missing required scopes: keyword.control.cnn" in done.stdout


def test_the_grammar_knows_every_layer_kind_of_the_registry():
    grammar = json.loads((VSCODE / "syntaxes" / "cnn.tmLanguage.json").read_text())
    [layers] = [p["match"] for p in grammar["repository"]["statement"]["patterns"]
                if p.get("name") == "support.function.layer.cnn"]
    names = set(re.match(r"\\b\(([^)]*)\)", layers).group(1).split("|"))
    assert names == set(REGISTRY) | set(ALIASES)


def test_the_vscode_client_starts_the_configured_python_with_cnndsl_lsp():
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    done = subprocess.run(["node", "tests/extension.test.js"], cwd=VSCODE, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "extension wiring ok" in done.stdout, done.stdout + done.stderr
