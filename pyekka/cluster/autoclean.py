"""Autoclean's decision as ekka_autoclean 0.8.1.9 makes it (spec 9).

Every ``Expiry div 4`` ms the node monitor force-leaves each ``down`` member whose
entry was last updated more than ``Expiry`` ms ago (``ltime`` is refreshed by every
local update of the entry, not only by the transition to ``down``).
"""

from __future__ import annotations

from collections.abc import Iterable

from pyekka.cluster.constants import AUTOCLEAN_DIVISOR
from pyekka.cluster.election import sort_members
from pyekka.cluster.member import Member, MemberStatus, Timestamp, now_diff_us
from pyekka.term.types import Atom

__all__ = ["check_interval_ms", "expired", "nodes_to_clean"]


def check_interval_ms(expiry_ms: int) -> int:
    """The autoclean timer period: ``Expiry div 4``."""
    if expiry_ms <= 0:
        raise ValueError(f"autoclean expiry must be positive: {expiry_ms!r}")
    return expiry_ms // AUTOCLEAN_DIVISOR


def expired(ltime: Timestamp | None, now: Timestamp, expiry_ms: int) -> bool:
    """``timer:now_diff(Now, LTime) div 1000 > Expiry``.

    An entry without ``ltime`` never expires (genuine ekka would crash on it; pyekka
    always stamps its entries).
    """
    if ltime is None:
        return False
    return _div(now_diff_us(now, ltime), 1000) > expiry_ms


def _div(a: int, b: int) -> int:
    # Erlang's ``div`` truncates towards zero.
    q = abs(a) // b
    return q if a >= 0 else -q


def nodes_to_clean(members: Iterable[Member], now: Timestamp, expiry_ms: int) -> list[Atom]:
    """The ``down`` members to force-leave now, in table order."""
    return [
        m.node
        for m in sort_members(members)
        if m.status is MemberStatus.DOWN and expired(m.ltime, now, expiry_ms)
    ]
