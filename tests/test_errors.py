"""Every kind of bad spec gets a located CnnError with a useful message and, where one exists, a hint."""

from __future__ import annotations

import re

import pytest

import cnndsl
from cnndsl.errors import CnnError, CnnErrors, UsageError


def error_of(text: str, **params) -> CnnError:
    with pytest.raises(CnnError) as info:
        cnndsl.check(text, **params)
    return info.value


def net(*lines: str, head: str = "network n {", prelude: str = "") -> str:
    body = "\n".join(f"    {line}" for line in lines)
    return f"{prelude}{head}\n{body}\n}}\n"


def where(e: CnnError) -> tuple[int, int]:
    assert e.span is not None, e.render()
    return e.span.line, e.span.col


# ---- syntax ----------------------------------------------------------------------------------------


def test_syntax_error_says_what_was_expected():
    e = error_of(net("input 3x32x32", "conv 64 kernel=3,"))
    assert where(e) == (3, 21)
    assert "unexpected `,`" in e.message and "expected" in e.message
    assert "separated by spaces" in e.hint


def test_expression_without_parentheses():
    e = error_of(net("input 3x32x32", "conv 64 kernel=3 + 1"))
    assert where(e) == (3, 22)
    assert "parentheses" in e.hint


def test_unclosed_brace_points_at_it():
    e = error_of("network n {\n    input 3x32x32\n    residual {\n        relu\n")
    assert where(e) == (3, 14)
    assert "never closed" in e.message


def test_stray_closing_brace():
    e = error_of(net("input 3x32x32", "relu }"))  # closes the network; the last `}` is left over
    assert where(e) == (4, 1) and "no matching `{`" in e.hint


def test_single_quotes():
    e = error_of(net("input 3x32x32", "conv 8 kernel=3 padding='same'"))
    assert where(e) == (3, 29)
    assert "double quotes" in e.hint


def test_keyword_as_name():
    e = error_of(net("input 3x32x32", "repeat: conv 8 kernel=3"))
    assert where(e)[0] == 3


def test_rendered_error_has_file_line_col_source_and_caret():
    text = net("input 3x32x32", "convv 64 kernel=3")
    rendered = error_of(text).render().splitlines()
    assert rendered[0] == "<string>:3:5: error: unknown layer or block `convv`"
    assert rendered[1] == " 3 |     convv 64 kernel=3"
    assert rendered[2] == "   |     ^^^^^^^^^^^^^^^^^"
    assert rendered[3] == "  hint: did you mean `conv`?"


def test_the_expected_tokens_include_dotdot():
    e = error_of(net("repeat i in 1 3 { relu }"))
    assert where(e) == (2, 19)
    # what the parser would take there, tried token by token (LALR's row would list `)` and `;` too)
    assert e.message == "unexpected `3`; expected one of `..`, `and`, `if`, `or`, an operator"


# ---- how errors are drawn --------------------------------------------------------------------------------


def test_a_note_with_a_span_is_drawn_in_the_source_with_its_label():
    assert error_of(net("input 3x32x32", "conv 64 3 kernel=5")).render().splitlines() == [
        "<string>:3:15: error: `kernel` of `conv` is given twice",
        " 3 |     conv 64 3 kernel=5",
        "   |             - ^^^^^^^^ given again here",
        "   |             |",
        "   |             first given here",
    ]
    assert error_of("block a { relu }\n\nblock a { tanh }\n" + net("input 3x8x8")).render().splitlines() == [
        "<string>:3:7: error: `a` is defined twice",
        " 1 | block a { relu }",
        "   |       - first defined here",
        " ...",
        " 3 | block a { tanh }",
        "   |       ^ defined again here",
        "  hint: rename one of them",
    ]


def test_a_note_in_another_file_names_it(spec_file):
    spec_file("block a { relu }\n", "lib.cnn")
    main = spec_file('use "lib"\nblock a { tanh }\n' + net("input 3x8x8"), "main.cnn")
    with pytest.raises(CnnError) as info:
        cnndsl.check(main)
    rendered = info.value.render().splitlines()  # the main file's definitions are read first
    assert rendered[0].endswith("lib.cnn:1:7: error: `a` is defined twice")
    assert rendered[1:3] == [" 1 | block a { relu }", "   |       ^ defined again here"]
    assert rendered[3:6] == [f"  --> {main}:2:7", " 2 | block a { tanh }", "   |       - first defined here"]


