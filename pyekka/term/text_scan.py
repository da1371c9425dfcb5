"""The tokenizer of Erlang term text, following OTP 25's ``erl_scan``.

:class:`Scanner` turns text into tokens ``(kind, value, start, end)`` one at a
time: integers (``16#FF``, ``2#101``, ``$a``, ``1_000``), floats, atoms (bare or
quoted, with every escape), reserved words, variables, strings and punctuation,
skipping white space and ``%`` comments. ``start``/``end`` index the text, and
errors carry a 1-based line and column (:func:`error_at`: columns count
characters, a tab is one column, as in ``erl_scan``).
"""

from __future__ import annotations

import math
import re

from pyekka.term.errors import TermSyntaxError

__all__ = [
    "ATOM",
    "DOT",
    "EOF",
    "FLOAT",
    "INT",
    "PUNCT",
    "RESERVED",
    "RESERVED_WORDS",
    "STRING",
    "VAR",
    "Scanner",
    "error_at",
]

# Reserved words of OTP 25's erl_scan (``maybe``/``else`` only became keywords later).
RESERVED_WORDS = frozenset(
    (
        *("after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor"),
        *("case", "catch", "cond", "div", "end", "fun", "if", "let", "not", "of", "or"),
        *("orelse", "receive", "rem", "try", "when", "xor"),
    )
)

# Token kinds.
INT, FLOAT, ATOM, RESERVED, VAR, STRING, PUNCT, DOT, EOF = range(9)

_WHITE = re.compile(r"[\x00-\x20\x80-\xa0]+")
_COMMENT = re.compile(r"%[^\n]*")
_NAME_TAIL = r"[a-zA-Z0-9_@\xc0-\xd6\xd8-\xf6\xf8-\xff]*"
_ATOM_NAME = re.compile(r"[a-z\xdf-\xf6\xf8-\xff]" + _NAME_TAIL)
_VAR_NAME = re.compile(r"[A-Z_\xc0-\xd6\xd8-\xde]" + _NAME_TAIL)
_DECIMAL = re.compile(r"[0-9](?:_?[0-9])*")
_FRACTION = re.compile(r"\.[0-9](?:_?[0-9])*")
_EXPONENT = re.compile(r"[eE][+-]?")
_ILLEGAL_CHAR = re.compile("[\ud800-\udfff\ufffe\uffff]")
_PLAIN = {'"': re.compile(r'[^"\\]*'), "'": re.compile(r"[^'\\]*")}
_HEX = re.compile(r"[0-9a-fA-F]*")
_PUNCT2 = frozenset(("<<", ">>", "=>", ":="))
_WHITE_CHARS = frozenset(map(chr, [*range(33), *range(128, 161)]))
_ESCAPE_CHARS = {
    "n": 10,
    "r": 13,
    "t": 9,
    "v": 11,
    "b": 8,
    "f": 12,
    "e": 27,
    "s": 32,
    "d": 127,
}
_POWER2_BASES = frozenset((2, 4, 8, 16, 32))


def _digits_to_int(digits: str, base: int) -> int:
    """``int(digits, base)`` without Python's limit on the number of digits."""
    if len(digits) <= 4000 or base in _POWER2_BASES:
        return int(digits, base)
    half = len(digits) // 2
    return _digits_to_int(digits[:-half], base) * base**half + _digits_to_int(digits[-half:], base)


def _is_unicode(c: int) -> bool:
    """A code point Erlang accepts in source text (``?UNICODE`` in erl_scan)."""
    return 0 <= c < 0xD800 or 0xDFFF < c < 0xFFFE or 0xFFFF < c <= 0x10FFFF


