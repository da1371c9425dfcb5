"""``load_config``: a file, then the environment, then command-line overrides."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyekka.config.conf import read_conf
from pyekka.config.env import read_environ
from pyekka.config.erlang_config import read_erlang_config
from pyekka.config.errors import ConfigError, Origin
from pyekka.config.schema import BY_NAME, did_you_mean
from pyekka.config.settings import Settings, Value, build_settings

__all__ = ["load_config", "read_overrides", "syntax_of"]

_READERS = {".conf": ("conf", read_conf), ".config": ("config", read_erlang_config)}
_COMMAND_LINE = Origin("command line")


def syntax_of(path: str | os.PathLike[str]) -> str:
    """``"conf"`` or ``"config"`` by the file's extension; :class:`ConfigError` otherwise."""
    suffix = Path(path).suffix
    if suffix not in _READERS:
        raise ConfigError(
            f"unknown kind of configuration file {suffix or '(no extension)'!r}: "
            "use .conf (cuttlefish) or .config (Erlang terms)",
            origin=Origin(str(path)),
        )
    return _READERS[suffix][0]


def _read_text(path: str | os.PathLike[str]) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror or e}", origin=Origin(str(path))) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError("not UTF-8 text", origin=Origin(str(path), line)) from None


def read_overrides(overrides: Mapping[str, Any]) -> dict[str, Value]:
    """Values given by ``.conf`` key, e.g. from command-line flags; ``None`` means unset.

    A ``str`` is read as ``.conf`` text (``"5m"``, ``"on"``, ``"a@h,b@h"``); other
    values as Erlang terms (``300000``, ``True``, ``["a@h", "b@h"]``).
    """
    values: dict[str, Value] = {}
    for name, raw in overrides.items():
        if raw is None:
            continue
        key = BY_NAME.get(name)
        if key is None:
            raise ConfigError(
                "unknown key" + did_you_mean(name, BY_NAME), origin=_COMMAND_LINE, key=name
            )
        try:
            value = key.type.from_text(raw) if isinstance(raw, str) else key.type.from_term(raw)
        except ValueError as e:
            raise ConfigError(str(e), origin=_COMMAND_LINE, key=name) from None
        values[name] = Value(value, _COMMAND_LINE)
    return values


def load_config(
    path: str | os.PathLike[str] | None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """The settings of the file at ``path``, overridden by the environment and ``overrides``.

    ``path`` ends in ``.conf`` (cuttlefish syntax) or ``.config`` (Erlang terms,
    ``sys.config`` form); ``None`` means no file (``.conf`` defaults). ``environ``
    defaults to ``os.environ`` (pass ``{}`` to ignore it); see
    :mod:`pyekka.config.env`. ``overrides`` maps ``.conf`` keys to values (see
    :func:`read_overrides`) and wins over everything. Every problem raises
    :class:`ConfigError`.
    """
    values: dict[str, Value] = {}
    syntax, source = "conf", None
    if path is not None:
        syntax = syntax_of(path)
        source = Origin(str(path))
        values.update(_READERS[Path(path).suffix][1](_read_text(path), str(path)))
    values.update(read_environ(os.environ if environ is None else environ))
    values.update(read_overrides(overrides or {}))
    return build_settings(values, syntax=syntax, source=source)