def test_a_span_over_several_lines_is_underlined_on_each():
    body = ["input 3x8x8", "repeat 1000000000000 {", "    relu", "    tanh", "    relu", "    tanh", "}"]
    assert error_of(net(*body)).render().splitlines()[1:10] == [
        " 3 |     repeat 1000000000000 {",
        "   |     ^^^^^^^^^^^^^^^^^^^^^^",
        " 4 |         relu",
        "   |         ^^^^",
        " 5 |         tanh",
        "   |         ^^^^",
        " ...",
        " 8 |     }",
        "   |     ^",
    ]


def test_the_calls_that_lead_to_an_error_in_a_block_are_drawn():
    e = error_of(net("input 3x32x32", "b 64", prelude="block b(f) {\n    conv f kernel=3 stride=0\n}\n"))
    assert e.render().splitlines()[3:6] == [" ...", " 6 |     b 64", "   |     ---- in block `b` called here"]


# ---- every independent error at once ------------------------------------------------------------------------


def test_three_independent_errors_are_all_reported():
    e = error_of(net("input 3x32x32", "convv 8 kernel=3", "conv 8 kernal=3", "dropout 1.5"))
    assert isinstance(e, CnnErrors)
    assert [(x.span.line, x.span.col) for x in e.errors] == [(3, 5), (4, 12), (5, 13)]
    assert [x.message for x in e.errors] == ["unknown layer or block `convv`", "`conv` has no argument `kernal`",
                                             "`rate` of dropout must be below 1, got 1.5"]
    assert e.message == e.errors[0].message and where(e) == (3, 5)  # the first is the error's own
    assert e.render() == "\n\n".join(x.render() for x in e.errors)


def test_errors_in_a_block_and_in_the_network_are_both_reported():
    prelude = "block b(f) {\n    conv f kernel=3 stride=0\n}\n"
    e = error_of(net("input 3x32x32", "b 64", "maxpol 2", prelude=prelude))
    assert [(x.span.line, x.span.col) for x in e.errors] == [(2, 28), (7, 5)]  # in source order
    assert e.errors[0].diagnostic.notes == [("in block `b` called here", e.errors[0].diagnostic.notes[0][1])]
    assert e.errors[0].diagnostic.notes[0][1].line == 6


def test_an_error_is_reported_once_not_with_what_follows_from_it():
    # the unknown layer leaves no shape for dense to check; the block call that does not bind reaches no block
    e = error_of(net("input 3x32x32", "convv 8", "dense 10", "b 1 2", prelude="block b(f) { conv f kernel=99 }\n"))
    assert isinstance(e, CnnErrors)
    assert [x.message for x in e.errors] == ["unknown layer or block `convv`", "block `b` takes at most 1 positional "
                                             "argument (f)"]


def test_a_shape_error_alone_is_one_error():
    e = error_of(net("input 3x4x4", "conv 8 kernel=7", "conv 8 kernel=7"))
    assert not isinstance(e, CnnErrors) and "larger than its 4x4 input" in e.message


def test_many_errors_are_capped_and_counted():
    e = error_of(net("input 3x8x8", *(f"nosuch{i}" for i in range(25))))
    assert len(e.errors) == 25
    rendered = e.render()
    assert rendered.count(": error: unknown layer or block") == 20
    assert rendered.endswith("error: and 5 more errors")


def test_the_command_line_prints_every_error_and_a_count(spec_file, capsys):
    from cnndsl.cli import main

    path = spec_file(net("input 3x32x32", "convv 8 kernel=3", "conv 8 kernal=3", "dropout 1.5"))
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count(": error: ") == 3 and f"{path}:5:13: error: `rate` of dropout" in err
    assert err.rstrip().endswith(f"error: could not check {path}: 3 errors")


# ---- names and arguments -----------------------------------------------------------------------------


def test_unknown_layer_suggests_close_name():
    e = error_of(net("input 3x32x32", "maxpol 2"))
    assert where(e) == (3, 5) and "did you mean `maxpool`" in e.hint


def test_unknown_block_suggests_defined_block():
    e = error_of(net("input 3x32x32", "basik 64", prelude='use "std/resnet"\n'))
    assert "did you mean `basic`" in e.hint


def test_unknown_argument():
    e = error_of(net("input 3x32x32", "conv 64 kernal=3"))
    assert where(e) == (3, 13) and "did you mean `kernel`" in e.hint


