"""Environment-variable overrides.

Every key can be set by the variable ``PYEKKA_`` + the key in capitals with each
``.`` written ``__`` (EMQX's scheme): ``cluster.discovery`` is
``PYEKKA_CLUSTER__DISCOVERY``, ``cluster.static.seeds`` is
``PYEKKA_CLUSTER__STATIC__SEEDS``, ``cluster.etcd.ssl.certfile`` is
``PYEKKA_CLUSTER__ETCD__SSL__CERTFILE``. The value is written as in a ``.conf``
file, without quotes. Only variables with ``__`` are configuration; an unknown
one is an error, and so is a key written with single underscores
(``PYEKKA_CLUSTER_DISCOVERY``), which would otherwise be silently ignored. Other
``PYEKKA_*`` variables (without ``__``) are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyekka.config.errors import ConfigError, Origin
from pyekka.config.schema import BY_ENV, ENV_PREFIX, KEYS, did_you_mean
from pyekka.config.settings import Value

__all__ = ["read_environ"]

_SINGLE_UNDERSCORE = {ENV_PREFIX + k.name.upper().replace(".", "_"): k for k in KEYS}


def read_environ(environ: Mapping[str, str]) -> dict[str, Value]:
    """The configuration values set in ``environ`` (e.g. ``os.environ``), by key."""
    values: dict[str, Value] = {}
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX):
            continue
        origin = Origin(f"${var}")
        key = BY_ENV.get(var)
        if key is None:
            if "__" in var:
                raise ConfigError(
                    "unknown configuration variable" + did_you_mean(var, BY_ENV), origin=origin
                )
            if var in _SINGLE_UNDERSCORE:
                right = _SINGLE_UNDERSCORE[var].env_var
                raise ConfigError(f"write {right} to set this key", origin=origin)
            continue
        try:
            values[key.name] = Value(key.type.from_text(environ[var].strip()), origin)
        except ValueError as e:
            raise ConfigError(str(e), origin=origin, key=key.name) from None
    return values
