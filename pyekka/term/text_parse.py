"""Erlang term text in: :func:`parse_term` and :func:`parse_terms`.

Parsing follows ``erl_scan`` + ``erl_parse:parse_term/1`` of OTP 25 for the term
subset of Erlang: integers (``16#FF``, ``2#101``, ``$a``, ``1_000``), floats, atoms
(bare, quoted with every escape, ``true``/``false`` -> ``True``/``False``), strings
(charlists; adjacent strings concatenate), binaries with bit syntax segments
(``<<"abc">>``, ``<<1,2:3>>``, ``<<"x"/utf8>>``, ``<<1.5/float>>``,
``<<16#ABC:12/little>>``, ``<<<<1>>/binary, 2>>``), tuples, proper and improper
lists, maps (later duplicate keys win, as in Erlang), ``fun M:F/A``, unary ``-``/``+``
on numbers, parentheses around a term, ``%`` comments and an optional trailing
``.``. As in Erlang, a string segment without a type is a list of 8-bit integers:
``<<"é">>`` is the single byte 233 and characters above 255 are truncated to their
low 8 bits; write ``<<"é"/utf8>>`` for UTF-8. Pids, ports, references and local funs
have no source syntax and are not parsed. Nesting deeper than ``max_depth`` (binaries
in binaries: 100), and binary literals over 16 MiB, are refused. Every failure raises
:class:`~pyekka.term.errors.TermSyntaxError` with a 1-based line and column (columns
count characters, a tab is one column, as in ``erl_scan``).

The tokens come from :mod:`pyekka.term.text_scan` and binary literals are built
with :mod:`pyekka.term.text_bits`. Parsing is iterative: deep terms never raise
``RecursionError``.
"""

from __future__ import annotations

from typing import Any

from pyekka.term.errors import TermSyntaxError
from pyekka.term.text_bits import BitWriter, SegmentSpec, put_value, type_settings
from pyekka.term.text_scan import (
    ATOM,
    DOT,
    EOF,
    FLOAT,
    INT,
    PUNCT,
    RESERVED,
    STRING,
    VAR,
    Scanner,
    error_at,
)
from pyekka.term.types import (
    Atom,
    BitString,
    ExportFun,
    ImproperList,
    exact_equal,
    map_from_pairs,
)

__all__ = ["DEFAULT_MAX_DEPTH", "parse_term", "parse_terms"]

DEFAULT_MAX_DEPTH = 1000
"""Deepest nesting of tuples, lists, maps and binaries that the parser accepts."""

_MAX_BINARY_NESTING = 100  # binaries in binaries are parsed recursively

# Kinds of open containers on the parser's stack.
_TUPLE, _LIST, _LIST_TAIL, _MAP_KEY, _MAP_VALUE, _PAREN = range(6)


def _atom_value(name: str) -> Any:
    if name == "true":
        return True
    if name == "false":
        return False
    return Atom(name)


def _make_improper(items: list, tail: Any) -> Any:
    """``[items | tail]`` in pyekka's mapping."""
    if type(tail) is list:
        return items + tail
    if type(tail) is ImproperList:
        return ImproperList(items + list(tail.items), tail.tail)
    return ImproperList(items, tail)


def _make_map(pairs: list[tuple[Any, Any]]) -> Any:
    """A map literal's value; a later pair replaces an earlier one with an equal key."""
    out: dict = {}
    stored: dict = {}
    try:
        for k, v in pairs:
            if k in out:
                if not exact_equal(stored[k], k):
                    return _make_map_slow(pairs)
                del out[k], stored[k]
            out[k] = v
            stored[k] = k
    except TypeError:  # unhashable key
        return _make_map_slow(pairs)
    return out


def _make_map_slow(pairs: list[tuple[Any, Any]]) -> Any:
    kept: list[tuple[Any, Any]] = []
    for k, v in pairs:
        kept = [kv for kv in kept if not exact_equal(kv[0], k)]
        kept.append((k, v))
    return map_from_pairs(kept)


