"""The membership operations of a :class:`~pyekka.cluster.cluster.Cluster`: join (a
pyekka target, or *attach* to a genuine one), leave and force-leave (a genuine member
through a live genuine member).

The :class:`~pyekka.cluster.cluster.Cluster` methods check their argument, take the
cluster's operation lock and delegate here; every function runs under that lock (see
:mod:`pyekka.cluster.cluster` for the semantics).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pyekka.cluster.cluster_types import ClusterError
from pyekka.cluster.cluster_view import NodeKind, NodeView, cluster_name_term, cluster_name_value
from pyekka.cluster.constants import EKKA, EKKA_MEMBERSHIP
from pyekka.node.gen_server import GEN_CAST
from pyekka.term.types import Atom

if TYPE_CHECKING:
    from pyekka.cluster.cluster import Cluster

__all__ = ["accept_join", "check_join", "force_leave", "join", "leave"]

log = logging.getLogger("pyekka.cluster")

A = Atom
_OK = A("ok")
_ERROR = A("error")
_BADRPC = A("badrpc")
_EXIT = A("EXIT")
_UNDEF = A("undef")
_NODEDOWN = A("nodedown")
_LEAVE = A("leave")
_LEAVING = A("leaving")
_PYEKKA_CLUSTER = A("pyekka_cluster")


def _is_badrpc(reply: Any) -> bool:
    return type(reply) is tuple and len(reply) == 2 and reply[0] == _BADRPC


def _is_undef(reply: Any) -> bool:
    """``{badrpc, {'EXIT', {undef, _}}}``: the node has no such function."""
    if not _is_badrpc(reply):
        return False
    detail = reply[1]
    return (
        type(detail) is tuple
        and len(detail) == 2
        and detail[0] == _EXIT
        and type(detail[1]) is tuple
        and len(detail[1]) >= 1
        and detail[1][0] == _UNDEF
    )


def _reason(reply: Any) -> Any:
    """The reason of an ``{error, Reason}``-like reply (the reply itself else)."""
    return reply[1] if type(reply) is tuple and len(reply) == 2 else reply


async def _call_pyekka_cluster(cluster: Cluster, target: Atom, function: str) -> Any:
    """``pyekka_cluster:Function(ThisNode, ClusterName)`` on ``target`` by rpc."""
    name = cluster_name_term(cluster.cluster_name)
    return await cluster.node.rpc(
        target, _PYEKKA_CLUSTER, function, [cluster.node.name, name], cluster.rpc_timeout
    )


async def join(cluster: Cluster, target: Atom) -> None:
    """``ekka:join(Target)`` for another node ``target``: a pyekka target or attach."""
    if cluster.db.view.is_member(target):
        raise ClusterError((A("already_in_cluster"), target))
    answer = await _call_pyekka_cluster(cluster, target, "check_join")
    if answer == _OK:
        await _join_pyekka(cluster, target)
    elif _is_undef(answer):
        await _attach(cluster, target)
    elif _is_badrpc(answer):
        raise ClusterError((A("node_down"), target))
    elif type(answer) is tuple and len(answer) == 2 and answer[0] == _ERROR:
        raise ClusterError(answer[1])
    else:
        raise ClusterError((A("unexpected_reply"), answer))


async def _join_pyekka(cluster: Cluster, target: Atom) -> None:
    db = cluster.db
    await cluster.prepare("join")
    try:
        old_peers = [n for n in db.db_nodes() if n != cluster.node.name]
        if old_peers:
            db.remove(cluster.node.name)
            await cluster.replicator.publish(old_peers)
        # As ekka's joiner deletes its schema: start from a standalone view, so that
        # nothing of the old one (say, removals of nodes of the target's cluster made
        # while cut off from them) reaches the target's cluster through a sync.
        db.reset()
        reply = await _call_pyekka_cluster(cluster, target, "join")
        joined = type(reply) is tuple and len(reply) == 2 and reply[0] == _OK
        db.stop()
        if joined:
            db.adopt(NodeView.entries_from_term(reply[1]))
        else:
            db.reset()
        db.start()
    finally:
        await cluster.reboot()
    if not joined:
        if _is_badrpc(reply):
            raise ClusterError((A("node_down"), target))
        raise ClusterError(_reason(reply))
    log.info("%s joined the cluster of %s", cluster.node.name.name, target.name)


async def _attach(cluster: Cluster, target: Atom) -> None:
    node, timeout = cluster.node, cluster.rpc_timeout
    running = await node.rpc(target, "ekka_node", "is_running", [EKKA], timeout)
    if running is not True:
        raise ClusterError((A("node_down"), target))
    nodes = await node.rpc(target, "ekka_mnesia", "cluster_nodes", [A("all")], timeout)
    genuine = [target]
    if type(nodes) is list and all(type(n) is Atom for n in nodes) and target in nodes:
        genuine = nodes
    if cluster.db.view.genuine_nodes():  # one genuine cluster at a time
        raise ClusterError((A("already_in_cluster"), cluster.db.view.genuine_nodes()[0]))
    cluster.db.set_genuine(genuine)
    await cluster.replicator.publish()
    log.info(
        "%s attached to the genuine ekka nodes %s",
        node.name.name,
        ", ".join(n.name for n in genuine),
    )


async def leave(cluster: Cluster) -> None:
    """``ekka:leave()``: leave the cluster (:class:`ClusterError` if not in one)."""
    db, me = cluster.db, cluster.node.name
    peers = [n for n in db.db_nodes() if n != me]
    running_peers = [n for n in db.running_nodes() if n != me]
    genuine = db.view.genuine_nodes()
    if not running_peers and not genuine:
        raise ClusterError(A("node_not_in_cluster"))
    await cluster.prepare("leave")
    try:
        if peers:
            db.remove(me)
            acked = await cluster.replicator.publish(peers)
            if not acked:  # once more: a connection may have been in flux
                acked = await cluster.replicator.publish(peers)
            if not acked:
                db.add(me)
                raise ClusterError((A("failed_to_leave"), peers))
        db.stop()
        db.reset()
        db.start()
        for node in genuine:
            cluster.node.disconnect(node)
    finally:
        await cluster.reboot()


async def force_leave(cluster: Cluster, target: Atom) -> None:
    """``ekka:force_leave(Target)`` for another node ``target``."""
    db, node = cluster.db, cluster.node
    kind = db.view.kind(target)
    if kind is None:
        raise ClusterError(A("node_not_in_cluster"))
    if kind is NodeKind.GENUINE:
        await _force_leave_genuine(cluster, target)
        return
    reply = await node.rpc(target, "ekka_cluster", "prepare", [_LEAVE], cluster.rpc_timeout)
    if reply == _OK:
        others = db.db_nodes()
        db.remove(target)
        await cluster.replicator.publish([*others])
        await node.rpc(target, "ekka_cluster", "reboot", [], cluster.rpc_timeout)
    elif reply == (_BADRPC, _NODEDOWN):
        cluster.membership.announce(("force_leave", target))
        db.remove(target)
        await cluster.replicator.publish()
    elif _is_badrpc(reply):
        raise ClusterError(reply[1])
    else:
        raise ClusterError(reply)
    log.info("%s force-left %s", node.name.name, target.name)


async def _force_leave_genuine(cluster: Cluster, target: Atom) -> None:
    """Ask a live genuine member for ``ekka:force_leave(Target)`` (mnesia is
    theirs, spec 14.2), then detach ``target``: pyekka tables learn
    ``{leaving, Target}``. Without a live genuine member only the detaching is done
    (a genuine member met later brings the node back if it is still theirs)."""
    db, node = cluster.db, cluster.node
    connected = set(node.nodes())
    for helper in db.view.genuine_nodes():
        if helper == target or helper not in connected:
            continue
        reply = await node.rpc(helper, "ekka", "force_leave", [target], cluster.rpc_timeout)
        if reply in (_OK, (_ERROR, A("node_not_in_cluster"))):
            break
        if not _is_badrpc(reply):
            raise ClusterError(_reason(reply))
    db.remove(target)
    for member in db.db_nodes():
        node.runtime.try_send((EKKA_MEMBERSHIP, member), (GEN_CAST, (_LEAVING, target)))
    await cluster.replicator.publish()


def check_join(cluster: Cluster, joiner: Atom, name: Any) -> Any:
    """``pyekka_cluster:check_join/2`` on ``cluster``: ``ok`` or ``{error, Reason}``."""
    try:
        theirs = cluster_name_value(name)
    except ValueError:
        theirs = None
    if theirs != cluster.cluster_name or type(joiner) is not Atom:
        return (_ERROR, (A("cluster_name_mismatch"), cluster_name_term(cluster.cluster_name)))
    if not cluster.db.started:
        return (_ERROR, A("not_running"))
    return _OK


async def accept_join(cluster: Cluster, joiner: Atom) -> Any:
    """``pyekka_cluster:join/2`` once checked: add ``joiner``, push the view, return it."""
    db = cluster.db
    db.add(joiner)
    await cluster.replicator.publish([n for n in db.db_nodes() if n != joiner])
    return (_OK, db.view.to_term())
