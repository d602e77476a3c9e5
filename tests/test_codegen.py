"""What `check` promises, the generated module is: over every spec in the repository."""

from __future__ import annotations

import ast
import re
import runpy
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.codegen.layout import VALUE_WISE  # noqa: E402
from conftest import ROOT, UNET, load_to_run, module_of  # noqa: E402

RUN_KINDS = VALUE_WISE | {"dense", "layernorm"}

SPECS = sorted(p.relative_to(ROOT).as_posix() for p in [*ROOT.glob("specs/*.cnn"), *ROOT.glob("examples/*.cnn")])


@pytest.fixture(scope="module")
def built():
    cache = {}

    def get(path: str):
        if path not in cache:
            spec = load_to_run(path)
            cache[path] = (spec, spec.check(), spec.build().eval())
        return cache[path]

    return get


@pytest.mark.parametrize("path", SPECS)
def test_counts_equal_the_report(built, path):
    spec, report, model = built(path)
    assert sum(p.numel() for p in model.parameters()) == report.params
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == report.trainable_params
    buffers = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
    assert buffers == report.buffers


@pytest.mark.parametrize("path", SPECS)
def test_every_layer_has_the_shape_the_report_predicts(built, path):
    spec, report, model = built(path)
    modules = dict(model.named_modules())
    seen: dict[str, tuple] = {}
    handles = []
    for f in report.layers[1:]:
        name = module_of(f.layer, modules)
        if name is not None:
            handles.append(modules[name].register_forward_hook(
                lambda m, i, out, name=name: seen.__setitem__(name, tuple(out.shape[1:]))))
    # attention's products are counted only on SDPA's math path, and nothing of it on MultiheadAttention's fused
    # path, which eval takes without grad
    attention = any(isinstance(m, torch.nn.MultiheadAttention) for m in model.modules())
    with torch.set_grad_enabled(attention), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        out = model(torch.randn(1, *report.input))
    for h in handles:
        h.remove()
    assert tuple(out.shape[1:]) == report.output
    for f in report.layers[1:]:
        name = module_of(f.layer, modules)
        if name is not None:
            expected = f.layer.shape
            if f.layer.op in RUN_KINDS and len(expected) == 3 and seen[name] != expected:
                expected = (*expected[1:], expected[0])  # inside a channels-last run (codegen/layout.py)
            assert seen[name] == expected, f.layer.id
    assert counter.get_total_flops() // 2 == report.macs


@pytest.mark.parametrize("path", ["specs/resnet50.cnn", "examples/cifar_cnn_bn.cnn", "specs/googlenet.cnn"])
def test_source_is_deterministic_across_processes(path):
    code = f"import cnndsl, sys; sys.stdout.write(cnndsl.load({str(ROOT / path)!r}).source())"
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout for seed in ("1", "2")]
    assert runs[0] == runs[1] == cnndsl.load(ROOT / path).source()


def test_every_generated_file_passes_ruff_and_imports_only_torch(tmp_path):
    """Every spec of the repository, compiled, passes `ruff check` with the project's own configuration."""
    for path in SPECS:
        source = cnndsl.load(ROOT / path).source()
        imported = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add(f"{node.module}.{','.join(a.name for a in node.names)}")
        assert imported <= {"math", "torch", "torch.nn", "torch.nn.functional", "collections.OrderedDict"}, path
        (tmp_path / path.replace("/", "_").replace(".cnn", ".py")).write_text(source)
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                           str(ROOT / "pyproject.toml"), str(tmp_path)], capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout
    assert len(list(tmp_path.glob("*.py"))) == len(SPECS) > 25


def test_no_path_of_the_machine_in_generated_text(tmp_path):
    """The spec's file, and a file it uses, are named by their names alone, however they were given."""
    folder = tmp_path / "secret_folder"
    folder.mkdir()
    (folder / "parts.cnn").write_text("block unit(deep = false) {\n    let k = 0\n    if deep {\n"
                                      "        conv 4 kernel=k\n    }\n    conv 4 kernel=1\n}\n")
    (folder / "net.cnn").write_text('use "parts"\nnetwork net {\n    input 3x8x8\n    unit\n}\n')
    source = cnndsl.load(folder / "net.cnn").source()
    assert "secret_folder" not in source and str(tmp_path) not in source
    assert "compiled by cnndsl" in source and "from net.cnn." in source
    assert "(parts.cnn:1)" in source and 'raise ValueError("parts.cnn:4:' in source  # the code that raises
    resnet = cnndsl.load(ROOT / "specs/resnet50.cnn").source()
    assert str(ROOT) not in resnet and "from resnet50.cnn." in resnet and "(std/resnet.cnn:25)" in resnet