class _Parser:
    """Builds terms from the scanner's tokens with an explicit stack."""

    __slots__ = ("max_depth", "scanner", "text", "tok")

    def __init__(self, text: str, max_depth: int) -> None:
        self.text = text
        self.scanner = Scanner(text)
        self.max_depth = max_depth
        self.tok = self.scanner.next_token()

    def advance(self) -> tuple:
        tok = self.tok
        self.tok = self.scanner.next_token()
        return tok

    def error(self, message: str, tok: tuple | None = None) -> TermSyntaxError:
        return error_at(self.text, message, (tok or self.tok)[2])

    def unexpected(self, tok: tuple | None = None) -> TermSyntaxError:
        tok = tok or self.tok
        kind = tok[0]
        if kind == EOF:
            return self.error("unexpected end of input", tok)
        source = self.text[tok[2] : tok[3]]
        if len(source) > 40:
            source = source[:37] + "..."
        if kind in (PUNCT, DOT, RESERVED):
            source = f"'{source}'"
        return self.error(f"syntax error before: {source}", tok)

    def expect(self, punct: str) -> None:
        tok = self.tok
        if tok[0] != PUNCT or tok[1] != punct:
            raise self.unexpected()
        self.advance()

    def at(self, punct: str) -> bool:
        tok = self.tok
        return tok[0] == PUNCT and tok[1] == punct

    def term(self) -> Any:
        """Parse one term starting at the current token."""
        stack: list[list] = []  # open containers: [kind, items] (+ a map's pending key)
        while True:
            # 1. A value, or the opening of a container.
            tok = self.advance()
            kind, v = tok[0], tok[1]
            if kind in (INT, FLOAT):
                value = v
            elif kind == ATOM:
                value = _atom_value(v)
            elif kind == STRING:
                value = [ord(c) for c in self.strings(v)]
            elif kind == PUNCT:
                if v == "{" or v == "[" or v == "#" or v == "(":
                    if v == "#":
                        self.expect("{")
                    closer = {"{": "}", "[": "]", "#": "}", "(": ")"}[v]
                    if v != "(" and self.at(closer):
                        self.advance()
                        value = {"{": (), "[": [], "#": {}}[v]
                    else:
                        if len(stack) >= self.max_depth:
                            raise self.error("term nested too deeply", tok)
                        frame = {"{": _TUPLE, "[": _LIST, "#": _MAP_KEY, "(": _PAREN}[v]
                        stack.append([frame, []])
                        continue
                elif v == "<<":
                    value = self.binary(tok, len(stack) + 1, 1)
                elif v == "-" or v == "+":
                    value = self.signed_number(tok)
                else:
                    raise self.unexpected(tok)
            elif kind == RESERVED and v == "fun":
                value = self.export_fun()
            elif kind == VAR:
                raise self.error(f"variable '{v}' is not a term", tok)
            else:
                raise self.unexpected(tok)
            # 2. Attach the value to the innermost open container; close containers.
            while stack:
                frame = stack[-1]
                fkind = frame[0]
                tok = self.advance()
                sep = tok[1] if tok[0] == PUNCT else None
                if fkind in (_TUPLE, _LIST):
                    frame[1].append(value)
                    if sep == ",":
                        break
                    if fkind == _LIST and sep == "|":
                        frame[0] = _LIST_TAIL
                        break
                    if sep == ("}" if fkind == _TUPLE else "]"):
                        stack.pop()
                        value = tuple(frame[1]) if fkind == _TUPLE else frame[1]
                        continue
                elif fkind == _LIST_TAIL:
                    if sep == "]":
                        stack.pop()
                        value = _make_improper(frame[1], value)
                        continue
                elif fkind == _MAP_KEY:
                    if sep == "=>":
                        frame[0] = _MAP_VALUE
                        frame.append(value)
                        break
                else:
                    if fkind == _MAP_VALUE:
                        frame[1].append((frame.pop(), value))
                        if sep == ",":
                            frame[0] = _MAP_KEY
                            break
                        if sep == "}":
                            stack.pop()
                            value = _make_map(frame[1])
                            continue
                    elif sep == ")":  # _PAREN
                        stack.pop()
                        continue
                raise self.unexpected(tok)
            else:
                return value

    def strings(self, first: str) -> str:
        """Adjacent string literals, concatenated."""
        parts = [first]
        while self.tok[0] == STRING:
            parts.append(self.advance()[1])
        return "".join(parts)

    def signed_number(self, sign_tok: tuple) -> int | float:
        """``-N`` / ``+N`` (the sign is consumed), the number possibly in parentheses."""
        opened = 0
        while self.at("("):
            self.advance()
            opened += 1
        tok = self.advance()
        if tok[0] != INT and tok[0] != FLOAT:
            if tok[0] == EOF:
                raise self.unexpected(tok)
            raise self.error(f"'{sign_tok[1]}' must be followed by a number", sign_tok)
        for _ in range(opened):
            self.expect(")")
        return -tok[1] if sign_tok[1] == "-" else tok[1]

    def number(self) -> tuple[int | float, tuple]:
        """A number literal: ``N``, ``-N``, ``+N``, ``(N)``; and its first token."""
        first = self.tok
        if first[0] == PUNCT and first[1] in ("-", "+"):
            self.advance()
            return self.signed_number(first), first
        opened = 0
        while self.at("("):
            self.advance()
            opened += 1
        tok = self.advance()
        if tok[0] != INT and tok[0] != FLOAT:
            if tok[0] == PUNCT and tok[1] in ("-", "+"):
                value = self.signed_number(tok)
            else:
                raise self.unexpected(tok)
        else:
            value = tok[1]
        for _ in range(opened):
            self.expect(")")
        return value, first

    def export_fun(self) -> ExportFun:
        """``fun M:F/A`` (after ``fun``); reserved words are allowed as names."""
        module = self.fun_name()
        self.expect(":")
        function = self.fun_name()
        self.expect("/")
        tok = self.advance()
        if tok[0] != INT or self.text[tok[2]] == "$":
            raise self.unexpected(tok)
        if not 0 <= tok[1] <= 255:
            raise self.error("fun arity must be 0..255", tok)
        return ExportFun(Atom(module), Atom(function), tok[1])

    def fun_name(self) -> str:
        tok = self.advance()
        if tok[0] != ATOM and tok[0] != RESERVED:
            raise self.unexpected(tok)
        return tok[1]

    # -- binaries ---------------------------------------------------------

    def binary(self, open_tok: tuple, depth: int, level: int) -> bytes | BitString:
        """A binary literal after its ``<<``, ``level`` binaries deep."""
        if depth > self.max_depth or level > _MAX_BINARY_NESTING:
            raise self.error("term nested too deeply", open_tok)
        out = BitWriter()
        if self.at(">>"):
            self.advance()
            return b""
        while True:
            self.segment(out, depth, level)
            tok = self.advance()
            if tok[0] == PUNCT and tok[1] == ">>":
                return out.value()
            if tok[0] != PUNCT or tok[1] != ",":
                raise self.unexpected(tok)

    def segment(self, out: BitWriter, depth: int, level: int) -> None:
        """One ``Value:Size/Types`` segment, appended to ``out``."""
        start = self.tok
        kind = start[0]
        value: Any
        if kind == STRING:
            self.advance()
            value = self.strings(start[1])
        elif kind == PUNCT and start[1] == "<<":
            self.advance()
            value = self.binary(start, depth + 1, level + 1)
        else:
            value, _ = self.number()
        size: int | None = None
        if self.at(":"):
            self.advance()
            size_value, size_tok = self.number()
            if type(size_value) is not int or size_value < 0:
                raise self.error("segment size must be a non-negative integer", size_tok)
            size = size_value
        spec = self.type_spec() if self.at("/") else None
        try:
            if spec is None and size is None and type(value) is str:
                out.put_bytes(bytes(ord(c) & 0xFF for c in value))  # Latin-1, as Erlang
                return
            stype, ssize, unit, endian = (spec or SegmentSpec()).resolve(size)
            if type(value) is not str:
                put_value(out, value, stype, ssize, unit, endian)
            elif value:
                for ch in value:
                    put_value(out, ord(ch), stype, ssize, unit, endian)
            else:  # an empty string still has to be a valid segment
                put_value(BitWriter(), 0, stype, ssize, unit, endian)
        except (ValueError, OverflowError) as exc:
            raise self.error(f"bad binary segment: {exc}", start) from None

    def type_spec(self) -> SegmentSpec:
        """The ``/type-endian-sign-unit:N`` list after a segment's ``/``."""
        self.advance()  # "/"
        spec = SegmentSpec()
        while True:
            tok = self.advance()
            if tok[0] != ATOM:
                raise self.unexpected(tok)
            name = tok[1]
            if name == "unit":
                self.expect(":")
                unit_tok = self.advance()
                if unit_tok[0] != INT or not 1 <= unit_tok[1] <= 256:
                    raise self.error("unit must be an integer 1..256", unit_tok)
                settings: tuple | None = (("unit", unit_tok[1]),)
            else:
                settings = type_settings(name)
                if settings is None:
                    raise self.error(f"unknown bit type '{name}'", tok)
            try:
                for field, value in settings:
                    spec.merge(field, value)
            except ValueError as exc:
                raise self.error(str(exc), tok) from None
            if not self.at("-"):
                return spec
            self.advance()


def parse_term(text: str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """The term written in ``text`` (Erlang syntax; an optional final ``.``)."""
    if not isinstance(text, str):
        raise TypeError(f"parse_term needs str, not {type(text).__name__}")
    parser = _Parser(text, max_depth)
    value = parser.term()
    if parser.tok[0] == DOT:
        parser.advance()
    if parser.tok[0] != EOF:
        raise parser.error("unexpected text after the term", parser.tok)
    return value


def parse_terms(text: str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> list:
    """Every ``Term.`` form in ``text``, as ``file:consult/1`` reads a file."""
    if not isinstance(text, str):
        raise TypeError(f"parse_terms needs str, not {type(text).__name__}")
    parser = _Parser(text, max_depth)
    terms = []
    while parser.tok[0] != EOF:
        terms.append(parser.term())
        if parser.tok[0] != DOT:
            if parser.tok[0] == EOF:
                raise parser.error("missing '.' after the last term")
            raise parser.unexpected()
        parser.advance()
    return terms
