"""The cuttlefish-style ``.conf`` reader.

The syntax is cuttlefish's (``conf_parse.peg`` of cuttlefish 3):

* one ``key = value`` per line, spaces and tabs around ``=`` ignored; keys are
  dot-separated words of letters, digits, ``_`` and ``-``;
* ``#`` starts a comment, on its own line or after a value (so a ``#`` inside a
  value needs quotes);
* a value runs to the end of the line (or the comment), trailing blanks removed;
  ``'single quotes'`` keep it as written (blanks, ``#``), and ``'''`` ... ``'''``
  spans lines (leading and trailing newlines dropped). pyekka also accepts
  ``"double quotes"`` like single quotes; there are no escapes in either;
* a key set twice takes the later value;
* ``include`` lines are refused (the reader reads the one given file).

Values are read by the key's type (:mod:`pyekka.config.values`): flags ``on/off``
(and ``true/false``), durations ``500ms 30s 5m 1h 1d 1w`` (combinable: ``1m30s``),
byte sizes ``16KB 1MB 1GB``, comma lists ``a,b``.
"""

from __future__ import annotations

import re

from pyekka.config.errors import ConfigError, Origin
from pyekka.config.schema import BY_NAME, did_you_mean
from pyekka.config.settings import Value

__all__ = ["read_conf"]

_SETTING = re.compile(r"[ \t]*([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)[ \t]*=[ \t]*(.*)\Z")
_INCLUDE = re.compile(r"[ \t]*include[ \t]")
_AFTER_VALUE = re.compile(r"[ \t]*(?:#.*)?\Z")  # what may follow a quoted value


def _split_value(
    rest: str, lines: list[str], index: int, origin: Origin, key: str
) -> tuple[str, int]:
    """The value starting with ``rest`` on line ``index`` and the index of its last line."""
    if rest.startswith("'''"):
        body, last = rest[3:], index
        while "'''" not in body:
            last += 1
            if last >= len(lines):
                raise ConfigError("unterminated ''' value", origin=origin, key=key)
            body += "\n" + lines[last]
        value, _, after = body.partition("'''")
        if not _AFTER_VALUE.match(after):
            raise ConfigError(
                f"unexpected text after the value: {after.strip()!r}", origin=origin, key=key
            )
        return value.strip("\r\n"), last
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        end = rest.find(quote, 1)
        if end < 0:
            raise ConfigError(f"unterminated {quote} value", origin=origin, key=key)
        if not _AFTER_VALUE.match(rest, end + 1):
            after = rest[end + 1 :].strip()
            raise ConfigError(f"unexpected text after the value: {after!r}", origin=origin, key=key)
        return rest[1:end], index
    value = rest.split("#", 1)[0].rstrip(" \t")
    if not value:
        raise ConfigError("missing value after '='", origin=origin, key=key)
    return value, index


def read_conf(text: str, source: str = "<conf>") -> dict[str, Value]:
    """The values of a ``.conf`` file's ``text`` by key, checked against the key table.

    ``source`` names the file in errors. Unknown keys, syntax errors and bad values
    raise :class:`~pyekka.config.errors.ConfigError` with the file and line.
    """
    values: dict[str, Value] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        origin = Origin(source, index + 1)
        stripped = line.strip(" \t")
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        if _INCLUDE.match(line):
            raise ConfigError("include is not supported: put every key in this file", origin=origin)
        m = _SETTING.match(line)
        if m is None:
            raise ConfigError(f"expected 'key = value', got {stripped!r}", origin=origin)
        name, rest = m.groups()
        raw, index = _split_value(rest, lines, index, origin, name)
        key = BY_NAME.get(name)
        if key is None:
            raise ConfigError("unknown key" + did_you_mean(name, BY_NAME), origin=origin, key=name)
        try:
            values[name] = Value(key.type.from_text(raw), origin)
        except ValueError as e:
            raise ConfigError(str(e), origin=origin, key=name) from None
        index += 1
    return values