def test_compiled_file_runs_on_its_own(tmp_path):
    out = tmp_path / "resnet18.py"
    cli = subprocess.run([sys.executable, "-m", "cnndsl.cli", "compile", str(ROOT / "specs/resnet18.cnn"),
                          "-o", str(out), "--set", "classes=10"], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    run = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path[:0] = {sys.path[1:]!r}; "
                          "import runpy; runpy.run_path(sys.argv[1], run_name='__main__'); "
                          "assert 'cnndsl' not in sys.modules", str(out)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "output (2, 10), 11,181,642 parameters" in run.stdout


def test_blocks_become_parameterised_classes():
    source = cnndsl.load(ROOT / "specs/resnet34.cnn").source()
    assert "class Basic(nn.Module):" in source  # fixed children: attributes and a forward
    assert "def __init__(self, in_channels: int, filters: int, stride: int = 1) -> None:" in source
    # the shortcut an optional nn.Sequential of named layers, the sum in the forward (in place: the body
    # ends in a batchnorm)
    assert ("        self.shortcut = None\n        if stride != 1 or in_channels != filters:\n"
            "            self.shortcut = nn.Sequential(OrderedDict(\n"
            "                conv1=nn.Conv2d(in_channels, filters, kernel_size=1, stride=stride, bias=False),\n"
            "                batchnorm1=nn.BatchNorm2d(filters),\n            ))\n") in source
    assert ("    def forward(self, x):\n        identity = x\n        out = self.conv1(x)\n"
            "        out = self.batchnorm1(out)\n        out = self.relu1(out)\n        out = self.conv2(out)\n"
            "        out = self.batchnorm2(out)\n        if self.shortcut is not None:\n"
            "            identity = self.shortcut(x)\n        out += identity\n        return self.relu2(out)\n"
            ) in source
    # children that depend on `blocks`: an nn.Sequential filled by a loop, named as check names them
    assert ("class Stage(nn.Sequential):\n" in source
            and "        self.basic1 = Basic(in_channels, filters, stride=stride)\n"
                "        for i in range(blocks - 1):\n"
                "            self.add_module(f\"basic{i + 2}\", Basic(filters, filters))\n" in source)
    assert "        self.stage3 = Stage(128, 256, blocks=6, stride=2)\n" in source
    classes = re.findall(r"^class (\w+)\((nn\.\w+)\)", source, re.M)
    assert classes == [("Basic", "nn.Module"), ("Stage", "nn.Sequential"),
                       ("Resnet34", "nn.Module")]  # a class per block and the network, no interpreter
    # torch's own layers where torch has them: the global average is torchvision's avgpool and flatten
    assert "        self.globalavgpool1 = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())\n" in source


def test_module_paths_are_report_names():
    spec = cnndsl.load(ROOT / "specs/resnet18.cnn")
    names = {n for n, _ in spec.build().named_modules()}
    ids = {f.layer.id for f in spec.check().layers}
    assert {"stage2.basic1.shortcut.conv1", "stage2.basic1.batchnorm2", "stage2.basic1.relu2"} <= names & ids
    assert "stage2.basic1.add1" in ids and "stage2.basic1.add1" not in names  # `out += identity`
    assert "stage1.basic2.shortcut" not in names  # None: the identity


def test_bottleneck_with_se_and_inception_read_like_torchvision():
    resnet = cnndsl.load(ROOT / "specs/seresnet50.cnn").source()
    assert ("        self.se1 = None\n        if se_ratio > 0:\n"
            "            self.se1 = Se(filters * expansion, ratio=se_ratio)\n") in resnet
    assert ("        out = self.batchnorm3(out)\n        if self.se1 is not None:\n            out = self.se1(out)\n"
            "        if self.shortcut is not None:\n            identity = self.shortcut(x)\n        out += identity\n"
            "        return self.relu3(out)\n") in resnet
    assert "        branch2 = self.branch2(x)\n        return x * branch2[:, :, None, None]\n" in resnet  # se
    googlenet = cnndsl.load(ROOT / "specs/googlenet.cnn").source()
    assert ("        branch4 = self.branch4(x)\n"
            "        return torch.cat([branch1, branch2, branch3, branch4], dim=1)\n") in googlenet
    names = {n for n, _ in cnndsl.load(ROOT / "specs/googlenet.cnn").build().named_modules()}
    assert "inception1.branch2.conv_bn2.conv1" in names


def test_a_residual_under_a_loop_over_an_argument_walks_its_children_in_order():
    spec = cnndsl.loads("block b(n) { repeat n {\n residual { conv 4 kernel=3 padding=1\n relu }"
                        " shortcut { conv 4 kernel=1 } } }\nnetwork m { input 4x8x8\n b 2 }")
    model = spec.build().eval()
    ids = [f.layer.id for f in spec.check().layers]
    assert ids[1:] == ["b1.conv1", "b1.relu1", "b1.shortcut.conv1", "b1.add1",
                       "b1.conv2", "b1.relu2", "b1.shortcut_2.conv1", "b1.add2"]
    assert [n for n, _ in model.b1.named_children()] == ["conv1", "relu1", "shortcut", "conv2", "relu2",
                                                         "shortcut_2"]
    assert model.b1._plan == [2]  # the turns the constructor took, which the forward replays
    source = spec.source()
    assert ("        for _ in range(next(plan)):\n            out = next(layers)(x)\n"
            "            out = next(layers)(out)\n            identity = next(layers)(x)\n"
            "            out = out + identity\n            x = out\n") in source
    x = torch.randn(1, 4, 8, 8)
    b = model.b1
    y = torch.relu(b.conv1(x)) + b.shortcut(x)
    assert torch.allclose(model(x), torch.relu(b.conv2(y)) + b.shortcut_2(y))


def test_keras_same_padding_with_stride_pads_after():
    model = cnndsl.loads("network n { input 1x4x4\n conv 1 kernel=3 stride=2 padding=same bias=false }").build()
    conv = model.conv1
    assert conv.pads == (0, 1, 0, 1)  # left, right, top, bottom: the extra row and column go after
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    expected = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
    assert torch.equal(model(x), expected) and model(x).shape == (1, 1, 2, 2)


def test_frozen_parts_do_not_train():
    model = cnndsl.loads("""
        block unit(f) { conv f kernel=3 padding=same; batchnorm }
        network n { input 3x8x8
            frozen unit 4
            conv 2 kernel=1 }""").build()
    assert all(not p.requires_grad for p in model.unit1.parameters())
    assert all(p.requires_grad for p in model.conv1.parameters())


def test_named_outputs_and_from():
    spec = cnndsl.loads(UNET)
    model = spec.build()
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 4, 16, 16)
    forward = spec.source().split("def forward(self, x):")[-1]
    assert [line.strip() for line in forward.split("\n\n")[0].strip().splitlines()] == [
        "e1 = self.e1(x)", "x = self.maxpool1(e1)", "x = self.conv1(x)", "x = self.upsample1(x)",
        "x = torch.cat([x, e1], dim=1)", "side = self.side(x)", "x = self.conv2(e1)", "return x + side"]


