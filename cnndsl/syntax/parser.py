"""Parses .cnn text with the Lark grammar in grammars/cnn.lark and turns the tree into the AST.

A text is parsed by syntax/driver.py's loop over the grammar's committed tables, which does not import
Lark; a text with an error is parsed again by Lark itself, for its account of what was expected where.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from cnndsl import collector, limits
from cnndsl.errors import Source, Span, SpecSyntaxError
from cnndsl.syntax import ast, tables
from cnndsl.syntax.driver import Driver, Token, Unsure

# Tokens before which a newline does not end the statement.
_CONTINUES = {"ELSE", "SHORTCUT", "LBRACE"}


class _Limit(Exception):
    """A limit of the file is passed; raised from the token stream, turned into a located error."""

    def __init__(self, message: str, tok: Token, hint: str | None = None):
        super().__init__(message)
        self.message, self.tok, self.hint = message, tok, hint


class _PostLex:
    """Drops newlines inside parentheses and before `{`, `else`, `shortcut`.

    It also remembers the unclosed `{` so that an unexpected end of file can point at it, and applies
    the file's limits while the tokens stream in: braces nest at most `limits.NESTING` deep, and a
    file holds at most `max_statements` statements, so a huge file is refused before it is all parsed.
    """

    always_accept = ("_NL",)

    def __init__(self) -> None:
        self.open_braces: list[Token] = []
        self.max_statements = self.limit = limits.LAYERS
        self.statements = 0  # of the last file parsed

    def process(self, stream):
        depth = 0
        held = None
        statements = self.statements = 0
        self.open_braces = []
        for tok in stream:
            if tok.type == "_NL":
                if depth == 0 and held is None:
                    held = tok
                continue
            if held is not None:
                if tok.type not in _CONTINUES:
                    statements += 1
                    yield held
                held = None
            if tok.type == "LPAR":
                depth += 1
            elif tok.type == "RPAR":
                depth = max(0, depth - 1)
            elif tok.type == "LBRACE":
                self.open_braces.append(tok)
                if len(self.open_braces) > limits.NESTING:
                    raise _Limit(f"braces nest more than {limits.NESTING} levels deep here", tok,
                                 "move the inner part into a block of its own and call it")
            elif tok.type == "RBRACE" and self.open_braces:
                self.open_braces.pop()
            elif tok.type == "SEMICOLON":
                statements += 1
            if statements > self.max_statements:
                raise _Limit(f"the spec has more than {self.limit:,} statements", tok,
                             "raise the limit with --max-layers if this is meant")
            self.statements = statements
            yield tok
        if held is not None:
            yield held


@functools.lru_cache(maxsize=1)
def _front() -> tuple[_PostLex, _ToAst, Driver | None]:
    """The post-lexer, the AST builder and the loop over the tables (None where the grammar needs more than
    the loop does: then Lark parses every text)."""
    postlex, transformer = _PostLex(), _ToAst()
    try:
        driver = Driver(tables.driver_tables(), postlex, transformer)
    except Unsure:
        driver = None
    return postlex, transformer, driver


@functools.lru_cache(maxsize=1)
def _lark():
    """Lark's LALR parser with the same post-lexer and AST builder (the AST built inline: no parse tree), from
    the committed tables: made at the first text with an error."""
    postlex, transformer, _ = _front()
    return tables.lark(postlex=postlex, transformer=_Inline(transformer))


def _parser():
    """Lark's parser, the post-lexer, the AST builder and the loop (tests compare the two parsers)."""
    return _lark(), *_front()


def parse(text: str, name: str = "<string>", max_statements: int = limits.LAYERS, limit: int | None = None
          ) -> ast.Module:
    """Parses one file's text. Raises SpecSyntaxError with the place and what was expected.

    The file may hold `max_statements` statements: what is left of the whole spec's `limit`.
    """
    source = Source(name, text)
    postlex, transformer, driver = _front()
    postlex.max_statements, postlex.limit = max_statements, limit or max_statements
    text = text if text.endswith("\n") else text + "\n"
    try:  # the LALR parser is a loop: a deep spec is refused by the depth checks, not by Python's stack
        with collector.paused():
            module = _parse(text, source, transformer, driver)
    except _Limit as e:
        raise SpecSyntaxError(e.message, _tok_span(source, e.tok), e.hint) from None
    finally:
        transformer.start_file(None)
    module.statements = postlex.statements
    return module


