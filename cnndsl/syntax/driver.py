"""Lark's lexer and LALR tables, driven by one tight loop: the same tokens, reductions and AST, in half the time.

Lark's `parse` spends most of a large spec in per-token bookkeeping (a line counter object, a lexer
state, a parser state whose `feed_token` looks up its tables on every call). This loop reads the very
regular expression, keyword callback, tables and rule callbacks that Lark built, so it accepts exactly
what Lark accepts and builds the same values. It only knows the happy path: at the first token it
cannot match or shift it stops, and the caller parses the text again with Lark itself, whose error
messages (what was expected, where) the rest of the parser is written against.
"""

from __future__ import annotations

from collections.abc import Iterator

from lark import Lark, Token
from lark.parsers.lalr_analysis import Shift


class Unsure(Exception):
    """The text has an error here, or the grammar is one this loop was not made for: let Lark parse it."""


class Driver:
    """What the loop reads from a Lark parser (`lexer="basic"`, LALR, a post-lexer, an inline transformer)."""

    def __init__(self, lark: Lark):
        front = lark.parser
        lexer = front.lexer.lexer  # PostLexConnector → BasicLexer
        scanner = lexer.scanner
        if len(scanner._mres) != 1 or set(lexer.callback) - {"NAME"}:
            raise Unsure("more than one regular expression, or lexer callbacks other than keywords")
        self.match = scanner._mres[0].match
        self.keywords = lexer.callback.get("NAME")  # a NAME that is a keyword becomes that keyword's token
        self.ignore = lexer.ignore_types
        self.newline = lexer.newline_types
        self.postlex = front.lexer.postlexer
        parser = front.parser.parser
        self.states = parser.parse_table.states
        self.start = parser.parse_table.start_states["start"]
        self.end = parser.parse_table.end_states["start"]
        self.callbacks = parser.callbacks
        # each rule's length, name and callback, looked up once instead of at every reduction
        self.rules = {rule: (len(rule.expansion), rule.origin.name, self.callbacks[rule])
                      for rule in self.callbacks if not isinstance(rule, str)}

    def tokens(self, text: str) -> Iterator[Token]:
        """The tokens of `text` as Lark's basic lexer makes them (positions included); Unsure where none matches."""
        match, ignore, newline, keywords = self.match, self.ignore, self.newline, self.keywords
        pos, line, line_start, size = 0, 1, 0, len(text)
        while pos < size:
            m = match(text, pos)
            if m is None:
                raise Unsure(pos)
            kind, value, end = m.lastgroup, m.group(), m.end()
            end_line, end_start = line, line_start
            if kind in newline:
                count = value.count("\n")
                if count:
                    end_line, end_start = line + count, pos + value.rindex("\n") + 1
            if kind not in ignore:
                tok = Token(kind, value, pos, line, pos - line_start + 1, end_line, end - end_start + 1, end)
                if kind == "NAME" and keywords is not None:
                    tok = keywords(tok)
                yield tok
            pos, line, line_start = end, end_line, end_start

    def parse(self, text: str):
        """The value of the start rule (the AST the transformer builds); Unsure at an error."""
        states, callbacks, rules, shift = self.states, self.callbacks, self.rules, Shift
        state_stack, value_stack = [self.start], []
        last = None
        for tok in self.postlex.process(self.tokens(text)):
            last = tok
            kind = tok.type
            while True:
                action, target = states[state_stack[-1]].get(kind) or _NONE
                if action is shift:
                    state_stack.append(target)
                    value_stack.append(callbacks[kind](tok) if kind in callbacks else tok)
                    break
                if action is None:
                    raise Unsure(tok)
                size, name, callback = rules[target]  # a reduction, written out: the loop's hot path
                if size:
                    children = value_stack[-size:]
                    del state_stack[-size:]
                    del value_stack[-size:]
                else:
                    children = []
                value_stack.append(callback(children))
                state_stack.append(states[state_stack[-1]][name][1])
        end = Token.new_borrow_pos("$END", "", last) if last is not None else Token("$END", "", 0, 1, 1)
        while True:
            action, target = states[state_stack[-1]].get("$END") or _NONE
            if action is None or action is shift:
                raise Unsure(end)
            size, name, callback = rules[target]
            children = value_stack[-size:] if size else []
            del state_stack[len(state_stack) - size:]
            del value_stack[len(value_stack) - size:]
            value_stack.append(callback(children))
            state_stack.append(states[state_stack[-1]][name][1])
            if state_stack[-1] == self.end:
                return value_stack[-1]


_NONE = (None, None)
