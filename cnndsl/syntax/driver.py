"""One tight LALR loop over the lexer and tables that Lark made of grammars/cnn.lark: Lark's tokens,
reductions and AST, faster, and without importing Lark.

Lark's `parse` spends most of a large spec in per-token bookkeeping (a line counter object, a lexer
state, a parser state whose `feed_token` looks up its tables on every call) and in a chain of wrappers
around each rule's transformer method; and importing Lark takes longer than checking ResNet-152. So
`make tables` stores, beside Lark's own tables, what this loop needs as plain data (`tables_of`): the
lexer's one regular expression and its keywords, the LALR actions, and for each rule how Lark's child
filter picks its children and which method builds its value. The loop makes exactly the values Lark
makes. It only knows the happy path: at the first token it cannot match or shift it stops (Unsure), and
the caller parses the text again with Lark, whose error messages (what was expected, where) the rest of
the parser is written against. tests/test_fuzz.py compares the two on mutated specs and random texts.

A rule whose name starts with `_` is inlined into its parent by the child filters, which read only its
`children`: such a rule here makes an `_Inlined`, which has nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from operator import itemgetter


class Unsure(Exception):
    """The text has an error here, or the grammar is one this loop was not made for: let Lark parse it."""


class Token(str):
    """A token as Lark's `Token` is (a str of its text, with its kind and place), without importing Lark."""

    __slots__ = ("type", "value", "start_pos", "line", "column", "end_line", "end_column", "end_pos")

    def __repr__(self) -> str:
        return f"Token({self.type!r}, {self.value!r})"  # as Lark's: the values of the two parsers print alike


_new_str = str.__new__


def token(type: str, value: str, start_pos: int, line: int, column: int, end_line: int, end_column: int,
          end_pos: int) -> Token:
    """A Token (a function, not Token(...): a third of the time of a class's own __new__, per token)."""
    tok = _new_str(Token, value)
    tok.type = type
    tok.value = value
    tok.start_pos = start_pos
    tok.line = line
    tok.column = column
    tok.end_line = end_line
    tok.end_column = end_column
    tok.end_pos = end_pos
    return tok


class _Inlined:
    """The value of a `_rule`, which its parent's child filter splices in: only its children."""

    __slots__ = ("children",)

    def __init__(self, children: list):
        self.children = children


class Driver:
    """The loop, made from `tables_of`'s data, a post-lexer (`process(tokens)`) and the transformer whose
    methods build the rules' values."""

    def __init__(self, data: dict, postlex, transformer):
        self.match = re.compile(data["pattern"], data["flags"]).match
        self.keywords = data["keywords"]  # a NAME that is a keyword becomes that keyword's token
        self.ignore, self.newline = frozenset(data["ignore"]), frozenset(data["newline"])
        self.postlex = postlex
        self.start, self.end = data["start"], data["end"]
        reductions = [(size, name, _callback(plan, transformer)) for size, name, plan in data["rules"]]
        # state → token → (the state a shift goes to, None) or (None, (length, rule name, callback))
        self.states = {state: {kind: (action, None) if action >= 0 else (None, reductions[~action])
                               for kind, action in actions.items()}
                       for state, actions in data["states"].items()}

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
                if kind == "NAME":
                    kind = keywords.get(value, kind)
                yield token(kind, value, pos, line, pos - line_start + 1, end_line, end - end_start + 1, end)
            pos, line, line_start = end, end_line, end_start

    def parse(self, text: str):
        """The value of the start rule (the AST the transformer builds); Unsure at an error."""
        states = self.states
        state_stack, value_stack = [self.start], []
        last = None
        for tok in self.postlex.process(self.tokens(text)):
            last = tok
            kind = tok.type
            while True:
                target, reduction = states[state_stack[-1]].get(kind) or _NONE
                if target is not None:  # a shift
                    state_stack.append(target)
                    value_stack.append(tok)
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
        while True:
            target, reduction = states[state_stack[-1]].get("$END") or _NONE
            if reduction is None:
                raise Unsure(last)
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


# ---- a rule's value, as Lark's chain of wrappers makes it ---------------------------------------


