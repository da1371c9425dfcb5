"""Erlang term text: :func:`parse_term` / :func:`parse_terms` and :func:`format_term`.

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

Formatting prints what OTP 25's ``io_lib:format("~tw", [T])`` prints (``pretty=True``:
``~tp`` on one line, with OTP's default ``latin1`` printable range, so printable
charlists and binaries appear as ``"text"``, ``<<"text">>`` and ``<<"tëxt"/utf8>>``).
Maps of at most 32 keys print in map-key order, like the VM's flatmaps. A larger map
is a hash trie in the VM, printed in an order that depends on the VM's atom table; it
is the reverse of the order ``term_to_binary`` writes, so pyekka prints such a map in
the reverse of the ``dict``'s own order: exactly the VM's text for a map decoded from
the wire, a stable order for other maps.

Where OTP's text depends on the printing VM, pyekka writes the node name instead:

* pid ``<Node.Id.Serial>``, e.g. ``<'ekka1@127.0.0.1'.85.0>`` (OTP: ``<8796.85.0>``,
  a node-table index of the printing VM; ``<0.85.0>`` for its own processes);
* port ``#Port<Node.Id>``; reference ``#Ref<Node.W2.W1.W0>`` (the id words in reverse
  ETF order, as OTP prints them);

where ``Node`` is the node atom written with the usual atom quoting. The creation is
not shown (OTP does not show it either). ``fun M:F/A`` quotes its names the way
OTP 25's ``erlang:fun_to_list/1`` does (``fun m:end/0`` but ``fun 'a@b':f/0``), though
it prints non-Latin-1 names as characters where OTP 25 prints their UTF-8 bytes; a
local fun prints as ``#Fun<Module.OldIndex.OldUniq>`` like OTP. ``None`` prints as
``undefined`` and a Python ``str`` as the UTF-8 binary it encodes to. Values with no
Erlang form raise ``TypeError`` (``ValueError`` for NaN and infinities).

Both directions are iterative: deep terms never raise ``RecursionError``.
"""

from __future__ import annotations

import math
import re
import struct
import sys
from collections.abc import Callable
from typing import Any

from pyekka.term.errors import TermSyntaxError
from pyekka.term.order import map_key_sort_key
from pyekka.term.types import (
    Atom,
    BitString,
    ErlMap,
    ExportFun,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
    exact_equal,
    map_from_pairs,
)

__all__ = ["DEFAULT_MAX_DEPTH", "format_term", "parse_term", "parse_terms"]

DEFAULT_MAX_DEPTH = 1000
"""Deepest nesting of tuples, lists, maps and binaries that the parser accepts."""

_MAX_BINARY_BITS = 8 << 24  # 16 MiB per binary literal
_MAX_BINARY_NESTING = 100  # binaries in binaries are parsed recursively
_FLATMAP_LIMIT = 32  # OTP keeps maps of up to 32 keys sorted (MAP_SMALL_MAP_LIMIT)

# Reserved words of OTP 25's erl_scan (``maybe``/``else`` only became keywords later).
_RESERVED = frozenset(
    (
        *("after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor"),
        *("case", "catch", "cond", "div", "end", "fun", "if", "let", "not", "of", "or"),
        *("orelse", "receive", "rem", "try", "when", "xor"),
    )
)


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------


class _Raw(str):
    """Literal output text on the formatter's stack (as opposed to a term)."""

    __slots__ = ()


_COMMA, _BAR = _Raw(","), _Raw("|")
_CLOSE_LIST, _CLOSE_TUPLE, _ARROW = _Raw("]"), _Raw("}"), _Raw(" => ")

_UNQUOTED_ATOM = re.compile(r"[a-z\xdf-\xf6\xf8-\xff][a-zA-Z0-9_@\xc0-\xd6\xd8-\xf6\xf8-\xff]*")
_NAMED_ESCAPES = {
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\b": "\\b",
    "\f": "\\f",
    "\x1b": "\\e",
    "\x7f": "\\d",
}


