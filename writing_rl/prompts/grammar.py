"""A syntax check for GBNF grammars, following llama.cpp's own grammar parser rule for rule.

llama.cpp parses a grammar only when a request arrives; a bad one fails every request and has
killed llama-cpp-python's server. llama-cpp-python (0.3) checks nothing before that either, so the
check is done here, when the prompt file is loaded, with the line and column of the problem.

Checked: `name ::= ...` rules (names are letters, digits and `-`), alternatives with `|`, string
literals and character classes terminated and with known escapes, balanced parentheses, `*`, `+`,
`?` and `{m,n}` after an item, one rule per line (continued inside parentheses or after `|`),
every referenced rule defined, and a `root` rule.
"""

from __future__ import annotations

_ESCAPES = {"x": 2, "u": 4, "U": 8, "t": 0, "r": 0, "n": 0, "\\": 0, '"': 0, "[": 0, "]": 0}


class GrammarError(ValueError):
    """A grammar llama.cpp would refuse; the message gives line, column and the problem."""


def _is_word_char(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "-")


class _Checker:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.defined: set[str] = set()
        self.referenced: dict[str, int] = {}

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def error(self, problem: str, pos: int | None = None) -> GrammarError:
        pos = self.pos if pos is None else pos
        line = self.text.count("\n", 0, pos) + 1
        column = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return GrammarError(f"grammar line {line}, column {column}: {problem}")

    def space(self, newline_ok: bool) -> None:
        while self.peek():
            char = self.peek()
            if char in " \t" or (newline_ok and char in "\r\n"):
                self.pos += 1
            elif char == "#":
                while self.peek() and self.peek() not in "\r\n":
                    self.pos += 1
            else:
                return

    def name(self) -> str:
        start = self.pos
        while _is_word_char(self.peek()):
            self.pos += 1
        if self.pos == start:
            raise self.error(f"expecting a rule name, found {self.peek() or 'the end'!r}")
        return self.text[start:self.pos]

    def check(self) -> None:
        self.space(newline_ok=True)
        if not self.peek():
            raise self.error("the grammar is empty")
        while self.peek():
            self.rule()
        for name, pos in self.referenced.items():
            if name not in self.defined:
                raise self.error(f"rule {name!r} is used but never defined", pos)
        if "root" not in self.defined:
            raise self.error("no `root` rule: the grammar starts at `root ::= ...`", 0)

    def rule(self) -> None:
        self.defined.add(self.name())
        self.space(newline_ok=False)
        if not self.text.startswith("::=", self.pos):
            raise self.error("expecting `::=` after the rule name")
        self.pos += 3
        self.space(newline_ok=True)
        self.alternates(nested=False)
        if self.peek() and self.peek() not in "\r\n":
            hint = " (rule names are letters, digits and `-`)" if self.peek() == "_" else ""
            raise self.error(f"unexpected {self.peek()!r}; a rule ends at the end of its line{hint}")
        self.space(newline_ok=True)

    def alternates(self, nested: bool) -> None:
        self.sequence(nested)
        while self.peek() == "|":
            self.pos += 1
            self.space(newline_ok=True)
            self.sequence(nested)

    def sequence(self, nested: bool) -> None:
        has_item = False
        while self.peek():
            char = self.peek()
            if char == '"':
                self.literal('"', "string literal")
            elif char == "[":
                self.literal("]", "character class")
            elif _is_word_char(char):
                start = self.pos
                self.referenced.setdefault(self.name(), start)
            elif char == "(":
                self.group()
            elif char == ".":
                self.pos += 1
            elif char in "*+?{":
                if not has_item:
                    raise self.error(f"{char!r} must follow an item it repeats")
                if char == "{":
                    self.repetition()
                self.pos += 1
            else:
                return
            has_item = True
            self.space(newline_ok=nested)

    def literal(self, closing: str, what: str) -> None:
        start = self.pos
        self.pos += 1
        while self.peek() != closing:
            if not self.peek():
                raise self.error(f"{what} is never closed with {closing!r}", start)
            self.char()
        self.pos += 1

    def char(self) -> None:
        if self.peek() != "\\":
            self.pos += 1
            return
        escape = self.peek(1)
        if escape not in _ESCAPES:
            raise self.error(f"unknown escape \\{escape}")
        digits = self.text[self.pos + 2:self.pos + 2 + _ESCAPES[escape]]
        if len(digits) != _ESCAPES[escape] or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise self.error(f"\\{escape} needs {_ESCAPES[escape]} hex digits")
        self.pos += 2 + _ESCAPES[escape]

    def group(self) -> None:
        start = self.pos
        self.pos += 1
        self.space(newline_ok=True)
        self.alternates(nested=True)
        if self.peek() != ")":
            raise self.error("`(` is never closed with `)`", start)
        self.pos += 1

    def repetition(self) -> None:
        """`{m}`, `{m,}` or `{m,n}`; leaves pos on the closing brace."""
        start = self.pos
        body_end = self.text.find("}", start)
        body = self.text[start + 1:body_end].replace(" ", "") if body_end != -1 else ""
        low, _, high = body.partition(",")
        if body_end == -1 or not low.isdigit() or (high and not high.isdigit()) or \
                (high and int(high) < int(low)):
            raise self.error("a repetition is written {m}, {m,} or {m,n} with m <= n", start)
        self.pos = body_end


def check_gbnf(text: str) -> None:
    """Raise GrammarError for a grammar llama.cpp's parser would refuse."""
    _Checker(text).check()
