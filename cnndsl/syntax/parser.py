"""Parses .cnn text with the Lark grammar in grammars/cnn.lark and turns the tree into the AST."""

from __future__ import annotations

import functools
from pathlib import Path

from lark import Lark, Token, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive

from cnndsl import limits
from cnndsl.errors import CnnError, Source, Span, SpecSyntaxError
from cnndsl.syntax import ast

_GRAMMAR_PLACES = (
    Path(__file__).resolve().parent.parent / "grammars" / "cnn.lark",  # installed wheel
    Path(__file__).resolve().parents[2] / "grammars" / "cnn.lark",  # source tree
)

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
def _parser() -> tuple[Lark, _PostLex]:
    path = next((p for p in _GRAMMAR_PLACES if p.exists()), _GRAMMAR_PLACES[-1])
    postlex = _PostLex()
    lark = Lark(
        path.read_text(),
        parser="lalr",
        lexer="basic",
        postlex=postlex,
        propagate_positions=True,
        maybe_placeholders=False,
        cache=True,
    )
    return lark, postlex


def parse(text: str, name: str = "<string>", max_statements: int = limits.LAYERS, limit: int | None = None
          ) -> ast.Module:
    """Parses one file's text. Raises SpecSyntaxError with the place and what was expected.

    The file may hold `max_statements` statements: what is left of the whole spec's `limit`.
    """
    source = Source(name, text)
    lark, postlex = _parser()
    postlex.max_statements, postlex.limit = max_statements, limit or max_statements
    try:
        tree = lark.parse(text if text.endswith("\n") else text + "\n")
    except UnexpectedInput as e:
        raise _syntax_error(e, source, postlex) from None
    except _Limit as e:
        raise SpecSyntaxError(e.message, _tok_span(source, e.tok), e.hint) from None
    try:  # not recursive: a deep tree is refused by the depth checks below, not by Python's stack
        module = _ToAst(source).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, CnnError):
            raise e.orig_exc from None
        raise
    module.statements = postlex.statements
    return module


def _tok_span(source: Source, tok: Token) -> Span:
    return Span(source, tok.line, tok.column, tok.end_line, tok.end_column)


# ---- the tree → AST ---------------------------------------------------------------------------


def _clean(children) -> list:
    return [c for c in children if c is not None]


