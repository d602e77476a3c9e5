"""Lark's lexer and LALR tables, driven by one tight loop: the same tokens, reductions and AST, faster.

Lark's `parse` spends most of a large spec in per-token bookkeeping (a line counter object, a lexer
state, a parser state whose `feed_token` looks up its tables on every call). This loop reads the very
regular expression, keyword callback, tables and rule callbacks that Lark built, so it accepts exactly
what Lark accepts and builds the same values. It only knows the happy path: at the first token it
cannot match or shift it stops, and the caller parses the text again with Lark itself, whose error
messages (what was expected, where) the rest of the parser is written against.

Two shortcuts keep the values equal. The table is copied once with each reduction's length, rule name
and callback in place of the rule (a Rule hashes in Python). And a rule whose name starts with `_` is
inlined into its parent by Lark's child filters, which read only its `children`: instead of a Tree
made through the transformer's `__default__`, such a rule here makes an `_Inlined`, which has nothing
else (tests/test_fuzz.py compares the two parsers' values on mutated specs and random texts).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache, partial
from operator import itemgetter

from lark import Lark, Token


class Unsure(Exception):
    """The text has an error here, or the grammar is one this loop was not made for: let Lark parse it."""


class _Inlined:
    """The value of a `_rule`, which its parent's child filter splices in: only its children."""

    __slots__ = ("children",)

    def __init__(self, children: list):
        self.children = children


class Driver:
    """What the loop reads from a Lark parser (`lexer="basic"`, LALR, a post-lexer, an inline transformer)."""

    def __init__(self, lark: Lark):
        """Reads Lark's internals: where another Lark has moved them, the error (ImportError, AttributeError,
        KeyError) tells the caller to parse with Lark alone."""
        from lark.parsers.lalr_analysis import Shift

        front = lark.parser
        lexer = front.lexer.lexer  # PostLexConnector → BasicLexer
        scanner = lexer.scanner
        if len(scanner._mres) != 1 or set(lexer.callback) - {"NAME"}:
            raise Unsure("more than one regular expression, or lexer callbacks other than keywords")
        self.match = scanner._mres[0].match
        self.keywords = _keywords(lexer.callback.get("NAME"))  # a NAME that is a keyword: that keyword's token
        self.ignore = lexer.ignore_types
        self.newline = lexer.newline_types
        self.postlex = front.lexer.postlexer
        self.token = Token._future_new  # Token(...) less its check for a deprecated keyword
        parser = front.parser.parser
        table = parser.parse_table
        self.start, self.end = table.start_states["start"], table.end_states["start"]
        self.callbacks = parser.callbacks  # terminals' and rules' callbacks
        reductions = {rule: (len(rule.expansion), rule.origin.name, _direct(_inlining(rule.origin.name, callback)))
                      for rule, callback in self.callbacks.items() if not isinstance(rule, str)}
        # state → token → (the state a shift goes to, None) or (None, (length, rule name, callback))
        self.states = {state: {kind: (target, None) if action is Shift else (None, reductions[target])
                               for kind, (action, target) in actions.items()}
                       for state, actions in table.states.items()}

    def tokens(self, text: str) -> Iterator[Token]:
        """The tokens of `text` as Lark's basic lexer makes them (positions included); Unsure where none matches."""
        match, ignore, newline, keywords, token = self.match, self.ignore, self.newline, self.keywords, self.token
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
                if kind == "NAME":
                    kind = keywords.get(value, kind)
                yield token(kind, value, pos, line, pos - line_start + 1, end_line, end - end_start + 1, end)
            pos, line, line_start = end, end_line, end_start

    def parse(self, text: str):
        """The value of the start rule (the AST the transformer builds); Unsure at an error."""
        states, callbacks = self.states, self.callbacks
        state_stack, value_stack = [self.start], []
        last = None
        for tok in self.postlex.process(self.tokens(text)):
            last = tok
            kind = tok.type
            while True:
                target, reduction = states[state_stack[-1]].get(kind) or _NONE
                if target is not None:  # a shift
                    state_stack.append(target)
                    value_stack.append(callbacks[kind](tok) if kind in callbacks else tok)
                    break
                if reduction is None:
                    raise Unsure(tok)
                size, name, callback = reduction  # _reduce, written out: the loop's hot path
                if size:
                    children = value_stack[-size:]
                    del state_stack[-size:]
                    del value_stack[-size:]
                else:
                    children = []
                value_stack.append(callback(children))
                state_stack.append(states[state_stack[-1]][name][0])
        end = Token.new_borrow_pos("$END", "", last) if last is not None else Token("$END", "", 0, 1, 1)
        while True:
            target, reduction = states[state_stack[-1]].get("$END") or _NONE
            if reduction is None:
                raise Unsure(end)
            _reduce(states, reduction, state_stack, value_stack)
            if state_stack[-1] == self.end:
                return value_stack[-1]