def _callback(plan: tuple, transformer):
    """What Lark calls at a reduction (child filter → `?rule`'s single-child expansion → the transformer's
    method, its children as arguments), as one closure. `plan` is (method name, single, kept, nones after):
    `kept` lists (index, splice, nones before) of the children the filter keeps, or is None for all."""
    name, single, kept, after = plan
    inlined = name.startswith("_")
    method = None if inlined else getattr(transformer, name, None)
    if inlined:
        build = _Inlined  # spliced into its parent, which reads only its children
    elif method is not None:
        build = (lambda c: c[0] if len(c) == 1 else method(*c)) if single else (lambda c: method(*c))
    elif single:  # `?rule` without a method: its one child; Lark would make a Tree of more
        build = _only_child
    else:
        raise Unsure(f"no transformer method for rule {name}: Lark would make a Tree")
    if kept is None:  # every child, as it is
        return build
    if method is None or after or any(splice or nones for _, splice, nones in kept):
        return _filtering(kept, after, build)
    picks = [i for i, _, _ in kept]  # the filter only drops children (punctuation): pick the others
    if len(picks) == 1:
        (i,) = picks
        return (lambda c: c[i]) if single else (lambda c: method(c[i]))
    if not picks:
        return lambda c: method()
    pick = itemgetter(*picks)
    return lambda c: method(*pick(c))


def _only_child(children: list):
    if len(children) != 1:
        raise Unsure("a `?rule` without a method and not one child: Lark makes a Tree of it")
    return children[0]


def _filtering(kept: list, after: int, build):
    """Lark's ChildFilterLALR, then `build`: the kept children, `_rule`s' spliced in (the first one's list
    reused, as Lark does for left recursion), None for each absent optional part."""

    def filtered(children: list):
        out = []
        for i, splice, nones in kept:
            if nones:
                out += [None] * nones
            if splice:
                if out:
                    out += children[i].children
                else:
                    out = children[i].children
            else:
                out.append(children[i])
        if after:
            out += [None] * after
        return build(out)

    return filtered


# ---- the data, read from a Lark parser ----------------------------------------------------------


def tables_of(lark) -> dict:
    """What the loop needs of a Lark parser (`lexer="basic"`, LALR, a post-lexer), as plain data.
    Unsure where Lark's parser is not one the loop can reproduce."""
    from lark.parse_tree_builder import maybe_create_child_filter
    from lark.parsers.lalr_analysis import Shift

    lexer = lark.parser.lexer.lexer  # PostLexConnector → BasicLexer
    scanner = lexer.scanner
    if len(scanner._mres) != 1 or set(lexer.callback) - {"NAME"} or lark.options.lexer_callbacks:
        raise Unsure("more than one regular expression, or lexer callbacks other than keywords")
    parser = lark.parser.parser.parser
    table = parser.parse_table
    rules = list(lark.rules)
    index = {id(rule): i for i, rule in enumerate(rules)}
    # names as plain str: Lark keeps some as its Token, which would not print as a literal
    states = {state: {str(kind): target if action is Shift else ~index[id(target)] for kind, (action, target)
                      in actions.items()} for state, actions in table.states.items()}
    return {
        "pattern": scanner._mres[0].pattern,
        "flags": scanner._mres[0].flags,
        "keywords": _keywords(lexer.callback.get("NAME")),
        "ignore": sorted(map(str, lexer.ignore_types)),
        "newline": sorted(map(str, lexer.newline_types)),
        "start": table.start_states["start"],
        "end": table.end_states["start"],
        "states": states,
        "rules": [(len(rule.expansion), str(rule.origin.name), _plan(rule, lark.options, maybe_create_child_filter))
                  for rule in rules],
    }


def _plan(rule, options, child_filter) -> tuple:
    """(method name, single-child expansion, kept children, nones after) of a rule, as Lark's ParseTreeBuilder
    decides them (tree_builder._init_builders)."""
    if rule.options.template_source is not None or options.propagate_positions or options.ambiguity == "explicit":
        raise Unsure("templates, positions or ambiguity: Lark's chain has more wrappers")
    made = child_filter(rule.expansion, rule.options.keep_all_tokens, False,
                        rule.options.empty_indices if options.maybe_placeholders else None)
    kept, after = None, 0
    if made is not None:  # partial(ChildFilterLALR, kept, after) or partial(ChildFilterLALR_NoPlaceholders, kept)
        kept = [(i, splice, nones[0] if nones else 0) for i, splice, *nones in made.args[0]]
        after = made.args[1] if len(made.args) > 1 else 0
    return (str(rule.alias or rule.origin.name), bool(rule.options.expand1 and not rule.alias), kept, after)


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
    # the first of equal strings wins, as in Lark
    return {str(t.pattern.value): str(t.name) for t in reversed(terminals)}