def test_named_outputs_around_a_loop_over_an_argument():
    spec = cnndsl.loads("block b(n) { e: conv 4 kernel=1\n repeat n { relu }\n add e }\n"
                        "network m { input 3x8x8\n b 2 }")
    model = spec.build()
    assert [n for n, _ in model.b1.named_children()] == ["e", "relu1", "relu2"]
    assert "return x + e" in spec.source()
    x = torch.randn(1, 3, 8, 8)
    e = model.b1.e(x)
    assert torch.allclose(model(x), torch.relu(e) + e)


@pytest.mark.parametrize("path", SPECS)
def test_torch_export(built, path):
    spec, report, model = built(path)
    x = torch.randn(1, *report.input)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        assert torch.allclose(exported.module()(x), model(x), atol=1e-4)


@pytest.mark.parametrize("path", ["specs/lenet5.cnn", "examples/cifar_cnn_bn.cnn"])
def test_torch_compile(built, path):
    spec, report, model = built(path)
    x = torch.randn(2, *report.input)
    with torch.no_grad():
        assert torch.allclose(torch.compile(model)(x), model(x), atol=1e-4)


def test_a_spec_that_fails_check_is_not_compiled():
    with pytest.raises(cnndsl.CnnError, match="kernel 7x7 is larger"):
        cnndsl.loads("network n { input 3x4x4\n conv 8 kernel=7 }").source()


