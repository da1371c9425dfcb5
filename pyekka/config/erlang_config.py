"""The Erlang-term (``sys.config``) reader.

A file holds one term, a list of ``{Application, Env}`` pairs::

    [{pyekka, [{node_name, 'n1@127.0.0.1'}, {cookie, secret}, {epmd, false}]},
     {ekka, [{cluster_name, ekka},
             {cluster_discovery, {static, [{seeds, ['n2@127.0.0.1']}]}},
             {cluster_autoheal, true},
             {cluster_autoclean, 300000}]}].

``ekka``'s environment is ekka's own application environment, as genuine ekka
reads it (keys and option names of :mod:`pyekka.config.schema`, durations in
milliseconds, addresses as tuples); ``pyekka`` holds the ``node.*`` keys. Text
values may be strings, binaries or atoms. Unknown applications, keys and options,
keys set twice and bad values raise :class:`~pyekka.config.errors.ConfigError`
naming the file, the line and the key (as ``app.key.option``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyekka.config.errors import ConfigError, Origin
from pyekka.config.schema import BY_PATH, STRATEGIES, did_you_mean
from pyekka.config.settings import Value
from pyekka.config.values import show_term
from pyekka.term.errors import TermSyntaxError
from pyekka.term.text import parse_terms
from pyekka.term.types import Atom

__all__ = ["read_erlang_config"]

_DISCOVERY = ("ekka", "cluster_discovery")
_APPS = tuple(sorted({path[0] for path in BY_PATH}))


# -- where each element of the text starts -----------------------------------------------


@dataclass
class _Shape:
    """The line an element starts on; for ``{}``, ``[]``, ``<<>>`` and ``#{}`` its elements."""

    line: int
    items: list[_Shape] | None = None


def _locate(text: str) -> list[_Shape]:
    """The shapes of the terms in ``text``, which ``parse_terms`` has accepted.

    Only as much of Erlang's lexical syntax as finding brackets needs: comments,
    strings, quoted atoms and character literals are skipped.
    """
    root = _Shape(1, [])
    stack = [root]
    line, i, n = 1, 0, len(text)
    started = False  # whether the innermost container's current element has begun

    def begin(opens: bool) -> None:
        nonlocal started
        if not started:
            shape = _Shape(line, [] if opens else None)
            stack[-1].items.append(shape)  # type: ignore[union-attr]
            started = True
            if opens:
                stack.append(shape)
                started = False
        elif opens:  # e.g. the tail of ``fun m:f/1`` or an argument: not tracked
            stack.append(_Shape(line, []))
            started = False

    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r\f\v()":  # parentheses around a term change nothing here
            i += 1
        elif c == "%":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c in "\"'":
            begin(False)
            i += 1
            while i < n and text[i] != c:
                if text[i] == "\\":
                    i += 1
                if i < n and text[i] == "\n":
                    line += 1
                i += 1
            i += 1
        elif c == "$":  # a character literal: $a, $\n, $\^a, $\x{41}, $\101
            begin(False)
            if text.startswith("\\", i + 1):
                j = i + 2
                if text.startswith("x{", j):
                    i = text.index("}", j) + 1
                else:
                    i = j + (2 if text.startswith("^", j) else 1)
            else:
                i += 2
            line += text.count("\n", i - 1, i)
        elif c in "{[" or text.startswith(("<<", "#{"), i):
            begin(True)
            i += 1 if c in "{[" else 2
        elif c in "}]" or text.startswith(">>", i):
            if len(stack) > 1:
                stack.pop()
            started = True
            i += 1 if c in "}]" else 2
        elif c in ",|" or text.startswith(("=>", ":="), i):
            started = False
            i += 1 if c in ",|" else 2
        elif c == "." and len(stack) == 1 and (i + 1 >= n or text[i + 1] in " \t\r\n\f\v%"):
            started = False
            i += 1
        else:
            begin(False)
            i += 1
    return root.items  # type: ignore[return-value]


def _item(shape: _Shape, index: int) -> _Shape:
    """The shape of element ``index`` of a container (the container's when unknown)."""
    if shape.items is not None and index < len(shape.items):
        return shape.items[index]
    return shape