_NONE = (None, None)


def _reduce(states: dict, reduction: tuple, state_stack: list, value_stack: list) -> None:
    """One reduction: the rule's children off the stacks, its value and the state after it on."""
    size, name, callback = reduction
    children = value_stack[len(value_stack) - size:]
    del state_stack[len(state_stack) - size:]
    del value_stack[len(value_stack) - size:]
    value_stack.append(callback(children))
    state_stack.append(states[state_stack[-1]][name][0])


def _inlining(name: str, callback):
    """A `_rule`'s callback making an _Inlined instead of a Tree; other callbacks as Lark made them."""
    from lark.parse_tree_builder import ChildFilterLALR, ChildFilterLALR_NoPlaceholders

    if not name.startswith("_"):
        return callback
    if _makes_tree(callback, name):
        return _Inlined
    if isinstance(callback, (ChildFilterLALR_NoPlaceholders, ChildFilterLALR)) and _makes_tree(
            callback.node_builder, name):
        inlined = object.__new__(type(callback))
        inlined.__dict__.update(callback.__dict__, node_builder=_Inlined)  # the same filter, another builder
        return inlined
    return callback


def _makes_tree(callback, name: str) -> bool:
    """Lark's default for a rule without a transformer method: partial(default_callback, name)."""
    return isinstance(callback, partial) and callback.args == (name,) and not callback.keywords


def _keywords(callback) -> dict[str, str]:
    """Lark's keyword callback (a scanner of the keyword strings, fully matched) as a dict: keyword → its terminal.
    Unsure where a keyword is a pattern or has flags (a case-insensitive "if"i), which a dict cannot match."""
    if callback is None:
        return {}
    from lark.lexer import PatternStr, UnlessCallback

    if type(callback) is not UnlessCallback:
        raise Unsure("a NAME callback other than Lark's keywords")
    terminals = callback.scanner.terminals
    if any(type(t.pattern) is not PatternStr or t.pattern.flags for t in terminals):
        raise Unsure("keywords with flags")
    return {t.pattern.value: t.name for t in reversed(terminals)}  # the first of equal strings wins, as in Lark


def _direct(callback):
    """Lark's chain for a rule with a transformer method (child filter → `?rule`'s single-child expansion →
    visit wrapper → v_args wrapper → method: four or five Python calls a reduction) as one closure that
    picks the children and calls the method. A chain of any other shape is returned as it is."""
    from lark.parse_tree_builder import (
        ChildFilterLALR,
        ChildFilterLALR_NoPlaceholders,
        ExpandSingleChild,
    )
    from lark.visitors import _vargs_inline, _VArgsWrapper

    rest, chosen = callback, None
    if type(rest) in (ChildFilterLALR, ChildFilterLALR_NoPlaceholders):
        chosen, rest = rest, rest.node_builder
    single = type(rest) is ExpandSingleChild
    if single:
        rest = rest.node_builder
    wrapped = getattr(rest, "__wrapped__", None)
    if (getattr(rest, "__code__", None) is not _visit_code()
            or type(wrapped) is not _VArgsWrapper or wrapped.visit_wrapper is not _vargs_inline):
        return callback
    method = wrapped.base_func
    if chosen is None:
        return (lambda c: c[0] if len(c) == 1 else method(*c)) if single else (lambda c: method(*c))
    picks = _picks(chosen)
    if picks is None:  # the filter splices `_rule`s or adds placeholders: it stays, calling the method
        kept = object.__new__(type(chosen))
        kept.__dict__.update(chosen.__dict__, node_builder=_direct(ExpandSingleChild(rest) if single else rest))
        return kept
    if len(picks) == 1:
        (i,) = picks
        return (lambda c: c[i]) if single else (lambda c: method(c[i]))
    if not picks:
        return lambda c: method()
    pick = itemgetter(*picks)
    return lambda c: method(*pick(c))


@lru_cache(maxsize=1)
def _visit_code():
    """The code of Lark's visit wrapper (the closure `apply_visit_wrapper` makes), to recognise one."""
    from lark.parse_tree_builder import apply_visit_wrapper
    from lark.visitors import _vargs_inline

    return apply_visit_wrapper(_visit_code, "", _vargs_inline).__code__


def _picks(child_filter) -> tuple[int, ...] | None:
    """The children a filter keeps, where it only keeps some (no `_rule` spliced in, no None placeholders)."""
    if getattr(child_filter, "append_none", 0):
        return None
    picks = []
    for i, expand, *nones in child_filter.to_include:
        if expand or any(nones):
            return None
        picks.append(i)
    return tuple(picks)
