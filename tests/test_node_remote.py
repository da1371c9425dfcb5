"""The remote seam of the runtime, driven by a recording router (no sockets here:
the real connection layer is tested against live OTP nodes elsewhere)."""

from __future__ import annotations

import asyncio

import pytest

from pyekka.node import ProcessRuntime, RemoteRouter
from pyekka.node.exits import BadArg
from pyekka.term.types import Atom, Pid, Reference
from pyekka.testing.router import RecordingRouter

NODE = Atom("py@127.0.0.1")
PEER = Atom("erl@127.0.0.1")
OTHER = Atom("other@127.0.0.1")
NORMAL, KILL, KILLED, NOPROC = Atom("normal"), Atom("kill"), Atom("killed"), Atom("noproc")
NOCONNECTION = Atom("noconnection")
EXIT, DOWN, PROCESS = Atom("EXIT"), Atom("DOWN"), Atom("process")
BOOM = Atom("boom")
VIS = Atom("visible")
R1 = Pid(PEER, 80, 0, 1234)
R2 = Pid(PEER, 81, 0, 1234)
R3 = Pid(OTHER, 90, 0, 99)
PEER_REF = Reference(PEER, 1234, (1, 2, 3))
PEER_REF2 = Reference(PEER, 1234, (4, 5, 6))


@pytest.fixture
def router():
    return RecordingRouter()


@pytest.fixture
async def rt(router):
    runtime = ProcessRuntime(NODE, 7, router=router)
    yield runtime
    await runtime.close()
    assert router.calls == []  # closing sends nothing to other nodes


async def idle(proc):
    await asyncio.get_running_loop().create_future()


async def ended(proc):
    """The exit reason of ``proc``, failing (not hanging) if it does not end."""
    return await asyncio.wait_for(proc.wait(), 5)


def test_fake_router_has_the_protocol_methods():
    protocol = {n for n in vars(RemoteRouter) if not n.startswith("_")}
    assert protocol <= set(vars(RecordingRouter))


# -- messages -------------------------------------------------------------------------


async def test_outbound_messages(rt, router):
    p = rt.spawn(idle)
    p.send(R1, "hi")
    p.send((Atom("rex"), PEER), "to name")
    alias = Reference(PEER, 1234, (7, 8, 9))
    p.send(alias, "to alias")
    rt.send(R2, "from nowhere")
    assert router.take() == [
        ("send", p.pid, R1, "hi"),
        ("reg_send", p.pid, Atom("rex"), PEER, "to name"),
        ("alias_send", p.pid, alias, "to alias"),
        ("send", rt.system_pid, R2, "from nowhere"),
    ]


async def test_inbound_messages(rt):
    p = rt.spawn(idle, name=Atom("inbox"))
    alias = p.alias()
    rt.deliver(p.pid, 1, R1)
    rt.deliver_reg(Atom("inbox"), 2, R1)
    rt.deliver_alias(alias, 3, R1)
    rt.deliver_reg(Atom("nobody"), "dropped", R1)
    rt.deliver(Pid(NODE, 4242, 0, 7), "dropped", R1)
    p.unalias(alias)
    rt.deliver_alias(alias, "dropped", R1)
    assert p.mailbox.snapshot() == [1, 2, 3]


# -- links ----------------------------------------------------------------------------


async def test_link_and_unlink_with_ids(rt, router):
    p = rt.spawn(idle)
    p.link(R1)
    p.link(R1)  # already active: nothing sent
    assert router.take() == [("link", p.pid, R1)]
    p.unlink(R1)
    [(kind, frm, to, uid)] = router.take()
    assert (kind, frm, to) == ("unlink", p.pid, R1) and uid > 0
    assert p.links == []  # unlinking: no longer considered linked
    p.unlink(R1)  # no active link: nothing sent
    assert router.take() == []
    rt.remote_unlink_ack(R1, p.pid, uid + 1)  # wrong id: ignored
    assert R1 in p._links
    rt.remote_unlink_ack(R1, p.pid, uid)
    assert R1 not in p._links


async def test_exit_on_a_link_being_unlinked_is_ignored(rt, router):
    p = rt.spawn(idle)
    p.link(R1)
    p.unlink(R1)
    router.take()
    rt.remote_exit(R1, p.pid, BOOM)
    assert p.is_alive and R1 not in p._links


async def test_link_received_while_unlinking_is_ignored(rt, router):
    p = rt.spawn(idle)
    p.link(R1)
    p.unlink(R1)
    [(_, _, _, uid)] = router.take()[1:]
    rt.remote_link(R1, p.pid)
    assert p.links == []
    rt.remote_unlink_ack(R1, p.pid, uid)
    assert p._links == {}