def _escape_table(quote: str) -> dict[int, str]:
    """``io_lib:write_string/2`` escapes (unicode mode) as a ``str.translate`` table."""
    table: dict[int, str] = {}
    for c in range(160):
        ch = chr(c)
        if ch == quote:
            table[c] = "\\" + quote
        elif ch == "\\":
            table[c] = "\\\\"
        elif ch in _NAMED_ESCAPES:
            table[c] = _NAMED_ESCAPES[ch]
        elif c < 32 or c >= 127:
            table[c] = f"\\{c:03o}"
    return table


_ATOM_ESCAPES = _escape_table("'")
_STRING_ESCAPES = _escape_table('"')
# Characters ``io_lib`` calls printable in the default latin1 range (~p strings).
_PRINTABLE = frozenset([*range(32, 127), *range(160, 256), 8, 9, 10, 11, 12, 13, 27])


def _atom_text(name: str) -> str:
    """An atom as ``io_lib:write_atom/1`` writes it (quoted when needed)."""
    if _UNQUOTED_ATOM.fullmatch(name) and name not in _RESERVED:
        return name
    return "'" + name.translate(_ATOM_ESCAPES) + "'"


def _latin1_lower(c: int) -> bool:
    return 97 <= c <= 122 or (223 <= c <= 255 and c != 247)


def _latin1_name_char(c: int) -> bool:
    if _latin1_lower(c) or 48 <= c <= 57 or 65 <= c <= 90 or c == 95:
        return True
    return 192 <= c <= 222 and c != 215


def _fun_name_text(name: str) -> str:
    """A module/function name as OTP 25's ``fun_to_list`` (erts' atom printer) writes it."""
    quote = (
        not name
        or not _latin1_lower(ord(name[0]))
        or not all(_latin1_name_char(ord(ch)) for ch in name[1:])
    )
    out = []
    for ch in name:
        c = ord(ch)
        if ch in "'\\":
            out.append("\\" + ch)
        elif ch in "\n\f\t\r\b\v":
            out.append(_NAMED_ESCAPES[ch])
        elif c < 32 or 128 <= c < 160:
            out.append(f"\\{c:03o}")
        else:
            out.append(ch)
    text = "".join(out)
    return f"'{text}'" if quote else text


