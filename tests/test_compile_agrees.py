"""What `check` accepts, `compile` writes and `build()` builds as check reports it, for every value of the
parameters: loops over a parameter that change the shape, named outputs in loops that run 0, 1 or more
turns, and names that a counter would make equal to a PyTorch module's attribute."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")

import cnndsl  # noqa: E402
from cnndsl.codegen.prelude import HELPERS  # noqa: E402
from cnndsl.graph import numbered  # noqa: E402
from cnndsl.ops.source import MODULE_ATTRIBUTES  # noqa: E402
from conftest import module_of  # noqa: E402


def as_reported(text: str, **params):
    """Checks, compiles and builds the spec: parameters, every layer's output shape and the network's
    output are the report's, and a training step runs."""
    spec = cnndsl.loads(text, **params)
    report = spec.check()
    model = spec.build().eval()
    assert sum(p.numel() for p in model.parameters()) == report.params
    modules = dict(model.named_modules())
    seen, names = {}, {}
    for f in report.layers[1:]:
        names[f.layer.id] = module_of(f.layer, modules)
        if names[f.layer.id] is not None:
            modules[names[f.layer.id]].register_forward_hook(
                lambda m, i, o, name=names[f.layer.id]: seen.__setitem__(name, tuple(o.shape[1:])))
    with torch.no_grad():
        assert tuple(model(torch.randn(2, *report.input)).shape[1:]) == report.output
    for f in report.layers[1:]:
        if names[f.layer.id] is not None:
            assert seen[names[f.layer.id]] == f.layer.shape, f.layer.id
    if report.params:
        model.train()
        model(torch.randn(2, *report.input)).square().mean().backward()
    return spec, model


# ---- check and compile agree (issue "One core for every door", item 7) ------------------------------------

GROW = """block grow(n) {
    let c = in.channels
    repeat n {
        let c = c * 2
        conv c kernel=1
    }
}
network net(n = 2) {
    input 4x8x8
    grow n
    conv 4 kernel=1
    flatten
    dense 2
}"""

DOWN = """block down(n) {
    repeat n {
        e: conv 4 kernel=3 stride=2 padding=1
        concat e
    }
}
network net(n = 2) {
    input 3x16x16
    down n
    flatten
    dense 2
}"""


@pytest.mark.parametrize("n", [0, 1, 3])
def test_a_repeat_over_a_parameter_that_changes_the_shape_compiles(n):
    """Check accepted these and compile refused them ("cannot yet follow the shape through this `repeat`"):
    the loop carries the size, and the caller reads what the block's module records."""
    spec, model = as_reported(GROW, n=n)
    source = spec.source()
    assert ("        c = in_channels\n        for i in range(n):\n            c_2 = c * 2\n"
            "            self.add_module(f\"conv{i + 1}\", nn.Conv2d(c, c_2, kernel_size=1))\n            c = c_2\n"
            "        self.out_channels = c\n") in source
    assert "channels = self.grow1.out_channels" in source
    assert model.grow1.out_channels == 4 * 2**n
    spec, model = as_reported(DOWN, n=n)  # the height and width too: flatten needs them
    assert "self.dense1 = nn.Linear(channels * self.down1.out_size[0] * self.down1.out_size[1], 2)" in spec.source()


def test_a_block_called_on_images_and_on_vectors_is_two_classes():
    spec, model = as_reported("block act { relu; dropout 0.1 }\nnetwork n { input 3x8x8\n act\n flatten\n act\n"
                              " dense 2 }")
    assert "class Act(nn.Module):" in spec.source() and "class Act2(nn.Module):" in spec.source()


# ---- defects of the issue "Nothing hangs, nothing is lost" ---------------------------------------------------