async def test_relink_while_unlinking_wins_over_the_old_ack(rt, router):
    p = rt.spawn(idle)
    p.link(R1)
    p.unlink(R1)
    p.link(R1)
    calls = router.take()
    assert [c[0] for c in calls] == ["link", "unlink", "link"]
    rt.remote_unlink_ack(R1, p.pid, calls[1][3])
    assert p.links == [R1]


async def test_inbound_link_then_local_death_sends_exit(rt, router):
    p = rt.spawn(idle)
    q = rt.spawn(idle)
    rt.remote_link(R1, p.pid)
    rt.remote_link(R1, p.pid)  # duplicate LINK: harmless
    rt.remote_link(R2, q.pid)
    q.unlink(R2)  # unlinking when q dies: no EXIT must be sent (OTP-18177)
    [(_, _, _, uid)] = router.take()
    assert uid > 0
    assert p.links == [R1]
    rt.exit(p.pid, BOOM)
    rt.exit(q.pid, BOOM)
    assert router.take() == [("exit", p.pid, R1, BOOM)]


async def test_inbound_link_to_missing_process(rt, router):
    ghost = Pid(NODE, 31000, 0, 7)
    rt.remote_link(R1, ghost)
    assert router.take() == [("exit", ghost, R1, NOPROC)]


async def test_inbound_unlink(rt, router):
    p = rt.spawn(idle)
    rt.remote_link(R1, p.pid)
    rt.remote_link(R2, p.pid)
    rt.remote_unlink(R1, p.pid, 55)
    rt.remote_unlink(R2, p.pid, None)  # the old UNLINK: no ack
    assert p._links == {}
    assert router.take() == [("unlink_ack", p.pid, R1, 55)]
    # Both sides unlinking at once: our entry waits for our own ack.
    p.link(R1)
    p.unlink(R1)
    uid = router.take()[1][3]
    rt.remote_unlink(R1, p.pid, 66)
    assert router.take() == [("unlink_ack", p.pid, R1, 66)]
    assert p._links == {R1: uid}
    rt.remote_unlink_ack(R1, p.pid, uid)
    assert p._links == {}


async def test_inbound_exit_on_a_link(rt):
    plain, trapper = rt.spawn(idle), rt.spawn(idle, trap_exit=True)
    unlinked = rt.spawn(idle)
    rt.remote_link(R1, plain.pid)
    rt.remote_link(R1, trapper.pid)
    rt.remote_exit(R1, trapper.pid, BOOM)
    rt.remote_exit(R1, unlinked.pid, BOOM)  # no link: ignored
    rt.remote_exit(R1, plain.pid, BOOM)
    assert await ended(plain) == BOOM
    assert await trapper.receive(timeout=0) == (EXIT, R1, BOOM)
    assert trapper._links == {} and unlinked.is_alive


async def test_inbound_exit2(rt):
    plain, trapper = rt.spawn(idle), rt.spawn(idle, trap_exit=True)
    rt.remote_exit2(R1, plain.pid, NORMAL)
    rt.remote_exit2(R1, trapper.pid, NORMAL)
    assert plain.is_alive
    assert await trapper.receive(timeout=0) == (EXIT, R1, NORMAL)
    rt.remote_exit2(R1, trapper.pid, KILL)
    rt.remote_exit2(R1, plain.pid, BOOM)
    assert await ended(trapper) == KILLED
    assert await ended(plain) == BOOM


async def test_outbound_exit2(rt, router):
    p = rt.spawn(idle)
    p.send_exit(R1, BOOM)
    rt.exit(R2, KILL)
    assert router.take() == [("exit2", p.pid, R1, BOOM), ("exit2", rt.system_pid, R2, KILL)]
    with pytest.raises(BadArg):
        rt.exit(Atom("name"), KILL)


# -- monitors -------------------------------------------------------------------------


async def test_monitor_remote_pid_and_name(rt, router):
    w = rt.spawn(idle)
    r1 = w.monitor(R1)
    r2 = w.monitor((Atom("rex"), PEER))
    assert router.take() == [
        ("monitor", w.pid, R1, r1),
        ("monitor", w.pid, (Atom("rex"), PEER), r2),
    ]
    rt.remote_monitor_exit(R1, w.pid, r1, BOOM)
    rt.remote_monitor_exit(Atom("rex"), w.pid, r2, NOPROC)
    rt.remote_monitor_exit(R1, w.pid, r1, BOOM)  # repeated: ignored
    assert w.mailbox.snapshot() == [
        (DOWN, r1, PROCESS, R1, BOOM),
        (DOWN, r2, PROCESS, (Atom("rex"), PEER), NOPROC),
    ]