def _parse(text: str, source: Source, transformer: _ToAst, driver: Driver | None) -> ast.Module:
    """The fast loop where it can; Lark itself where the loop stops at an error, for Lark's own message."""
    if driver is not None:
        transformer.start_file(source)
        try:
            return driver.parse(text)
        except Unsure:
            pass
    from lark.exceptions import UnexpectedInput

    lark = _lark()
    transformer.start_file(source)  # afresh: the loop may have left half a file's state
    try:
        return lark.parse(text)
    except UnexpectedInput as e:
        raise _syntax_error(e, source, lark.options.postlex) from None


def _tok_span(source: Source, tok: Token) -> Span:
    return Span(source, tok.line, tok.column, tok.end_line, tok.end_column)


# ---- the AST, built while the parser reduces -----------------------------------------------------


class _Braced(NamedTuple):
    """A `{ ... }` body: its statements, and the `}` where the statement around it ends."""

    stmts: list
    close: Token


class _Inline:
    """The AST builder as Lark calls a transformer, with a list of children: each method given them as its
    arguments (what Lark's `v_args(inline=True)` does). Helpers (`_name`) are not rules' methods."""

    def __init__(self, builder: _ToAst):
        self.builder = builder

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        method = getattr(self.builder, name)  # AttributeError: Lark's default for a rule without a method
        return lambda children: method(*children)


class _ToAst:
    """Each method builds one AST node from its named children, as the parser reduces a rule.

    Lark's positions (`propagate_positions`) cost half the parse, so spans come from the tokens: the
    keywords a span starts at are named terminals (REPEAT, LET, ...), and a body ends at its `}`.
    """

    def start_file(self, source: Source | None) -> None:
        self.source = source
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

    def _tok(self, tok: Token) -> Span:
        return Span(self.source, tok.line, tok.column, tok.end_line, tok.end_column)

    # top level
    def start(self, *items):
        uses = [c for c in items if isinstance(c, ast.Use)]
        defs = [c for c in items if isinstance(c, ast.Definition)]
        return ast.Module(uses, defs)

    def use(self, kw, path):
        return ast.Use(path[1:-1], self._span(kw, path))

    def network(self, name, params, body):
        return ast.Definition("network", str(name), params or [], body.stmts, self._tok(name))

    def block(self, name, params, body):
        return ast.Definition("block", str(name), params or [], body.stmts, self._tok(name))

    def params(self, *params):
        return list(params)

    def param(self, name, default):
        return ast.Param(str(name), default, self._tok(name))

    def body(self, *stmts_and_close):
        *stmts, close = stmts_and_close
        return _Braced(stmts, close)

    # statements
    def labeled(self, name, stmt):
        return ast.Labeled(str(name), stmt, self._tok(name))

    def frozen(self, kw, inner):
        stmts = inner.stmts if isinstance(inner, _Braced) else [inner]
        return ast.Frozen(stmts, self._span(kw, inner))

    def call(self, name, *args):
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
        value = _int(number, span) if number.type == "INT" else _float(number, span)
        return ast.Const(-value, span)

    def repeat_count(self, kw, count, body):
        return ast.Repeat(None, None, count, body.stmts, self._span(kw, body))

    def repeat_range(self, kw, var, first, _dots, last, body):
        return ast.Repeat(str(var), first, last, body.stmts, self._span(kw, body))

    def if_stmt(self, kw, cond, body, *rest):
        *arms, orelse = rest  # `else if` arms, then the `else` body or None
        end = orelse or (arms[-1] if arms else body)
        return ast.If([ast.Arm(cond, body.stmts, cond.span), *arms], orelse.stmts if orelse else [],
                      self._span(kw, end))

    def else_if(self, kw, cond, body):
        return ast.Arm(cond, body.stmts, self._span(kw, body))

    def else_body(self, body):
        return body

    def residual(self, kw, body, shortcut):
        if shortcut is None:
            return ast.Residual(body.stmts, None, None, self._span(kw, body))
        cond, stmts, span = shortcut
        return ast.Residual(body.stmts, stmts, cond, Span(self.source, *self._start(kw), span.end_line,
                                                          span.end_col), span)

    def shortcut(self, kw, cond, body):
        return (cond, body.stmts, self._span(kw, body))

    def merge_op(self, op):
        return op

    def merge(self, op, *branches):
        return ast.Merge(str(op), [b for b, _ in branches], self._tok(op), [s for _, s in branches])

    def branch(self, kw, body):
        return (body.stmts, self._span(kw, body))

    def merge_with(self, op, *names):
        return ast.MergeWith(str(op), [ast.Name(str(n), self._tok(n)) for n in names], self._tok(op))

    def from_stmt(self, kw, name):
        return ast.From(ast.Name(str(name), self._tok(name)), self._span(kw, name))

    def let(self, kw, name, value):
        return ast.Let(str(name), value, self._span(kw, value))

    # expressions
    def int(self, tok):
        return ast.Const(_int(tok, self._tok(tok)), self._tok(tok))

    def float(self, tok):
        return ast.Const(_float(tok, self._tok(tok)), self._tok(tok))

    def size(self, tok):
        span = self._tok(tok)
        return ast.Const(tuple(_int(d, span) for d in tok.split("x")), span)

    def string(self, tok):
        return ast.Const(tok[1:-1], self._tok(tok))

    def true(self, tok):
        return ast.Const(True, self._tok(tok))

    def false(self, tok):
        return ast.Const(False, self._tok(tok))

    def name(self, tok):
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
        *args, rpar = args_and_rpar
        return self._deep(ast.Func(str(fn), args, self._span(fn, rpar)), *args)

    def _deep(self, node, *children):
        """Records the node's depth, and refuses an expression deeper than limits.EXPRESSION: the
        checker, the code generator and Python's compiler of the generated code all recurse on it."""
        depth = 1 + max((self.depth.get(id(c), 1) for c in children), default=0)
        if depth > limits.EXPRESSION:
            raise SpecSyntaxError(f"this expression nests more than {limits.EXPRESSION} operations deep",
                                  node.span, "split it with `let`")
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
    "FUNC": "a function such as max(",
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


