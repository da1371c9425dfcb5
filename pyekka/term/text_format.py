"""Erlang term text out: :func:`format_term`.

It prints what OTP 25's ``io_lib:format("~tw", [T])`` prints (``pretty=True``:
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

Formatting is iterative: deep terms never raise ``RecursionError``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from pyekka.term.order import map_key_sort_key
from pyekka.term.text_scan import RESERVED_WORDS
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
)

__all__ = ["format_term"]

_FLATMAP_LIMIT = 32  # OTP keeps maps of up to 32 keys sorted (MAP_SMALL_MAP_LIMIT)


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
    if _UNQUOTED_ATOM.fullmatch(name) and name not in RESERVED_WORDS:
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