def _int_text(n: int) -> str:
    """Decimal text of any integer, beyond Python's int-to-str digit limit too."""
    try:
        return str(n)
    except ValueError:
        pass
    if n < 0:
        return "-" + _int_text(-n)
    half = max(1, int(n.bit_length() * 0.30103) // 2)
    high, low = divmod(n, 10**half)
    return _int_text(high) + _int_text(low).zfill(half)


def _float_text(f: float) -> str:
    """``float_to_list(F, [short])`` of OTP 25, which ``~w`` uses."""
    if not math.isfinite(f):
        raise ValueError(f"{f!r} is not an Erlang float")
    if f == 0.0:
        return "-0.0" if math.copysign(1.0, f) < 0 else "0.0"
    text = repr(f)  # shortest round-trip digits, as OTP's Ryu
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    point = len(whole) + (int(exp) if exp else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    # value = 0.DIGITS * 10**point
    scientific = f"{digits[0]}.{digits[1:] or '0'}e{point - 1}"
    if abs(f) >= 9007199254740992.0:  # 2**53: always scientific
        return sign + scientific
    if point <= 0:
        fixed = "0." + "0" * -point + digits
    elif point >= len(digits):
        fixed = digits + "0" * (point - len(digits)) + ".0"
    else:
        fixed = digits[:point] + "." + digits[point:]
    return sign + (fixed if len(fixed) <= len(scientific) else scientific)


def _binary_text(data: bytes, pretty: bool) -> str:
    if pretty and data:
        text = _printable_binary(data)
        if text is not None:
            return text
    return "<<" + ",".join(map(str, data)) + ">>"


def _printable_binary(data: bytes) -> str | None:
    """``~tp``'s string form of a binary, or None when it prints as bytes."""
    try:
        chars = data.decode("utf-8")
    except UnicodeDecodeError:
        chars = data.decode("latin-1")
        suffix = '">>'
    else:
        # Valid UTF-8 that is not printable does not fall back to Latin-1 (as OTP).
        suffix = '">>' if len(chars) == len(data) else '"/utf8>>'
    if all(ord(c) in _PRINTABLE for c in chars):
        return '<<"' + chars.translate(_STRING_ESCAPES) + suffix
    return None


def _bitstring_text(b: BitString, pretty: bool) -> str:
    if b.bits == 8:
        return _binary_text(b.data, pretty)
    head = [str(x) for x in b.data[:-1]]
    head.append(f"{b.data[-1] >> (8 - b.bits)}:{b.bits}")
    return "<<" + ",".join(head) + ">>"


def _is_printable_list(items: list) -> bool:
    return bool(items) and all(type(c) is int and c in _PRINTABLE for c in items)


def _map_print_order(pairs: list) -> list:
    """The pairs of a map in the order OTP 25 prints them (see the module docstring)."""
    if len(pairs) > _FLATMAP_LIMIT:
        return pairs[::-1]
    return sorted(pairs, key=lambda kv: map_key_sort_key(kv[0]))


def format_term(term: Any, pretty: bool = False) -> str:
    """``term`` in Erlang syntax, as ``io_lib:format("~tw", [T])`` (``~tp`` if ``pretty``)."""
    out: list[str] = []
    stack: list[Any] = [term]
    push, pop, emit = stack.append, stack.pop, out.append
    while stack:
        t = pop()
        tt = type(t)
        if tt is _Raw:
            emit(t)
        elif tt is Atom:
            emit(_atom_text(t.name))
        elif tt is bool:
            emit("true" if t else "false")
        elif tt is int:
            emit(_int_text(t))
        elif tt is tuple:
            if not t:
                emit("{}")
                continue
            emit("{")
            push(_CLOSE_TUPLE)
            for i in range(len(t) - 1, 0, -1):
                push(t[i])
                push(_COMMA)
            push(t[0])
        elif tt is list:
            if not t:
                emit("[]")
            elif pretty and _is_printable_list(t):
                emit('"' + "".join(map(chr, t)).translate(_STRING_ESCAPES) + '"')
            else:
                emit("[")
                push(_CLOSE_LIST)
                _push_items(push, t)
        elif tt is bytes or tt is bytearray or tt is memoryview:
            emit(_binary_text(bytes(t), pretty))
        elif tt is float:
            emit(_float_text(t))
        elif tt is str:
            emit(_binary_text(t.encode("utf-8"), pretty))
        elif tt is dict or tt is ErlMap:
            pairs = list(t.items())
            if not pairs:
                emit("#{}")
                continue
            emit("#{")
            push(_CLOSE_TUPLE)
            ordered = _map_print_order(pairs)
            for i in range(len(ordered) - 1, -1, -1):
                k, v = ordered[i]
                push(v)
                push(_ARROW)
                push(k)
                if i:
                    push(_COMMA)
        elif tt is ImproperList:
            emit("[")
            push(_CLOSE_LIST)
            items, tail = list(t.items), t.tail
            while type(tail) is ImproperList:  # [a|[b|c]] prints as [a,b|c]
                items.extend(tail.items)
                tail = tail.tail
            push(tail)
            push(_BAR)
            _push_items(push, items)
        elif t is None:
            emit("undefined")
        elif tt is BitString:
            emit(_bitstring_text(t, pretty))
        elif tt is Pid:
            emit(f"<{_atom_text(t.node.name)}.{t.id}.{t.serial}>")
        elif tt is Port:
            emit(f"#Port<{_atom_text(t.node.name)}.{t.id}>")
        elif tt is Reference:
            words = "".join(f".{w}" for w in reversed(t.ids))
            emit(f"#Ref<{_atom_text(t.node.name)}{words}>")
        elif tt is ExportFun:
            m, f = _fun_name_text(t.module.name), _fun_name_text(t.function.name)
            emit(f"fun {m}:{f}/{t.arity}")
        elif tt is Fun:
            emit(f"#Fun<{t.module.name}.{t.old_index}.{t.old_uniq}>")
        else:
            push(_coerce(t))
    return "".join(out)


def _push_items(push: Callable[[Any], None], items: list) -> None:
    for i in range(len(items) - 1, 0, -1):
        push(items[i])
        push(_COMMA)
    push(items[0])


def _coerce(t: Any) -> Any:
    """Subclasses of the supported Python types, as their base type."""
    if isinstance(t, str):
        return t.encode("utf-8")  # formats as the binary a str stands for
    for base in (int, float, bytes, tuple, list, dict):
        if isinstance(t, base):
            return base(t)
    raise TypeError(f"{type(t).__name__} value {t!r} has no Erlang term form")


# ---------------------------------------------------------------------------
# Scanning
# ---------------------------------------------------------------------------

# Token kinds.
_INT, _FLOAT, _ATOM, _RESERVED_WORD, _VAR, _STRING, _PUNCT, _DOT, _EOF = range(9)

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


class _Scanner:
    """Splits Erlang text into tokens ``(kind, value, start, end)`` one at a time."""

    __slots__ = ("n", "pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.n = len(text)

    def error(self, message: str, index: int) -> TermSyntaxError:
        return _error_at(self.text, message, index)

    def next_token(self) -> tuple:
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
            return (_EOF, None, i, i)
        c = text[i]
        if "0" <= c <= "9":
            tok = self._number(i)
        elif c == '"':
            value, end = self._quoted(i, '"')
            tok = (_STRING, value, i, end)
        elif c == "'":
            value, end = self._quoted(i, "'")
            if len(value) > 255:
                raise self.error("atom too long (more than 255 characters)", i)
            tok = (_ATOM, value, i, end)
        elif c == "$":
            tok = self._char(i)
        elif m := _ATOM_NAME.match(text, i):
            name = m.group()
            if len(name) > 255:
                raise self.error("atom too long (more than 255 characters)", i)
            kind = _RESERVED_WORD if name in _RESERVED else _ATOM
            tok = (kind, name, i, m.end())
        elif m := _VAR_NAME.match(text, i):
            tok = (_VAR, m.group(), i, m.end())
        elif c == ".":
            after = text[i + 1] if i + 1 < n else " "
            kind = _DOT if after in _WHITE_CHARS or after == "%" else _PUNCT
            tok = (kind, ".", i, i + 1)
        elif text[i : i + 2] in _PUNCT2:
            tok = (_PUNCT, text[i : i + 2], i, i + 2)
        elif _ILLEGAL_CHAR.match(c):
            raise self.error("illegal character", i)
        else:
            tok = (_PUNCT, c, i, i + 1)
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
            return (_INT, value, i, j)
        f = _FRACTION.match(text, end)
        if f is None:
            return (_INT, _digits_to_int(digits, 10), i, end)
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
        return (_FLOAT, value, i, end)

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
            return (_INT, code, i, end)
        if _ILLEGAL_CHAR.match(text[j]):
            raise self.error("illegal character", j)
        return (_INT, ord(text[j]), i, j + 1)


def _based_digit(c: str, base: int) -> bool:
    if "0" <= c <= "9":
        return ord(c) - 48 < base
    if "a" <= c <= "z":
        return ord(c) - 87 < base
    if "A" <= c <= "Z":
        return ord(c) - 55 < base
    return False


def _error_at(text: str, message: str, index: int) -> TermSyntaxError:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return TermSyntaxError(message, line, column)


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------

_TUPLE, _LIST, _LIST_TAIL, _MAP_KEY, _MAP_VALUE, _PAREN = range(6)
_SEGMENT_TYPES = frozenset(("integer", "float", "binary", "utf8", "utf16", "utf32"))
_TYPE_UNITS = {"bytes": 8, "bitstring": 1, "bits": 1}  # binary with a fixed unit
_UTF_TYPES = frozenset(("utf8", "utf16", "utf32"))
_ENDIANS = frozenset(("big", "little", "native"))
_SIGNS = frozenset(("signed", "unsigned"))


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
        self.scanner = _Scanner(text)
        self.max_depth = max_depth
        self.tok = self.scanner.next_token()

    def advance(self) -> tuple:
        tok = self.tok
        self.tok = self.scanner.next_token()
        return tok

    def error(self, message: str, tok: tuple | None = None) -> TermSyntaxError:
        return _error_at(self.text, message, (tok or self.tok)[2])

    def unexpected(self, tok: tuple | None = None) -> TermSyntaxError:
        tok = tok or self.tok
        kind = tok[0]
        if kind == _EOF:
            return self.error("unexpected end of input", tok)
        source = self.text[tok[2] : tok[3]]
        if len(source) > 40:
            source = source[:37] + "..."
        if kind in (_PUNCT, _DOT, _RESERVED_WORD):
            source = f"'{source}'"
        return self.error(f"syntax error before: {source}", tok)

    def expect(self, punct: str) -> None:
        tok = self.tok
        if tok[0] != _PUNCT or tok[1] != punct:
            raise self.unexpected()
        self.advance()

    def at(self, punct: str) -> bool:
        tok = self.tok
        return tok[0] == _PUNCT and tok[1] == punct

    def term(self) -> Any:
        """Parse one term starting at the current token."""
        stack: list[list] = []  # open containers: [kind, items] (+ a map's pending key)
        while True:
            # 1. A value, or the opening of a container.
            tok = self.advance()
            kind, v = tok[0], tok[1]
            if kind in (_INT, _FLOAT):
                value = v
            elif kind == _ATOM:
                value = _atom_value(v)
            elif kind == _STRING:
                value = [ord(c) for c in self.strings(v)]
            elif kind == _PUNCT:
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
            elif kind == _RESERVED_WORD and v == "fun":
                value = self.export_fun()
            elif kind == _VAR:
                raise self.error(f"variable '{v}' is not a term", tok)
            else:
                raise self.unexpected(tok)
            # 2. Attach the value to the innermost open container; close containers.
            while stack:
                frame = stack[-1]
                fkind = frame[0]
                tok = self.advance()
                sep = tok[1] if tok[0] == _PUNCT else None
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
        while self.tok[0] == _STRING:
            parts.append(self.advance()[1])
        return "".join(parts)

    def signed_number(self, sign_tok: tuple) -> int | float:
        """``-N`` / ``+N`` (the sign is consumed), the number possibly in parentheses."""
        opened = 0
        while self.at("("):
            self.advance()
            opened += 1
        tok = self.advance()
        if tok[0] != _INT and tok[0] != _FLOAT:
            if tok[0] == _EOF:
                raise self.unexpected(tok)
            raise self.error(f"'{sign_tok[1]}' must be followed by a number", sign_tok)
        for _ in range(opened):
            self.expect(")")
        return -tok[1] if sign_tok[1] == "-" else tok[1]

    def number(self) -> tuple[int | float, tuple]:
        """A number literal: ``N``, ``-N``, ``+N``, ``(N)``; and its first token."""
        first = self.tok
        if first[0] == _PUNCT and first[1] in ("-", "+"):
            self.advance()
            return self.signed_number(first), first
        opened = 0
        while self.at("("):
            self.advance()
            opened += 1
        tok = self.advance()
        if tok[0] != _INT and tok[0] != _FLOAT:
            if tok[0] == _PUNCT and tok[1] in ("-", "+"):
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
        if tok[0] != _INT or self.text[tok[2]] == "$":
            raise self.unexpected(tok)
        if not 0 <= tok[1] <= 255:
            raise self.error("fun arity must be 0..255", tok)
        return ExportFun(Atom(module), Atom(function), tok[1])

    def fun_name(self) -> str:
        tok = self.advance()
        if tok[0] != _ATOM and tok[0] != _RESERVED_WORD:
            raise self.unexpected(tok)
        return tok[1]

    # -- binaries ---------------------------------------------------------

    def binary(self, open_tok: tuple, depth: int, level: int) -> bytes | BitString:
        """A binary literal after its ``<<``, ``level`` binaries deep."""
        if depth > self.max_depth or level > _MAX_BINARY_NESTING:
            raise self.error("term nested too deeply", open_tok)
        out = _BitWriter()
        if self.at(">>"):
            self.advance()
            return b""
        while True:
            self.segment(out, depth, level)
            tok = self.advance()
            if tok[0] == _PUNCT and tok[1] == ">>":
                return out.value()
            if tok[0] != _PUNCT or tok[1] != ",":
                raise self.unexpected(tok)

    def segment(self, out: _BitWriter, depth: int, level: int) -> None:
        """One ``Value:Size/Types`` segment, appended to ``out``."""
        start = self.tok
        kind = start[0]
        value: Any
        if kind == _STRING:
            self.advance()
            value = self.strings(start[1])
        elif kind == _PUNCT and start[1] == "<<":
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
            stype, ssize, unit, endian = (spec or _SegmentSpec()).resolve(size)
            if type(value) is not str:
                _put_value(out, value, stype, ssize, unit, endian)
            elif value:
                for ch in value:
                    _put_value(out, ord(ch), stype, ssize, unit, endian)
            else:  # an empty string still has to be a valid segment
                _put_value(_BitWriter(), 0, stype, ssize, unit, endian)
        except (ValueError, OverflowError) as exc:
            raise self.error(f"bad binary segment: {exc}", start) from None

    def type_spec(self) -> _SegmentSpec:
        """The ``/type-endian-sign-unit:N`` list after a segment's ``/``."""
        self.advance()  # "/"
        spec = _SegmentSpec()
        while True:
            tok = self.advance()
            if tok[0] != _ATOM:
                raise self.unexpected(tok)
            name = tok[1]
            if name == "unit":
                self.expect(":")
                unit_tok = self.advance()
                if unit_tok[0] != _INT or not 1 <= unit_tok[1] <= 256:
                    raise self.error("unit must be an integer 1..256", unit_tok)
                settings: tuple = (("unit", unit_tok[1]),)
            elif name in _TYPE_UNITS:
                settings = (("type", "binary"), ("unit", _TYPE_UNITS[name]))
            elif name in _SEGMENT_TYPES:
                settings = (("type", name),)
            elif name in _ENDIANS:
                settings = (("endian", name),)
            elif name in _SIGNS:
                settings = (("sign", name),)
            else:
                raise self.error(f"unknown bit type '{name}'", tok)
            try:
                for field, value in settings:
                    spec.merge(field, value)
            except ValueError as exc:
                raise self.error(str(exc), tok) from None
            if not self.at("-"):
                return spec
            self.advance()


class _SegmentSpec:
    """The type list of a binary segment, merged as ``erl_bits:set_bit_type/2`` does."""

    __slots__ = ("endian", "sign", "type", "unit")

    def __init__(self) -> None:
        self.type: str | None = None
        self.unit: int | None = None
        self.endian: str | None = None
        self.sign: str | None = None

    def merge(self, field: str, value: Any) -> None:
        old = getattr(self, field)
        if old is not None and old != value:
            raise ValueError(f"conflicting bit types: {field} {old} and {value}")
        setattr(self, field, value)

    def resolve(self, size: int | None) -> tuple[str, int | None, int, str]:
        """``(type, size, unit, endian)`` with Erlang's defaults; size None = all."""
        stype = self.type or "integer"
        unit = self.unit
        endian = self.endian or "big"
        if endian == "native":
            endian = sys.byteorder
        if stype in _UTF_TYPES:
            if size is not None or unit is not None:
                raise ValueError(f"{stype} segments take no size or unit")
            return stype, None, 1, endian
        if size is None:
            if stype == "binary":
                return stype, None, unit or 8, endian
            if unit is not None:
                raise ValueError("a unit needs a size")
            return stype, (64 if stype == "float" else 8), 1, endian
        return stype, size, unit or (8 if stype == "binary" else 1), endian


class _BitWriter:
    """Collects bits: whole bytes in a bytearray, the last partial byte apart."""

    __slots__ = ("data", "nbits", "pending", "pending_bits")

    def __init__(self) -> None:
        self.data = bytearray()
        self.pending = 0
        self.pending_bits = 0
        self.nbits = 0

    def put(self, value: int, bits: int) -> None:
        """Append the low ``bits`` bits of ``value`` (non-negative), big-endian."""
        if bits <= 0:
            return
        if self.nbits + bits > _MAX_BINARY_BITS:
            raise ValueError("binary literal too large")
        value &= (1 << bits) - 1
        total = (self.pending << bits) | value
        total_bits = self.pending_bits + bits
        whole, rest = divmod(total_bits, 8)
        if whole:
            self.data += (total >> rest).to_bytes(whole, "big")
        self.pending = total & ((1 << rest) - 1)
        self.pending_bits = rest
        self.nbits += bits

    def put_bytes(self, data: bytes) -> None:
        self.put_bits(data, 8 * len(data))

    def put_bits(self, v: bytes | BitString, bits: int) -> None:
        """Append the first ``bits`` bits of a binary or bitstring."""
        data = v.data if type(v) is BitString else v
        have = v.bit_size if type(v) is BitString else 8 * len(v)
        if bits > have:
            raise ValueError(f"the value has only {have} bits")
        if self.nbits + bits > _MAX_BINARY_BITS:
            raise ValueError("binary literal too large")
        whole, rest = divmod(bits, 8)
        if not self.pending_bits:
            self.data += data[:whole]
            self.nbits += 8 * whole
        else:
            for b in data[:whole]:
                self.put(b, 8)
        if rest:
            self.put(data[whole] >> (8 - rest), rest)

    def value(self) -> bytes | BitString:
        if not self.pending_bits:
            return bytes(self.data)
        last = self.pending << (8 - self.pending_bits)
        return BitString(bytes(self.data) + bytes([last]), self.pending_bits)


def _put_value(
    out: _BitWriter, value: Any, stype: str, size: int | None, unit: int, endian: str
) -> None:
    """Erlang's bit-syntax construction of one value (ValueError where OTP says badarg)."""
    if stype == "integer":
        if type(value) is not int:
            raise ValueError("an integer segment needs an integer")
        bits = size * unit  # type: ignore[operator]
        if bits > _MAX_BINARY_BITS:
            raise ValueError("binary literal too large")
        if endian == "big" or bits <= 8:
            out.put(value, bits)
            return
        whole, rest = divmod(bits, 8)  # little-endian: low bytes first, the high bits last
        value &= (1 << bits) - 1
        out.put_bits(value.to_bytes(whole + 1, "little")[:whole], 8 * whole)
        out.put(value >> (8 * whole), rest)
    elif stype == "float":
        if type(value) is not int and type(value) is not float:
            raise ValueError("a float segment needs a number")
        bits = size * unit  # type: ignore[operator]
        fmt = {16: "e", 32: "f", 64: "d"}.get(bits)
        if fmt is None:
            raise ValueError("float segments are 16, 32 or 64 bits")
        fmt = ("<" if endian == "little" else ">") + fmt
        number = float(value)
        try:
            packed = struct.pack(fmt, number)
        except OverflowError:  # as OTP 25: too big for the size gives infinity
            packed = struct.pack(fmt, math.copysign(math.inf, number))
        out.put_bits(packed, bits)
    elif stype == "binary":
        if type(value) is not bytes and type(value) is not BitString:
            raise ValueError("a binary segment needs a binary")
        have = value.bit_size if type(value) is BitString else 8 * len(value)
        if size is None and have % unit:
            raise ValueError(f"the binary's size is not a multiple of the unit {unit}")
        out.put_bits(value, have if size is None else size * unit)
    else:
        if type(value) is not int or not _is_code_point(value):
            raise ValueError(f"{value!r} is not a Unicode code point")
        codec = "utf-8" if stype == "utf8" else f"{stype[:3]}-{stype[3:]}-{endian[0]}e"
        encoded = chr(value).encode(codec)
        out.put_bits(encoded, 8 * len(encoded))


def _is_code_point(c: int) -> bool:
    return 0 <= c < 0xD800 or 0xDFFF < c <= 0x10FFFF


def parse_term(text: str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """The term written in ``text`` (Erlang syntax; an optional final ``.``)."""
    if not isinstance(text, str):
        raise TypeError(f"parse_term needs str, not {type(text).__name__}")
    parser = _Parser(text, max_depth)
    value = parser.term()
    if parser.tok[0] == _DOT:
        parser.advance()
    if parser.tok[0] != _EOF:
        raise parser.error("unexpected text after the term", parser.tok)
    return value


def parse_terms(text: str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> list:
    """Every ``Term.`` form in ``text``, as ``file:consult/1`` reads a file."""
    if not isinstance(text, str):
        raise TypeError(f"parse_terms needs str, not {type(text).__name__}")
    parser = _Parser(text, max_depth)
    terms = []
    while parser.tok[0] != _EOF:
        terms.append(parser.term())
        if parser.tok[0] != _DOT:
            if parser.tok[0] == _EOF:
                raise parser.error("missing '.' after the last term")
            raise parser.unexpected()
        parser.advance()
    return terms
