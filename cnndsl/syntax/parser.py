"""Parses .cnn text with the Lark grammar in grammars/cnn.lark into the AST, recovering from syntax errors.

Lark's LALR parser is driven token by token through its public interactive interface (`feed_token`,
`accepts`, `copy`), with the AST built as it reduces (the builder is Lark's transformer). At a syntax
error the parser reports it, skips to the end of the statement (a newline, `;` or `}`), and there, if
the statement is unfinished, feeds the shortest run of placeholder tokens that lets it end (`conv 64
kernel=` gets a value the AST marks `Missing`). So one run reports every syntax error of a file, at most
one a statement, and leaves a tree the semantic checks can read: `parse_tolerant` gives both without
raising (an editor calls it on every keystroke); `parse` raises them.
"""

from __future__ import annotations

import functools
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import NamedTuple

from cnndsl import collector, limits
from cnndsl.errors import CnnError, Source, Span, SpecSyntaxError, raise_all
from cnndsl.syntax import ast
from cnndsl.syntax.grammar import make_lark

MAX_SYNTAX_ERRORS = 100  # past these the rest of the file is not read: one error says so
_ENDS = {"_NL", "SEMICOLON", "RBRACE"}  # where a statement ends: recovery skips to one
_CONTINUES = {"ELSE", "SHORTCUT", "LBRACE"}  # tokens before which a newline does not end the statement
_PLACEHOLDERS = ("NAME", "STRING", "RPAR", "LBRACE", "RBRACE", "COLON")  # what recovery may insert, a value first
_TOP_LEVEL = {"NETWORK", "BLOCK", "DEF", "USE"}


@dataclass
class Parsed:
    """A file's tree, however much of it could be read, and its syntax errors in source order.

    `damaged` are the places of the statements those errors broke, from their start to where the
    parser took up again: a semantic error there is a consequence of the syntax error, not news."""

    module: ast.Module
    source: Source
    errors: list[CnnError] = field(default_factory=list)
    damaged: list[tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=list)

    def is_damaged(self, span: Span | None) -> bool:
        if span is None:
            return False
        at = (span.line, span.col)
        return any(start <= at <= end for start, end in self.damaged)


@functools.cache
def _lark():
    """Lark's parser, made once a process from the user's cache of the grammar's analysis (syntax/grammar.py).

    It holds only the grammar's tables, which never change: each parse has its own token stream, parser state
    and AST builder, which the parser's reductions reach through `_BUILDER` (a context variable: each thread
    and task sees the builder of the parse it runs)."""
    return make_lark(_Reductions())


_BUILDER: ContextVar[_ToAst] = ContextVar("cnndsl_ast_builder")


def parse_tolerant(text: str, name: str = "<string>", max_statements: int = limits.LAYERS,
                   limit: int | None = None) -> Parsed:
    """One text's tree and its syntax errors, without raising: what an editor asks at every keystroke."""
    source = Source(name, text)
    builder = _ToAst(source)
    lark = _lark()
    stream = _Stream(lark, text if text.endswith("\n") else text + "\n", source, max_statements,
                     limit or max_statements)
    run = _Run(lark, stream, source)
    reset = _BUILDER.set(builder)
    try:  # the LALR parser is a loop: a deep spec is refused by the depth checks, not by Python's stack
        with collector.paused():
            module = run.parse()
    finally:
        _BUILDER.reset(reset)
    found = {(e.message, str(e.span)): e for e in run.errors + builder.errors}  # copies of the parser reduce too
    errors = sorted(found.values(), key=lambda e: (e.span.line, e.span.col) if e.span else (1 << 30, 0))
    damaged = run.damaged + [((e.span.line, e.span.col), (e.span.end_line or e.span.line, e.span.end_col))
                             for e in builder.errors]
    module.statements = stream.statements
    return Parsed(module, source, errors, damaged)


def parse(text: str, name: str = "<string>", max_statements: int = limits.LAYERS, limit: int | None = None
          ) -> ast.Module:
    """Parses one file's text. Raises its syntax errors (SpecSyntaxError, or CnnErrors for several).

    The file may hold `max_statements` statements: what is left of the whole spec's `limit`.
    """
    parsed = parse_tolerant(text, name, max_statements, limit)
    raise_all(parsed.errors)
    return parsed.module


def _tok_span(source: Source, tok) -> Span:
    return Span(source, tok.line, tok.column, tok.end_line, tok.end_column)


