"""Value types of the configuration keys, in both syntaxes.

Each type reads a value from ``.conf`` text (cuttlefish's datatypes: ``flag``,
``{duration, ms}``, ``bytesize``, ``integer``, ``atom``, ``string``, ``{enum, ...}``,
plus the comma lists and addresses ekka's schema translation builds from strings)
and from an Erlang term of a ``sys.config`` application environment, and writes a
value back in both syntaxes for the generated reference. A bad value raises
``ValueError`` whose message says what was expected and what was found.
"""

from __future__ import annotations

import ipaddress
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

from pyekka.dist.names import split_node, validate_own_name
from pyekka.term.text import format_term
from pyekka.term.types import Atom

__all__ = [
    "AtomText",
    "Bytesize",
    "CommaList",
    "Duration",
    "Enum",
    "Flag",
    "FlagOrDuration",
    "Integer",
    "IpAddress",
    "NodeName",
    "Text",
    "Url",
    "ValueType",
    "charlist",
    "format_bytesize",
    "format_duration",
    "parse_bytesize",
    "parse_duration",
    "show_term",
    "term_to_text",
]

# cuttlefish's duration units (cuttlefish_duration.hrl), in milliseconds.
_DURATION_UNITS = {
    "f": 14 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1000,
    "ms": 1,
}
# One segment of cuttlefish's duration grammar: a float (``1.5``, ``.5``) or an
# integer without a leading zero, then a unit (``ms`` is tried before ``m``).
_DURATION_SEGMENT = re.compile(r"([0-9]+\.[0-9]+|\.[0-9]+|[1-9][0-9]*)(f|w|d|h|ms|m|s)")
_BYTESIZE_UNITS = {"kb": 1024, "mb": 1024**2, "gb": 1024**3}
_BYTESIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(KB|kb|MB|mb|GB|gb)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
# cuttlefish's flag is on/off; true/false are accepted too.
_FLAG_TEXT = {"on": True, "off": False, "true": True, "false": False}
_DURATION_EXPECTED = "a duration such as 500ms, 30s, 5m or 1h"
_BYTESIZE_EXPECTED = "a byte size such as 16KB, 1MB or 4096"


def show_term(term: Any) -> str:
    """``term`` in Erlang syntax for an error message (Python's ``repr`` if it has none)."""
    try:
        return format_term(term, pretty=True)
    except (TypeError, ValueError):
        return repr(term)


def _got_text(text: str) -> str:
    return f"got {text!r}"


def term_to_text(term: Any) -> str | None:
    """The text an Erlang string, binary or atom (or a Python ``str``) holds, else ``None``."""
    if isinstance(term, str):
        return term
    if isinstance(term, Atom):
        return term.name
    if isinstance(term, bytes):
        try:
            return term.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(term, list) and all(
        type(c) is int and (0 <= c < 0xD800 or 0xDFFF < c <= 0x10FFFF) for c in term
    ):
        return "".join(map(chr, term))
    return None


def charlist(text: str) -> list[int]:
    """``text`` as an Erlang string (a list of code points)."""
    return [ord(c) for c in text]