def test_missing_argument():
    e = error_of(net("input 3x32x32", "conv 64"))
    assert where(e) == (3, 5) and "missing its `kernel`" in e.message


def test_duplicate_argument_notes_the_first():
    e = error_of(net("input 3x32x32", "conv 64 3 kernel=5"))
    assert where(e) == (3, 15) and "given twice" in e.message
    assert e.diagnostic.notes[0][1].col == 13


def test_too_many_positional_arguments():
    e = error_of(net("input 3x32x32", "conv 64 3 2"))
    assert where(e) == (3, 15) and "at most 2 positional" in e.message and "stride=…" in e.hint


def test_wrong_argument_type():
    e = error_of(net("input 3x32x32", "conv 64 kernel=3 bias=1"))
    assert where(e) == (3, 27) and "expects true or false" in e.message


def test_non_integer_count_suggests_rounding():
    e = error_of(net("input 3x32x32", "conv (64 / 3) kernel=3"))
    assert "expects an integer" in e.message and "round" in e.hint


def test_out_of_range_values():
    assert "below 1" in error_of(net("input 3x32x32", "dropout 1.5")).message
    assert "at least 1" in error_of(net("input 3x32x32", "conv 0 kernel=3")).message
    assert "at least 1" in error_of(net("input 3x32x32", "conv 8 kernel=3 stride=0")).message


def test_undefined_name_suggests_parameter():
    e = error_of(net("input 3x32x32", "flatten", "dense clases", head="network n(classes = 10) {"))
    assert where(e) == (4, 11)
    assert "`clases` is not defined; did you mean `classes`?" == e.hint


def test_undefined_name_in_expression():
    e = error_of(net("input 3x32x32", "conv (filtres * 2) kernel=3", head="network n(filters = 8) {"))
    assert where(e) == (3, 11) and "did you mean `filters`" in e.hint


def test_bad_choice_suggests_close_one():
    e = error_of(net("input 3x32x32", "conv 8 kernel=3 activation=rellu"))
    assert where(e) == (3, 32) and e.hint == "did you mean `relu`?"
    e = error_of(net("input 3x32x32", "conv 8 kernel=3 padding=sam"))
    assert e.hint == "did you mean `same`?"


def test_unknown_in_attribute():
    e = error_of(net("input 3x32x32", "conv in.chanels kernel=3"))
    assert "did you mean `channels`" in e.hint


def test_in_height_of_flat_input():
    e = error_of(net("input 100", "dense in.height"))
    assert "flat vector" in e.message


def test_division_by_zero_is_located_at_the_divisor():
    e = error_of(net("input 3x32x32", "conv (10 / 0) kernel=3"))
    assert where(e) == (3, 16)


def test_huge_numbers_are_refused():
    e = error_of(net("input 3x32x32", "conv (10 ** 100) kernel=3"))
    assert "too large" in e.message


def test_condition_must_be_boolean():
    e = error_of(net("input 3x32x32", "if 3 { relu }"))
    assert where(e) == (3, 8) and "true or false" in e.message


def test_named_output_that_does_not_exist():
    e = error_of(net("input 3x32x32", "e1: conv 8 kernel=3", "concat e2"))
    assert where(e) == (4, 12) and "did you mean `e1`" in e.hint


def test_label_on_repeat_is_refused():
    e = error_of(net("input 3x32x32", "x: repeat 2 { relu }"))
    assert "not `repeat`" in e.message


# ---- blocks and files ------------------------------------------------------------------------------------


def test_recursive_blocks_name_the_cycle():
    e = error_of(net("input 3x32x32", "a", prelude="block a { b }\nblock b { a }\n"))
    assert e.message == "block `a` calls itself more than 24 levels deep (a → b → a → b → a → b → a → b → … → a)"
    assert where(e) == (2, 11)
    assert "needs a parameter that ends it" in e.hint


def test_error_inside_a_block_notes_the_call():
    e = error_of(net("input 3x32x32", "b 64", prelude="block b(f) {\n    conv f kernel=9 stride=9 padding=-1\n}\n"))
    assert where(e)[0] == 2
    assert e.diagnostic.notes[0][0] == "in block `b` called here"
    assert e.diagnostic.notes[0][1].line == 6