# ---- tokens -------------------------------------------------------------------------------------------


class _Limit(Exception):
    """A limit of the file is passed: the parse ends there with this error."""

    def __init__(self, error: CnnError):
        super().__init__(error.message)
        self.error = error


class _BadCharacter(NamedTuple):
    """Where the lexer found no token: reported, then lexing goes on after the run of characters (unless `last`:
    past MAX_SYNTAX_ERRORS of them, each a new start of the lexer, the rest of the file is not read)."""

    line: int
    column: int
    last: bool = False


class _Stream:
    """The tokens of one text as the grammar wants them: newlines dropped inside parentheses and before
    `{`, `else` and `shortcut`, lexing resumed after a character no token matches.

    It tracks the open brackets (an unclosed one is reported where it opens) and applies the file's
    limits as the tokens stream in: braces nest at most `limits.NESTING` deep, and a file holds at most
    `max_statements` statements, so that a huge file is refused before it is all parsed."""

    def __init__(self, lark, text: str, source: Source, max_statements: int, limit: int):
        self.lark, self.text, self.source = lark, text, source
        self.max_statements, self.limit = max_statements, limit
        self.parens: list[list] = []  # [the `(`, whether a newline was dropped inside it]
        self.braces: list = []
        self.statements = 0
        self.bad_characters = 0

    def __iter__(self):
        held = None
        for tok in self._lexed():
            if isinstance(tok, _BadCharacter):
                yield tok
                continue
            kind = tok.type
            if kind == "_NL":
                if self.parens:
                    self.parens[-1][1] = True
                elif held is None:
                    held = tok
                continue
            if held is not None:
                if kind not in _CONTINUES:
                    self._count(tok)  # a statement starts here
                    yield held
                held = None
            if kind == "LPAR":
                self.parens.append([tok, False])
            elif kind == "RPAR":
                if self.parens:
                    self.parens.pop()
            elif kind == "LBRACE":
                self.braces.append(tok)
                if len(self.braces) > limits.NESTING:
                    raise _Limit(SpecSyntaxError(f"braces nest more than {limits.NESTING} levels deep here",
                                                 _tok_span(self.source, tok),
                                                 "move the inner part into a block of its own and call it"))
            elif kind == "RBRACE" and self.braces:
                self.braces.pop()
            elif kind == "SEMICOLON":
                self._count(tok)
            yield tok
        if held is not None:
            yield held

    def _count(self, tok) -> None:
        self.statements += 1
        if self.statements > self.max_statements:
            raise _Limit(SpecSyntaxError(f"the spec has more than {self.limit:,} statements",
                                         _tok_span(self.source, tok),
                                         "raise the limit with --max-layers if this is meant"))

    def _lexed(self):
        """Lark's tokens; after a character no token matches, lexing starts again past the run of
        non-blank characters it is in, with the places of the tokens moved to where they are."""
        from lark import Token
        from lark.exceptions import UnexpectedCharacters

        pos, line, column = 0, 1, 1
        while pos < len(self.text):
            try:
                for tok in self.lark.lex(self.text[pos:]):
                    if pos:
                        tok = Token(tok.type, tok.value, tok.start_pos + pos, tok.line + line - 1,
                                    tok.column + (column - 1 if tok.line == 1 else 0), tok.end_line + line - 1,
                                    tok.end_column + (column - 1 if tok.end_line == 1 else 0), tok.end_pos + pos)
                    yield tok
                return
            except UnexpectedCharacters as e:
                at = pos + e.pos_in_stream
                line = line + e.line - 1
                column = e.column + (column - 1 if e.line == 1 else 0)
                self.bad_characters += 1
                last = self.bad_characters > MAX_SYNTAX_ERRORS
                yield _BadCharacter(line, column, last)
                if last:
                    return
                end = _resume(self.text, at)
                column += end - at
                pos = end


def _with_newlines(tokens: list, like) -> list:
    """Tokens of lines read inside a `(` that was never closed, with the newlines the stream dropped put back
    between lines (outside brackets opened among them, and not before a token that continues a statement)."""
    from lark import Token

    out, depth = [], 0
    for tok in tokens:
        if out and tok.line > out[-1].end_line and depth == 0 and tok.type not in _CONTINUES:
            prev = out[-1]
            out.append(Token("_NL", "\n", prev.end_pos, prev.end_line, prev.end_column, prev.end_line,
                             prev.end_column + 1, prev.end_pos))
        depth = max(0, depth + (tok.type == "LPAR") - (tok.type == "RPAR"))
        out.append(tok)
    return out


