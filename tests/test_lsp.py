"""`cnndsl lsp` end to end: the real server process, driven by pytest-lsp's client as an editor drives it.

The prefix test types every spec, standard library file and example into the server (line by line, and at a
the middle of each line; CNNDSL_LSP_PREFIXES=all types every character) and asks for its inlay hints and a
hover after each step: no request may fail or take more than a second.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types as t  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ASYNC = pytest.mark.asyncio(loop_scope="module")  # the tests share the module's server

SPEC = """use "std/resnet"

# a small residual network
network tiny(classes = 10) {
    input 3x32x32
    conv 16 kernel=3 padding=same
    relu
    basic 16
    residual {
        conv 32 kernel=3 stride=2 padding=same
    } shortcut { conv 32 kernel=1 stride=2 }
    globalavgpool
    dense classes
}
"""


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=[sys.executable, "-m", "cnndsl", "lsp"]))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(t.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=ROOT.as_uri()))
    yield
    await lsp_client.shutdown_session()


def _open(client: LanguageClient, path: Path, text: str, version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(uri, "cnn", version, text)))
    return uri


def _change(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        t.VersionedTextDocumentIdentifier(version, uri), [t.TextDocumentContentChangeWholeDocument(text)]))


def _pos(line: int, col: int) -> t.Position:
    """1-based line (as the core and editors show it), 0-based column (as LSP counts)."""
    return t.Position(line - 1, col)


def _where(d: t.Diagnostic) -> tuple[int, int, int, int]:
    r = d.range
    return r.start.line + 1, r.start.character + 1, r.end.line + 1, r.end.character + 1


@ASYNC
async def test_a_change_with_an_error_gets_its_diagnostics_with_ranges_and_the_fix_clears_them(client, tmp_path):
    path = tmp_path / "tiny.cnn"
    path.write_text(SPEC)
    uri = _open(client, path, SPEC)
    await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert list(client.diagnostics[uri]) == []
    broken = SPEC.replace("conv 16 kernel=3", "conv 16 kernal=3").replace("    relu\n", "    relu(\n")
    _change(client, uri, broken, 2)
    found = await _wait_for(client, uri, lambda ds: len(ds) == 2)
    assert [(_where(d), d.message.split("\n")[0], d.severity) for d in found] == [
        ((6, 13, 6, 21), "`conv` has no argument `kernal`", t.DiagnosticSeverity.Error),
        ((7, 9, 7, 10), "this `(` is never closed", t.DiagnosticSeverity.Error),
    ]
    assert "hint: did you mean `kernel`?" in found[0].message
    actions = await client.text_document_code_action_async(t.CodeActionParams(
        t.TextDocumentIdentifier(uri), t.Range(_pos(6, 0), _pos(6, 30)), t.CodeActionContext(found[:1])))
    [fix] = actions
    assert fix.title == "change `kernal` to `kernel`"
    [edit] = fix.edit.changes[uri]
    assert (edit.range.start.line, edit.range.start.character, edit.range.end.character, edit.new_text) == (
        5, 12, 18, "kernel")
    _change(client, uri, SPEC, 3)
    assert await _wait_for(client, uri, lambda ds: ds == []) == []


async def _wait_for(client, uri, ok):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        if ok(list(client.diagnostics.get(uri, None) or [])):
            return list(client.diagnostics[uri])
    raise AssertionError(f"diagnostics never as expected: {client.diagnostics.get(uri)}")


@ASYNC
async def test_hover_gives_a_layers_shape_params_and_explanation_and_a_block_calls_totals(client, tmp_path):
    path = tmp_path / "hover.cnn"
    uri = _open(client, path, SPEC)
    layer = await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri), _pos(6, 5)))
    text = layer.contents.value
    assert "**conv1** · `conv 3x3 → 16` → **16x32x32**" in text
    assert "params 448 · MACs 442.4 K (442,368) · receptive field 3" in text
    assert "params = (3*3*3 + 1) * 16 = 448" in text  # the --explain arithmetic
    block = await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri), _pos(8, 6)))
    assert "block basic(" in block.contents.value and "*std/resnet.cnn*" in block.contents.value
    assert "`basic 16`: 7 layers → **16x32x32**" in block.contents.value
    assert "params 4,672 ·" in block.contents.value  # 2 x (3*3*16*16 + 2*16 batchnorm)
    param = await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri), _pos(13, 12)))
    assert param.contents.value.startswith("parameter `classes` of network `tiny` = **10** here")


@ASYNC
async def test_inlay_hints_show_each_lines_output_shape_and_a_block_calls_totals(client, tmp_path):
    uri = _open(client, tmp_path / "hints.cnn", SPEC)
    hints = await client.text_document_inlay_hint_async(t.InlayHintParams(
        t.TextDocumentIdentifier(uri), t.Range(_pos(1, 0), _pos(15, 0))))
    shown = [(h.position.line + 1, h.position.character, h.label.strip()) for h in hints]
    assert shown == [
        (5, 17, "3x32x32"), (6, 33, "16x32x32"), (7, 8, "16x32x32"), (8, 12, "16x32x32, 4.7 K params"),
        (9, 14, "32x16x16"), (10, 46, "32x16x16"), (11, 44, "32x16x16"), (12, 17, "32"), (13, 17, "10")]

    # a line being typed (`con`, an error) stops the network's elaboration: the other lines keep their hints
    _change(client, uri, SPEC.replace("    relu\n", "    relu\n    con\n"), 2)
    hints = await client.text_document_inlay_hint_async(t.InlayHintParams(
        t.TextDocumentIdentifier(uri), t.Range(_pos(1, 0), _pos(16, 0))))
    assert [(h.position.line + 1, h.label.strip()) for h in hints] == [
        (5, "3x32x32"), (6, "16x32x32"), (7, "16x32x32"), (9, "16x32x32, 4.7 K params"), (10, "32x16x16"),
        (11, "32x16x16"), (12, "32x16x16"), (13, "32"), (14, "10")]
    hover = await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri), _pos(14, 5)))
    assert hover.contents.value.endswith("*(the figures of the last version without errors)*")
    assert "→ **10**" in hover.contents.value


@ASYNC
async def test_completion_offers_layer_kinds_with_docs_arguments_values_blocks_and_names(client, tmp_path):
    text = SPEC.replace("    globalavgpool\n", "    conv 8 padding=\n    globalavgpool\n")
    uri = _open(client, tmp_path / "complete.cnn", text)
    ids = t.TextDocumentIdentifier(uri)

    async def labels(line, col):
        got = await client.text_document_completion_async(t.CompletionParams(ids, _pos(line, col)))
        return got.items

    kinds = {i.label: i for i in await labels(12, 4)}
    assert {"conv", "maxpool", "dense", "basic", "bottleneck", "mbconv"} <= set(kinds)
    assert "kernel" in kinds["conv"].documentation.value
    assert kinds["mbconv"].additional_text_edits[0].new_text == 'use "std/efficientnet"\n'
    args = [i.label for i in await labels(6, 12)]
    assert {"kernel=", "stride=", "padding=", "dilation=", "classes"} <= set(args)
    assert [i.label for i in await labels(12, 19)][:2] == ["valid", "same"]


@ASYNC
async def test_definition_of_a_block_call_and_of_a_use_path(client, tmp_path):
    uri = _open(client, tmp_path / "definition.cnn", SPEC)
    block = await client.text_document_definition_async(t.DefinitionParams(t.TextDocumentIdentifier(uri),
                                                                           _pos(8, 6)))
    std = ROOT / "cnndsl" / "std" / "resnet.cnn"
    assert block.uri == std.as_uri()
    assert std.read_text().split("\n")[block.range.start.line].startswith("block basic(")
    use = await client.text_document_definition_async(t.DefinitionParams(t.TextDocumentIdentifier(uri), _pos(1, 8)))
    assert use.uri == std.as_uri()


@ASYNC
async def test_symbols_folding_and_formatting(client, tmp_path):
    messy = "block two(n) {\n  conv n kernel=3\n      relu }\nnetwork net {\n input 1x8x8\n two 4\n}\n"
    uri = _open(client, tmp_path / "messy.cnn", messy)
    ids = t.TextDocumentIdentifier(uri)
    symbols = await client.text_document_document_symbol_async(t.DocumentSymbolParams(ids))
    assert [(s.name, s.kind, s.range.start.line, s.range.end.line) for s in symbols] == [
        ("two", t.SymbolKind.Function, 0, 2), ("net", t.SymbolKind.Class, 3, 6)]
    folds = await client.text_document_folding_range_async(t.FoldingRangeParams(ids))
    assert [(f.start_line, f.end_line) for f in folds] == [(0, 2), (3, 6)]
    [edit] = await client.text_document_formatting_async(t.DocumentFormattingParams(ids, t.FormattingOptions(4, True)))
    assert edit.new_text == ("block two(n) {\n    conv n kernel=3\n    relu\n}\n\nnetwork net {\n    input 1x8x8\n"
                             "    two 4\n}\n")


@ASYNC
async def test_rename_a_block_and_a_parameter_across_the_file(client, tmp_path):
    text = ("block stage(width, stride = 1) {\n    conv width kernel=3 stride=stride\n}\n"
            "network net {\n    input 3x8x8\n    stage 8 stride=2\n    stage 16\n}\n")
    uri = _open(client, tmp_path / "rename.cnn", text)
    ids = t.TextDocumentIdentifier(uri)
    edit = await client.text_document_rename_async(t.RenameParams(ids, _pos(7, 6), "level"))
    assert sorted((e.range.start.line + 1, e.range.start.character) for e in edit.changes[uri]) == [
        (1, 6), (6, 4), (7, 4)]
    edit = await client.text_document_rename_async(t.RenameParams(ids, _pos(1, 20), "step"))
    changes = edit.changes[uri]
    assert sorted((e.range.start.line + 1, e.range.start.character) for e in changes) == [
        (1, 19), (2, 31), (6, 12)]  # the declaration, its use (not conv's own `stride=`), a call's keyword
    assert all(e.new_text == "step" for e in changes)


@ASYNC
async def test_a_used_files_errors_are_published_for_that_file(client, tmp_path):
    (tmp_path / "blocks.cnn").write_text("block pair(n) {\n    conv n kernal=3\n}\n")
    main = 'use "blocks"\nnetwork net {\n    input 3x8x8\n    pair 4\n}\n'
    _open(client, tmp_path / "main.cnn", main)
    used = (tmp_path / "blocks.cnn").resolve().as_uri()
    found = await _wait_for(client, used, lambda ds: len(ds) == 1)
    assert (_where(found[0]), found[0].message.split("\n")[0]) == ((2, 12, 2, 20), "`conv` has no argument `kernal`")


def _prefixes(text: str, every: bool):
    """The text as typed: each line's end and its middle (or every character)."""
    if every:
        yield from (text[:i] for i in range(len(text) + 1))
        return
    at = 0
    for line in text.split("\n"):
        if len(line) > 1:
            yield text[:at + len(line) // 2]
        at += len(line) + 1
        yield text[:at]


@ASYNC
async def test_every_prefix_of_every_spec_is_answered_without_a_failure_within_a_second(client, tmp_path):
    every = os.environ.get("CNNDSL_LSP_PREFIXES") == "all"
    files = sorted([*ROOT.glob("specs/*.cnn"), *ROOT.glob("cnndsl/std/*.cnn"), *ROOT.glob("examples/*.cnn")])
    assert len(files) >= 40
    slowest, steps = 0.0, 0
    for n, path in enumerate(files):
        uri = _open(client, tmp_path / f"{n}_{path.name}", "")  # beside nothing: a relative `use` is an error
        ids = t.TextDocumentIdentifier(uri)
        for version, prefix in enumerate(_prefixes(path.read_text(), every), 2):
            _change(client, uri, prefix, version)
            lines = prefix.split("\n")
            start = time.monotonic()
            await client.text_document_inlay_hint_async(t.InlayHintParams(
                ids, t.Range(_pos(1, 0), _pos(len(lines), 0))))
            await client.text_document_hover_async(t.HoverParams(ids, _pos(len(lines), max(0, len(lines[-1]) - 1))))
            slowest = max(slowest, time.monotonic() - start)
            steps += 1
        client.text_document_did_close(t.DidCloseTextDocumentParams(ids))
    failures = [m.message for m in client.log_messages if m.type == t.MessageType.Error]
    assert failures == []
    assert steps > 1800 and slowest < 1.0, (steps, slowest)


def _applied(text: str, edits: list[t.TextEdit]) -> str:
    """The text with LSP edits made (from the last, so that the earlier places stay where they are)."""
    lines = text.split("\n")
    offset = lambda p: sum(len(line) + 1 for line in lines[:p.line]) + p.character
    for e in sorted(edits, key=lambda e: offset(e.range.start), reverse=True):
        text = text[:offset(e.range.start)] + e.new_text + text[offset(e.range.end):]
    return text


@pytest.mark.parametrize("text, title", [
    ("    input 3x8x8\n    convv 4 kernel=3", "change `convv` to `conv`"),
    ("    input 3x8x8\n    conv 4 kernel=3\n    dense 10", "insert `flatten` before it"),
    ("    input 32x32x3\n    conv 4 kernel=3", "write `input 3x32x32` (C x H x W)"),
    ("    input 3x8x8\n    residual {\n        conv 16 kernel=3 stride=2 padding=same\n    }",
     "add `shortcut { conv 16 kernel=1 stride=2 }`"),
])
def test_each_quick_fix_makes_the_spec_check(text, title):
    from cnndsl.lsp import features
    from cnndsl.lsp.document import analyse

    spec = f"network n {{\n{text}\n}}\n"
    before = analyse(spec, "/tmp/fix.cnn")
    assert len(before.diagnosis.errors) == 1
    [action] = features.code_actions(before, "file:///tmp/fix.cnn", 1, 10)
    assert action.title == title
    after = analyse(_applied(spec, action.edit.changes["file:///tmp/fix.cnn"]), "/tmp/fix.cnn")
    assert after.diagnosis.errors == [] and len(after.reports) == 1


@pytest.mark.parametrize("name", ["specs/resnet18.cnn", "examples/cifar_resnet_small.cnn", "cnndsl/std/inception.cnn"])
def test_every_request_at_every_place_of_a_whole_and_a_half_file_answers(name):
    """In-process, every place of each line: hover, completion, definition, rename (a failure would be logged and
    answered with nothing by the server; here it raises)."""
    from cnndsl.lsp import features
    from cnndsl.lsp.document import analyse

    text = (ROOT / name).read_text()
    answered = places = 0
    for cut in (len(text), len(text) // 2):
        doc = analyse(text[:cut], str(ROOT / name))
        features.diagnostics(doc), features.symbols(doc), features.folding(doc), features.formatting(doc)
        features.code_actions(doc, "file:///x.cnn", 1, len(doc.lines))
        for n, line in enumerate(doc.lines, 1):
            for col in range(len(line) + 1):
                places += 1
                answered += sum(x is not None for x in (
                    features.hover(doc, n, col), features.completion(doc, n, col), features.definition(doc, n, col),
                    features.prepare_rename(doc, n, col) and features.rename(doc, "file:///x.cnn", n, col, "renamed")))
    assert answered > places  # a completion list at every place, and more


def test_a_burst_of_changes_is_analysed_once_after_the_pause():
    import asyncio

    from cnndsl.lsp import server

    published = []

    async def type_five_keys():
        ls = server.CnnServer()
        ls.publish = published.append
        for _ in range(5):
            ls.later("file:///a.cnn")
            await asyncio.sleep(server.DEBOUNCE / 5)
        ls.later("file:///b.cnn")
        assert published == []
        await asyncio.sleep(server.DEBOUNCE * 2)

    asyncio.run(type_five_keys())
    assert published == ["file:///a.cnn", "file:///b.cnn"]


def test_the_server_never_imports_torch():
    code = ("import sys, cnndsl.cli, cnndsl.api, cnndsl.lsp.server; from cnndsl.lsp.document import analyse; "
            "from cnndsl.lsp import features; a = analyse(open('specs/resnet50.cnn').read(), 'specs/resnet50.cnn'); "
            "features.hover(a, 9, 5); features.inlay_hints(a, 1, 20); features.completion(a, 9, 4); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_command_line_has_the_verb():
    out = subprocess.run([sys.executable, "-m", "cnndsl", "lsp", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "Language Server Protocol" in out.stdout
