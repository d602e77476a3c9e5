"""The LALR tables of grammars/cnn.lark, analysed once and committed as Python data (`_lalr.py`).

Lark analyses a grammar at every start unless it is given a cache, and its cache (`cache=`,
`Lark.save`) is a pickle: loading one that another user could write runs their code. So the tables
are written here as a plain Python literal, the way Lark's standalone generator writes them, and
loaded with Lark's own deserializer. Nothing is written at run time, and nothing is unpickled.
When the grammar's text or Lark's version differs from what the tables were made from (a grammar
edited without regenerating, another Lark), the grammar is analysed as before: slower, never wrong.

    make tables        # rewrite cnndsl/syntax/_lalr.py after editing the grammar

tests/test_language.py checks that the committed tables are those of the grammar and parse as it does.
"""

from __future__ import annotations

import os
from pathlib import Path

from lark import Lark
from lark import __version__ as LARK_VERSION

GRAMMAR_PLACES = (
    Path(__file__).resolve().parent.parent / "grammars" / "cnn.lark",  # installed wheel
    Path(__file__).resolve().parents[2] / "grammars" / "cnn.lark",  # source tree
)
TABLES = Path(__file__).with_name("_lalr.py")
OPTIONS = dict(parser="lalr", lexer="basic", maybe_placeholders=True)


def grammar() -> str:
    return next((p for p in GRAMMAR_PLACES if p.exists()), GRAMMAR_PLACES[-1]).read_text()


def lark(**runtime) -> Lark:
    """The parser, from the committed tables when they fit this grammar and this Lark."""
    text = grammar()
    try:
        from cnndsl.syntax import _lalr
    except ImportError:
        _lalr = None
    if _lalr is not None and (_lalr.GRAMMAR, _lalr.LARK) == (text, LARK_VERSION):
        return Lark._load_from_dict(_lalr.DATA, _lalr.MEMO, **runtime)
    return Lark(text, **OPTIONS, **runtime)


def source() -> str:
    """The text of _lalr.py. Lark numbers the states differently from run to run, so two runs write
    different text for the same grammar: the test compares what the tables parse, not their text."""
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    text = grammar()
    data, memo = Lark(text, **OPTIONS).memo_serialize([TerminalDef, Rule])
    return (f'"""LALR tables of grammars/cnn.lark, written by `make tables` (syntax/tables.py): do not edit."""\n'
            f"# ruff: noqa\n"
            f"GRAMMAR = {text!r}\n"
            f"LARK = {LARK_VERSION!r}\n"
            f"DATA = {data!r}\n"
            f"MEMO = {memo!r}\n")


def main() -> None:
    """Rewrites _lalr.py (`make tables`)."""
    text = source()
    tmp = TABLES.with_name(f".{TABLES.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, TABLES)  # atomic: an import never sees half a file
    print(f"wrote {TABLES} ({len(text):,} characters)")