def _resume(text: str, at: int) -> int:
    """Where lexing starts again after a character no token matches: past a Python string in single quotes on
    its line, else past the run of non-blank characters, but never past a bracket, which the stream counts
    (`activation='relu')` and `])` still close their `(`)."""
    if text[at] == "'":
        close, newline = text.find("'", at + 1), text.find("\n", at + 1)
        if close != -1 and (newline == -1 or close < newline):
            return close + 1
    end = at + 1
    while end < len(text) and not text[end].isspace() and text[end] not in "(){}":
        end += 1
    return end


# ---- the parse, with recovery -----------------------------------------------------------------------


class _Run:
    """One text through the LALR parser, token by token."""

    def __init__(self, lark, stream: _Stream, source: Source):
        self.ip = lark.parse_interactive("")
        self.stream, self.source = stream, source
        self.errors: list[CnnError] = []
        self.damaged: list[tuple[tuple[int, int], tuple[int, int]]] = []
        self.skipping: tuple[int, int] | None = None  # where the broken statement starts, while skipping it
        self.statement_start: tuple[int, int] = (1, 1)
        self.last = None
        # inside a `(` whose line ended: the parser as it was at the next line, and the tokens fed since, so that an
        # unclosed `(` is closed at its own line and the lines after it are parsed again as statements
        self.mark: tuple[object, list] | None = None
        self.pending: deque = deque()  # tokens to feed again before the stream's next

    def _tokens(self):
        stream = iter(self.stream)
        while True:
            if self.pending:
                yield self.pending.popleft()
                continue
            tok = next(stream, None)
            if tok is None:
                return
            yield tok

    def parse(self) -> ast.Module:
        from lark.exceptions import UnexpectedToken

        try:
            for tok in self._tokens():
                if len(self.errors) >= MAX_SYNTAX_ERRORS:
                    self._give_up(tok)
                    break
                if isinstance(tok, _BadCharacter):
                    self._bad_character(tok)
                    continue
                if self.skipping is not None:
                    self._skip(tok)
                    continue
                self._keep(tok)
                try:
                    self.ip.feed_token(tok)
                except UnexpectedToken:
                    if self._reopen(tok):
                        continue
                    self._unexpected(tok, self.ip.accepts())  # what may come: exact, where LALR's row is not
                    self._skip(tok)
                    continue
                self._fed(tok)
            return self._end()
        except _Limit as limit:
            self.errors.append(limit.error)
            self._damage(self.statement_start, (1 << 30, 0))
            return ast.Module([], [])

    def _fed(self, tok) -> None:
        self.last = tok
        if self.mark is not None and not self.stream.parens:
            self.mark = None
        if tok.type in _ENDS or tok.type == "LBRACE":
            self.statement_start = (tok.end_line, tok.end_column)

    # errors

    def _report(self, error: CnnError) -> None:
        self.errors.append(error)
        self.skipping = self.statement_start
        self.mark = None

    def _keep(self, tok) -> None:
        """Marks the parser at the first token after a line that ended inside a `(`, and keeps the tokens from there."""
        if self.mark is None and not self.pending and any(dropped for _, dropped in self.stream.parens):
            self.mark = (self.ip.copy(), [])
        if self.mark is not None:
            self.mark[1].append(tok)

    def _reopen(self, tok) -> bool:
        """`relu(` then `conv 32 kernal=3`: the `(` is reported, its statement ends at its own line, and the lines
        after it are fed again as statements (their own errors are reported too)."""
        from lark import Token
        from lark.exceptions import UnexpectedToken

        parens = self.stream.parens
        if self.mark is None or not parens or not any(dropped for _, dropped in parens):
            return False
        first = next(lpar for lpar, dropped in parens if dropped)
        if tok.line == first.line or self._foreign() is not None:  # a Keras call over lines is one error
            return False
        (ip, kept), self.mark = self.mark, None
        end = len(self.source.line(first.line)) + 1
        newline = Token("_NL", "\n", first.start_pos, first.line, end, first.line, end + 1, first.start_pos)
        saved, self.ip = self.ip, ip
        fill = self._completion(newline)
        if fill is None:
            self.ip = saved
            return False
        try:
            for placeholder in [*fill, newline]:
                self.ip.feed_token(placeholder)
        except UnexpectedToken:
            self.ip = saved
            return False
        parens.clear()
        self.errors.append(SpecSyntaxError("this `(` is never closed", _tok_span(self.source, first),
                                           "add the matching `)`"))
        self._damage(self.statement_start, (first.line, end))
        self._fed(newline)
        self.pending.extend(_with_newlines(kept, newline))
        return True

    def _unexpected(self, tok, expected) -> None:
        opened = self._foreign() or self._unclosed_paren(tok) or self._unclosed_brace(tok)
        if opened is not None:
            self._report(opened)
            return
        span = _tok_span(self.source, tok)
        shown = f"`{tok}`"
        if tok.type == "_NL":  # the newline itself: the place after the line's last character
            shown, span = "end of the line", Span(self.source, tok.line, tok.column, tok.line, tok.column + 1)
        self._report(SpecSyntaxError(f"unexpected {shown}; {_expected(expected)}", span, _hint(tok, expected)))

    def _foreign(self) -> CnnError | None:
        """A Keras or PyTorch line (`Conv2D(32, 3, activation="relu")`): the error gives the cnndsl line."""
        from cnndsl.ops.foreign import foreign_call  # the registry's names, read only when a statement is wrong

        return foreign_call(self.source, *self.statement_start, SpecSyntaxError)

    def _unclosed_paren(self, tok) -> CnnError | None:
        """`relu(` then lines: the newlines inside the `(` were dropped, so the error comes lines later.
        Reported at the `(`, and the lines after it are statements again."""
        parens = self.stream.parens
        if not parens or not any(dropped for _, dropped in parens):
            return None
        first = next(lpar for lpar, dropped in parens if dropped)
        if tok.line == first.line:
            return None
        parens.clear()
        return SpecSyntaxError("this `(` is never closed", _tok_span(self.source, first), "add the matching `)`")

    def _unclosed_brace(self, tok) -> CnnError | None:
        """A definition starting inside a body: the `{` before it is not closed."""
        braces = self.stream.braces
        if tok.type not in _TOP_LEVEL or not braces:
            return None
        return SpecSyntaxError("this `{` is never closed", _tok_span(self.source, braces[-1]), "add the matching `}`")

    def _bad_character(self, bad: _BadCharacter) -> None:
        if bad.last:  # said, not silent: a pasted Keras model has a `'...'` or two a line
            span = Span(self.source, bad.line, bad.column, bad.line, bad.column + 1)
            self.errors.append(SpecSyntaxError(f"more than {MAX_SYNTAX_ERRORS} characters no token matches: the rest "
                                               "of the file is not read", span, "fix the ones above and check again"))
            self._damage((bad.line, bad.column), (1 << 30, 0))
            return
        if self.skipping is None:
            foreign = self._foreign()
            if foreign is not None:
                self._report(foreign)
                return
            ch = self.source.line(bad.line)[bad.column - 1: bad.column] or "?"
            span = Span(self.source, bad.line, bad.column, bad.line, bad.column + 1)
            self._report(SpecSyntaxError(f"unexpected character `{ch}`", span,
                                         "strings use double quotes" if ch == "'" else None))

    # recovery

    def _skip(self, tok) -> None:
        """Skips the rest of a broken statement; at its end, takes up parsing where the end can be fed."""
        if tok.type in _TOP_LEVEL and self.stream.braces and self._close_braces(tok):
            return
        if tok.type not in _ENDS:
            return
        fill = self._completion(tok)
        if fill is None:
            return
        for placeholder in fill:
            self.ip.feed_token(placeholder)
        self.ip.feed_token(tok)
        self._damage(self.skipping, (tok.line, tok.column))
        self.skipping = None
        self._fed(tok)

    def _close_braces(self, tok) -> bool:
        """`network` or `block` inside a body: close what is open (the error says which `{`) and go on."""
        fill = self._completion(tok, depth=2 * limits.NESTING, only=("RBRACE", "_NL"))
        if fill is None:
            return False
        for placeholder in fill:
            self.ip.feed_token(placeholder)
        self.stream.braces.clear()
        self.ip.feed_token(tok)
        self._damage(self.skipping, (tok.line, tok.column))
        self.skipping = None
        self._fed(tok)
        return True

    def _completion(self, end, depth: int = 3, only: tuple[str, ...] = _PLACEHOLDERS) -> list | None:
        """The shortest run of placeholder tokens (at most `depth`) after which the parser takes `end`."""
        from lark import Token
        from lark.exceptions import UnexpectedToken

        frontier = [(self.ip, [])]
        for _ in range(depth + 1):
            later = []
            for ip, run in frontier:
                accepted = ip.accepts()
                if end.type in accepted:
                    return run
                for kind in only:
                    if kind in accepted and len(run) < depth:
                        placeholder = Token(kind, "", end.start_pos, end.line, end.column, end.line, end.column,
                                            end.start_pos)
                        copy = ip.copy()
                        try:
                            copy.feed_token(placeholder)
                        except (UnexpectedToken, _Limit, CnnError):  # no way on
                            continue
                        later.append((copy, [*run, placeholder]))
            frontier = later[:16]  # the first few ways on are enough: real statements end within three
            if not frontier:
                return None
        return None

    def _damage(self, start: tuple[int, int] | None, end: tuple[int, int]) -> None:
        if start is not None:
            self.damaged.append((start, end))

    def _give_up(self, tok) -> None:
        self.errors.append(CnnError(f"more than {MAX_SYNTAX_ERRORS} syntax errors: the rest of the file is not read",
                                    _tok_span(self.source, tok) if not isinstance(tok, _BadCharacter) else None))
        self._damage((tok.line, 0), (1 << 30, 0))
        self.skipping = self.skipping or (tok.line, 0)  # the rest is skipped: its end adds no error

    def _end(self) -> ast.Module:
        """Feeds the end of the file, closing what a broken file left open; the module built."""
        from lark import Token
        from lark.exceptions import UnexpectedToken

        last = self.last
        eof = Token("$END", "", last.end_pos if last else 0, last.end_line if last else 1,
                    last.end_column if last else 1, last.end_line if last else 1, last.end_column if last else 1,
                    last.end_pos if last else 0)
        if self.skipping is None:
            try:
                return self.ip.feed_eof(last)
            except UnexpectedToken:
                self._eof_error()
        fill = self._completion(eof, depth=2 * limits.NESTING + 4)
        if fill is None:
            self._damage(self.skipping, (1 << 30, 0))
            return ast.Module([], [])
        for placeholder in fill:
            self.ip.feed_token(placeholder)
        self._damage(self.skipping, (1 << 30, 0))
        return self.ip.feed_eof(last)

    def _eof_error(self) -> None:
        if self.stream.braces:
            brace = self.stream.braces[-1]
            self._report(SpecSyntaxError("this `{` is never closed", _tok_span(self.source, brace),
                                         "add the matching `}`"))
        elif self.stream.parens:
            self._report(SpecSyntaxError("this `(` is never closed", _tok_span(self.source, self.stream.parens[-1][0]),
                                         "add the matching `)`"))
        else:
            lines = self.source.text.rstrip().splitlines() or [""]
            span = Span(self.source, len(lines), max(1, len(lines[-1])))
            self._report(SpecSyntaxError("unexpected end of file", span, "a statement or a parenthesis is unfinished"))