def _syntax_error(e, source: Source, postlex: _PostLex) -> SpecSyntaxError:
    """Lark's UnexpectedInput as a located error."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    if isinstance(e, UnexpectedCharacters):
        ch = source.line(e.line)[e.column - 1 : e.column] or "?"
        span = Span(source, e.line, e.column, e.line, e.column + 1)
        hint = "strings use double quotes" if ch == "'" else None
        return SpecSyntaxError(f"unexpected character `{ch}`", span, hint)
    tok = getattr(e, "token", None)
    if isinstance(e, UnexpectedEOF) or (tok is not None and tok.type == "$END"):
        return _eof_error(source, postlex)
    assert isinstance(e, UnexpectedToken)
    span = Span(source, tok.line, tok.column, tok.end_line, tok.end_column)
    shown = "the end of the line" if tok.type == "_NL" else f"`{tok}`"
    return SpecSyntaxError(f"unexpected {shown}; {_expected(e.expected)}", span, _hint(tok, e.expected))


def _eof_error(source: Source, postlex: _PostLex) -> SpecSyntaxError:
    if postlex.open_braces:
        tok = postlex.open_braces[-1]
        span = Span(source, tok.line, tok.column, tok.end_line, tok.end_column)
        return SpecSyntaxError("this `{` is never closed", span, "add the matching `}`")
    lines = source.text.rstrip().splitlines() or [""]
    span = Span(source, len(lines), max(1, len(lines[-1])))
    return SpecSyntaxError("unexpected end of file", span, "a statement or a parenthesis is unfinished")


def _hint(tok: Token, expected) -> str | None:
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
                    "AND", "OR", "NOT"}:
        return f"`{tok}` is a keyword and cannot be used as a name here"
    return None
