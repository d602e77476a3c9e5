"""Functions (`def`) and conditional expressions: evaluated, checked with located errors, printed, compiled."""

from __future__ import annotations

import pytest

import cnndsl
from cnndsl.errors import CnnError
from cnndsl.syntax import parse
from cnndsl.syntax.printer import format_text

DIVISIBLE = """def make_divisible(v, divisor = 8, min_value = divisor) {
    let c = max(min_value, floor(v + divisor / 2) // divisor * divisor)
    return c + divisor if c < 0.9 * v else c
}
"""


def channels(text: str, **params) -> list[int]:
    return [f.layer.shape[0] for f in cnndsl.check(text, **params).layers[1:]]


def errors_of(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(CnnError) as info:
        cnndsl.check(text)
    return [(e.span.line, e.span.col, e.message) for e in getattr(info.value, "errors", [info.value])]


@pytest.mark.parametrize("v, divisor, expected", [(11.2, 8, 16), (32, 8, 32), (100, 16, 96), (20, 8, 24),
                                                  (1280 * 1.4, 8, 1792), (7, 8, 8)])
def test_make_divisible_as_torchvision_computes_it(v, divisor, expected):
    # torchvision: new_v = max(divisor, int(v + divisor / 2) // divisor * divisor), plus divisor if under 90% of v
    reference = max(divisor, int(v + divisor / 2) // divisor * divisor)
    reference += divisor if reference < 0.9 * v else 0
    text = DIVISIBLE + f"network n {{\n    input 3x4x4\n    conv make_divisible({v}, divisor={divisor}) kernel=1\n}}\n"
    assert channels(text) == [reference] == [expected]


def test_defaults_from_earlier_parameters_keywords_and_conditional_expressions():
    text = """def pick(a, b = a * 2, big = false) {
    let c = a + b
    return c * 10 if big else c
}
network n(flag = true) {
    input 3x4x4
    conv pick(1) kernel=1
    conv pick(1, 5) kernel=1
    conv pick(2, big=flag) kernel=1
    conv (4 if not flag else 2 if in.channels == 3 else 1) kernel=1
}
"""
    assert channels(text) == [3, 6, 60, 2]
    assert channels(text, flag=False) == [3, 6, 6, 4]


def test_a_function_in_a_used_file_is_called_as_a_block_is(spec_file):
    spec_file(DIVISIBLE, "lib.cnn")
    main = spec_file('use "lib"\nnetwork n {\n    input 3x4x4\n    conv make_divisible(13) kernel=1\n}\n', "main.cnn")
    assert [f.layer.shape[0] for f in cnndsl.check(main).layers[1:]] == [16]


def test_every_error_of_functions_and_calls_is_located():
    text = """def f(x) {
    return g(x) + 1
}
def g(y) {
    return f(y)
}
def h(v, d = 8) {
    let a = in.channels
    return v
}
def max(a) { return a }
network n(scale = 2) {
    input 3x8x8
    conv f(2) kernel=1
    conv h(1, 2, 3) kernel=1
    conv h(1, dd=2) kernel=1
    conv nope(2) kernel=1
    h 3
    conv n(1) kernel=1
}
"""
    assert errors_of(text) == [
        (5, 12, "function `f` calls itself (f → g → f)"),
        (8, 13, "a function cannot use `in.channels`: it computes from its values alone"),
        (11, 5, "a function cannot be named `max`: that is a built-in function"),
        (15, 18, "function `h` takes at most 2 positional arguments (v, d)"),
        (16, 15, "function `h` has no argument `dd`"),
        (17, 10, "unknown function `nope`"),
        (18, 5, "`h` is a function: it computes a value, and is called in an expression"),
        (19, 10, "`n` is a network, not a function: it cannot be called in an expression"),
    ]


def test_a_function_named_like_a_variable_and_a_result_that_is_no_number():
    text = "def width(x) { return x }\nnetwork n(width = 2) {\n    input 3x4x4\n    conv width(4) kernel=1\n}\n"
    assert errors_of(text) == [(1, 5, "function `width` has the name of a variable of network `n`")]
    [(line, col, message)] = errors_of("def w(x) { return same }\nnetwork n {\n    input 3x4x4\n"
                                       "    conv w(1) kernel=1\n}\n")
    assert (line, col) == (4, 10) and message == "function `w` gives the name `same`, not a number"


def test_an_error_inside_a_function_is_noted_with_the_call():
    with pytest.raises(CnnError) as info:
        cnndsl.check("def inv(x) {\n    return 1 / x\n}\nnetwork n {\n    input 3x4x4\n    conv inv(0) kernel=1\n}\n")
    assert (info.value.span.line, info.value.span.col, info.value.message) == (2, 16, "division by zero")
    assert [(text, span.line) for text, span in info.value.diagnostic.notes] == [("in function `inv` called here", 6)]


def test_functions_print_back_to_their_tree():
    text = DIVISIBLE + "\nnetwork n(w = 1.0) {\n    input 3x4x4\n    conv make_divisible(32 * w, divisor=4) kernel=1\n"
    text += "    relu\n    conv (1 if w < 2 else 2) kernel=1\n}\n"
    assert format_text(text) == text and parse(format_text(text)) == parse(text)


def test_compile_writes_each_function_once_and_its_calls_as_calls():
    pytest.importorskip("torch")
    spec = cnndsl.loads(DIVISIBLE + "block b(f) {\n    conv make_divisible(f) kernel=1\n}\n"
                        "network n(w = 0.35) {\n    input 3x4x4\n    b (32 * w)\n    b make_divisible(24 * w)\n}\n")
    source = spec.source()
    assert source.count("def make_divisible(v, divisor=8, min_value=None):") == 1
    assert "make_divisible(f)" in source and "return c + divisor if c < 0.9 * v else c" in source
    report = spec.check()
    model = spec.build()
    assert sum(p.numel() for p in model.parameters()) == report.params == (3 * 16 + 16) + (16 * 8 + 8)