# ---- the AST, built while the parser reduces -----------------------------------------------------


class _Braced(NamedTuple):
    """A `{ ... }` body: its statements, and the `}` where the statement around it ends."""

    stmts: list
    close: object  # Lark's Token


class _Reductions:
    """What Lark calls at each reduction (its transformer): the method of the running parse's builder, given the
    rule's children as its arguments (what Lark's `v_args(inline=True)` does). Helpers (`_name`) are not rules'."""

    def __getattr__(self, name: str):
        if name.startswith("_") or not hasattr(_ToAst, name):
            raise AttributeError(name)  # Lark's default for a rule without a method
        return lambda children: getattr(_BUILDER.get(), name)(*children)


class _ToAst:
    """Each method builds one AST node from its named children, as the parser reduces a rule.

    Lark's positions (`propagate_positions`) cost half the parse, so spans come from the tokens: the
    keywords a span starts at are named terminals (REPEAT, LET, ...), and a body ends at its `}`.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.errors: list[CnnError] = []  # found while building: a number too large, say
        self.depth: dict[int, int] = {}  # id of an expression node → its depth, for limits.EXPRESSION
        self.outer: dict[int, tuple[int, int, int, int]] = {}  # id of an expression → its extent with ( )

    # places: a child is a token (a str: the loop's Token or Lark's), a node with a span, or a _Braced body
    def _start(self, x) -> tuple[int, int]:
        if isinstance(x, str):
            return x.line, x.column
        if id(x) in self.outer:
            return self.outer[id(x)][:2]
        return x.span.line, x.span.col

    def _end(self, x) -> tuple[int, int]:
        if isinstance(x, _Braced):
            x = x.close
        if isinstance(x, str):
            return x.end_line, x.end_column
        if id(x) in self.outer:
            return self.outer[id(x)][2:]
        span = x.span
        return (span.end_line, span.end_col) if span.end_line else (span.line, span.col)

    def _span(self, first, last) -> Span:
        return Span(self.source, *self._start(first), *self._end(last))

    def _tok(self, tok) -> Span:
        return Span(self.source, tok.line, tok.column, tok.end_line, tok.end_column)

    # top level
    def start(self, *items):
        uses = [c for c in items if isinstance(c, ast.Use)]
        defs = [c for c in items if isinstance(c, ast.Definition)]
        return ast.Module(uses, defs)

    def use(self, kw, path):
        return ast.Use(path[1:-1], self._span(kw, path))

    def function(self, kw, name, params, *rest):
        *lets, ret, value, close = rest
        body = [*lets, ast.Return(value, self._span(ret, value))]
        return ast.Definition("function", str(name), params or [], body, self._tok(name), self._tok(close))

    def network(self, name, params, body):
        return ast.Definition("network", str(name), params or [], body.stmts, self._tok(name), self._tok(body.close))

    def block(self, name, params, inputs, body):
        return ast.Definition("block", str(name), params or [], body.stmts, self._tok(name), self._tok(body.close),
                              inputs or [])

    def block_inputs(self, _kw, *names):
        return [str(n) for n in names]

    def call_inputs(self, _kw, *names):
        return [ast.Name(str(n), self._tok(n)) for n in names]

    def outputs(self, kw, *names):
        return ast.Outputs([ast.Name(str(n), self._tok(n)) for n in names], self._span(kw, names[-1]))

    def params(self, *params):
        return list(params)

    def param(self, name, default):
        return ast.Param(str(name), default, self._tok(name))

    def body(self, *stmts_and_close):
        *stmts, close = stmts_and_close
        return _Braced(stmts, close)

    # statements
    def labeled(self, name, *rest):
        *more, stmt = rest
        return ast.Labeled(str(name), stmt, self._tok(name), [str(n) for n in more])

    def frozen(self, kw, inner):
        stmts = inner.stmts if isinstance(inner, _Braced) else [inner]
        return ast.Frozen(stmts, self._span(kw, inner))

    def call(self, name, *rest):
        *args, inputs = rest
        if inputs:
            return ast.Call(str(name), list(args), self._span(name, inputs[-1]), inputs)
        return ast.Call(str(name), list(args), self._span(name, args[-1] if args else name))

    def positional(self, value):
        arg = ast.Arg(None, value, value.span)
        if id(value) in self.outer:  # `conv 8 (3)`: the call ends at the `)`
            self.outer[id(arg)] = self.outer[id(value)]
        return arg

    def keyword(self, name, value):
        return ast.Arg(str(name), value, self._span(name, value))

    def negative(self, minus, number):
        span = self._span(minus, number)
        value = self._number(number, span)
        return ast.Const(-value.value, span) if isinstance(value, ast.Const) else value

    def repeat_count(self, kw, count, body):
        return ast.Repeat(None, None, count, body.stmts, self._span(kw, body))

    def repeat_range(self, kw, var, first, _dots, last, body):
        return ast.Repeat(str(var), first, last, body.stmts, self._span(kw, body))

    def if_stmt(self, kw, cond, body, *rest):
        *arms, orelse = rest  # `else if` arms, then the `else` body or None
        end = orelse or (arms[-1] if arms else body)
        return ast.If([ast.Arm(cond, body.stmts, self._span(kw, body)), *arms], orelse.stmts if orelse else [],
                      self._span(kw, end))

    def else_if(self, kw, cond, body):
        return ast.Arm(cond, body.stmts, self._span(kw, body))

    def else_body(self, body):
        return body

    def residual(self, kw, *rest):
        *args, body, shortcut = rest
        if shortcut is None:
            return ast.Residual(body.stmts, None, None, self._span(kw, body), args=args)
        cond, stmts, span = shortcut
        return ast.Residual(body.stmts, stmts, cond, Span(self.source, *self._start(kw), span.end_line,
                                                          span.end_col), span, args=args)

    def shortcut(self, kw, cond, body):
        return (cond, body.stmts, self._span(kw, body))

    def merge_op(self, op):
        return op

    def merge(self, op, *rest):
        *items, close = rest
        args = [a for a in items if isinstance(a, ast.Arg)]
        branches = [b for b in items if not isinstance(b, ast.Arg)]
        return ast.Merge(str(op), [b for b, _ in branches], self._tok(op), [s for _, s in branches], self._tok(close),
                         args=args)

    def branch(self, kw, body):
        return (body.stmts, self._span(kw, body))

    def merge_with(self, op, *items):
        args = [a for a in items if isinstance(a, ast.Arg)]
        names = [ast.Name(str(n), self._tok(n)) for n in items if not isinstance(n, ast.Arg)]
        return ast.MergeWith(str(op), names, self._tok(op), args=args)

    def from_stmt(self, kw, name):
        return ast.From(ast.Name(str(name), self._tok(name)), self._span(kw, name))

    def let(self, kw, name, value):
        return ast.Let(str(name), value, self._span(kw, value))

    # expressions
    def _number(self, tok, span: Span):
        """A number literal, or Missing (and an error) past limits.NUMBER."""
        try:
            return ast.Const(_int(tok, span) if tok.type == "INT" else _float(tok, span), span)
        except CnnError as e:
            self.errors.append(e)
            return ast.Missing(span)

    def int(self, tok):
        return self._number(tok, self._tok(tok))

    def float(self, tok):
        return self._number(tok, self._tok(tok))

    def size(self, tok):
        span = self._tok(tok)
        try:
            return ast.Const(tuple(_int(d, span) for d in tok.split("x")), span)
        except CnnError as e:
            self.errors.append(e)
            return ast.Missing(span)

    def string(self, tok):
        if not tok:  # a placeholder of the parser's recovery
            return ast.Missing(self._tok(tok))
        return ast.Const(tok[1:-1], self._tok(tok))

    def true(self, tok):
        return ast.Const(True, self._tok(tok))

    def false(self, tok):
        return ast.Const(False, self._tok(tok))

    def name(self, tok):
        if not tok:  # a placeholder of the parser's recovery
            return ast.Missing(self._tok(tok))
        return ast.Name(str(tok), self._tok(tok))

    def in_attr(self, kw, attr):
        return ast.InAttr(str(attr), self._span(kw, attr))

    def paren(self, lpar, expr, rpar):
        self.outer[id(expr)] = (*self._start(lpar), *self._end(rpar))  # where a parent's span starts or ends
        return expr

    def tuple(self, lpar, *items_and_rpar):
        *items, rpar = items_and_rpar
        return self._deep(ast.TupleExpr(items, self._span(lpar, rpar)), *items)

    def func(self, fn, *args_and_rpar):
        *given, rpar = args_and_rpar
        args = [a for a in given if not isinstance(a, ast.Arg)]
        keywords = [a for a in given if isinstance(a, ast.Arg)]
        if keywords and given.index(keywords[0]) < len(args):
            late = next(a for a in given[given.index(keywords[0]):] if not isinstance(a, ast.Arg))
            self.errors.append(SpecSyntaxError("a value without a name follows a named one", late.span,
                                               "give the values in order first, then `name=value`s"))
        return self._deep(ast.Func(str(fn), args, self._span(fn, rpar), keywords), *args,
                          *(k.value for k in keywords))

    def fn_keyword(self, name, value):
        return ast.Arg(str(name), value, self._span(name, value))

    def cond(self, then, cond, orelse):
        return self._deep(ast.Cond(then, cond, orelse, self._span(then, orelse)), then, cond, orelse)

    def _deep(self, node, *children):
        """Records the node's depth, and refuses an expression deeper than limits.EXPRESSION: the
        checker, the code generator and Python's compiler of the generated code all recurse on it."""
        depth = 1 + max((self.depth.get(id(c), 1) for c in children), default=0)
        if depth > limits.EXPRESSION:
            raise _Limit(SpecSyntaxError(f"this expression nests more than {limits.EXPRESSION} operations deep",
                                         node.span, "split it with `let`"))
        self.depth[id(node)] = depth
        return node

    def _binary(self, op: str, left, right):
        return self._deep(ast.BinOp(op, left, right, self._span(left, right)), left, right)

    def binop(self, left, op, right):
        return self._binary(str(op), left, right)

    def or_(self, left, right):
        return self._binary("or", left, right)

    def and_(self, left, right):
        return self._binary("and", left, right)

    def not_(self, kw, operand):
        return self._deep(ast.Unary("not", operand, self._span(kw, operand)), operand)

    def compare(self, first, *rest):
        # a < b < c means a < b and b < c, as in Python
        operands = [first, *rest[1::2]]
        parts = [self._binary(str(op), left, right) for op, left, right in zip(rest[::2], operands, operands[1:])]
        node = parts[0]
        for part in parts[1:]:
            node = self._deep(ast.BinOp("and", node, part, self._span(first, part)), node, part)
        return node

    def neg(self, minus, operand):
        return self._deep(ast.Unary("-", operand, self._span(minus, operand)), operand)

    def pos(self, plus, operand):
        self.outer[id(operand)] = (*self._start(plus), *self._end(operand))
        return operand


