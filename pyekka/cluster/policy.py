"""pyekka's policy for clusters with genuine Erlang members, and for Python-only ones (spec 16).

Genuine ekka 0.8.1.9 trusts things a Python node must handle with care:

* **Leadership by guid** (16.2). ``leader()`` is the member with the oldest guid,
  ``down`` ones included. pyekka makes its guids with
  :attr:`~pyekka.cluster.guid.GuidPolicy.DEFER` by default: every genuine guid is
  older, so whenever a genuine node is a member it leads (``leader`` locks, autoheal
  reports and autocluster targets stay on Erlang nodes), while a Python-only cluster
  is led by its oldest Python node. ``GENUINE`` guids (plain time) are available for
  Python-only clusters that want ekka's behaviour to the letter, and for a Python
  node meant to lead (and heal) genuine nodes.
  The ``leader`` lock type always uses genuine ``leader()`` so that Python and
  Erlang callers lock on the same node.
* **``ekka_node:is_running(ekka)``** (16.3). An Erlang node that hears ``true`` from
  a node it wants to join deletes its own mnesia schema, then fails. A pyekka node
  answers (:func:`is_running_reply`) ``true`` to callers it knows to be pyekka nodes,
  and to a genuine node's registered ``ekka_node_monitor`` process: that process
  asks only its ``leader()``, before casting it ``{report_partition, node()}``
  (``confirm_partition``), never to join it. Whether the calling process is
  registered so is asked of its own node (rpc ``erlang:process_info(Pid,
  registered_name)``, :data:`NODE_MONITOR_CHECK_TIMEOUT`); any doubt (no answer,
  another name, no caller) means ``false``. Every other genuine caller (the join
  path ``ekka_cluster:join/1``, ``ekka_membership:ping/2``) hears ``false``.
* **Autoheal of genuine nodes** (16.6, issue 4). A pyekka node that is the genuine
  nodes' ``leader()`` (``GENUINE`` guids, older than theirs) takes their reports and
  heals them as a separate domain: views of genuine nodes only, never mixed with the
  pyekka db nodes' (see :mod:`pyekka.cluster.autoheal_genuine`).
* **Autoheal among pyekka nodes** (16.6, issue 4). Genuine reports go to
  ``leader()``, and if that member is down nothing heals. pyekka nodes report to,
  and accept reports as, the :func:`autoheal_leader`: the oldest member that is not
  ``down``, answers, and can run pyekka's autoheal; members without a guid count as
  youngest (as mria does). Reports are never sent to genuine nodes (spec 15.G).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pyekka.cluster.constants import EKKA, EKKA_NODE_MONITOR
from pyekka.cluster.election import oldest, sort_members
from pyekka.cluster.guid import is_deferred
from pyekka.cluster.member import Member, MemberStatus
from pyekka.term.types import Atom

__all__ = [
    "NODE_MONITOR_CHECK_TIMEOUT",
    "autoheal_leader",
    "is_node_monitor_reply",
    "is_pyekka_member",
    "is_running_reply",
]

NODE_MONITOR_CHECK_TIMEOUT = 2.0
"""Seconds to wait for a genuine caller's node to say whether the calling process is
its ``ekka_node_monitor`` (no answer in time: ``false``)."""

_REGISTERED_NAME = Atom("registered_name")


def is_pyekka_member(member: Member) -> bool:
    """Whether the member's guid was made by a pyekka node under ``DEFER``."""
    return is_deferred(member.guid)


def is_running_reply(
    app: object,
    *,
    caller_is_pyekka: bool,
    running: bool = True,
    caller_is_node_monitor: bool = False,
) -> bool:
    """The answer to rpc ``ekka_node:is_running(App)`` from a caller.

    ``True`` only for ``App = ekka``, while ekka's services run here, and for a
    caller known to be a pyekka node or to be a genuine node's ``ekka_node_monitor``
    (autoheal's report path); ``False`` for everyone else, so that no Erlang node
    ever tries to mnesia-join this node (spec 16.3).
    """
    return running and app == EKKA and (caller_is_pyekka or caller_is_node_monitor)


def is_node_monitor_reply(reply: object) -> bool:
    """Whether an ``erlang:process_info(Pid, registered_name)`` answer says
    ``{registered_name, ekka_node_monitor}`` (anything else, a ``badrpc`` included,
    is ``False``)."""
    return (
        type(reply) is tuple
        and len(reply) == 2
        and reply[0] == _REGISTERED_NAME
        and reply[1] == EKKA_NODE_MONITOR
    )


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