# -- reading ----------------------------------------------------------------------------


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.values: dict[str, Value] = {}
        self.seen: dict[tuple[str, ...], int] = {}

    def error(self, reason: str, shape: _Shape, path: tuple[str, ...] = ()) -> ConfigError:
        return ConfigError(
            reason, origin=Origin(self.source, shape.line), key=".".join(path) or None
        )

    def pairs(self, term: Any, shape: _Shape, path: tuple[str, ...], what: str) -> list[tuple]:
        """The ``{Name, Value}`` pairs of a list, each with its shapes; names as ``str``."""
        if not isinstance(term, list):
            raise self.error(f"expected {what}, got {show_term(term)}", shape, path)
        out = []
        for i, entry in enumerate(term):
            entry_shape = _item(shape, i)
            if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], Atom)):
                raise self.error(
                    f"expected a {{Name, Value}} pair, got {show_term(entry)}", entry_shape, path
                )
            name = entry[0].name
            where = (*path, name)
            if where in self.seen:
                raise self.error(
                    f"set twice (first at line {self.seen[where]})", entry_shape, where
                )
            self.seen[where] = entry_shape.line
            out.append((name, entry[1], entry_shape, _item(entry_shape, 1)))
        return out

    def unknown(
        self, name: str, shape: _Shape, path: tuple[str, ...], names: set[str]
    ) -> ConfigError:
        kind = "application" if not path else "option" if len(path) > 2 else "key"
        return self.error(f"unknown {kind}" + did_you_mean(name, names), shape, (*path, name))

    def store(self, path: tuple[str, ...], term: Any, shape: _Shape) -> None:
        key = BY_PATH[path]
        try:
            value = key.type.from_term(term)
        except ValueError as e:
            raise self.error(str(e), shape, path) from None
        self.values[key.name] = Value(value, Origin(self.source, shape.line))

    def env(self, term: Any, shape: _Shape, path: tuple[str, ...]) -> None:
        """Read a proplist whose keys are the children of ``path`` in the key table."""
        names = {p[len(path)] for p in BY_PATH if p[: len(path)] == path and len(p) > len(path)}
        for name, value, entry_shape, value_shape in self.pairs(
            term, shape, path, "a list of {Key, Value} pairs"
        ):
            where = (*path, name)
            if name not in names:
                raise self.unknown(name, entry_shape, path, names)
            if where == _DISCOVERY:
                self.discovery(value, value_shape)
            elif where in BY_PATH:
                self.store(where, value, value_shape)
            else:  # a nested option list (ssl_options)
                self.env(value, value_shape, where)

    def discovery(self, term: Any, shape: _Shape) -> None:
        if not (isinstance(term, tuple) and len(term) == 2 and isinstance(term[0], Atom)):
            raise self.error(
                f"expected {{Strategy, Options}}, got {show_term(term)}", shape, _DISCOVERY
            )
        strategy = term[0].name
        if strategy not in STRATEGIES:
            raise self.error(
                f"unknown strategy {strategy!r}" + did_you_mean(strategy, STRATEGIES),
                shape,
                _DISCOVERY,
            )
        self.store(_DISCOVERY, term[0], shape)
        self.env(term[1], _item(shape, 1), (*_DISCOVERY, strategy))

    def top(self, term: Any, shape: _Shape) -> None:
        for name, value, entry_shape, value_shape in self.pairs(
            term, shape, (), "a list of {Application, Env} pairs"
        ):
            if name not in _APPS:
                raise self.unknown(name, entry_shape, (), set(_APPS))
            self.env(value, value_shape, (name,))


def read_erlang_config(text: str, source: str = "<config>") -> dict[str, Value]:
    """The values of a ``sys.config`` file's ``text`` by ``.conf`` key.

    ``source`` names the file in errors.
    """
    try:
        terms = parse_terms(text)
    except TermSyntaxError as e:
        raise ConfigError(
            f"{e.reason} (column {e.column})", origin=Origin(source, e.line)
        ) from None
    shapes = _locate(text)
    if not terms:
        raise ConfigError("expected one term: [{Application, Env}, ...].", origin=Origin(source, 1))
    if len(terms) > 1:
        line = shapes[1].line if len(shapes) > 1 else None
        raise ConfigError("expected one term, found more", origin=Origin(source, line))
    reader = _Reader(source)
    reader.top(terms[0], shapes[0] if shapes else _Shape(1))
    return reader.values