async def test_demonitor_remote(rt, router):
    w = rt.spawn(idle)
    ref = w.monitor(R1)
    assert w.demonitor(ref)
    assert router.take()[1:] == [("demonitor", w.pid, R1, ref)]
    rt.remote_monitor_exit(R1, w.pid, ref, BOOM)
    assert w.message_queue_len == 0


async def test_watcher_death_demonitors_remote_targets(rt, router):
    w = rt.spawn(idle)
    ref = w.monitor((Atom("rex"), PEER))
    router.take()
    rt.exit(w.pid, BOOM)
    assert router.take() == [("demonitor", w.pid, (Atom("rex"), PEER), ref)]


async def test_inbound_monitor(rt, router):
    t = rt.spawn(idle, name=Atom("svc"))
    rt.remote_monitor(R1, t.pid, PEER_REF)
    rt.remote_monitor(R2, Atom("svc"), PEER_REF2)
    assert router.take() == []
    rt.exit(t.pid, BOOM)
    assert sorted(router.take(), key=repr) == sorted(
        [
            ("monitor_exit", t.pid, R1, PEER_REF, BOOM),
            ("monitor_exit", Atom("svc"), R2, PEER_REF2, BOOM),
        ],
        key=repr,
    )
    assert rt._remote_watched == {}


async def test_inbound_monitor_of_missing_process(rt, router):
    ghost = Pid(NODE, 31000, 0, 7)
    rt.remote_monitor(R1, ghost, PEER_REF)
    rt.remote_monitor(R1, Atom("nobody"), PEER_REF2)
    assert router.take() == [
        ("monitor_exit", ghost, R1, PEER_REF, NOPROC),
        ("monitor_exit", Atom("nobody"), R1, PEER_REF2, NOPROC),
    ]


async def test_inbound_demonitor(rt, router):
    t = rt.spawn(idle)
    rt.remote_monitor(R1, t.pid, PEER_REF)
    rt.remote_demonitor(R2, t.pid, PEER_REF)  # not the watcher: ignored
    assert PEER_REF in t._monitored_by
    rt.remote_demonitor(R1, t.pid, PEER_REF)
    rt.remote_demonitor(R1, t.pid, PEER_REF)  # twice: harmless
    rt.exit(t.pid, BOOM)
    assert router.take() == []


async def test_spawn_for_a_remote_parent(rt, router):
    # What a SPAWN_REQUEST with link and monitor options needs: only our half.
    child = rt.spawn(idle, link_to=R1, monitor_by=R1, monitor_ref=PEER_REF)
    assert child.spawn_ref == PEER_REF and child.links == [R1]
    assert router.take() == []
    rt.exit(child.pid, BOOM)
    assert sorted(router.take(), key=repr) == sorted(
        [("exit", child.pid, R1, BOOM), ("monitor_exit", child.pid, R1, PEER_REF, BOOM)],
        key=repr,
    )


# -- node up / down ---------------------------------------------------------------------


async def test_node_down_breaks_links_and_monitors(rt, router):
    plain = rt.spawn(idle)
    trapper = rt.spawn(idle, trap_exit=True)
    watcher = rt.spawn(idle)
    served = rt.spawn(idle)
    plain.link(R1)
    trapper.link(R2)
    trapper.link(R3)  # another node: untouched
    ref = watcher.monitor(R1)
    ref_name = watcher.monitor((Atom("rex"), PEER))
    rt.remote_link(R2, served.pid)
    rt.remote_monitor(R1, served.pid, PEER_REF)
    router.take()
    rt.node_down(PEER, Atom("net_tick_timeout"))
    assert await ended(plain) == NOCONNECTION
    assert await trapper.receive(timeout=0) == (EXIT, R2, NOCONNECTION)
    assert trapper.links == [R3]
    assert watcher.mailbox.snapshot() == [
        (DOWN, ref, PROCESS, R1, NOCONNECTION),
        (DOWN, ref_name, PROCESS, (Atom("rex"), PEER), NOCONNECTION),
    ]
    # The dead plain process sent nothing towards the lost node.
    assert router.take() == []
    # What peers on the lost node held on our processes is forgotten.
    rt.exit(served.pid, BOOM)
    assert router.take() == []
    assert served._links == {} and rt._remote_watched == {}