class Scanner:
    """Splits Erlang text into tokens ``(kind, value, start, end)`` one at a time."""

    __slots__ = ("n", "pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.n = len(text)

    def error(self, message: str, index: int) -> TermSyntaxError:
        return error_at(self.text, message, index)

    def next_token(self) -> tuple:
        """The next token; ``EOF`` at the end of the text (and on every call after)."""
        text, n = self.text, self.n
        i = self.pos
        while i < n:  # white space and comments
            c = text[i]
            if c in _WHITE_CHARS:
                i = _WHITE.match(text, i).end()  # type: ignore[union-attr]
            elif c == "%":
                end = _COMMENT.match(text, i).end()  # type: ignore[union-attr]
                bad = _ILLEGAL_CHAR.search(text, i, end)
                if bad:
                    raise self.error("illegal character", bad.start())
                i = end
            else:
                break
        if i >= n:
            self.pos = i
            return (EOF, None, i, i)
        c = text[i]
        if "0" <= c <= "9":
            tok = self._number(i)
        elif c == '"':
            value, end = self._quoted(i, '"')
            tok = (STRING, value, i, end)
        elif c == "'":
            value, end = self._quoted(i, "'")
            if len(value) > 255:
                raise self.error("atom too long (more than 255 characters)", i)
            tok = (ATOM, value, i, end)
        elif c == "$":
            tok = self._char(i)
        elif m := _ATOM_NAME.match(text, i):
            name = m.group()
            if len(name) > 255:
                raise self.error("atom too long (more than 255 characters)", i)
            kind = RESERVED if name in RESERVED_WORDS else ATOM
            tok = (kind, name, i, m.end())
        elif m := _VAR_NAME.match(text, i):
            tok = (VAR, m.group(), i, m.end())
        elif c == ".":
            after = text[i + 1] if i + 1 < n else " "
            kind = DOT if after in _WHITE_CHARS or after == "%" else PUNCT
            tok = (kind, ".", i, i + 1)
        elif text[i : i + 2] in _PUNCT2:
            tok = (PUNCT, text[i : i + 2], i, i + 2)
        elif _ILLEGAL_CHAR.match(c):
            raise self.error("illegal character", i)
        else:
            tok = (PUNCT, c, i, i + 1)
        self.pos = tok[3]
        return tok

    def _number(self, i: int) -> tuple:
        text = self.text
        m = _DECIMAL.match(text, i)
        assert m is not None
        end = m.end()
        digits = m.group().replace("_", "")
        if end < self.n and text[end] == "#":
            base = int(digits) if len(digits) < 10 else 0
            if not 2 <= base <= 36:
                raise self.error(f"illegal base {digits}", i)
            j = end + 1
            while j < self.n and _based_digit(text[j], base):
                j += 1
                if j + 1 < self.n and text[j] == "_" and _based_digit(text[j + 1], base):
                    j += 1
            if j == end + 1:
                raise self.error("illegal integer", i)
            value = _digits_to_int(text[end + 1 : j].replace("_", ""), base)
            return (INT, value, i, j)
        f = _FRACTION.match(text, end)
        if f is None:
            return (INT, _digits_to_int(digits, 10), i, end)
        end = f.end()
        e = _EXPONENT.match(text, end)
        if e is not None:
            d = _DECIMAL.match(text, e.end())
            if d is None:
                raise self.error("illegal float", i)
            end = d.end()
        value = float(text[i:end].replace("_", ""))
        if not math.isfinite(value):
            raise self.error("illegal float (out of range)", i)
        return (FLOAT, value, i, end)

    def _quoted(self, start: int, quote: str) -> tuple[str, int]:
        text, n = self.text, self.n
        plain = _PLAIN[quote]
        parts: list[str] = []
        i = start + 1
        while True:
            end = plain.match(text, i).end()  # type: ignore[union-attr]
            bad = _ILLEGAL_CHAR.search(text, i, end)
            if bad:
                raise self.error("illegal character", bad.start())
            parts.append(text[i:end])
            i = end
            if i >= n:
                what = "string" if quote == '"' else "quoted atom"
                raise self.error(f"unterminated {what}", start)
            if text[i] == quote:
                return "".join(parts), i + 1
            code, i = self._escape(i, start, quote)
            parts.append(chr(code))

    def _escape(self, i: int, start: int, quote: str) -> tuple[int, int]:
        """The character of the escape sequence at ``text[i] == '\\'`` and its end."""
        text, n = self.text, self.n
        j = i + 1
        if j >= n:
            what = {"'": "quoted atom", '"': "string"}.get(quote, "character literal")
            raise self.error(f"unterminated {what}", start)
        c = text[j]
        if "0" <= c <= "7":
            k = j + 1
            while k < n and k < j + 3 and "0" <= text[k] <= "7":
                k += 1
            return int(text[j:k], 8), k
        if c == "x":
            if j + 1 < n and text[j + 1] == "{":
                k = _HEX.match(text, j + 2).end()  # type: ignore[union-attr]
                if k >= n or text[k] != "}" or k == j + 2:
                    raise self.error("illegal character in \\x{...} escape", i)
                code = int(text[j + 2 : k], 16)
                if not _is_unicode(code):
                    raise self.error("illegal character in \\x{...} escape", i)
                return code, k + 1
            hex2 = text[j + 1 : j + 3]
            if len(hex2) == 2 and _HEX.fullmatch(hex2):
                return int(hex2, 16), j + 3
            raise self.error("illegal character in \\x escape", i)
        if c == "^":
            if j + 1 >= n:
                raise self.error("unterminated escape sequence", start)
            if _ILLEGAL_CHAR.match(text[j + 1]):
                raise self.error("illegal character", j + 1)
            return ord(text[j + 1]) & 31, j + 2
        if _ILLEGAL_CHAR.match(c):
            raise self.error("illegal character", j)
        return _ESCAPE_CHARS.get(c, ord(c)), j + 1

    def _char(self, i: int) -> tuple:
        text = self.text
        j = i + 1
        if j >= self.n:
            raise self.error("unterminated character literal", i)
        if text[j] == "\\":
            code, end = self._escape(j, i, "$")
            return (INT, code, i, end)
        if _ILLEGAL_CHAR.match(text[j]):
            raise self.error("illegal character", j)
        return (INT, ord(text[j]), i, j + 1)


def _based_digit(c: str, base: int) -> bool:
    if "0" <= c <= "9":
        return ord(c) - 48 < base
    if "a" <= c <= "z":
        return ord(c) - 87 < base
    if "A" <= c <= "Z":
        return ord(c) - 55 < base
    return False


def error_at(text: str, message: str, index: int) -> TermSyntaxError:
    """The error ``message`` at ``text[index]``, with its 1-based line and column."""
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return TermSyntaxError(message, line, column)