def _int(tok: str, span: Span) -> int:
    """An integer literal, refused past limits.NUMBER before Python converts it (4,300 digits raise there)."""
    digits = tok.lstrip("0") or "0"
    if len(digits) > len(str(limits.NUMBER)) or int(digits) > limits.NUMBER:
        raise SpecSyntaxError(f"this number is too large (over {limits.NUMBER:,})", span)
    return int(digits)


def _float(tok: str, span: Span) -> float:
    value = float(tok)
    if not value <= limits.NUMBER:  # inf as well
        raise SpecSyntaxError(f"this number is too large (over {limits.NUMBER:,})", span)
    return value


# ---- syntax errors in words ---------------------------------------------------------------------

_WORDS = {
    "NAME": "a name",
    "INT": "a number",
    "FLOAT": "a number",
    "SIZE": "a size such as 3x3",
    "STRING": 'a string in "quotes"',
    "_NL": "the end of the line",
    "$END": "the end of the file",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "EQUAL": "`=`",
    "COLON": "`:`",
    "COMMA": "`,`",
    "SEMICOLON": "`;`",
    "CALL": "a call such as `max(`",
    "COMP_OP": "a comparison",
    "MINUS": "`-`",
    "PLUS": "`+`",
    "STAR": "`*`",
    "SLASH": "`/`",
    "DSLASH": "`//`",
    "PERCENT": "`%`",
    "POW": "`**`",
    "DOT": "`.`",
    "DOTDOT": "`..`",
}


