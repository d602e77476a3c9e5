"""The reference stays true to the registry and the standard library."""

from __future__ import annotations

import re

import pytest

from cnndsl.ops import REGISTRY
from cnndsl.syntax.loader import STD_DIR
from conftest import ROOT

DOC = (ROOT / "docs/language.md").read_text()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_layer_and_argument_is_documented(name):
    assert f"`{name}`" in DOC, f"docs/language.md does not mention `{name}`"
    for arg in REGISTRY[name].args:
        assert re.search(rf"`{arg.name}\b", DOC), f"docs/language.md does not mention {name}'s `{arg.name}`"


def test_every_standard_library_block_is_documented():
    for path in STD_DIR.glob("*.cnn"):
        for block in re.findall(r"^block (\w+)", path.read_text(), re.M):
            assert f"`{block}" in DOC, f"docs/language.md does not mention std block `{block}`"


def test_readme_mentions_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make run" in readme
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_the_readmes_error_is_what_check_prints(tmp_path):
    """The README's sample of a wrong spec: its text, and what `cnndsl check` prints for it, character for
    character (a doc that drew one caret where the tool underlines the span had drifted)."""
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    spec = re.search(r"```\n# broken\.cnn\n(.*?)```", readme, re.S).group(1)
    shown = re.search(r"```\n\$ cnndsl check broken\.cnn\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "broken.cnn").write_text(spec)
    out = subprocess.run([sys.executable, "-m", "cnndsl.cli", "check", "broken.cnn"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr == shown