def test_block_argument_errors():
    prelude = "block b(f, stride = 1) { conv f kernel=3 stride=stride }\n"
    assert "missing its `f`" in error_of(net("input 3x32x32", "b", prelude=prelude)).message
    e = error_of(net("input 3x32x32", "b 8 stide=2", prelude=prelude))
    assert "did you mean `stride`" in e.hint


def test_calling_a_network_is_refused():
    e = error_of("network a { input 3x8x8 }\nnetwork n {\n    input 3x8x8\n    a\n}\n", network="n")
    assert "is a network" in e.message


def test_block_with_a_builtin_name():
    e = error_of("block conv { relu }\n" + net("input 3x8x8"))
    assert "name of a built-in layer" in e.message


def test_duplicate_definition():
    e = error_of("block a { relu }\nblock a { tanh }\n" + net("input 3x8x8"))
    assert "defined twice" in e.message and where(e) == (2, 7)


def test_missing_use(spec_file):
    path = spec_file('use "nowhere"\n' + net("input 3x8x8"))
    with pytest.raises(CnnError) as info:
        cnndsl.check(path)
    assert "cannot find `nowhere`" in info.value.message and where(info.value) == (1, 1)


def test_unknown_standard_library_file():
    e = error_of('use "std/resnett"\n' + net("input 3x8x8"))
    assert "std/resnet" in e.hint


def test_use_cycle(spec_file):
    spec_file('use "b"\nblock x { relu }\n', "a.cnn")
    spec_file('use "a"\nblock y { relu }\n', "b.cnn")
    main = spec_file('use "a"\n' + net("input 3x8x8", "x"), "main.cnn")
    with pytest.raises(CnnError) as info:
        cnndsl.check(main)
    assert re.search(r"`use` cycle: \S*a\.cnn → \S*b\.cnn → \S*a\.cnn", info.value.message)


def test_missing_file():
    with pytest.raises(CnnError, match="no such file"):
        cnndsl.check("does/not/exist.cnn")


# ---- shapes ------------------------------------------------------------------------------------------------


def test_kernel_larger_than_input():
    e = error_of(net("input 3x4x4", "conv 8 kernel=7"))
    assert where(e) == (3, 5) and "larger than its 4x4 input" in e.message


def test_sizes_that_reach_zero_name_the_layer_in_the_repeat():
    e = error_of(net("input 3x8x8", "repeat 5 { maxpool 2 }"))
    assert where(e) == (3, 16) and "1x1 input" in e.message


def test_residual_mismatch_names_both_shapes_and_suggests_a_shortcut():
    e = error_of(net("input 64x56x56", "residual {", "    conv 128 kernel=3 stride=2 padding=1", "}"))
    assert where(e) == (3, 5)
    assert e.message == "add needs equal shapes: body gives 128x28x28, the identity shortcut gives 64x56x56"
    assert "`shortcut { conv 128 kernel=1 stride=2 }`" in e.hint


def test_concat_mismatch_names_both_branches():
    e = error_of(net("input 3x32x32", "concat {", "  branch { conv 8 kernel=3 }",
                     "  branch { conv 8 kernel=3 padding=1 }", "}"))
    assert "branch 1 gives 8x30x30, branch 2 gives 8x32x32" in e.message


def test_multiply_needs_matching_gate():
    e = error_of(net("input 8x4x4", "multiply {", "  branch { }", "  branch { globalavgpool; dense 3 }", "}"))
    assert "per-channel gate" in e.message and "8 values" in e.hint


def test_groups_must_divide_channels():
    e = error_of(net("input 3x32x32", "conv 10 kernel=3 groups=4"))
    assert "must divide" in e.message


def test_dense_on_an_image_suggests_flatten():
    e = error_of(net("input 512x7x7", "dense 10"))
    assert "flat input, got 512x7x7" in e.message
    assert "`flatten`" in e.hint and "25,088" in e.hint and "`globalavgpool`" in e.hint


def test_conv_on_a_vector():
    e = error_of(net("input 784", "conv 8 kernel=3"))
    assert "CxHxW input" in e.message and "reshape" in e.hint


def test_pool_padding_over_half_the_kernel():
    assert "more than half" in error_of(net("input 3x8x8", "maxpool 2 padding=2")).message


def test_input_must_come_first_and_once():
    assert "no input yet" in error_of(net("conv 8 kernel=3")).message
    assert "once, first" in error_of(net("input 3x8x8", "input 3x8x8")).message
    assert "CxHxW" in error_of(net("input 8x8")).message


