"""The functions other nodes call on a pyekka cluster member, by module and function.

Genuine ekka 0.8.1.9 nodes (spec 14.1) and pyekka nodes call these with ``rpc:call``
(``erpc`` spawn requests or the classic ``rex``); return shapes are genuine ekka's:

==========================================  ==========================================
function                                    answer
==========================================  ==========================================
``ekka_node:is_running(App)``               ``true`` only for ``App = ekka``, while the
                                            services run, and to a caller that is a
                                            pyekka member or a genuine node's
                                            ``ekka_node_monitor`` (:func:`~pyekka.
                                            cluster.policy.is_running_reply`); else
                                            ``false``
``ekka_membership:local_member()``          the local ``#member{}`` 8-tuple
``ekka_membership:members/0,1``,            the table (8-tuples, node order), nodes
``nodelist/0,1``, ``lookup_member/1``,
``is_member/1``, ``leader/0``,
``coordinator/0``; ``ekka:members/0``,
``ekka:local_member/0``, ``ekka:nodelist/0,1``
``ekka_mnesia:cluster_view()``              ``{Running, Stopped}`` of pyekka's view
``ekka_mnesia:cluster_status(Node)``        ``running | stopped | false``
``ekka_mnesia:cluster_nodes(all|running|    sorted node lists; ``#{running_nodes,
stopped)``, ``running_nodes/0``,            stopped_nodes}``
``cluster_info/0``, ``is_node_in_cluster/
0,1``
``ekka:info()``                             ``#{members, running_nodes, stopped_nodes,
                                            partitions}``
``ekka_cluster:prepare(join|leave|heal)``,  ``ok`` (7.3, 7.4)
``ekka_cluster:heal(shutdown|reboot)``,
``ekka_cluster:reboot()``
``pyekka_cluster:sync/1``,                  pyekka's own (view replication and join,
``check_join/2``, ``join/2``                see :mod:`pyekka.cluster.cluster_view`)
==========================================  ==========================================

A call made while the services are stopped gets what a stopped genuine node gives:
``is_running`` is ``false`` and the membership functions fail with ``badarg``.
Malformed arguments fail as a genuine ``function_clause`` would (``badarg`` here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyekka.cluster.cluster_view import PYEKKA_CLUSTER, NodeKind
from pyekka.cluster.member import MemberStatus
from pyekka.cluster.policy import (
    NODE_MONITOR_CHECK_TIMEOUT,
    is_node_monitor_reply,
    is_pyekka_member,
    is_running_reply,
)
from pyekka.node.exits import BadArg
from pyekka.node.functions import current_caller
from pyekka.term.types import Atom, Pid

if TYPE_CHECKING:
    from pyekka.cluster.cluster import Cluster

__all__ = [
    "caller_is_node_monitor",
    "caller_is_pyekka",
    "register_rpc_surface",
    "unregister_rpc_surface",
]

A = Atom
_OK = A("ok")
_UNDEFINED = A("undefined")
_ERLANG = A("erlang")
_PROCESS_INFO = A("process_info")
_REGISTERED_NAME = A("registered_name")
_STATUSES = {"up": MemberStatus.UP, "down": MemberStatus.DOWN}


def _status(term: Any) -> MemberStatus:
    if type(term) is Atom and term.name in _STATUSES:
        return _STATUSES[term.name]
    raise BadArg(f"not up or down: {term!r}")


def _node(term: Any) -> Atom:
    if type(term) is not Atom:
        raise BadArg(f"not a node: {term!r}")
    return term


def _action(term: Any, allowed: tuple[str, ...]) -> str:
    if type(term) is Atom and term.name in allowed:
        return term.name
    raise BadArg(f"not one of {allowed}: {term!r}")


def caller_is_pyekka(cluster: Cluster, caller: Pid | None) -> bool:
    """Whether the rpc comes from a pyekka node: a pyekka member of the view, or a
    node whose member entry carries a pyekka (``DEFER``) guid."""
    if caller is None:
        return False
    node = caller.node
    if node == cluster.node.name or cluster.db.view.kind(node) is NodeKind.PYEKKA:
        return True
    entry = cluster.membership.lookup(node)
    return entry is not None and is_pyekka_member(entry)


async def caller_is_node_monitor(
    cluster: Cluster, caller: Pid | None, timeout: float = NODE_MONITOR_CHECK_TIMEOUT
) -> bool:
    """Whether the calling process is registered as ``ekka_node_monitor`` on its own
    node: rpc ``erlang:process_info(Caller, registered_name)`` there; ``False`` on
    any doubt (no caller, a local one, no answer within ``timeout`` seconds)."""
    if caller is None or caller.node == cluster.node.name:
        return False
    reply = await cluster.node.rpc(
        caller.node, _ERLANG, _PROCESS_INFO, [caller, _REGISTERED_NAME], timeout
    )
    return is_node_monitor_reply(reply)


def _functions(cluster: Cluster) -> list[tuple[str, str, Callable[..., Any]]]:
    membership = cluster.membership
    db = cluster.db

    def table() -> Any:
        if membership.table is None:
            raise BadArg("ekka_membership is not running")
        return membership.table

    def members(status: Any = None) -> list[tuple]:
        wanted = None if status is None else _status(status)
        return [m.to_term() for m in table().members(wanted)]

    def nodelist(status: Any = None) -> list[Atom]:
        wanted = None if status is None else _status(status)
        return [m.node for m in table().members(wanted)]

    def local_member() -> tuple:
        return table().local_member.to_term()

    def lookup_member(node: Any) -> Any:
        entry = table().lookup(_node(node))
        return False if entry is None else entry.to_term()

    async def is_running(app: Any) -> bool:
        caller = current_caller()
        pyekka = caller_is_pyekka(cluster, caller)
        if not is_running_reply(app, caller_is_pyekka=True, running=cluster.running):
            return False  # not ekka, or not running: no need to ask the caller's node
        monitor = not pyekka and await caller_is_node_monitor(cluster, caller)
        return is_running_reply(
            app,
            caller_is_pyekka=pyekka,
            running=cluster.running,
            caller_is_node_monitor=monitor,
        )

    def cluster_nodes(which: Any) -> list[Atom]:
        kind = _action(which, ("all", "running", "stopped"))
        if kind == "all":
            return db.db_nodes()
        return db.running_nodes() if kind == "running" else db.stopped_nodes()

    def is_node_in_cluster(node: Any = None) -> bool:
        return db.is_node_in_cluster(None if node is None else _node(node))

    async def prepare(action: Any) -> Any:
        return await cluster.prepare(_action(action, ("join", "leave", "heal")))

    async def heal(action: Any) -> Any:
        return await cluster.heal(_action(action, ("shutdown", "reboot")))

    async def join(joiner: Any, name: Any) -> Any:
        return await cluster.accept_join(_node(joiner), name)

    def sync(request: Any) -> Any:
        try:
            return db.handle_sync(request)
        except ValueError as exc:
            raise BadArg(str(exc)) from None

    def leader() -> Any:
        table()
        return membership.leader() or _UNDEFINED

    def coordinator() -> Any:
        table()
        return membership.coordinator() or _UNDEFINED

    def info() -> dict:
        table()
        return cluster.info().to_term()

    return [
        ("ekka_node", "is_running", is_running),
        ("ekka_membership", "local_member", local_member),
        ("ekka_membership", "members", members),
        ("ekka_membership", "nodelist", nodelist),
        ("ekka_membership", "lookup_member", lookup_member),
        ("ekka_membership", "is_member", lambda node: table().lookup(_node(node)) is not None),
        ("ekka_membership", "leader", leader),
        ("ekka_membership", "coordinator", coordinator),
        ("ekka", "members", lambda: members()),
        ("ekka", "local_member", local_member),
        ("ekka", "nodelist", nodelist),
        ("ekka", "info", info),
        ("ekka_mnesia", "cluster_view", lambda: db.cluster_view().to_term()),
        ("ekka_mnesia", "cluster_status", lambda node: db.cluster_status(_node(node)).to_term()),
        ("ekka_mnesia", "cluster_nodes", cluster_nodes),
        ("ekka_mnesia", "running_nodes", db.running_nodes),
        ("ekka_mnesia", "cluster_info", db.cluster_info),
        ("ekka_mnesia", "is_node_in_cluster", is_node_in_cluster),
        ("ekka_cluster", "prepare", prepare),
        ("ekka_cluster", "heal", heal),
        ("ekka_cluster", "reboot", cluster.reboot),
        ("ekka_cluster", "status", lambda node: db.cluster_status(_node(node)).to_term()),
        (PYEKKA_CLUSTER.name, "sync", sync),
        (PYEKKA_CLUSTER.name, "check_join", cluster.check_join),
        (PYEKKA_CLUSTER.name, "join", join),
    ]


def register_rpc_surface(cluster: Cluster) -> None:
    """Register every function of the table above on the cluster's node."""
    for module, function, fn in _functions(cluster):
        cluster.node.register_function(module, function, fn)


def unregister_rpc_surface(cluster: Cluster) -> None:
    """Remove them again."""
    for module, function, _fn in _functions(cluster):
        cluster.node.functions.unregister(module, function)