def parse_duration(text: str) -> int:
    """Milliseconds of a cuttlefish duration: ``500ms``, ``30s``, ``5m``, ``1h30m``, ``1.5d``.

    As ``cuttlefish_duration:parse/1``: case-insensitive, one or more
    ``<number><unit>`` segments (units ``f w d h m s ms``), fractions rounded up.
    """
    s = text.lower()
    pos, total = 0, Fraction(0)
    while pos < len(s):
        m = _DURATION_SEGMENT.match(s, pos)
        if m is None:
            break
        total += Fraction(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos == 0 or pos < len(s):
        raise ValueError(f"expected {_DURATION_EXPECTED}, {_got_text(text)}")
    return math.ceil(total)


def format_duration(ms: int) -> str:
    """``ms`` as cuttlefish writes a duration (``1m30s``, ``500ms``)."""
    if ms == 0:
        return "0ms"
    out = []
    for unit in ("w", "d", "h", "m", "s", "ms"):
        n, ms = divmod(ms, _DURATION_UNITS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def parse_bytesize(text: str) -> int:
    """Bytes of a cuttlefish byte size: ``1024``, ``16KB``, ``10mb``, ``1GB`` (units of 1024)."""
    m = _BYTESIZE.fullmatch(text)
    if m is None:
        raise ValueError(f"expected {_BYTESIZE_EXPECTED}, {_got_text(text)}")
    number = Fraction(m.group(1))
    unit = _BYTESIZE_UNITS[m.group(2).lower()] if m.group(2) else 1
    return math.ceil(number * unit)


def format_bytesize(n: int) -> str:
    """``n`` bytes as cuttlefish writes them (``16KB``)."""
    for unit in ("GB", "MB", "KB"):
        size = _BYTESIZE_UNITS[unit.lower()]
        if n and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


class ValueType(ABC):
    """How one key's value is read and written; subclasses set :attr:`expected`."""

    #: What a valid value looks like, for messages and the reference ("an integer").
    expected: str = "a value"

    #: The same for a ``sys.config`` term, when it differs from :attr:`expected`.
    term_expected: str = ""

    def expected_term(self) -> str:
        """What a valid value looks like as an Erlang term."""
        return self.term_expected or self.expected

    @abstractmethod
    def from_text(self, text: str) -> Any:
        """The value written as ``text`` in a ``.conf`` file or an environment variable."""

    @abstractmethod
    def from_term(self, term: Any) -> Any:
        """The value written as an Erlang term in a ``sys.config`` file."""

    def to_text(self, value: Any) -> str:
        """``value`` as ``.conf`` text."""
        return str(value)

    def to_term(self, value: Any) -> Any:
        """``value`` as the Erlang term ekka's application environment holds."""
        return value

    def bad_term(self, term: Any) -> ValueError:
        """The error for an unusable Erlang term."""
        return ValueError(f"expected {self.expected_term()}, got {show_term(term)}")

    def bad_text(self, text: str, why: str = "") -> ValueError:
        """The error for unusable ``.conf`` text (``why`` is appended)."""
        return ValueError(f"expected {self.expected}, {_got_text(text)}{why}")


class Text(ValueType):
    """Free text (cuttlefish ``string``); in Erlang a string, a binary or an atom."""

    def __init__(self, expected: str = "a string", *, empty: bool = True) -> None:
        self.expected = expected
        self.empty = empty

    def check(self, text: str) -> str:
        if not self.empty and not text:
            raise ValueError(f"expected {self.expected}, got an empty string")
        return text

    def from_text(self, text: str) -> str:
        return self.check(text)

    def from_term(self, term: Any) -> str:
        text = term_to_text(term)
        if text is None:
            raise self.bad_term(term)
        return self.check(text)

    def to_term(self, value: str) -> Any:
        return charlist(value)


class AtomText(Text):
    """An Erlang atom (cuttlefish ``atom``), kept as its name."""

    def __init__(self) -> None:
        super().__init__("an atom", empty=False)

    def to_term(self, value: str) -> Any:
        return Atom(value)


class NodeName(Text):
    """A node name ``alive@host``; ``own=True`` also allows a bare ``alive``."""

    def __init__(self, *, own: bool = False) -> None:
        super().__init__("a node name alive@host" + (" (or just alive)" if own else ""))
        self.own = own

    def check(self, text: str) -> str:
        # a bare alive part of the node's own name gets a host later
        full = f"{text}@host" if self.own and "@" not in text else text
        try:
            split_node(full)
        except ValueError:
            raise self.bad_text(text) from None
        if self.own:  # net_kernel's stricter rules for a node's own name
            try:
                validate_own_name(full, long_names=True)
            except ValueError as e:
                raise self.bad_text(text, f" ({e})") from None
        return text

    def to_term(self, value: str) -> Any:
        return Atom(value)


class Url(Text):
    """An ``http://`` or ``https://`` URL with a host."""

    def __init__(self) -> None:
        super().__init__("an http:// or https:// URL")

    def check(self, text: str) -> str:
        try:
            parts = urlsplit(text)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            ok = False
        if not ok:
            raise self.bad_text(text)
        return text


class Flag(ValueType):
    """A boolean: ``on``/``off`` (cuttlefish ``flag``; ``true``/``false`` too)."""

    expected = "on or off"
    term_expected = "true or false"

    def from_text(self, text: str) -> bool:
        try:
            return _FLAG_TEXT[text]
        except KeyError:
            raise self.bad_text(text) from None

    def from_term(self, term: Any) -> bool:
        if type(term) is bool:
            return term
        raise ValueError(f"expected {self.term_expected}, got {show_term(term)}")

    def to_text(self, value: bool) -> str:
        return "on" if value else "off"


class Integer(ValueType):
    """An integer in ``low..high`` (cuttlefish ``integer``)."""

    def __init__(self, low: int | None = None, high: int | None = None, unit: str = "") -> None:
        self.low, self.high = low, high
        bounds = ""
        if low is not None and high is not None:
            bounds = f" in {low}..{high}"
        elif low is not None:
            bounds = f" >= {low}"
        self.expected = f"an integer{bounds}{unit}"

    def check(self, n: int, shown: str) -> int:
        if (self.low is not None and n < self.low) or (self.high is not None and n > self.high):
            raise ValueError(f"expected {self.expected}, got {shown}")
        return n

    def from_text(self, text: str) -> int:
        if not _INTEGER.fullmatch(text):
            raise self.bad_text(text)
        return self.check(int(text), repr(text))

    def from_term(self, term: Any) -> int:
        if type(term) is not int:
            raise self.bad_term(term)
        return self.check(term, str(term))


class Duration(ValueType):
    """Milliseconds; ``.conf``: a duration (``5m``); Erlang: an integer of ms."""

    def __init__(self, minimum: int = 0) -> None:
        self.minimum = minimum
        least = f", at least {format_duration(minimum)}" if minimum > 1 else ""
        self.expected = _DURATION_EXPECTED + least
        self.term_expected = f"an integer number of milliseconds >= {minimum}"

    def check(self, ms: int, shown: str) -> int:
        if ms < self.minimum:
            raise ValueError(f"expected {self.expected}, got {shown}")
        return ms

    def from_text(self, text: str) -> int:
        return self.check(parse_duration(text), repr(text))

    def from_term(self, term: Any) -> int:
        if type(term) is not int or term < self.minimum:
            raise ValueError(f"expected {self.term_expected}, got {show_term(term)}")
        return term

    def to_text(self, value: int) -> str:
        return format_duration(value)


class FlagOrDuration(ValueType):
    """``cluster.autoheal``: ``on``/``off`` or a delay (``15s``); Erlang ``true|false|Ms``."""

    expected = "on, off or a duration such as 15s"
    term_expected = "true, false or an integer number of milliseconds"

    def from_text(self, text: str) -> bool | int:
        if text in _FLAG_TEXT:
            return _FLAG_TEXT[text]
        try:
            return parse_duration(text)
        except ValueError:
            raise self.bad_text(text) from None

    def from_term(self, term: Any) -> bool | int:
        if type(term) is bool or (type(term) is int and term >= 0):
            return term
        raise ValueError(f"expected {self.term_expected}, got {show_term(term)}")

    def to_text(self, value: bool | int) -> str:
        if type(value) is bool:
            return Flag().to_text(value)
        return format_duration(value)


class Bytesize(ValueType):
    """Bytes; ``.conf``: a byte size (``16KB``); Erlang: an integer."""

    expected = _BYTESIZE_EXPECTED
    term_expected = "an integer number of bytes"

    def from_text(self, text: str) -> int:
        return parse_bytesize(text)

    def from_term(self, term: Any) -> int:
        if type(term) is not int or term < 0:
            raise ValueError(f"expected {self.term_expected}, got {show_term(term)}")
        return term

    def to_text(self, value: int) -> str:
        return format_bytesize(value)


class Enum(ValueType):
    """One of a few names (cuttlefish ``{enum, [...]}``); atoms in Erlang."""

    def __init__(self, *choices: str) -> None:
        self.choices = choices
        self.expected = "one of " + ", ".join(choices)

    def from_text(self, text: str) -> str:
        if text not in self.choices:
            raise self.bad_text(text)
        return text

    def from_term(self, term: Any) -> str:
        name = term_to_text(term) if isinstance(term, (Atom, str)) else None
        if name not in self.choices:
            raise self.bad_term(term)
        return name

    def to_term(self, value: str) -> Any:
        return Atom(value)


class IpAddress(ValueType):
    """An IPv4 or IPv6 address; Erlang: a tuple (``{239,192,0,1}``) or a string."""

    def __init__(self, *, multicast: bool = False) -> None:
        self.multicast = multicast
        self.expected = "a multicast IP address" if multicast else "an IP address"
        self.term_expected = f"{self.expected}: a tuple such as {{127,0,0,1}} or a string"

    def check(self, text: str, shown: str) -> str:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise ValueError(f"expected {self.expected}, got {shown}") from None
        if self.multicast and not address.is_multicast:
            raise ValueError(f"expected {self.expected}, got {shown} (not multicast)")
        return str(address)

    def from_text(self, text: str) -> str:
        return self.check(text, repr(text))

    def from_term(self, term: Any) -> str:
        if isinstance(term, tuple):
            if len(term) == 4 and all(type(b) is int and 0 <= b <= 255 for b in term):
                return self.check(".".join(map(str, term)), show_term(term))
            if len(term) == 8 and all(type(w) is int and 0 <= w <= 0xFFFF for w in term):
                return self.check(":".join(f"{w:x}" for w in term), show_term(term))
            raise self.bad_term(term)
        text = term_to_text(term)
        if text is None or isinstance(term, Atom):
            raise self.bad_term(term)
        return self.check(text, show_term(term))

    def to_term(self, value: str) -> Any:
        address = ipaddress.ip_address(value)
        if address.version == 4:
            return tuple(address.packed)
        packed = address.packed
        return tuple(int.from_bytes(packed[i : i + 2], "big") for i in range(0, 16, 2))


class CommaList(ValueType):
    """A list; ``.conf``: items separated by commas (``a@h1,b@h2``); Erlang: a list."""

    def __init__(self, item: ValueType, *, min_items: int = 0, what: str = "") -> None:
        self.item = item
        self.min_items = min_items
        noun = what or item.expected
        self.expected = f"a comma-separated list of {noun}"
        self.term_expected = f"a list of {noun}"

    def _collect(self, items: Sequence[Any], read: Callable[[Any], Any], shown: str) -> tuple:
        values = tuple(read(x) for x in items)
        if len(values) < self.min_items:
            raise ValueError(f"expected {self.expected} (at least {self.min_items}), got {shown}")
        return values

    def from_text(self, text: str) -> tuple:
        # string:tokens/2 as in ekka's schema translation: empty items are dropped;
        # unlike it, spaces around an item are trimmed (node names have none).
        items = [s.strip() for s in text.split(",") if s.strip()]
        return self._collect(items, self.item.from_text, repr(text))

    def from_term(self, term: Any) -> tuple:
        is_string = isinstance(self.item, Text) and term and term_to_text(term) is not None
        if not isinstance(term, list) or is_string:  # e.g. "a@h" where ['a@h'] belongs
            raise ValueError(f"expected {self.term_expected}, got {show_term(term)}")
        return self._collect(term, self.item.from_term, show_term(term))

    def to_text(self, value: tuple) -> str:
        return ",".join(self.item.to_text(v) for v in value)

    def to_term(self, value: tuple) -> Any:
        return [self.item.to_term(v) for v in value]