# ---- limits --------------------------------------------------------------------------------------------------


def test_repeat_limit():
    e = error_of(net("input 3x32x32", "repeat 1000 { repeat 1000 { relu } }"))
    assert "more than 50,000" in e.message and "--max-layers" in e.hint


def test_repeat_count_over_the_limit_fails_at_once():
    e = error_of(net("input 3x32x32", "repeat 1000000000000 { relu }"))
    assert where(e) == (3, 5) and "1,000,000,000,000 times" in e.message


def test_layer_limit_is_configurable():
    text = net("input 3x32x32", "repeat 10 { relu; relu; relu }")
    with pytest.raises(CnnError, match="more than 20 layers"):
        cnndsl.load(text, max_layers=20).check()
    assert len(cnndsl.load(text, max_layers=31).check().layers) == 31


def test_negative_repeat_count():
    assert "0 or more" in error_of(net("input 3x8x8", "repeat (0 - 2) { relu }")).message


# ---- network parameters ------------------------------------------------------------------------------------


def test_unknown_network_parameter_is_a_usage_error():
    with pytest.raises(UsageError) as info:
        cnndsl.check(net("input 3x8x8", head="network n(classes = 10) {"), clases=3)
    assert "did you mean `classes`" in info.value.hint


def test_network_parameter_of_the_wrong_type():
    with pytest.raises(UsageError, match="takes a value like its default 10"):
        cnndsl.check(net("input 3x8x8", head="network n(classes = 10) {"), classes=2.5)
    with pytest.raises(UsageError, match="default true"):
        cnndsl.check(net("input 3x8x8", head="network n(flag = true) {"), flag=1)


def test_several_networks_need_a_choice():
    text = "network a { input 3x8x8 }\nnetwork b { input 3x8x8 }\n"
    with pytest.raises(UsageError, match="several networks"):
        cnndsl.check(text)
    assert cnndsl.check(text, network="b").input == (3, 8, 8)
    with pytest.raises(UsageError, match="no network `c`"):
        cnndsl.check(text, network="c")


# ---- activations as values ---------------------------------------------------------------------------

ACT = "block conv_bn(filters, act = relu) {\n    conv filters kernel=1\n    act\n}\n"


def test_a_variable_holding_a_number_used_as_a_statement():
    e = error_of(net("input 3x8x8", "conv_bn 4 act=3", prelude=ACT))
    assert where(e) == (3, 5)  # the `act` statement, noted with the call that gave it 3
    assert e.message == ("`act` is a variable holding 3, not an activation: a statement that names a variable "
                         "applies the activation it holds")
    assert e.hint == "give it an activation: `act = relu`, `act = hardswish`, or `act = none` for none"
    assert [(message, span.line) for message, span in e.diagnostic.notes] == [("in block `conv_bn` called here", 7)]


def test_a_misspelt_activation_held_by_a_variable_gets_a_suggestion():
    e = error_of(net("input 3x8x8", "conv_bn 4 act=hardswsh", prelude=ACT))
    assert where(e) == (3, 5) and "holding `hardswsh`, not an activation" in e.message
    assert e.hint == "did you mean `hardswish`?"


def test_a_variable_applied_before_its_let_holds_nothing_yet():
    e = error_of(net("input 3x8x8", "act", "let act = relu"))
    assert where(e) == (3, 5) and e.message.startswith("`act` is a variable holding nothing yet, not an activation")


def test_a_variable_statement_takes_no_arguments_and_no_label():
    prelude = "block b(act = leakyrelu) {\n    act 0.2\n    x: act\n}\n"
    with pytest.raises(CnnErrors) as info:
        cnndsl.check(net("input 3x8x8", "b", prelude=prelude))
    first, second = info.value.errors
    assert where(first) == (2, 9) and first.message == "`act` applies the activation it holds and takes no arguments"
    assert first.hint == "to give an activation arguments, write the layer itself: `leakyrelu 0.2`"
    assert where(second) == (3, 5) and second.message.startswith("a name cannot label `act`")


def test_a_block_named_underscore_is_refused_where_it_is_defined():
    with pytest.raises(CnnError) as e:
        cnndsl.loads("block _() {\n}\nnetwork x {\n input 3x8x8\n _\n globalavgpool\n}\n").check()
    assert "a block cannot be named `_`" in str(e.value) and e.value.span.line == 1
