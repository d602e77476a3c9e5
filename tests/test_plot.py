"""`cnndsl plot`: the diagram's nodes, edges and clusters are the graph's and the report's, read back
through Graphviz itself (dot -Tjson), not compared as pixels."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import cnndsl
from cnndsl.ops.base import fmt_shape
from cnndsl.report import rows
from cnndsl.viz import dot_source, render, svg_text
from cnndsl.viz.architecture import FROZEN, layout
from cnndsl.viz.render import run_dot
from conftest import ROOT, UNET

CLI = [sys.executable, "-m", "cnndsl.cli"]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")

FROZEN_SPEC = """block unit(f) { conv f kernel=3 padding=same; batchnorm }
network finetune {
    input 3x8x8
    frozen unit 4
    frozen { conv 4 kernel=1 }
    unit 4
    conv 2 kernel=1
}"""


def laid_out(source: str) -> dict:
    """What dot reads in the source: nodes (name → attributes), drawn edges, and clusters (name → members)."""
    data = json.loads(run_dot(source, "json"))
    objects = data["objects"]
    first_node = data.get("_subgraph_cnt", 0)
    nodes = {o["name"]: o for o in objects[first_node:]}
    names = [o["name"] for o in objects]
    edges = [(names[e["tail"]], names[e["head"]]) for e in data.get("edges", []) if e.get("style") != "invis"]
    clusters = {o["name"][len("cluster_"):]: (o, {names[i] for i in o.get("nodes", [])})
                for o in objects[:first_node] if o["name"].startswith("cluster_")}
    return {"nodes": nodes, "edges": edges, "clusters": clusters}


def report(spec: str, **params):
    return cnndsl.loads(spec, **params).check() if "{" in spec else cnndsl.check(ROOT / spec, **params)


def expected(rep, depth):
    """The report's view at `depth`: a node per layer row and per folded row, a cluster per open group row and
    per branch around a node shown, and each layer mapped to the node that shows it."""
    table = rows(rep.analysis, depth)
    folded = [r.id for r in table if r.folded]
    node_of = {}
    for f in rep.analysis.layers:
        node_of[f.layer.id] = next((g for g in folded if g in f.layer.groups), f.layer.id)
    shown = [rep.analysis.graph.input.id] + [r.id for r in table if r.index or r.folded]
    opened = {r.id: r for r in table if not r.index and not r.folded}
    # and a dashed cluster for each branch (a merge's arm, a residual's shortcut) around a node shown
    opened |= {g.id: g for g in rep.analysis.graph.groups.values()
               if g.kind == "branch" and any(n.startswith(g.id + ".") for n in shown)}
    edges = {(node_of[u], node_of[v]) for u, v in rep.analysis.graph.dag.edges if node_of[u] != node_of[v]}
    return shown, opened, edges, {r.id: r for r in table}


@needs_dot
@pytest.mark.parametrize("spec", ["specs/resnet18.cnn", "specs/googlenet.cnn", "specs/seresnet50.cnn", UNET,
                                  FROZEN_SPEC])
def test_every_layer_is_a_node_with_its_shape_and_every_edge_is_drawn(spec):
    rep = report(spec)
    graph = rep.analysis.graph
    drawn = laid_out(dot_source(rep))
    assert sorted(drawn["nodes"]) == sorted(layer.id for layer in graph.layers)
    assert len(drawn["edges"]) == graph.dag.number_of_edges()
    assert set(drawn["edges"]) == set(graph.dag.edges)
    for layer in graph.layers:
        label = drawn["nodes"][layer.id]["label"]
        assert f">{fmt_shape(layer.shape)}<" in label, (layer.id, label)
        assert rep.layer(layer.id).op_text.replace(">", "&gt;") in label


@needs_dot
@pytest.mark.parametrize("spec,depth", [("specs/resnet152.cnn", 1), ("specs/resnet152.cnn", 2),
                                        ("specs/googlenet.cnn", 1), ("specs/googlenet.cnn", 3),
                                        ("specs/xception.cnn", 2), (FROZEN_SPEC, 1)])
def test_depth_folds_nodes_as_check_folds_rows(spec, depth):
    rep = report(spec)
    shown, opened, edges, by_id = expected(rep, depth)
    drawn = laid_out(dot_source(rep, depth=depth))
    assert sorted(drawn["nodes"]) == sorted(shown) and len(drawn["nodes"]) == len(shown)
    assert [node.id for node in layout(rep.analysis, depth).nodes] == shown  # in the report's order
    assert set(drawn["edges"]) == edges and len(drawn["edges"]) == len(edges)
    assert set(drawn["clusters"]) == set(opened)
    for ident, (cluster, members) in drawn["clusters"].items():
        assert rep.analysis.graph.groups[ident].title in cluster["label"]
        # a cluster holds exactly the nodes of the layers inside its group
        inside = {n for n in shown if n == ident or n.startswith(ident + ".")}
        assert members == inside, ident
    for ident in shown[1:]:
        label = drawn["nodes"][ident]["label"]
        assert f">{by_id[ident].output}<" in label
        assert f"<B>{by_id[ident].name.strip()}</B>" in label


@needs_dot
def test_resnet152_stays_small_when_folded():
    rep = report("specs/resnet152.cnn")
    assert len(laid_out(dot_source(rep, depth=1))["nodes"]) == 8  # input, stem, 4 stages, pool, dense
    at_two = laid_out(dot_source(rep, depth=2))
    blocks = [n for n in at_two["nodes"] if n.count(".") == 1 and n.startswith("bottleneck_stage")]
    assert len(blocks) == 3 + 8 + 36 + 3
    assert set(at_two["clusters"]) == {"stem1", "bottleneck_stage1", "bottleneck_stage2", "bottleneck_stage3",
                                       "bottleneck_stage4"}


@needs_dot
def test_arms_read_left_to_right_in_dashed_clusters_and_a_residual_body_is_left_of_its_shortcut():
    google = laid_out(dot_source(report("specs/googlenet.cnn"), depth=3))
    for module in [f"inception{i}" for i in range(1, 10)]:
        arms = [google["clusters"][f"{module}.branch{i}"][0] for i in range(1, 5)]
        lefts = [float(arm["bb"].split(",")[0]) for arm in arms]
        assert lefts == sorted(lefts) and len(set(lefts)) == 4, (module, lefts)
        assert all("dashed" in arm["style"] for arm in arms)
    resnet = laid_out(dot_source(report("specs/resnet18.cnn")))
    x = {name: float(node["pos"].split(",")[0]) for name, node in resnet["nodes"].items() if "pos" in node}
    for stage in (2, 3, 4):
        block = f"stage{stage}.basic1"
        assert x[f"{block}.conv1"] < x[f"{block}.shortcut.conv1"], block
        assert "dashed" in resnet["clusters"][f"{block}.shortcut"][0]["style"]
        assert "dashed" not in resnet["clusters"][block][0]["style"]


@needs_dot
@pytest.mark.parametrize("depth", [None, 3])
def test_googlenet_inception_modules_show_four_arms(depth):
    rep = report("specs/googlenet.cnn")
    drawn = laid_out(dot_source(rep, depth=depth))
    concats = [layer for layer in rep.analysis.graph.layers if layer.op == "concat"]
    assert len(concats) == 9
    for layer in concats:
        arms = [src for src, dst in drawn["edges"] if dst == layer.id]
        assert len(arms) == 4 and len(set(arms)) == 4
        # each arm is a chain back to the module's input, the same node for all four
        module, starts = layer.groups[0], set()
        for node in arms:
            while node.startswith(module + "."):
                before = [src for src, dst in drawn["edges"] if dst == node]
                assert len(before) == 1, node
                node = before[0]
            starts.add(node)
        assert len(starts) == 1 and starts != {layer.id}


@needs_dot
def test_named_outputs_and_from_are_edges():
    drawn = laid_out(dot_source(report(UNET)))
    assert ("e1", "concat1") in drawn["edges"] and ("e1", "conv2") in drawn["edges"]
    assert ("side", "add1") in drawn["edges"] and ("conv2", "add1") in drawn["edges"]
    assert drawn["nodes"]["add1"]["penwidth"] == "2"  # the network's output stands out


@needs_dot
def test_frozen_layers_and_calls_are_shaded():
    rep = report(FROZEN_SPEC)
    drawn = laid_out(dot_source(rep))
    for layer in rep.analysis.graph.layers:
        node = drawn["nodes"][layer.id]
        assert (node["fillcolor"] == FROZEN[0]) == layer.frozen, layer.id
        assert ("<I>frozen</I>" in node["label"]) == layer.frozen
    assert sum(layer.frozen for layer in rep.analysis.graph.layers) == 3
    assert "(frozen)" in drawn["clusters"]["unit1"][0]["label"]
    assert "(frozen)" not in drawn["clusters"]["unit2"][0]["label"]
    folded = laid_out(dot_source(rep, depth=1))["nodes"]
    assert folded["unit1"]["fillcolor"] == FROZEN[0] and folded["unit2"]["fillcolor"] != FROZEN[0]


def test_figures_add_params_macs_and_receptive_field():
    rep = report("specs/lenet5.cnn")
    conv = rep.layer("conv1")
    assert f"{conv.params:,} params · 117.6 K MACs · RF {conv.receptive_field}" in dot_source(rep, figures=True)
    assert " params · " not in dot_source(rep).split("label=", 2)[2]  # not without --figures (past the title)


@needs_dot
@pytest.mark.parametrize("fmt", ["svg", "png", "pdf", "dot"])
def test_the_same_spec_gives_the_same_bytes(fmt):
    first = render(ROOT / "specs/resnet18.cnn", fmt, depth=2)
    again = render(cnndsl.load(ROOT / "specs/resnet18.cnn"), fmt, depth=2)
    assert first == again and len(first) > 1000
    if fmt == "pdf":
        assert b"/CreationDate (D:19700101000000" in first


@needs_dot
def test_svg_text_for_an_html_page():
    svg = svg_text(ROOT / "specs/lenet5.cnn", inline=True)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    root = ET.fromstring(svg)
    titles = [g.find("{http://www.w3.org/2000/svg}title").text
              for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"]
    assert titles == [layer.id for layer in cnndsl.load(ROOT / "specs/lenet5.cnn").graph.layers]


SPECS = sorted(p.relative_to(ROOT).as_posix() for p in [*ROOT.glob("specs/*.cnn"), *ROOT.glob("examples/*.cnn")])


@needs_dot
@pytest.mark.parametrize("spec", SPECS)
def test_every_reference_spec_plots(spec, tmp_path):
    out = tmp_path / "net.svg"
    result = subprocess.run([*CLI, "plot", str(ROOT / spec), "-o", str(out)], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    root = ET.parse(out).getroot()
    nodes = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"]
    assert len(nodes) == len(cnndsl.load(ROOT / spec).graph.layers)


def plot(*args, cwd=ROOT, env=None):
    env = dict(env or os.environ, PYTHONPATH=str(ROOT))  # this checkout's cnndsl, from any folder
    return subprocess.run([*CLI, "plot", *args], capture_output=True, text=True, cwd=cwd, env=env)


@needs_dot
def test_default_name_never_replaces_a_file(tmp_path):
    spec = ROOT / "specs/lenet5.cnn"
    assert plot(str(spec), cwd=tmp_path).returncode == 0
    first = (tmp_path / "lenet5.svg").read_bytes()
    (tmp_path / "lenet5.svg").write_text("mine")
    second = plot(str(spec), "--depth", "1", cwd=tmp_path)
    assert second.returncode == 0 and "wrote lenet5-2.svg" in second.stderr
    assert (tmp_path / "lenet5.svg").read_text() == "mine"
    assert (tmp_path / "lenet5-2.svg").read_bytes() == first  # lenet5 has no calls to fold
    named = plot(str(spec), "-o", str(tmp_path / "lenet5.svg"), cwd=tmp_path)  # -o names it: replaced
    assert named.returncode == 0 and (tmp_path / "lenet5.svg").read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet5-2.svg", "lenet5.svg"]  # no temporary left


def test_command_line_mistakes_exit_2(tmp_path, spec_file):
    spec = spec_file("network n { input 1x4x4\n relu }")
    bad = plot(str(spec), "-o", str(tmp_path / "n.jpeg"))
    assert bad.returncode == 2 and "cannot tell the format" in bad.stderr and ".svg" in bad.stderr
    odd = spec_file("network n { input 1x4x4\n relu }", "odd.dot")
    itself = plot(str(odd), "-o", str(odd))
    assert itself.returncode == 2 and "the spec itself" in itself.stderr
    assert odd.read_text() == "network n { input 1x4x4\n relu }"
    missing = plot(str(spec), "-o", str(tmp_path / "nowhere" / "n.svg"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert plot(str(spec), "--depth", "0").returncode == 2


def test_a_wrong_spec_is_located(spec_file, tmp_path):
    spec = spec_file("network n {\n input 1x4x4\n conv 2 kernel=9\n}")
    result = plot(str(spec), "-o", str(tmp_path / "n.svg"))
    assert result.returncode == 1 and f"{spec}:3:" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "n.svg").exists()


def test_without_dot_a_clear_message_says_how_to_install_it(spec_file, tmp_path):
    spec = spec_file("network n { input 1x4x4\n relu }")
    env = dict(os.environ, PATH=str(tmp_path / "empty"))  # no dot on this PATH (python runs by full path)
    result = plot(str(spec), "-o", str(tmp_path / "n.svg"), env=env)
    assert result.returncode == 1, result.stderr
    assert "`dot` program is not installed" in result.stderr and "apt-get install graphviz" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "n.svg").exists()
    source = plot(str(spec), "-o", str(tmp_path / "n.dot"), env=env)  # the source needs no dot
    assert source.returncode == 0 and (tmp_path / "n.dot").read_text().startswith("digraph n {")


def test_a_network_too_large_to_lay_out_is_refused_unless_folded(spec_file, tmp_path):
    spec = spec_file("block unit { relu }\nnetwork big { input 1x4x4\n repeat 3100 { unit } }")
    refused = plot(str(spec), "-o", str(tmp_path / "big.svg"))
    assert refused.returncode == 1 and "3,101 nodes" in refused.stderr and "--depth" in refused.stderr
    assert plot(str(spec), "-o", str(tmp_path / "big.dot")).returncode == 0


def test_plot_help():
    result = subprocess.run([*CLI, "plot", "--help"], capture_output=True, text=True, cwd=ROOT)
    for flag in ("-o", "--depth", "--figures", "--set", "--network"):
        assert flag in result.stdout


def test_the_picture_in_the_docs_is_the_diagram_of_today():
    svg = ROOT / "docs/images/resnet18-depth2.svg"
    assert "docs/images/resnet18-depth2.svg" in (ROOT / "README.md").read_text()
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    titles = {g.get("class"): [] for g in root.iter(f"{ns}g")}
    for g in root.iter(f"{ns}g"):
        titles[g.get("class")].append(g.find(f"{ns}title").text)
    lay = layout(report("specs/resnet18.cnn").analysis, 2)
    assert sorted(titles["node"]) == sorted(node.id for node in lay.nodes)
    assert sorted(titles["cluster"]) == sorted(f"cluster_{c}" for c in lay.clusters)
    assert len(titles["edge"]) == len(lay.edges)  # the invisible ordering edges are not drawn