def test_no_counter_makes_the_name_of_a_module_attribute():
    """The 16th call of a block `bfloat` was a child `bfloat16`, which hid nn.Module.bfloat16: check and
    compile passed, training failed. Check, the generated classes and the generated helper name it
    `bfloat_16`."""
    assert [numbered("bfloat", n) for n in (15, 16, 17)] == ["bfloat15", "bfloat_16", "bfloat17"]
    scope: dict = {}
    exec(HELPERS["child_name"], scope)  # the names a module that tracks them gives at construction
    for kind in ("bfloat", "conv", "b1", "x_"):
        names, counts = set(), {}
        assert [scope["child_name"](names, counts, kind) for _ in range(20)] == [numbered(kind, n) for n in
                                                                                range(1, 21)]
    block = "block bfloat { conv 2 kernel=1 }\n"
    for body in ("repeat 17 { bfloat }", "repeat n { bfloat }"):  # written out, and in a loop
        spec, model = as_reported(block + f"network net(n = 17) {{ input 2x4x4\n {body}\n flatten\n dense 2 }}")
        ids = {f.layer.id for f in spec.check().layers}
        assert {"bfloat_16.conv1", "bfloat17.conv1"} <= ids and "bfloat16.conv1" not in ids
        assert isinstance(model.get_submodule("bfloat_16"), torch.nn.Module) and callable(model.bfloat16)
    assert {a for a in dir(torch.nn.Sequential) if not a.startswith("_")} <= MODULE_ATTRIBUTES


FROM_IN_LOOP = """network net(n = 2) {{
    input 4x8x8
    a: conv 4 kernel=1
    repeat {count} {{
        a: conv 4 kernel=3 padding=same
        conv 8 kernel=3 padding=same
        from a
    }}
    flatten
    dense 3
}}"""


def through_the_named_convs(model, x: torch.Tensor, names: list[str]) -> torch.Tensor:
    """What the network computes when each turn reads `from a`: its `a` convs in a row, then the head (the
    conv 8 of each turn is computed and dropped)."""
    for name in names:
        x = model.get_submodule(name)(x)
    return model.get_submodule(names[-1].rsplit(".", 1)[0] + ".dense1" if "." in names[-1] else "dense1")(
        model.flatten1(x))


@pytest.mark.parametrize("count, n, turns", [("n", 0, 0), ("n - 1", 1, 0), ("i in 4..n", 2, 0), ("n", 2, 2),
                                             ("i in 4..n", 6, 2)])
def test_a_from_in_a_loop_that_runs_no_turn(count, n, turns):
    """The loop left `a_out` unbound (UnboundLocalError) where it ran no turn: the forward's `a` is what
    check's `a` is, the output named before the loop."""
    spec, model = as_reported(FROM_IN_LOOP.format(count=count), n=n)
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        expected = through_the_named_convs(model, x, ["a"] + [f"a_{i}" for i in range(2, turns + 2)])
        assert torch.equal(model(x), expected)


@pytest.mark.parametrize("n", [2, 3])
def test_a_from_in_a_loop_reads_the_output_it_names(n):
    """Each turn's `a` takes the 4 channels of `from a`, as check says, not the 8 of the turn's last layer
    (a channel mismatch in the built module)."""
    text = ("network net(n = 2, classes = 10) { input 4x8x8; repeat n { a: conv 4 kernel=3 padding=same; "
            "conv 8 kernel=3 padding=same; from a }; flatten; dense classes }")
    spec, model = as_reported(text, n=n)
    assert [m.in_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)] == [4, 4] * n
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), through_the_named_convs(model, x, ["a"] + [f"a_{i}" for i in range(2, n + 1)]))


@pytest.mark.parametrize("k", [0, 1, 2])
def test_an_if_in_a_block_s_loop_that_runs_no_turn(k):
    """UnboundLocalError on `current` where the loop ran no turn: the `if` reads `a` or makes a conv, turn by
    turn, and with no turn the block's output is `a`'s."""
    text = ("block b(k = 0) {\n    a: conv 4 kernel=1\n    repeat i in 0..k {\n        if k > 0 { from a } else "
            "{ conv 4 kernel=1 }\n    }\n}\nnetwork n(k = 0) {\n    input 4x8x8\n    b k\n    flatten\n"
            "    dense 2\n}")
    spec, model = as_reported(text, k=k)
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(model.b1(x), model.b1.a(x))


