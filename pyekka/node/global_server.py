"""``global_name_server``: the part of OTP's ``global`` a visible node must play.

Every visible OTP node runs ``global``, which synchronises with each visible node
that connects: it sends ``init_connect``, locks both partitions, exchanges the
globally registered names, and only then counts the node as synced. An OTP node
that never completes this with a Python peer blocks ``global:sync/0`` forever;
once synced, every ``global:register_name/2`` in the cluster also asks this node
for a lock and registers the name here. So this server implements protocol
version 8 of OTP 25-28 from the passive side (the OTP node's locker leads each
lock round; this server answers):

``nodeup`` N
    cast ``{init_connect, {8, MyTag}, node(), {locker, _, Known, Self}}``.
``{init_connect, ...}`` / ``{init_connect_ack, ...}`` / ``{cancel_connect, ...}``
    record the peer's tag and locker; acknowledge; restart on a tag mismatch.
``{lock_set, Pid, true, HisKnown, MyTag}``
    lock ``global`` with the id ``{global, sort([Pid, Self])}`` here and on the
    nodes already synced, answer ``lock_set`` (``true`` or ``false``), and when
    set cast ``{exchange, node(), Names, [], HisTag}``.
``{exchange, ...}`` / ``{resolved, ...}``
    compute the names to insert, cast ``{resolved, ...}``; once both sides
    resolved, apply the operations, tell the synced nodes (``new_nodes``), tell
    the peer's nodes (``in_sync``, connecting to them), release the locks.
``{set_lock, Id}``, ``{del_lock, Id}``, ``{register, ...}``, ``{unregister, Name}``
    the calls ``global`` makes on every synced node, answered as OTP does.
``{new_nodes, ...}``, ``{in_sync, ...}``, ``{lost_connection, ...}``, ``{remove_connection, N}``
    learn about the cluster; prevent overlapping partitions as asked.

Name conflicts are not resolved here (no Erlang resolve function can run in
Python): the conflicting name of the other partition is simply not inserted.
This node never reports lost connections itself, so it never makes OTP nodes
disconnect each other.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyekka.node.exits import DOWN, CallError
from pyekka.node.gen_server import GEN_CALL, GEN_CAST, reply
from pyekka.node.gen_server import call as gen_call
from pyekka.term import term_sort_key
from pyekka.term.types import Atom, Pid

if TYPE_CHECKING:
    from pyekka.node.distribution import Distribution
    from pyekka.node.process import Process

__all__ = ["GLOBAL_NAME_SERVER", "VSN", "GlobalServer"]

log = logging.getLogger("pyekka.node.global")

GLOBAL_NAME_SERVER = Atom("global_name_server")
VSN = 8
GLOBAL_RID = Atom("global")
INIT_CONNECT = Atom("init_connect")
INIT_CONNECT_ACK = Atom("init_connect_ack")
CANCEL_CONNECT = Atom("cancel_connect")
LOCKER = Atom("locker")
NO_LONGER_A_PID = Atom("no_longer_a_pid")
LOCK_SET = Atom("lock_set")
EXCHANGE = Atom("exchange")
RESOLVED = Atom("resolved")
UNUSED = Atom("unused")
NEW_NODES = Atom("new_nodes")
IN_SYNC = Atom("in_sync")
INSERT = Atom("insert")
DELETE = Atom("delete")
SET_LOCK = Atom("set_lock")
DEL_LOCK = Atom("del_lock")
REGISTER = Atom("register")
REGISTER_EXT = Atom("register_ext")
UNREGISTER = Atom("unregister")
LOST_CONNECTION = Atom("lost_connection")
REMOVE_CONNECTION = Atom("remove_connection")
NODEUP = Atom("nodeup")
NODEDOWN = Atom("nodedown")
YES = Atom("yes")
OK = Atom("ok")
VSN_KEY = Atom("vsn")
LOCK_KEY = Atom("lock")
_LOCKED = Atom("$pyekka_locked")
_SYNCED_OTHER = Atom("$pyekka_in_sync_failed")


@dataclass
class _Session:
    """One synchronisation with a node that connected."""

    my_tag: int
    his_tag: Any = None
    his_locker: Pid | None = None
    his_vsn: int = VSN
    lock_id: Any = None
    locked_nodes: list[Atom] | None = None  # set once our partition is locked
    locking: bool = False
    his_names: list | None = None
    our_ops: list | None = None
    his_resolved: tuple | None = None


@dataclass
class _Lock:
    requester: Any
    holders: dict[Pid, Any]  # holder pid -> monitor reference


class GlobalServer:
    """The ``global_name_server`` process of a visible Python node."""

    def __init__(self, dist: Distribution) -> None:
        self.dist = dist
        self.known: dict[Atom, int] = {}
        self.names: dict[Any, tuple[Pid, Any, Any]] = {}
        self._sessions: dict[Atom, _Session] = {}
        self._locks: dict[Any, _Lock] = {}
        self._monitors: dict[Any, tuple[str, Any, Pid]] = {}
        self._lost: dict[tuple[Atom, Atom], tuple[Any, Any]] = {}
        self._tags = itertools.count(1)
        self.proc: Process

    # -- the process -------------------------------------------------------------------

    async def run(self, proc: Process) -> None:
        """The server loop (spawned registered as ``global_name_server``)."""
        self.proc = proc
        proc.monitor_nodes(True)
        while True:
            msg = await proc.receive()
            try:
                self._handle(msg)
            except Exception:
                log.exception("global_name_server failed on %r", msg)

    @property
    def node(self) -> Atom:
        return self.proc.runtime.node

    def _handle(self, msg: Any) -> None:
        log.debug("global_name_server got %r", msg)
        if type(msg) is not tuple or not msg:
            return
        tag, size = msg[0], len(msg)
        if tag == GEN_CAST and size == 2 and type(msg[1]) is tuple and msg[1]:
            self._cast(msg[1])
        elif tag == GEN_CALL and size == 3 and type(msg[1]) is tuple and len(msg[1]) == 2:
            self._call(msg[2], msg[1])
        elif tag == NODEUP and size == 2:
            self._nodeup(msg[1])
        elif tag == NODEDOWN and size == 2:
            self._nodedown(msg[1])
        elif tag == INIT_CONNECT_ACK and size == 4:
            self._init_connect_ack(msg[1], msg[2], msg[3])
        elif tag == CANCEL_CONNECT and size == 3:
            self._cancel_connect(msg[1], msg[2])
        elif tag == LOST_CONNECTION and size == 5:
            self._lost_connection(msg)
        elif tag == REMOVE_CONNECTION and size == 2:
            self._remove_connection(msg[1])
        elif tag == DOWN and size == 5:
            self._down(msg[1])
        elif tag == _LOCKED and size == 5:
            self._partition_locked(msg[1], msg[2], msg[3], msg[4])

    def _cast(self, req: tuple) -> None:
        kind, size = req[0], len(req)
        if kind == INIT_CONNECT and size == 4:
            self._init_connect(req[1], req[2], req[3])
        elif kind == LOCK_SET and size in (4, 5):
            self._lock_set(req)
        elif kind == EXCHANGE and size == 5:
            self._exchange(req[1], req[2], req[4])
        elif kind == RESOLVED and size == 7:
            self._resolved(req[1], req[2], req[3], req[5], req[6])
        elif kind == NEW_NODES and size == 6:
            self._new_nodes(req[2], req[4])
        elif kind == IN_SYNC and size == 3:
            self._in_sync(req[1])

    def _call(self, req: Any, from_: tuple) -> None:
        caller = from_[0]
        if type(req) is not tuple or not req:
            return
        kind, size = req[0], len(req)
        if kind == SET_LOCK and size == 2:
            reply(self.proc, from_, self._set_lock(req[1], caller))
        elif kind == DEL_LOCK and size == 2:
            self._del_lock(req[1], caller)
            reply(self.proc, from_, True)
        elif (kind == REGISTER and size == 4) or (kind == REGISTER_EXT and size == 5):
            self._insert_name(req[1], req[2], req[3])
            reply(self.proc, from_, YES)
        elif kind == UNREGISTER and size == 2:
            self._delete_name(req[1])
            reply(self.proc, from_, OK)

    def _send(self, node: Atom, msg: Any) -> None:
        self.proc.send((GLOBAL_NAME_SERVER, node), msg)

    def _cast_to(self, node: Atom, msg: Any) -> None:
        self._send(node, (GEN_CAST, msg))

    def _known_list(self) -> list[tuple[Atom, int]]:
        return list(self.known.items())

    # -- connecting --------------------------------------------------------------------

    def _nodeup(self, node: Any) -> None:
        if type(node) is not Atom or node in self.known or node in self._sessions:
            return
        self._start_session(node)

    def _start_session(self, node: Atom) -> _Session:
        session = self._sessions[node] = _Session(my_tag=next(self._tags))
        locker = (LOCKER, NO_LONGER_A_PID, self._known_list(), self.proc.pid)
        self._cast_to(node, (INIT_CONNECT, (VSN, session.my_tag), self.node, locker))
        return session

    def _restart(self, node: Atom) -> None:
        self._end_session(node)
        if node in self.dist.runtime.nodes("visible"):
            self._start_session(node)

    def _end_session(self, node: Atom) -> None:
        session = self._sessions.pop(node, None)
        if session is not None and session.locked_nodes is not None:
            self._release(session.lock_id, session.locked_nodes)

    def _init_connect(self, vsn: Any, node: Any, init_msg: Any) -> None:
        if type(node) is not Atom or type(vsn) is not tuple or len(vsn) < 2:
            return
        if type(init_msg) is not tuple or len(init_msg) != 4 or type(init_msg[3]) is not Pid:
            return
        session = self._sessions.get(node)
        if session is None:
            if node in self.known:
                return
            session = self._start_session(node)
        elif session.his_tag is not None:
            # A second attempt while one is under way: cancel both and start over.
            self._send(node, (CANCEL_CONNECT, self.node, vsn[1]))
            self._restart(node)
            return
        his_vsn = vsn[0] if type(vsn[0]) is int else VSN
        session.his_vsn = min(his_vsn, VSN)
        session.his_tag = vsn[1]
        session.his_locker = init_msg[3]
        self._send(node, (INIT_CONNECT_ACK, self.node, session.his_tag, session.my_tag))

    def _init_connect_ack(self, node: Any, his_my_tag: Any, his_his_tag: Any) -> None:
        session = self._sessions.get(node)
        if session is None:
            return
        # It echoes our tag as "his my tag" and its own as "his his tag".
        if his_my_tag != session.my_tag or his_his_tag != session.his_tag:
            self._send(node, (CANCEL_CONNECT, self.node, his_his_tag))
            self._restart(node)

    def _cancel_connect(self, node: Any, my_tag: Any) -> None:
        session = self._sessions.get(node)
        if session is not None and session.my_tag == my_tag:
            self._restart(node)

    # -- locking -----------------------------------------------------------------------

    def _lock_set(self, req: tuple) -> None:
        pid, is_set = req[1], req[2]
        if type(pid) is not Pid or is_set is not True:
            return
        node = pid.node
        session = self._sessions.get(node)
        tag_ok = len(req) == 4 or (session is not None and req[4] == session.my_tag)
        if session is None or not tag_ok or session.his_locker is None:
            # Not (or no longer) syncing with it: its locker must not wait for us.
            self.proc.send(pid, (LOCK_SET, self.proc.pid, False, list(self.known)))
            return
        if session.locked_nodes is not None or session.locking:
            return
        pair = sorted([pid, self.proc.pid], key=term_sort_key)
        session.lock_id = (GLOBAL_RID, pair)
        if self._set_lock(session.lock_id, self.proc.pid) is not True:
            self._answer_lock(node, session, False)
            return
        others = [n for n in self.known if n != node]
        if not others:
            self._partition_locked(node, session.my_tag, session.lock_id, [self.node])
            return
        session.locking = True
        self.proc.runtime.spawn(
            _lock_nodes, self.proc.pid, node, session.my_tag, session.lock_id, others
        )

    def _partition_locked(self, node: Any, my_tag: Any, lock_id: Any, locked: Any) -> None:
        session = self._sessions.get(node)
        if session is None or session.my_tag != my_tag:
            if type(locked) is list:  # the session ended meanwhile
                self._release_remote(lock_id, [n for n in locked if n != self.node])
            return
        session.locking = False
        if locked is False:
            self._del_lock(session.lock_id, self.proc.pid)
            self._answer_lock(node, session, False)
            return
        session.locked_nodes = locked
        self._answer_lock(node, session, True)
        names = [(name, pid, method) for name, (pid, method, _) in self.names.items()]
        self._cast_to(node, (EXCHANGE, self.node, names, [], session.his_tag))
        self._try_resolve(node, session)

    def _answer_lock(self, node: Atom, session: _Session, ok: bool) -> None:
        msg = (LOCK_SET, self.proc.pid, ok, list(self.known), session.his_tag)
        self._cast_to(node, msg)

    def _set_lock(self, lock_id: Any, pid: Pid) -> bool:
        if type(lock_id) is not tuple or len(lock_id) != 2:
            return False
        resource, requester = lock_id
        lock = self._locks.get(resource)
        if lock is None:
            lock = self._locks[resource] = _Lock(requester, {})
        elif lock.requester != requester:
            return False
        if pid not in lock.holders:
            ref = self._monitor(pid, ("lock", resource))
            lock.holders[pid] = ref
        return True

    def _del_lock(self, lock_id: Any, pid: Pid) -> None:
        if type(lock_id) is not tuple or len(lock_id) != 2:
            return
        resource, requester = lock_id
        lock = self._locks.get(resource)
        if lock is None or lock.requester != requester:
            return
        ref = lock.holders.pop(pid, None)
        if ref is not None:
            self._demonitor(ref)
        if not lock.holders:
            del self._locks[resource]

    def _release(self, lock_id: Any, nodes: list[Atom]) -> None:
        self._del_lock(lock_id, self.proc.pid)
        self._release_remote(lock_id, [n for n in nodes if n != self.node])

    def _release_remote(self, lock_id: Any, nodes: list[Atom]) -> None:
        for node in nodes:
            _send_del_lock(self.proc, node, lock_id)

    # -- exchanging names ----------------------------------------------------------------

    def _exchange(self, node: Any, names: Any, my_tag: Any) -> None:
        session = self._sessions.get(node)
        if session is None or session.my_tag != my_tag or type(names) is not list:
            return
        session.his_names = names
        self._try_resolve(node, session)

    def _try_resolve(self, node: Atom, session: _Session) -> None:
        if session.locked_nodes is None or session.his_names is None or session.our_ops is not None:
            return
        ops = []
        for item in session.his_names:
            if type(item) is not tuple or len(item) != 3:
                continue
            name, pid, method = item
            if name not in self.names and type(pid) is Pid:
                ops.append((INSERT, (name, pid, method)))
            elif name in self.names and self.names[name][0] != pid:
                log.warning("global name %r is registered in both partitions", name)
        session.our_ops = ops
        resolved = (RESOLVED, self.node, [], self._known_list(), UNUSED, [], session.his_tag)
        self._cast_to(node, resolved)
        if session.his_resolved is not None:
            self._finish(node, session)

    def _resolved(self, node: Any, his_ops: Any, his_known: Any, names_ext: Any, tag: Any) -> None:
        session = self._sessions.get(node)
        if session is None or session.my_tag != tag:
            return
        session.his_resolved = (his_ops, his_known, names_ext)
        if session.our_ops is not None:
            self._finish(node, session)

    def _finish(self, node: Atom, session: _Session) -> None:
        his_ops, his_known, names_ext = session.his_resolved  # type: ignore[misc]
        ops = session.our_ops + (his_ops if type(his_ops) is list else [])  # type: ignore[operator]
        his_nodes = _node_vsns(his_known if type(his_known) is list else [])
        new_nodes = [(node, session.his_vsn), *his_nodes]
        self._sync_others([n for n, _ in his_nodes])
        self._do_ops(ops)
        extra = [(VSN_KEY, session.his_vsn), (LOCK_KEY, session.lock_id)]
        for other in self.known:
            self._cast_to(other, (NEW_NODES, self.node, ops, names_ext, new_nodes, extra))
        del self._sessions[node]
        if session.locked_nodes is not None:
            self._release(session.lock_id, session.locked_nodes)
        self._add_known(new_nodes)
        log.info("global: synced with %s", node.name)

    def _do_ops(self, ops: list) -> None:
        for op in ops:
            if type(op) is not tuple or len(op) != 2:
                continue
            if op[0] == INSERT and type(op[1]) is tuple and len(op[1]) == 3:
                self._insert_name(*op[1])
            elif op[0] == DELETE:
                self._delete_name(op[1])

    def _add_known(self, nodes: list[tuple[Atom, int]]) -> list[Atom]:
        added = []
        for node, vsn in nodes:
            if node == self.node:
                continue
            if node not in self.known:
                added.append(node)
                self._end_session(node)
            self.known[node] = vsn
        return added

    def _sync_others(self, nodes: list[Atom]) -> None:
        for node in nodes:
            if node != self.node:
                self.proc.runtime.spawn(_in_sync, self.dist, self.proc.pid, node)

    def _new_nodes(self, ops: Any, nodes: Any) -> None:
        added = self._add_known(_node_vsns(nodes if type(nodes) is list else []))
        self._sync_others(added)
        if type(ops) is list:
            self._do_ops(ops)

    def _in_sync(self, node: Any) -> None:
        # It learnt of us through a third node: our own session is moot. It
        # becomes known when a new_nodes or resolved message names it (and we
        # then tell it we are in sync), exactly as in OTP.
        if type(node) is Atom:
            self._end_session(node)

    # -- names -----------------------------------------------------------------------

    def _insert_name(self, name: Any, pid: Any, method: Any) -> None:
        if type(pid) is not Pid:
            return
        self._delete_name(name)
        ref = self._monitor(pid, ("name", name))
        self.names[name] = (pid, method, ref)

    def _delete_name(self, name: Any) -> None:
        entry = self.names.pop(name, None)
        if entry is not None:
            self._demonitor(entry[2])

    def whereis(self, name: Any) -> Pid | None:
        """The pid globally registered as ``name``, as this node knows it."""
        entry = self.names.get(name)
        return entry[0] if entry is not None else None

    # -- monitors and node downs -----------------------------------------------------------

    def _monitor(self, pid: Pid, what: tuple[str, Any]) -> Any:
        ref = self.proc.monitor(pid)
        self._monitors[ref] = (what[0], what[1], pid)
        return ref

    def _demonitor(self, ref: Any) -> None:
        if self._monitors.pop(ref, None) is not None:
            self.proc.demonitor(ref, flush=True)

    def _down(self, ref: Any) -> None:
        what = self._monitors.pop(ref, None)
        if what is None:
            return
        kind, key, pid = what
        if kind == "name":
            entry = self.names.get(key)
            if entry is not None and entry[2] == ref:
                del self.names[key]
        else:
            lock = self._locks.get(key)
            if lock is not None and lock.holders.get(pid) == ref:
                del lock.holders[pid]
                if not lock.holders:
                    del self._locks[key]

    def _nodedown(self, node: Any) -> None:
        if type(node) is not Atom:
            return
        self._end_session(node)
        self.known.pop(node, None)

    def _lost_connection(self, msg: tuple) -> None:
        _, node_a, creation, op_id, node_b = msg
        key = (node_a, node_b)
        seen = self._lost.get(key)
        if seen is not None and seen[0] == creation and _le(op_id, seen[1]):
            return
        self._lost[key] = (creation, op_id)
        for other in self.known:
            if other != node_a:
                self._send(other, msg)
        remove = node_a if node_b == self.node else node_b
        if remove in self.known or remove in self._sessions:
            log.warning(
                "global: %s lost its connection to %s; asking %s to disconnect from us "
                "to prevent overlapping partitions",
                _name(node_a),
                _name(node_b),
                _name(remove),
            )
            self._send(remove, (REMOVE_CONNECTION, self.node))
            self._nodedown(remove)

    def _remove_connection(self, node: Any) -> None:
        if type(node) is Atom and (node in self.known or node in self._sessions):
            log.warning("global: %s asked us to disconnect (overlapping partitions)", node.name)
            self._nodedown(node)
            self.dist.disconnect(node)


def _node_vsns(items: list) -> list[tuple[Atom, int]]:
    out = []
    for item in items:
        if type(item) is Atom:
            out.append((item, VSN))
        elif type(item) is tuple and len(item) == 2 and type(item[0]) is Atom:
            out.append((item[0], item[1] if type(item[1]) is int else VSN))
    return out


def _le(a: Any, b: Any) -> bool:
    return type(a) is int and type(b) is int and a <= b


def _name(node: Any) -> str:
    return node.name if type(node) is Atom else repr(node)


async def _lock_nodes(
    proc: Process, server: Pid, node: Atom, my_tag: int, lock_id: Any, nodes: list[Atom]
) -> None:
    """Lock ``global`` on the synced ``nodes``; report the nodes locked (or ``False``)."""
    locked: list[Atom] = []
    ok = True
    for other in sorted(nodes, key=lambda n: n.name, reverse=True):  # the boss first
        try:
            answer = await gen_call(proc, (GLOBAL_NAME_SERVER, other), (SET_LOCK, lock_id), None)
        except CallError:
            continue  # a node that went down no longer counts
        if answer is not True:
            ok = False
            break
        locked.append(other)
    if not ok:
        for other in locked:
            _send_del_lock(proc, other, lock_id)
        proc.send(server, (_LOCKED, node, my_tag, lock_id, False))
        return
    proc.send(server, (_LOCKED, node, my_tag, lock_id, [proc.runtime.node, *locked]))


def _send_del_lock(proc: Process, node: Atom, lock_id: Any) -> None:
    """A ``del_lock`` call whose answer nobody waits for (it is dropped)."""
    call = (GEN_CALL, (proc.pid, proc.runtime.make_ref()), (DEL_LOCK, lock_id))
    proc.send((GLOBAL_NAME_SERVER, node), call)


async def _in_sync(proc: Process, dist: Distribution, server: Pid, node: Atom) -> None:
    """Connect to ``node`` and tell its ``global`` we are in sync (``sync_other``)."""
    if await dist.connect(node):
        proc.send((GLOBAL_NAME_SERVER, node), (GEN_CAST, (IN_SYNC, proc.runtime.node, True)))
    else:
        log.warning("global: failed to connect to %s", node.name)
        proc.send(server, (NODEDOWN, node))
