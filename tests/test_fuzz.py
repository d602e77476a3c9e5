"""Property: whatever text the checker is given, it answers with a report or a CnnError, nothing else."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnndsl
from cnndsl.errors import CnnError
from conftest import ROOT

SPECS = sorted((ROOT / "specs").glob("*.cnn")) + sorted((ROOT / "examples").glob("*.cnn"))
TEXTS = [p.read_text() for p in SPECS]

TOKENS = [
    "network", "block", "use", "repeat", "in", "if", "else", "residual", "shortcut", "add", "concat",
    "multiply", "branch", "from", "let", "frozen", "true", "false", "and", "or", "not", "input", "conv",
    "layernorm", "groupnorm", "instancenorm", "scale", "layerscale", "droppath", "convtranspose", "split",
    "channelshuffle", "part=", "output_padding=",
    "dwconv", "sepconv", "maxpool", "avgpool", "globalavgpool", "dense", "flatten", "dropout", "batchnorm",
    "lrn", "relu", "softmax", "upsample", "zeropad", "reshape", "identity", "adaptiveavgpool", "e1", "x",
    "kernel=", "stride=", "padding=", "groups=", "same", "valid", "{", "}", "(", ")", ",", ";", "\n", ":",
    "=", "==", "!=", "<", "+", "-", "*", "/", "//", "%", "**", "..", ".", "0", "1", "2", "3", "7", "64",
    "0.5", "3x3", "1x28x28", "3x224x224", "-1", "99999999999", '"std/resnet"', '"x"', "in.channels",
    "in.height", "max(", "min(", "round(", "#", "\\\n",
]

MAX_LAYERS = 3000


def check(text: str) -> None:
    try:
        report = cnndsl.loads(text, max_layers=MAX_LAYERS).check()
    except CnnError as e:
        e.render()  # rendering the message must not fail either
        return
    report.text(explain=True)
    report.json()
    report.markdown(depth=1)
    report.keras()


def mutate(text: str, data) -> str:
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        i = data.draw(st.integers(0, len(text)))
        if kind == "delete":
            text = text[:i] + text[i + data.draw(st.integers(1, 12)):]
        elif kind == "insert":
            text = text[:i] + " " + data.draw(st.sampled_from(TOKENS)) + " " + text[i:]
        elif kind == "replace":
            j = i + data.draw(st.integers(1, 6))
            text = text[:i] + data.draw(st.sampled_from(TOKENS)) + text[j:]
        else:
            lines = text.splitlines()
            k = data.draw(st.integers(0, max(0, len(lines) - 1)))
            text = "\n".join(lines[: k + 1] + lines[k:])
    return text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_reference_specs(data):
    text = data.draw(st.sampled_from(TEXTS))
    check(mutate(text, data))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_random_token_streams(tokens):
    check("network n {\n input 3x32x32\n" + " ".join(tokens) + "\n}\n")
    check(" ".join(tokens))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(text):
    check(text)