@v_args(inline=False, meta=True)
class _ToAst(Transformer_NonRecursive):
    def __init__(self, source: Source):
        super().__init__()
        self.source = source
        self.depth: dict[int, int] = {}  # id of an expression node → its depth, for limits.EXPRESSION

    def _span(self, meta, fallback: Token | None = None) -> Span:
        if getattr(meta, "empty", True):
            if fallback is not None:
                return self._tok(fallback)
            return Span(self.source, 1, 1)
        return Span(self.source, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok(self, tok: Token) -> Span:
        return Span(self.source, tok.line, tok.column, tok.end_line, tok.end_column)

    # top level
    def start(self, meta, ch):
        uses = [c for c in ch if isinstance(c, ast.Use)]
        defs = [c for c in ch if isinstance(c, ast.Definition)]
        return ast.Module(uses, defs)

    def use(self, meta, ch):
        return ast.Use(ch[0][1:-1], self._span(meta))

    def _definition(self, kind, meta, ch):
        name, *rest = ch
        params = rest[0] if len(rest) == 2 else []
        return ast.Definition(kind, str(name), params, rest[-1], self._tok(name))

    def network(self, meta, ch):
        return self._definition("network", meta, ch)

    def block(self, meta, ch):
        return self._definition("block", meta, ch)

    def params(self, meta, ch):
        return _clean(ch)

    def param(self, meta, ch):
        return ast.Param(str(ch[0]), ch[1] if len(ch) > 1 else None, self._tok(ch[0]))

    def body(self, meta, ch):
        return _clean(ch)

    # statements
    def labeled(self, meta, ch):
        return ast.Labeled(str(ch[0]), ch[1], self._tok(ch[0]))

    def frozen(self, meta, ch):
        inner = ch[0] if isinstance(ch[0], list) else [ch[0]]
        return ast.Frozen(inner, self._span(meta))

    def call(self, meta, ch):
        name, *args = ch
        return ast.Call(str(name), args, self._span(meta, name))

    def positional(self, meta, ch):
        return ast.Arg(None, ch[0], ch[0].span)

    def keyword(self, meta, ch):
        return ast.Arg(str(ch[0]), ch[1], self._span(meta, ch[0]))

    def negative(self, meta, ch):
        span = self._span(meta, ch[0])
        value = _int(ch[1], span) if ch[1].type == "INT" else _float(ch[1], span)
        return ast.Const(-value, span)

    def repeat_count(self, meta, ch):
        return ast.Repeat(None, None, ch[0], ch[1], self._span(meta))

    def repeat_range(self, meta, ch):
        return ast.Repeat(str(ch[0]), ch[1], ch[2], ch[3], self._span(meta))

    def if_stmt(self, meta, ch):
        cond, body, *rest = ch
        arms = [ast.Arm(cond, body, cond.span), *(c for c in rest if isinstance(c, ast.Arm))]
        orelse = rest[-1] if rest and isinstance(rest[-1], list) else []
        return ast.If(arms, orelse, self._span(meta))

    def else_if(self, meta, ch):
        return ast.Arm(ch[0], ch[1], self._span(meta))

    def else_body(self, meta, ch):
        return ch[0]

    def residual(self, meta, ch):
        short = ch[1] if len(ch) > 1 else None
        if short is None:
            return ast.Residual(ch[0], None, None, self._span(meta))
        cond, body, span = short
        return ast.Residual(ch[0], body, cond, self._span(meta), span)

    def shortcut(self, meta, ch):
        cond = ch[0] if len(ch) > 1 else None
        return (cond, ch[-1], self._span(meta))

    def merge_op(self, meta, ch):
        return ch[0]

    def merge(self, meta, ch):
        op, *branches = ch
        bodies = [b for b, _ in branches]
        spans = [s for _, s in branches]
        return ast.Merge(str(op), bodies, self._tok(op), spans)

    def branch(self, meta, ch):
        return (ch[0], self._span(meta))

    def merge_with(self, meta, ch):
        op, *names = ch
        return ast.MergeWith(str(op), [ast.Name(str(n), self._tok(n)) for n in names], self._tok(op))

    def from_stmt(self, meta, ch):
        return ast.From(ast.Name(str(ch[0]), self._tok(ch[0])), self._span(meta))

    def let(self, meta, ch):
        return ast.Let(str(ch[0]), ch[1], self._span(meta))

    # expressions
    def int(self, meta, ch):
        return ast.Const(_int(ch[0], self._tok(ch[0])), self._tok(ch[0]))

    def float(self, meta, ch):
        return ast.Const(_float(ch[0], self._tok(ch[0])), self._tok(ch[0]))

    def size(self, meta, ch):
        span = self._tok(ch[0])
        return ast.Const(tuple(_int(d, span) for d in ch[0].split("x")), span)

    def string(self, meta, ch):
        return ast.Const(ch[0][1:-1], self._tok(ch[0]))

    def true(self, meta, ch):
        return ast.Const(True, self._span(meta))

    def false(self, meta, ch):
        return ast.Const(False, self._span(meta))

    def name(self, meta, ch):
        return ast.Name(str(ch[0]), self._tok(ch[0]))

    def in_attr(self, meta, ch):
        return ast.InAttr(str(ch[0]), self._span(meta, ch[0]))

    def tuple(self, meta, ch):
        items = _clean(ch)
        return self._deep(ast.TupleExpr(items, self._span(meta)), *items)

    def func(self, meta, ch):
        args = _clean(ch[1:])
        return self._deep(ast.Func(str(ch[0]), args, self._span(meta, ch[0])), *args)

    def _deep(self, node, *children):
        """Records the node's depth, and refuses an expression deeper than limits.EXPRESSION: the
        checker, the code generator and Python's compiler of the generated code all recurse on it."""
        depth = 1 + max((self.depth.get(id(c), 1) for c in children), default=0)
        if depth > limits.EXPRESSION:
            raise SpecSyntaxError(f"this expression nests more than {limits.EXPRESSION} operations deep",
                                  node.span, "split it with `let`")
        self.depth[id(node)] = depth
        return node

    def _fold(self, op, items, meta):
        node = items[0]
        for item in items[1:]:
            node = self._deep(ast.BinOp(op, node, item, self._span(meta)), node, item)
        return node

    def or_(self, meta, ch):
        return self._fold("or", ch, meta)

    def and_(self, meta, ch):
        return self._fold("and", ch, meta)

    def not_(self, meta, ch):
        return self._deep(ast.Unary("not", ch[0], self._span(meta)), ch[0])

    def compare(self, meta, ch):
        # a < b < c means a < b and b < c, as in Python
        if len(ch) == 1:
            return ch[0]
        parts = [self._deep(ast.BinOp(str(ch[i]), ch[i - 1], ch[i + 1], self._span(meta)), ch[i - 1], ch[i + 1])
                 for i in range(1, len(ch), 2)]
        return self._fold("and", parts, meta)

    def binop(self, meta, ch):
        node = ch[0]
        for i in range(1, len(ch), 2):
            node = self._deep(ast.BinOp(str(ch[i]), node, ch[i + 1], self._span(meta)), node, ch[i + 1])
        return node

    def neg(self, meta, ch):
        return self._deep(ast.Unary("-", ch[1], self._span(meta, ch[0])), ch[1])

    def pos(self, meta, ch):
        return ch[1]


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
    "__ANON_0": "`..`",
}


def _word(term: str) -> str:
    if term in _WORDS:
        return _WORDS[term]
    if term.isupper() and term.isalpha():
        return f"`{term.lower()}`"
    return term.lower()


def _expected(terms) -> str:
    words = sorted({_word(t) for t in terms if not t.startswith("__")})
    if not words:
        return ""
    if len(words) > 6:
        words = words[:6] + ["..."]
    return "expected " + (words[0] if len(words) == 1 else "one of " + ", ".join(words))


def _syntax_error(e: UnexpectedInput, source: Source, postlex: _PostLex) -> SpecSyntaxError:
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
