"""Node names: splitting and validation, and ekka's epmd-less port rule.

A node name is ``Alive@Host``. OTP accepts a peer's name when it has exactly one
``@`` with something on both sides (``dist_util:is_node_name/1``); it is stricter
with its own name (``net_kernel``): the alive part is ``[0-9A-Za-z_-]+``, the host
part printable Latin-1 (``!``..``ÿ``), and a short name's host has no dot.
"""

from __future__ import annotations

import re

__all__ = [
    "EKKA_BASE_PORT",
    "EKKA_PORT_MODULO",
    "ekka_port",
    "is_node_name",
    "split_node",
    "validate_own_name",
]

#: ekka's default ``inet_dist_base_port``.
EKKA_BASE_PORT = 4370
#: The trailing number of a short name is taken modulo this (``ekka_dist``).
EKKA_PORT_MODULO = 60000

_ALIVE_RE = re.compile(r"[0-9A-Za-z_\-]+")
_HOST_RE = re.compile(r"[!-\xff]+")
_TRAILING_DIGITS = re.compile(r"[0-9]+\Z")


def split_node(name: str) -> tuple[str, str]:
    """``(alive, host)`` of ``name``; ``ValueError`` unless it is a valid peer name."""
    parts = name.split("@")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise ValueError(f"not a node name (want alive@host): {name!r}")
    return parts[0], parts[1]


def is_node_name(name: str) -> bool:
    """Whether OTP would accept ``name`` as a peer's node name in the handshake."""
    try:
        split_node(name)
    except ValueError:
        return False
    return True


def validate_own_name(name: str, *, long_names: bool) -> tuple[str, str]:
    """Check a name this node would run under, as ``net_kernel`` does; ``(alive, host)``.

    Short names (``-sname``) may not have a dot in the host part.
    """
    alive, host = split_node(name)
    if not _ALIVE_RE.fullmatch(alive):
        raise ValueError(f"invalid alive part {alive!r}: use letters, digits, '_' and '-'")
    if not _HOST_RE.fullmatch(host):
        raise ValueError(f"invalid host part {host!r}")
    if not long_names and "." in host:
        raise ValueError(f"short node names cannot have a dot in the host: {name!r}")
    return alive, host


def ekka_port(name: str, base: int = EKKA_BASE_PORT) -> int:
    """The port ekka's epmd-less distribution gives node ``name`` (``ekka_dist:port/1``).

    ``0`` for names starting with ``remsh`` (they only connect out). Otherwise
    ``base`` plus the trailing decimal digits of the part before the first ``@``,
    taken modulo 60000 (no trailing digits: ``+ 0``). The sum is not bounded, so a
    large ``base`` can yield a number above 65535, exactly as ekka computes it.
    """
    if name.startswith("remsh"):
        return 0
    short = name.split("@", 1)[0]
    match = _TRAILING_DIGITS.search(short)
    offset = int(match.group()) % EKKA_PORT_MODULO if match else 0
    return base + offset