@pytest.mark.parametrize("text, message, line", [
    ("network n(a = false) {\n input 3x8x8\n if a { flatten }\n relu\n}",
     "the arms of this `if`, whose condition a parameter decides, give an image (CxHxW) and a flat vector", 3),
    ("network n(k = 0) {\n input 3x8x8\n repeat k { globalavgpool }\n}",  # no turn for these values
     "this `repeat`, whose count a parameter gives, turns an image (CxHxW) into a flat vector", 3),
    ("block b(a = false) {\n if a { relu } else if a { flatten }\n}\nnetwork n {\n input 3x8x8\n b\n}",
     "give an image (CxHxW) and a flat vector", 2),
])
def test_what_compile_cannot_write_check_refuses(text, message, line):
    """The compiled class serves every value of a parameter: an `if` or `repeat` it decides cannot leave two
    ranks for the layers after it. Check said nothing (it follows the arm taken), and compile refused."""
    with pytest.raises(cnndsl.CnnError, match=re.escape(message)) as info:
        cnndsl.loads(text).check()
    assert info.value.span.line == line


@pytest.mark.parametrize("text", [
    "network n(a = false) { input 3x8x8\n if a { flatten } else { globalavgpool }\n dense 3 }",  # same rank
    "network n { input 3x8x8\n repeat 20 { flatten }\n dense 3 }",  # a count written out: unrolled
    "network n(a = 1) { input 4\n if a == 2 { conv 4 kernel=1 } }",  # an arm no value can take: a raise
    "block act { relu }\nnetwork n(k = 2) { input 3x8x8\n repeat k { act }\n flatten\n act\n dense 2 }",
])
def test_what_keeps_its_rank_compiles(text):
    as_reported(text)


@pytest.mark.parametrize("text, params", [
    # an activation given as an argument, in a loop over an argument: named relu1, relu2... as counted
    ("block s(n, act = relu) { conv 4 kernel=1; act; repeat n { conv 4 kernel=1; act } }\n"
     "network net(n = 3, a = relu) { input 4x8x8\n s n act=a }", {"a": "hardswish"}),
    # a residual inside a merge's branch sums into a variable of its own, not the class's `out`
    ("network net { input 10\n residual { }\n concat {\n branch { reshape (1, 1, 10)\n residual {\n"
     " conv 2 kernel=1\n residual { conv 3 kernel=1 } shortcut { conv 3 kernel=1 } } shortcut { conv 3 kernel=1 } }\n"
     " branch { reshape (1, 1, 10) }\n }\n conv 4 kernel=1 }", {}),
    # loops that make nothing, in loops that make nothing (an IndentationError)
    ("block deep(r = 1) { repeat r { repeat r { } }\n if r > 2 { repeat r { } } else { } }\n"
     "network main { input 3x8x8\n deep\n conv 2 kernel=1 }", {}),
    # a residual whose body is a residual: the outer shortcut reads the input, not the inner sum's `out`
    ("network n { input 3x16x16\n residual {\n adaptiveavgpool 5\n e6: residual {\n residual {\n"
     " concat { branch { } branch { } }\n maxpool 1 padding=same stride=2\n } shortcut { adaptiveavgpool 3x3\n"
     " conv 6 kernel=1 }\n } shortcut { adaptiveavgpool 3x3\n dwconv 1 multiplier=2 }\n conv 3 kernel=1\n"
     " zeropad (13, 0, 13, 0)\n adaptiveavgpool 16\n }\n}", {}),
    # a size too long for a line, in parentheses: split without a comma that would make it a tuple
    ("block b1(p2 = 1) { repeat 2 { upsample\n maxpool (min(1, 5, in.channels) * 3) padding=same\n"
     " zeropad (5, 0, 0, 0) } }\nnetwork n { input 3x4x4\n b1 }", {}),
    # a range whose start is a formula: max(4 - (q - 7), 0) turns, not max(4 - q - 7, 0)
    ("network n(q = 8) { input 1x5x5\n repeat i in (q - 7)..(6 - 2) { conv 2 kernel=1\n elu }\n elu\n"
     " globalavgpool\n dense 5 }", {}),
    # a let of a tuple that holds an argument (an AttributeError)
    ("block b(t = 2) { let v = (in.channels, t)\n conv 2 kernel=1 }\nnetwork n { input 3x4x4\n b }", {}),
])
def test_found_by_the_fuzz_builds_as_reported(text, params):
    from cnndsl.ops.base import Symbol

    as_reported(text, **{k: Symbol(v) for k, v in params.items()})
