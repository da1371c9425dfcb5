"""The configuration reference in Markdown, generated from the key table."""

from __future__ import annotations

from typing import Any

from pyekka.config.schema import (
    AUTOCLUSTER_GROUP,
    ENV_PREFIX,
    KEYS,
    REQUIRED,
    SAME,
    STRATEGIES,
    Key,
)
from pyekka.term.text import format_term

__all__ = ["reference_markdown"]

_INTRO = f"""\
# pyekka configuration reference

*Generated from `pyekka/config/schema.py` by `pyekka.config.reference_markdown()`;
do not edit by hand.*

A node reads its settings from one file, then from the environment, then from
command-line flags; each later source overrides the earlier ones.

* **`.conf`** files use cuttlefish's syntax, as EMQX 4 and ekka's schema do:
  `key = value` lines, `#` comments (also after a value), `'quoted values'`,
  `'''multi-line values'''`; flags are `on`/`off`, durations `500ms`, `30s`, `5m`,
  `1h`, `1d`, `1w` (combinable: `1m30s`), byte sizes `16KB`, `1MB`, lists `a,b`.
* **`.config`** files hold one Erlang term in `sys.config` form,
  `[{{pyekka, [...]}}, {{ekka, [...]}}].`; the `{{ekka, [...]}}` list is ekka's own
  application environment, as genuine ekka reads it. The column `sys.config` names
  a key's place: `ekka.cluster_discovery.mcast.ttl` means
  `{{ekka, [{{cluster_discovery, {{mcast, [{{ttl, Value}}]}}}}]}}`, and setting
  `ekka.cluster_discovery.mcast.*` selects the strategy. Durations are integers of
  milliseconds and addresses tuples; text may be a string, a binary or an atom.
* **Environment variables** `{ENV_PREFIX}<KEY>`: the `.conf` key in capitals with each
  `.` written `__`, e.g. `{ENV_PREFIX}CLUSTER__DISCOVERY=static`; the value as in a
  `.conf` file.

Where genuine ekka's schema and code disagree on a default, the *default* column
shows both: the first applies to `.conf` files (and to no file at all), the second
to `.config` files. *required* keys must be set when their strategy is selected.
Keys of a strategy other than the selected one are checked, then ignored.
"""

_AUTOCLUSTER_INTRO = """\
pyekka's own keys, under `{pyekka, [{autocluster, [...]}]}` in a `sys.config` file:
the timings of the autocluster loop, which genuine ekka 0.8.1.9 hard-codes. Their
defaults are ekka's values; shorter ones make a test cluster form faster.
"""

# (title, scope, strategy, group, intro)
_SECTIONS: tuple[tuple[str, str, str | None, str | None, str], ...] = (
    ("Node", "node.*` and `{pyekka, [...]}", None, None, ""),
    ("Cluster", "cluster.*` and `{ekka, [...]}", None, None, ""),
    (
        "Autocluster loop",
        f"{AUTOCLUSTER_GROUP}*` and `{{pyekka, [{{autocluster, [...]}}]}}",
        None,
        "autocluster",
        _AUTOCLUSTER_INTRO,
    ),
    *((f"Discovery: {s}", f"cluster.{s}.*", s, None, "") for s in STRATEGIES if s != "manual"),
)


_EXTENSION = " *(pyekka extension: not in ekka 0.8.1.9)*"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _text_default(key: Key, value: Any) -> str:
    if value is REQUIRED:
        return "*required*"
    if value is None:
        return "*unset*"
    text = key.type.to_text(value)
    return f"`{text}`" if text else "`''`"


def _term_default(key: Key, value: Any) -> str:
    if value is REQUIRED:
        return "*required*"
    if value is None:
        return "*unset*"
    term = key.type.to_term(value)
    return '`""`' if term == [] and value == "" else f"`{format_term(term, pretty=True)}`"


def _default(key: Key) -> str:
    text = _text_default(key, key.default)
    if key.app_default is SAME:
        return text
    return f"`.conf`: {text}; `.config`: {_term_default(key, key.app_default)}"


def _type(key: Key) -> str:
    term = key.type.expected_term()
    if term == key.type.expected:
        return key.type.expected
    return f"{key.type.expected} (`.config`: {term})"


def _row(key: Key) -> str:
    cells = [
        f"`{key.name}`",
        f"`{key.erl_name}`",
        f"`{key.env_var}`",
        _type(key),
        _default(key),
        key.doc + ("" if key.ekka or key.name.startswith("node.") else _EXTENSION),
    ]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def reference_markdown() -> str:
    """The reference of every configuration key, as a Markdown document."""
    out = [_INTRO]
    for title, scope, strategy, group, intro in _SECTIONS:
        if strategy is not None:
            keys = [k for k in KEYS if k.strategy == strategy]
        elif group is not None:
            keys = [k for k in KEYS if k.group == group]
        else:
            prefix = title.lower() + "."
            keys = [k for k in KEYS if not (k.strategy or k.group) and k.name.startswith(prefix)]
        out.append(f"\n## {title} (`{scope}`)\n")
        if intro:
            out.append(intro)
        out.append("| `.conf` key | `sys.config` | environment | type | default | description |")
        out.append("|---|---|---|---|---|---|")
        out.extend(_row(k) for k in keys)
    return "\n".join(out) + "\n"