async def test_node_down_kills_processes_linked_locally_without_signalling_the_lost_node(
    rt, router
):
    a = rt.spawn(idle)
    b = rt.spawn(idle, link_to=a.pid)
    a.link(R1)
    b.link(R2)
    router.take()
    rt.node_down(PEER)
    assert await ended(a) == NOCONNECTION
    assert await ended(b) == NOCONNECTION
    assert router.take() == []


async def test_monitor_nodes(rt):
    plain = rt.spawn(idle)
    listed = rt.spawn(idle)
    mapped = rt.spawn(idle)
    hidden_only = rt.spawn(idle)
    plain.monitor_nodes(True)
    listed.monitor_nodes(
        True, [Atom("nodedown_reason"), (Atom("node_type"), Atom("all")), Atom("connection_id")]
    )
    mapped.monitor_nodes(True, {Atom("nodedown_reason"): True, Atom("node_type"): Atom("all")})
    hidden_only.monitor_nodes(True, [(Atom("node_type"), Atom("hidden"))])
    rt.node_up(PEER, connection_id=17)
    rt.node_up(PEER)  # already up: ignored
    rt.node_up(OTHER, hidden=True, connection_id=18)
    assert rt.nodes() == [PEER] and rt.nodes("hidden") == [OTHER]
    assert set(rt.nodes("connected")) == {PEER, OTHER}
    rt.node_down(PEER, Atom("connection_closed"))
    rt.node_down(OTHER, Atom("net_tick_timeout"))
    rt.node_down(OTHER)  # not up any more: no message
    assert rt.nodes("connected") == []
    nt, ndr, cid = Atom("node_type"), Atom("nodedown_reason"), Atom("connection_id")
    vis, hid = Atom("visible"), Atom("hidden")
    assert plain.mailbox.snapshot() == [(Atom("nodeup"), PEER), (Atom("nodedown"), PEER)]
    assert listed.mailbox.snapshot() == [
        (Atom("nodeup"), PEER, [(cid, 17), (nt, vis)]),
        (Atom("nodeup"), OTHER, [(cid, 18), (nt, hid)]),
        (Atom("nodedown"), PEER, [(cid, 17), (ndr, Atom("connection_closed")), (nt, vis)]),
        (Atom("nodedown"), OTHER, [(cid, 18), (ndr, Atom("net_tick_timeout")), (nt, hid)]),
    ]
    assert mapped.mailbox.snapshot() == [
        (Atom("nodeup"), PEER, {nt: vis}),
        (Atom("nodeup"), OTHER, {nt: hid}),
        (Atom("nodedown"), PEER, {nt: vis, ndr: Atom("connection_closed")}),
        (Atom("nodedown"), OTHER, {nt: hid, ndr: Atom("net_tick_timeout")}),
    ]
    assert hidden_only.mailbox.snapshot() == [
        (Atom("nodeup"), OTHER, [(nt, hid)]),
        (Atom("nodedown"), OTHER, [(nt, hid)]),
    ]


async def test_monitor_nodes_subscriptions_stack_and_stop(rt):
    p = rt.spawn(idle)
    p.monitor_nodes(True)
    p.monitor_nodes(True)
    p.monitor_nodes(True, [Atom("nodedown_reason")])
    rt.node_up(PEER)
    assert p.message_queue_len == 3
    p.mailbox.clear()
    p.monitor_nodes(False)  # stops both plain subscriptions, not the other
    rt.node_down(PEER)
    assert p.mailbox.snapshot() == [
        (Atom("nodedown"), PEER, [(Atom("nodedown_reason"), Atom("connection_closed"))])
    ]
    with pytest.raises(BadArg):
        p.monitor_nodes(True, [Atom("bogus")])
    with pytest.raises(BadArg):
        p.monitor_nodes(True, [(Atom("node_type"), Atom("all")), (Atom("node_type"), VIS)])
    rt.exit(p.pid, KILL)
    await ended(p)
    assert rt._node_subs.count(p.pid) == 0


async def test_without_a_router_remote_links_and_monitors_fail_with_noconnection():
    runtime = ProcessRuntime(NODE, 1)
    try:
        trapper = runtime.spawn(idle, trap_exit=True)
        trapper.send(R1, "dropped")
        trapper.link(R1)
        ref = trapper.monitor((Atom("rex"), PEER))
        first = await trapper.receive(timeout=5)
        second = await trapper.receive(timeout=5)
        assert {first, second} == {
            (EXIT, R1, NOCONNECTION),
            (DOWN, ref, PROCESS, (Atom("rex"), PEER), NOCONNECTION),
        }
        assert trapper.links == []
    finally:
        await runtime.close()
