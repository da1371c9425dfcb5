"""pyekka's policy for clusters with genuine Erlang members, and for Python-only ones (spec 16).

Genuine ekka 0.8.1.9 trusts three things a Python node must handle with care:

* **Leadership by guid** (16.2). ``leader()`` is the member with the oldest guid,
  ``down`` ones included. pyekka makes its guids with
  :attr:`~pyekka.cluster.guid.GuidPolicy.DEFER` by default: every genuine guid is
  older, so whenever a genuine node is a member it leads (``leader`` locks, autoheal
  reports and autocluster targets stay on Erlang nodes), while a Python-only cluster
  is led by its oldest Python node. ``GENUINE`` guids (plain time) are available for
  Python-only clusters that want ekka's behaviour to the letter.
  The ``leader`` lock type always uses genuine ``leader()`` so that Python and
  Erlang callers lock on the same node.
* **``ekka_node:is_running(ekka)``** (16.3). An Erlang node that hears ``true`` from
  a node it wants to join deletes its own mnesia schema, then fails. A pyekka node
  answers ``true`` only to callers it knows to be pyekka nodes
  (:func:`is_running_reply`); genuine nodes never need ``true`` from a non-mnesia
  node (they ping only db nodes, and never make a Python node their autoheal
  leader under ``DEFER``).
* **Autoheal among pyekka nodes** (16.6, issue 4). Genuine reports go to
  ``leader()``, and if that member is down nothing heals. pyekka nodes report to,
  and accept reports as, the :func:`autoheal_leader`: the oldest member that is not
  ``down``, answers, and can run pyekka's autoheal; members without a guid count as
  youngest (as mria does). Reports are never sent to genuine nodes (spec 15.G).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pyekka.cluster.constants import EKKA
from pyekka.cluster.election import oldest, sort_members
from pyekka.cluster.guid import is_deferred
from pyekka.cluster.member import Member, MemberStatus
from pyekka.term.types import Atom

__all__ = ["autoheal_leader", "is_pyekka_member", "is_running_reply"]


def is_pyekka_member(member: Member) -> bool:
    """Whether the member's guid was made by a pyekka node under ``DEFER``."""
    return is_deferred(member.guid)


def is_running_reply(app: object, *, caller_is_pyekka: bool, running: bool = True) -> bool:
    """The answer to rpc ``ekka_node:is_running(App)`` from a caller.

    ``True`` only for ``App = ekka``, while ekka's services run here, and for a
    caller known to be a pyekka node; ``False`` for everyone else, so that no Erlang
    node ever tries to mnesia-join this node (spec 16.3).
    """
    return running and caller_is_pyekka and app == EKKA


def autoheal_leader(
    members: Iterable[Member],
    *,
    alive: Callable[[Atom], bool] = lambda _: True,
    eligible: Callable[[Member], bool] = lambda _: True,
) -> Atom | None:
    """The node pyekka nodes report partitions to: the oldest live, eligible member.

    ``alive(Node)`` says whether the node answers (the local node always does);
    ``eligible`` says who runs pyekka's autoheal: pass :func:`is_pyekka_member` when
    genuine nodes may be members (the default, everyone, suits a Python-only
    cluster). ``down`` members are skipped, and guid-less ones count as youngest.
    """
    candidates = (
        m
        for m in sort_members(members)
        if m.status is not MemberStatus.DOWN and eligible(m) and alive(m.node)
    )
    member = oldest(candidates, guidless_first=False)
    return None if member is None else member.node