def _word(term: str) -> str:
    if term in _WORDS:
        return _WORDS[term]
    if term.isupper() and term.isalpha():
        return f"`{term.lower()}`"
    return term.lower()


_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "DSLASH", "PERCENT", "POW", "COMP_OP"}


def _expected(terms) -> str:
    # operators are one word, so that the six words shown leave room for what else may come
    words = sorted({"an operator" if t in _OPERATORS else _word(t) for t in terms if not t.startswith("__")})
    if not words:
        return ""
    if len(words) > 6:
        words = words[:6] + ["..."]
    return "expected " + (words[0] if len(words) == 1 else "one of " + ", ".join(words))


def _hint(tok, expected) -> str | None:
    if tok.type == "COMMA":
        return "arguments are separated by spaces: `conv 64 kernel=3 stride=2`"
    if tok.type in {"PLUS", "MINUS", "STAR", "SLASH", "DSLASH", "PERCENT", "POW"}:
        return f"put expressions in parentheses: `(a {tok} b)`"
    if tok.type == "RBRACE" and "RBRACE" not in expected:
        return "this `}` has no matching `{`"
    if tok.type == "LBRACE" and "_NL" in expected:
        return "a `{` may not start a statement; did you mean `add {`, `concat {` or `branch {`?"
    if tok.type == "NAME" and "BRANCH" in expected:
        return "inside add, concat and multiply, each path is a `branch { ... }`"
    if tok.type in {"ADD", "CONCAT", "MULTIPLY", "IN", "REPEAT", "IF", "ELSE", "FROM", "LET", "USE",
                    "NETWORK", "BLOCK", "BRANCH", "RESIDUAL", "SHORTCUT", "FROZEN", "TRUE", "FALSE",
                    "AND", "OR", "NOT", "DEF", "RETURN"}:
        return f"`{tok}` is a keyword and cannot be used as a name here"
    return None
