"""`cnndsl lsp`: the language server over stdio (pygls), a thin layer over the core that `check` uses.

As rust-analyzer does, it keeps one analysis per document version (document.py) and answers every request from
it; diagnostics wait for a pause in the typing (DEBOUNCE) and cover the files the document `use`s. A request
that fails answers nothing and is logged: a spec being typed never takes the server down.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import traceback

from lsprotocol import types as t
from pygls.lsp.server import LanguageServer

from cnndsl.lsp import features
from cnndsl.lsp.document import Analysed, analyse, file_of, with_last_figures
from cnndsl.version import __version__

DEBOUNCE = 0.15  # seconds of quiet after a change before its diagnostics are made and sent
log = logging.getLogger("cnndsl.lsp")


class CnnServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("cnndsl", __version__)
        self.cache: dict[str, Analysed] = {}  # uri → the analysis of its latest version asked for
        self.good: dict[str, Analysed] = {}  # uri → the analysis of its last version without errors
        self.published: dict[str, set[str]] = {}  # uri → the other files' uris given its diagnostics
        self.pending: dict[str, asyncio.TimerHandle] = {}

    def analysed(self, uri: str) -> Analysed:
        """The document's analysis at its current version: made once a version, then read from the cache."""
        doc = self.workspace.get_text_document(uri)
        done = self.cache.get(uri)
        if done is None or done.version != doc.version or done.text != doc.source:
            path = doc.path if uri.startswith("file:") else None
            done = analyse(doc.source, path, doc.version)
            if done.reports and not done.diagnosis.errors:
                self.good[uri] = done
            self.cache[uri] = done = with_last_figures(done, self.good.get(uri))
        return done

    def publish(self, uri: str) -> None:
        self.pending.pop(uri, None)
        if uri not in self.workspace.text_documents:
            return
        done = self.analysed(uri)
        by_file = features.diagnostics(done)
        others = set()
        for name, found in by_file.items():
            target = uri if name == done.name else file_of(name).as_uri()
            version = done.version if target == uri else None
            self.text_document_publish_diagnostics(t.PublishDiagnosticsParams(target, found, version))
            if target != uri:
                others.add(target)
        for gone in self.published.get(uri, set()) - others:  # a used file whose errors are fixed
            self.text_document_publish_diagnostics(t.PublishDiagnosticsParams(gone, []))
        self.published[uri] = others

    def later(self, uri: str) -> None:
        """Diagnostics after DEBOUNCE seconds without another change of the document."""
        old = self.pending.pop(uri, None)
        if old is not None:
            old.cancel()
        self.pending[uri] = asyncio.get_running_loop().call_later(DEBOUNCE, self.safe_publish, uri)

    def safe_publish(self, uri: str) -> None:
        try:
            self.publish(uri)
        except Exception:  # noqa: BLE001 - a bug of ours: logged, and the editor goes on
            self.failed(f"diagnostics of {uri}")

    def failed(self, what: str) -> None:
        """A bug of ours, told to the editor's log (and stderr) with its traceback; the server goes on."""
        log.exception("%s failed", what)
        self.window_log_message(t.LogMessageParams(t.MessageType.Error,
                                                   f"cnndsl lsp: {what} failed:\n{traceback.format_exc()}"))


server = CnnServer()


def _safe(handler):
    """A request's answer, or nothing (and a log line) where answering fails."""

    @functools.wraps(handler)
    def run(ls: CnnServer, params):
        try:
            return handler(ls, params)
        except Exception:  # noqa: BLE001
            ls.failed(handler.__name__)
            return None

    return run


def _at(params) -> tuple[str, int, int]:
    return params.text_document.uri, params.position.line + 1, params.position.character


@server.feature(t.TEXT_DOCUMENT_DID_OPEN)
@_safe
def did_open(ls: CnnServer, params: t.DidOpenTextDocumentParams):
    ls.publish(params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
@_safe
def did_change(ls: CnnServer, params: t.DidChangeTextDocumentParams):
    ls.later(params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_DID_SAVE)
@_safe
def did_save(ls: CnnServer, params: t.DidSaveTextDocumentParams):
    for uri in list(ls.workspace.text_documents):  # a saved file may be one another open document uses
        ls.cache.pop(uri, None)
        ls.later(uri)


@server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
@_safe
def did_close(ls: CnnServer, params: t.DidCloseTextDocumentParams):
    uri = params.text_document.uri
    ls.cache.pop(uri, None)
    ls.good.pop(uri, None)
    handle = ls.pending.pop(uri, None)
    if handle is not None:
        handle.cancel()
    for other in {uri} | ls.published.pop(uri, set()):
        ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(other, []))


@server.feature(t.TEXT_DOCUMENT_HOVER)
@_safe
def hover(ls: CnnServer, params: t.HoverParams):
    uri, line, col = _at(params)
    return features.hover(ls.analysed(uri), line, col)


@server.feature(t.TEXT_DOCUMENT_INLAY_HINT, t.InlayHintOptions())
@_safe
def inlay_hint(ls: CnnServer, params: t.InlayHintParams):
    r = params.range
    return features.inlay_hints(ls.analysed(params.text_document.uri), r.start.line + 1, r.end.line + 1)


@server.feature(t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions(trigger_characters=[" ", "=", '"']))
@_safe
def completion(ls: CnnServer, params: t.CompletionParams):
    uri, line, col = _at(params)
    return t.CompletionList(is_incomplete=False, items=features.completion(ls.analysed(uri), line, col))


@server.feature(t.TEXT_DOCUMENT_DEFINITION)
@_safe
def definition(ls: CnnServer, params: t.DefinitionParams):
    uri, line, col = _at(params)
    return features.definition(ls.analysed(uri), line, col)


@server.feature(t.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@_safe
def symbols(ls: CnnServer, params: t.DocumentSymbolParams):
    return features.symbols(ls.analysed(params.text_document.uri))


@server.feature(t.TEXT_DOCUMENT_FOLDING_RANGE)
@_safe
def folding(ls: CnnServer, params: t.FoldingRangeParams):
    return features.folding(ls.analysed(params.text_document.uri))


@server.feature(t.TEXT_DOCUMENT_FORMATTING)
@_safe
def formatting(ls: CnnServer, params: t.DocumentFormattingParams):
    return features.formatting(ls.analysed(params.text_document.uri))


@server.feature(t.TEXT_DOCUMENT_CODE_ACTION, t.CodeActionOptions(code_action_kinds=[t.CodeActionKind.QuickFix]))
@_safe
def code_action(ls: CnnServer, params: t.CodeActionParams):
    uri, r = params.text_document.uri, params.range
    return features.code_actions(ls.analysed(uri), uri, r.start.line + 1, r.end.line + 1)


@server.feature(t.TEXT_DOCUMENT_PREPARE_RENAME)
@_safe
def prepare_rename(ls: CnnServer, params: t.PrepareRenameParams):
    uri, line, col = _at(params)
    return features.prepare_rename(ls.analysed(uri), line, col)


@server.feature(t.TEXT_DOCUMENT_RENAME)
def rename(ls: CnnServer, params: t.RenameParams):
    uri, line, col = _at(params)
    try:
        return features.rename(ls.analysed(uri), uri, line, col, params.new_name)
    except ValueError as e:  # a name that cannot be: the editor shows the message
        from pygls.exceptions import JsonRpcInvalidParams

        raise JsonRpcInvalidParams(str(e)) from None


def serve() -> None:
    """Serves one editor over stdin and stdout until it exits."""
    logging.basicConfig(level=logging.WARNING, format="cnndsl lsp: %(levelname)s %(message)s")  # to stderr
    server.start_io()
