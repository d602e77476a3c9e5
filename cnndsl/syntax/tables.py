"""The LALR tables of grammars/cnn.lark, analysed once and committed as Python data (`_lalr.py`).

Two sets: Lark's own (DATA, MEMO), from which Lark is made when a text has an error, for its messages; and
the parse loop's (DRIVER, see syntax/driver.py), which parses a text without importing Lark.

Lark analyses a grammar at every start unless it is given a cache, and its cache (`cache=`,
`Lark.save`) is a pickle: loading one that another user could write runs their code. So the tables
are written here as a plain Python literal, the way Lark's standalone generator writes them, and
loaded with Lark's own deserializer. Nothing is written at run time, and nothing is unpickled.
When the grammar's text differs from what the tables were made from (a grammar edited without
regenerating), or for Lark's set another Lark's version, the grammar is analysed at start-up: slower,
never wrong.

    make tables        # rewrite cnndsl/syntax/_lalr.py after editing the grammar

tests/test_language.py checks that the committed tables are those of the grammar and parse as it does.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnndsl.syntax.driver import tables_of

GRAMMAR_PLACES = (
    Path(__file__).resolve().parent.parent / "grammars" / "cnn.lark",  # installed wheel
    Path(__file__).resolve().parents[2] / "grammars" / "cnn.lark",  # source tree
)
TABLES = Path(__file__).with_name("_lalr.py")
OPTIONS = dict(parser="lalr", lexer="basic", maybe_placeholders=True)


def grammar() -> str:
    return next((p for p in GRAMMAR_PLACES if p.exists()), GRAMMAR_PLACES[-1]).read_text()


def _committed():
    try:
        from cnndsl.syntax import _lalr
    except ImportError:
        return None
    return _lalr


def lark(**runtime):
    """Lark's parser, from the committed tables when they fit this grammar and this Lark."""
    from lark import Lark
    from lark import __version__ as version

    text, committed = grammar(), _committed()
    if committed is not None and (committed.GRAMMAR, committed.LARK) == (text, version):
        return Lark._load_from_dict(committed.DATA, committed.MEMO, **runtime)
    return Lark(text, **OPTIONS, **runtime)


def driver_tables() -> dict:
    """The parse loop's tables: the committed ones when they fit this grammar, else from Lark's analysis."""
    text, committed = grammar(), _committed()
    if committed is not None and committed.GRAMMAR == text and hasattr(committed, "DRIVER"):
        return committed.DRIVER
    return tables_of(_analysed(text))


def _analysed(text: str):
    from lark import Lark

    from cnndsl.syntax.parser import _PostLex  # parser imports this module: here, not at the top

    return Lark(text, **OPTIONS, postlex=_PostLex())


def source() -> str:
    """The text of _lalr.py. Lark numbers the states differently from run to run, so two runs write
    different text for the same grammar: the test compares what the tables parse, not their text."""
    from lark import Lark
    from lark import __version__ as version
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    text = grammar()
    data, memo = Lark(text, **OPTIONS).memo_serialize([TerminalDef, Rule])
    return (f'"""LALR tables of grammars/cnn.lark, written by `make tables` (syntax/tables.py): do not edit."""\n'
            f"# ruff: noqa\n"
            f"GRAMMAR = {text!r}\n"
            f"LARK = {version!r}\n"
            f"DATA = {data!r}\n"
            f"MEMO = {memo!r}\n"
            f"DRIVER = {tables_of(_analysed(text))!r}\n")


def main() -> None:
    """Rewrites _lalr.py (`make tables`)."""
    text = source()
    tmp = TABLES.with_name(f".{TABLES.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, TABLES)  # atomic: an import never sees half a file
    print(f"wrote {TABLES} ({len(text):,} characters)")