def test_a_network_ending_in_softmax_trains_on_logits():
    model = cnndsl.load(ROOT / "examples/fashion_cnn_honkong.cnn").build().eval()
    assert model.ends_in_softmax
    x = torch.randn(3, 1, 28, 28)
    logits, probs = model.logits(x), model(x)
    assert torch.allclose(probs, torch.softmax(logits, dim=1), atol=1e-6)
    assert torch.allclose(probs.sum(1), torch.ones(3), atol=1e-5)
    assert not hasattr(cnndsl.load(ROOT / "specs/lenet5.cnn").build(), "logits")


def test_channels_last():
    spec = cnndsl.load(ROOT / "specs/resnet18.cnn")
    model = spec.build(channels_last=True).eval()
    assert model.stem1.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 224, 224)
    reference = spec.build().eval()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(model(x.to(memory_format=torch.channels_last)), reference(x), atol=1e-4)


@pytest.mark.parametrize("path", SPECS)
def test_a_training_step_runs(built, path):
    """In-place relus and sums must leave autograd what it needs."""
    spec, report, model = built(path)
    model.train()
    try:
        out = model(torch.randn(2, *report.input))
        out.float().pow(2).mean().backward()
    finally:
        model.eval()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)


def test_compile_command(tmp_path):
    out = subprocess.run([sys.executable, "-m", "cnndsl.cli", "compile", str(ROOT / "specs/lenet5.cnn")],
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == cnndsl.load(ROOT / "specs/lenet5.cnn").source()
    bad = tmp_path / "bad.cnn"
    bad.write_text("network n {\n    input 3x4x4\n    conv 8 kernel=7\n}\n")
    failed = subprocess.run([sys.executable, "-m", "cnndsl.cli", "compile", str(bad), "-o", str(tmp_path / "x.py")],
                            capture_output=True, text=True)
    assert failed.returncode == 1 and "bad.cnn:3:5: error: conv kernel 7x7 is larger" in failed.stderr
    assert not (tmp_path / "x.py").exists()
    unknown = subprocess.run([sys.executable, "-m", "cnndsl.cli", "compile", str(ROOT / "specs/lenet5.cnn"),
                              "--set", "clases=3"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "did you mean `classes`" in unknown.stderr


def test_a_name_made_in_a_branch_is_seen_only_there():
    # a branch is a module of its own in the generated code; check scopes names as compile can write them
    text = """network n {
        input 3x8x8
        e0: relu
        concat {
            branch { e1: conv 2 kernel=1 }
            branch { SECOND }
        }
        from e1
    }"""
    with pytest.raises(cnndsl.CnnError, match="`e1` is named inside a branch; it is seen only there") as info:
        cnndsl.loads(text.replace("SECOND", "")).check()
    assert info.value.span.line == 8
    with pytest.raises(cnndsl.CnnError, match="`e0` is named outside this branch") as info:
        cnndsl.loads(text.replace("SECOND", "concat e0")).check()
    assert info.value.span.line == 6


def test_a_block_calling_itself_in_an_untaken_branch_compiles_and_an_endless_one_is_refused():
    # the class makes an instance of itself only where the constructor's arguments take that arm, as check does
    text = "block b(deep = false) { relu; if deep { b deep } }\nnetwork n { input 3x8x8\n b DEEP }"
    model = cnndsl.loads(text.replace("DEEP", "false")).build()
    assert [n for n, _ in model.b1.named_children()] == ["relu1"]
    with pytest.raises(cnndsl.CnnError, match=r"calls itself more than 24 levels deep \(b → b → ") as e:
        cnndsl.loads(text.replace("DEEP", "true")).check()
    assert (e.value.span.line, e.value.span.col) == (1, 41)


DIGIT_NAMES = """block b1() {
    conv 4 kernel=1
}
block b11() {
    conv 4 kernel=1
}
block stage(n) {
    repeat n {
        b1
    }
}
network n {
    input 4x8x8
    repeat 11 { b1 }
    b11
    stage 2
    flatten
    dense 2
}"""


def test_calls_to_blocks_ending_in_a_digit_take_an_underscore_and_never_collide():
    spec = cnndsl.loads(DIGIT_NAMES)
    ids = [f.layer.id for f in spec.check().layers]
    assert "b1_11.conv1" in ids and "b11_1.conv1" in ids and "stage1.b1_2.conv1" in ids
    assert "b111.conv1" not in ids and len(ids) == len(set(ids))
    modules = dict(spec.build().named_modules())  # fixed children and a Chain (repeat n) name them alike
    assert all(i in modules for i in ids if i != "input1")


def test_an_activation_given_as_a_constructor_argument_builds_the_one_named():
    text = ("block conv_bn(filters, act = relu) {\n conv filters kernel=3 padding=1 bias=false\n"
            " batchnorm\n act\n}\nnetwork n(a = hardswish) { input 3x8x8\n conv_bn 4 act=a\n conv_bn 4 act=none }")
    source = cnndsl.loads(text).source()
    assert ("class ConvBn(nn.Sequential):\n" in source
            and "    def __init__(self, in_channels: int, filters: int, act: str = \"relu\") -> None:\n"
                "        super().__init__()\n"
                "        acts = {}  # how many activations of each kind, for their names\n"
                "        self.conv1 = nn.Conv2d(in_channels, filters, kernel_size=3, padding=1, bias=False)\n"
                "        self.batchnorm1 = nn.BatchNorm2d(filters)\n"
                "        if act not in (\"none\", \"linear\"):\n"
                "            self.add_module(*make_activation(act, acts))\n" in source)
    assert "    def __init__(self, a: str = \"hardswish\") -> None:\n" in source
    assert "        self.conv_bn1 = ConvBn(3, 4, act=a)\n" in source
    x = torch.randn(2, 3, 8, 8)
    for name, layer, fn in [("hardswish", torch.nn.Hardswish, torch.nn.functional.hardswish),
                            ("gelu", torch.nn.GELU, torch.nn.functional.gelu)]:
        model = cnndsl.loads(text, a=name).build().eval()
        block = model.conv_bn1
        assert [n for n, _ in block.named_children()] == ["conv1", "batchnorm1", f"{name}1"]
        assert isinstance(getattr(block, f"{name}1"), layer)
        assert [n for n, _ in model.conv_bn2.named_children()] == ["conv1", "batchnorm1"]  # none: no layer
        with torch.no_grad():
            y = fn(block.batchnorm1(block.conv1(x)))
            assert torch.equal(model(x), model.conv_bn2.batchnorm1(model.conv_bn2.conv1(y)))
    from cnndsl.build import build_module

    with pytest.raises(ValueError, match="'rleu' is not an activation; one of: relu, relu6, "):
        build_module(source, "N", {"a": "rleu"})


POOL_CASES = [(op, k, s, p, ceil, include, n) for op in ("maxpool", "avgpool") for k in (2, 3) for s in (1, 2, 3)
              for p in range(k // 2 + 1) for ceil in (True, False) for include in (True, False) for n in (5, 6)
              if op == "avgpool" or include]


@pytest.mark.parametrize("op,k,s,p,ceil,include,n", POOL_CASES)
def test_a_pool_padded_by_a_parameter_computes_what_pytorch_s_pool_does(op, k, s, p, ceil, include, n):
    """A padding that a parameter holds, which may be `same`, goes through PoolSame: ceil mode and
    count_include_pad as nn.MaxPool2d / nn.AvgPool2d take them, and the shape check reported."""
    counts = "" if op == "maxpool" else f" count_include_pad={str(include).lower()}"
    spec = cnndsl.loads(f"""block b(pad = same) {{
    {op} {k} stride={s} padding=pad ceil={str(ceil).lower()}{counts}
}}
network t {{
    input 2x{n}x{n}
    b {p}
}}""")
    assert "PoolSame(" in spec.source()
    x = torch.randn(3, 2, n, n, generator=torch.Generator().manual_seed(k * 100 + s * 10 + n))
    ours = spec.build().eval()(x)
    if op == "maxpool":
        theirs = torch.nn.MaxPool2d(k, s, p, ceil_mode=ceil)(x)
    else:
        theirs = torch.nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=include)(x)
    assert ours.shape == theirs.shape and tuple(ours.shape[1:]) == spec.check().output
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("n,k,s", [(5, 2, 2), (6, 3, 2), (7, 3, 3), (6, 1, 4)])
def test_keras_same_pooling_with_ceil_keeps_the_reported_shape(n, k, s):
    spec = cnndsl.loads(f"network t {{\n input 1x{n}x{n}\n maxpool {k} stride={s} padding=same ceil=true\n"
                        f" avgpool {k} stride=1 padding=same ceil=true\n}}")
    assert tuple(spec.build().eval()(torch.randn(2, 1, n, n)).shape[1:]) == spec.check().output


def test_a_size_the_arms_of_an_if_give_differently_is_named_once():
    """As torchvision's InvertedResidual reads `hidden_dim`: the layers after the `if` read a variable."""
    source = cnndsl.load(ROOT / "specs" / "mobilenet_v2.cnn").source()
    assert "channels = round(in_channels * expand) if expand != 1 else in_channels" in source
    dwconv = "channels, channels, kernel_size=3, stride=stride, padding=1, groups=channels, bias=False"
    assert f"            {dwconv}\n" in source
    assert source.count("if expand != 1 else in_channels") == 1


def test_the_rounding_of_mobilenet_is_written_once_as_torchvision_s_make_divisible():
    """The spec's function is one module-level def; its calls give ints, so nothing wraps them in int()."""
    source = cnndsl.load(ROOT / "specs" / "mobilenet_v2.cnn").source()
    assert source.count("\ndef make_divisible(") == 1 and source.count("math.floor(") == 1
    assert "        c = make_divisible(filters * width)\n" in source
    assert ("        channels = self.inverted_stage1.out_channels\n"
            "        self.inverted_stage2 = InvertedStage(channels, 24, 2, stride=2, width=width)\n") in source
    assert "int(make_divisible" not in source and "whole(make_divisible" not in source
    # a divisor given as a float may make a float: then the call goes through int() where PyTorch wants an int
    spec = cnndsl.loads('use "std/channels"\nnetwork n(d = 8.0) { input 3x4x4\n conv make_divisible(20, d) kernel=1 }')
    assert "nn.Conv2d(3, int(make_divisible(20, d)), kernel_size=1)" in spec.source()
    assert spec.build().conv1.out_channels == 24


def test_an_if_decided_at_construction_is_a_bool_attribute_as_torchvision_s_use_res_connect(tmp_path):
    """MobileNetV2's inverted residual keeps its decision as torchvision's `self.use_res_connect`: set once
    from the condition, tested by the forward; no list that the forward replays. Both arms make the same
    child, so the constructor makes it once."""
    out = tmp_path / "mobilenet_v2.py"
    cli = subprocess.run([sys.executable, "-m", "cnndsl.cli", "compile", str(ROOT / "specs/mobilenet_v2.cnn"),
                          "-o", str(out)], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    source = out.read_text()
    block = source[source.index("\nclass InvertedResidual("):source.index("\nclass InvertedStage(")]
    assert block == '''
class InvertedResidual(nn.Module):
    """block inverted_residual(filters, stride = 1, expand = 6) (std/mobilenet.cnn:27)."""

    def __init__(self, in_channels: int, filters, stride: int = 1, expand: int = 6) -> None:
        super().__init__()
        self.use_residual = stride == 1 and in_channels == filters
        self.inverted_body1 = InvertedBody(in_channels, filters, stride, expand)

    def forward(self, x):
        if self.use_residual:
            identity = x
            out = self.inverted_body1(x)
            out += identity
            x = out
        else:
            x = self.inverted_body1(x)
        return x

'''
    assert "_plan" not in source and "next(plan)" not in source
    spec = cnndsl.load(ROOT / "specs/mobilenet_v2.cnn")
    assert spec.source() == source  # what compile writes is what build runs
    built = spec.build().eval()
    compiled = runpy.run_path(str(out))["MobilenetV2"]().eval()
    compiled.load_state_dict(built.state_dict())
    blocks = [(n, m) for n, m in compiled.named_modules() if type(m).__name__ == "InvertedResidual"]
    # the first block of each stage changes the channels; the 10 others add their input, as torchvision's
    assert [(n, m.use_residual) for n, m in blocks] == [
        ("inverted_stage1.inverted_residual1", False),
        ("inverted_stage2.inverted_residual1", False), ("inverted_stage2.inverted_residual2", True),
        ("inverted_stage3.inverted_residual1", False), ("inverted_stage3.inverted_residual2", True),
        ("inverted_stage3.inverted_residual3", True),
        ("inverted_stage4.inverted_residual1", False), ("inverted_stage4.inverted_residual2", True),
        ("inverted_stage4.inverted_residual3", True), ("inverted_stage4.inverted_residual4", True),
        ("inverted_stage5.inverted_residual1", False), ("inverted_stage5.inverted_residual2", True),
        ("inverted_stage5.inverted_residual3", True),
        ("inverted_stage6.inverted_residual1", False), ("inverted_stage6.inverted_residual2", True),
        ("inverted_stage6.inverted_residual3", True),
        ("inverted_stage7.inverted_residual1", False),
    ]
    assert type(compiled.inverted_stage2.inverted_residual2.use_residual) is bool
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(compiled(x), built(x))
        add, plain = compiled.inverted_stage2.inverted_residual2, compiled.inverted_stage2.inverted_residual1
        y, z = torch.randn(2, 24, 8, 8), torch.randn(2, 16, 8, 8)
        assert torch.equal(add(y), add.inverted_body1(y) + y)
        assert torch.equal(plain(z), plain.inverted_body1(z))


def test_a_decision_s_attribute_is_never_a_child_s_name_and_loops_keep_their_plan():
    """A label `use_residual` keeps its name: the decision's attribute steps aside (a label's names are
    use_residual, use_residual_2...: no number will do). An `if` with more arms is an int; one in a loop
    over an argument decides each turn, in `self._plan`."""
    spec = cnndsl.loads("""block b(f, stride = 1, mode = 0, n = 1) {
    if stride == 1 and in.channels == f {
        residual { conv f kernel=3 padding=1 }
    } else {
        conv f kernel=3 padding=1 stride=stride
    }
    use_residual: conv f kernel=1
    e: conv f kernel=1
    if mode == 1 { relu } else if mode == 2 { add e } else if mode == 3 { conv f kernel=1 }
    repeat n { if mode == 1 { relu } }
}
network m { input 4x8x8
    b 4 mode=1 n=2
    b 8 stride=2 mode=2
}""")
    source = spec.source()
    assert ("        self.use_residual_attr = stride == 1 and in_channels == f\n"
            "        if self.use_residual_attr:\n") in source
    assert ('        self.add_module(child_name(names, counts, "use_residual", label=True), '
            'nn.Conv2d(f, f, kernel_size=1))\n') in source
    assert ("        if mode == 1:\n            self.arm = 0\n" in source
            and "        elif mode == 2:\n            self.arm = 1\n" in source)
    assert ("        if self.arm == 0:\n            x = next(layers)(x)\n"
            "        elif self.arm == 1:\n            x = x + e\n"
            "        elif self.arm == 2:\n            x = next(layers)(x)\n") in source
    assert ("            if mode == 1:\n                self._plan.append(0)\n" in source
            and "            if next(plan) == 0:\n" in source)
    model = spec.build().eval()
    assert isinstance(model.b1.use_residual, torch.nn.Conv2d) and model.b1.use_residual_attr is True
    assert model.b2.use_residual_attr is False and (model.b1.arm, model.b2.arm) == (0, 1)
    assert (model.b1._plan, model.b2._plan) == ([2, 0, 0], [1, 1])
    assert [n for n, _ in model.b1.named_children()] == ["conv1", "use_residual", "e", "relu1", "relu2", "relu3"]
    x, b1 = torch.randn(1, 4, 8, 8), model.b1
    with torch.no_grad():
        assert torch.equal(b1(x), torch.relu(b1.e(b1.use_residual(b1.conv1(x) + x))))
