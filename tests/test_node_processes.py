"""Local process semantics: spawn, exit reasons, names, links, exit signals, monitors."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pyekka.node import BadArg, ErlangError, ProcessRuntime
from pyekka.node.ids import PID_ID_LIMIT, PID_SERIAL_LIMIT
from pyekka.term.types import Atom, Pid, exact_equal

NODE = Atom("py@127.0.0.1")
NORMAL, KILL, KILLED, NOPROC = Atom("normal"), Atom("kill"), Atom("killed"), Atom("noproc")
EXIT, DOWN, PROCESS = Atom("EXIT"), Atom("DOWN"), Atom("process")
BOOM = Atom("boom")


@pytest.fixture
async def rt():
    runtime = ProcessRuntime(NODE, 7)
    yield runtime
    await runtime.close()
    assert runtime.processes() == []


async def idle(proc):
    """A process that only waits; tests drive it from outside."""
    await asyncio.get_running_loop().create_future()


async def ended(proc):
    """The exit reason of ``proc``, failing (not hanging) if it does not end."""
    return await asyncio.wait_for(proc.wait(), 5)


async def exits_with(proc, reason):
    proc.exit(reason)


async def wait_for_go(proc, reason=NORMAL):
    """Exit with ``reason`` once the message ``go`` arrives."""
    await proc.receive(lambda m: m == Atom("go"))
    if reason != NORMAL:
        proc.exit(reason)


# -- spawning and exit reasons ---------------------------------------------------------


async def test_spawn_gives_fresh_local_pids(rt):
    procs = [rt.spawn(idle) for _ in range(3)]
    pids = [p.pid for p in procs]
    assert len(set(pids)) == 3
    for pid in pids:
        assert pid.node == NODE and pid.creation == 7
        assert 0 < pid.id < PID_ID_LIMIT and 0 <= pid.serial < PID_SERIAL_LIMIT
        assert pid != rt.system_pid
    assert set(rt.processes()) == set(pids)


async def test_normal_return(rt):
    got = []

    async def body(proc, a, b):
        got.append((a, b))

    p = rt.spawn(body, 1, b"two")
    assert await ended(p) == NORMAL
    assert got == [(1, b"two")]
    assert not p.is_alive and rt.process(p.pid) is None and not rt.is_alive(p.pid)


async def test_exit_reason(rt):
    p = rt.spawn(exits_with, (BOOM, [1, 2]))
    assert exact_equal(await ended(p), (BOOM, [1, 2]))
    assert exact_equal(p.exit_reason, (BOOM, [1, 2]))


async def test_python_exception_is_a_logged_crash(rt, caplog):
    async def body(proc):
        raise ValueError("bad value")

    with caplog.at_level(logging.ERROR, logger="pyekka.node"):
        p = rt.spawn(body, name=Atom("crasher"))
        reason = await ended(p)
    assert exact_equal(reason, (Atom("python_error"), b"ValueError: bad value"))
    records = [r for r in caplog.records if r.name == "pyekka.node"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert "crashed: ValueError: bad value" in records[0].getMessage()
    assert "crasher" in records[0].getMessage()
    assert records[0].exc_info is not None


async def test_process_exit_is_not_logged(rt, caplog):
    with caplog.at_level(logging.DEBUG, logger="pyekka.node"):
        await ended(rt.spawn(exits_with, BOOM))
    assert not [r for r in caplog.records if r.name == "pyekka.node"]


async def test_erlang_error_reason_has_erlang_shape(rt):
    async def body(proc):
        raise ErlangError(Atom("badarith"))

    assert exact_equal(await ended(rt.spawn(body)), (Atom("badarith"), []))


async def test_uncaught_badarg_from_send(rt):
    async def body(proc):
        proc.send(Atom("nobody_here"), 1)

    assert exact_equal(await ended(rt.spawn(body)), (Atom("badarg"), []))


async def test_spawn_after_close_is_refused():
    runtime = ProcessRuntime(NODE, 1)
    await runtime.close()
    with pytest.raises(RuntimeError):
        runtime.spawn(idle)


async def test_close_kills_everything_and_awaits_tasks():
    runtime = ProcessRuntime(NODE, 1)
    finished = []

    async def stubborn(proc):
        try:
            await proc.receive()
        finally:
            finished.append(proc.pid)

    procs = [runtime.spawn(stubborn) for _ in range(10)]
    await asyncio.sleep(0)
    await runtime.close()
    assert sorted(finished, key=lambda p: p.id) == [p.pid for p in procs]
    assert all(p.exit_reason == KILLED for p in procs)
    assert all(p._task.done() for p in procs)


# -- names and sending -------------------------------------------------------------


async def test_register_whereis_unregister(rt):
    a, b = rt.spawn(idle), rt.spawn(idle)
    rt.register(Atom("alpha"), a.pid)
    assert rt.whereis(Atom("alpha")) == a.pid
    assert a.name == Atom("alpha")
    assert rt.registered() == [Atom("alpha")]
    with pytest.raises(BadArg):
        rt.register(Atom("alpha"), b.pid)  # name taken
    with pytest.raises(BadArg):
        rt.register(Atom("beta"), a.pid)  # pid already named
    with pytest.raises(BadArg):
        rt.register(Atom("undefined"), b.pid)
    rt.unregister(Atom("alpha"))
    assert rt.whereis(Atom("alpha")) is None
    with pytest.raises(BadArg):
        rt.unregister(Atom("alpha"))
    dead = rt.spawn(exits_with, NORMAL)
    await ended(dead)
    with pytest.raises(BadArg):
        rt.register(Atom("gamma"), dead.pid)


async def test_name_is_released_at_exit(rt):
    p = rt.spawn(wait_for_go, name=Atom("worker"))
    assert rt.whereis(Atom("worker")) == p.pid
    with pytest.raises(BadArg):
        rt.spawn(idle, name=Atom("worker"))
    rt.send(Atom("worker"), Atom("go"))
    await ended(p)
    assert rt.whereis(Atom("worker")) is None
    q = rt.spawn(idle, name=Atom("worker"))
    assert rt.whereis(Atom("worker")) == q.pid


async def test_send_to_names_pids_and_tuples(rt):
    p = rt.spawn(idle, name=Atom("box"))
    rt.send(p.pid, 1)
    rt.send(Atom("box"), 2)
    rt.send((Atom("box"), NODE), 3)
    assert p.try_send(Atom("box"), 4)
    assert [await p.receive(timeout=0) for _ in range(4)] == [1, 2, 3, 4]


async def test_send_to_unregistered_names(rt):
    p = rt.spawn(idle)
    with pytest.raises(BadArg):
        rt.send(Atom("ghost"), 1)
    with pytest.raises(BadArg):
        p.send(Atom("ghost"), 1)
    assert not rt.try_send(Atom("ghost"), 1)
    assert not p.try_send(Atom("ghost"), 1)
    # {Name, node()} ! Msg never fails, as in Erlang.
    rt.send((Atom("ghost"), NODE), 1)
    with pytest.raises(BadArg):
        rt.send("not a destination", 1)


async def test_send_to_dead_pid_is_dropped(rt):
    p = rt.spawn(exits_with, NORMAL)
    await ended(p)
    rt.send(p.pid, "lost")
    rt.send(Pid(NODE, 999, 0, 7), "lost")
    rt.send(Pid(NODE, p.pid.id, p.pid.serial, 6), "old incarnation")


async def test_aliases(rt):
    p = rt.spawn(idle)
    alias = p.alias()
    rt.send(alias, "via alias")
    assert await p.receive(timeout=0) == "via alias"
    assert p.unalias(alias)
    assert not p.unalias(alias)
    rt.send(alias, "dropped")
    assert p.message_queue_len == 0
    second = p.alias()
    p.send_exit(p.pid, KILL)
    await ended(p)
    rt.send(second, "dropped too")  # an alias dies with its process
    assert rt._aliases == {}


# -- links and exit signals -----------------------------------------------------------


async def test_abnormal_exit_kills_linked_process(rt):
    a = rt.spawn(wait_for_go, BOOM)
    b = rt.spawn(idle, link_to=a.pid)
    assert a.links == [b.pid] and b.links == [a.pid]
    rt.send(a.pid, Atom("go"))
    assert await ended(a) == BOOM
    assert await ended(b) == BOOM


async def test_normal_exit_does_not_kill_linked_process(rt):
    a = rt.spawn(wait_for_go)
    b = rt.spawn(idle, link_to=a.pid)
    rt.send(a.pid, Atom("go"))
    await ended(a)
    assert b.is_alive and b.links == []


async def test_trap_exit_turns_signals_into_messages(rt):
    t = rt.spawn(idle, trap_exit=True)
    a = rt.spawn(wait_for_go, link_to=t.pid)
    c = rt.spawn(wait_for_go, BOOM, link_to=t.pid)
    rt.send(a.pid, Atom("go"))
    rt.send(c.pid, Atom("go"))
    await ended(a)
    await ended(c)
    assert await t.receive(timeout=0) == (EXIT, a.pid, NORMAL)
    assert await t.receive(timeout=0) == (EXIT, c.pid, BOOM)
    assert t.is_alive


async def test_kill_is_untrappable_and_linked_see_killed(rt):
    watcher = rt.spawn(idle, trap_exit=True)
    victim = rt.spawn(idle, trap_exit=True, link_to=watcher.pid)
    bystander = rt.spawn(idle, link_to=victim.pid)
    rt.exit(victim.pid, KILL)
    assert await ended(victim) == KILLED
    assert await ended(bystander) == KILLED  # killed (not kill) is an ordinary reason
    assert await watcher.receive(timeout=0) == (EXIT, victim.pid, KILLED)


async def test_exit_reason_kill_through_a_link_is_trappable(rt):
    # exit(kill) by the process itself: links see the reason 'kill', which only
    # kills a non-trapping process like any other reason.
    trapper = rt.spawn(idle, trap_exit=True)
    plain = rt.spawn(idle)
    k = rt.spawn(wait_for_go, KILL, link_to=trapper.pid)
    plain.link(k.pid)
    rt.send(k.pid, Atom("go"))
    assert await ended(k) == KILL
    assert await ended(plain) == KILL
    assert await trapper.receive(timeout=0) == (EXIT, k.pid, KILL)
    assert trapper.is_alive


async def test_exit2_semantics(rt):
    plain, trapper = rt.spawn(idle), rt.spawn(idle, trap_exit=True)
    sender = rt.spawn(idle)
    sender.send_exit(plain.pid, NORMAL)
    sender.send_exit(trapper.pid, NORMAL)
    sender.send_exit(trapper.pid, BOOM)
    assert plain.is_alive
    assert await trapper.receive(timeout=0) == (EXIT, sender.pid, NORMAL)
    assert await trapper.receive(timeout=0) == (EXIT, sender.pid, BOOM)
    sender.send_exit(plain.pid, BOOM)
    assert await ended(plain) == BOOM
    rt.exit(trapper.pid, KILL)
    assert await ended(trapper) == KILLED


async def test_exit_self_normal(rt):
    async def body(proc, trap):
        proc.trap_exit = trap
        proc.send_exit(proc.pid, NORMAL)
        if trap:
            msg = await proc.receive(timeout=1)
            proc.exit((Atom("got"), msg))
        await asyncio.get_running_loop().create_future()  # killed while waiting here

    p = rt.spawn(body, False)
    assert await ended(p) == NORMAL
    q = rt.spawn(body, True)
    assert await ended(q) == (Atom("got"), (EXIT, q.pid, NORMAL))


async def test_link_to_a_dead_process(rt):
    dead = rt.spawn(exits_with, NORMAL)
    await ended(dead)
    plain, trapper = rt.spawn(idle), rt.spawn(idle, trap_exit=True)
    with pytest.raises(ErlangError) as info:
        plain.link(dead.pid)
    assert info.value.reason == NOPROC
    trapper.link(dead.pid)
    assert await trapper.receive(timeout=0) == (EXIT, dead.pid, NOPROC)
    with pytest.raises(BadArg):
        plain.link(Atom("not_a_pid"))


async def test_spawn_linked_to_a_dead_parent_dies_with_noproc(rt):
    dead = rt.spawn(exits_with, NORMAL)
    await ended(dead)
    child = rt.spawn(idle, link_to=dead.pid)
    assert await ended(child) == NOPROC


async def test_unlink_removes_both_sides(rt):
    a, b = rt.spawn(idle), rt.spawn(idle)
    a.link(b.pid)
    a.link(b.pid)
    a.link(a.pid)  # linking to oneself does nothing
    assert a.links == [b.pid]
    b.unlink(a.pid)
    assert a.links == [] and b.links == []
    rt.exit(a.pid, BOOM)
    assert await ended(a) == BOOM
    assert b.is_alive


async def test_spawn_link_and_long_link_chain(rt):
    # 3000 processes linked in a chain all die, without deep recursion.
    first = rt.spawn(idle)
    procs = [first]
    for _ in range(3000):
        procs.append(procs[-1].spawn_link(idle))
    rt.exit(first.pid, BOOM)
    reasons = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), 10)
    assert all(r == BOOM for r in reasons)


async def test_killed_process_stops_at_next_await_and_sends_nothing(rt):
    observer = rt.spawn(idle)
    reached = []

    async def body(proc):
        proc.send_exit(proc.pid, KILL)  # dead from here on
        proc.send(observer.pid, "after death")
        reached.append("still running until the next await")
        await asyncio.sleep(0)
        reached.append("never")

    p = rt.spawn(body)
    assert await ended(p) == KILLED
    await asyncio.sleep(0)
    assert reached == ["still running until the next await"]
    assert observer.message_queue_len == 0


async def test_killed_while_receiving(rt):
    p = rt.spawn(wait_for_go)
    w = rt.spawn(idle)
    ref = w.monitor(p.pid)
    await asyncio.sleep(0)  # p is now blocked in receive
    rt.exit(p.pid, Atom("shutdown"))
    assert await ended(p) == Atom("shutdown")
    assert await w.receive(timeout=0) == (DOWN, ref, PROCESS, p.pid, Atom("shutdown"))


# -- monitors -----------------------------------------------------------------------


async def test_monitor_down_message(rt):
    w = rt.spawn(idle)
    t = rt.spawn(wait_for_go, BOOM)
    ref = w.monitor(t.pid)
    rt.send(t.pid, Atom("go"))
    await ended(t)
    assert await w.receive(timeout=0) == (DOWN, ref, PROCESS, t.pid, BOOM)


async def test_monitor_dead_or_unknown_gives_noproc_at_once(rt):
    w = rt.spawn(idle)
    dead = rt.spawn(exits_with, NORMAL)
    await ended(dead)
    r1 = w.monitor(dead.pid)
    r2 = w.monitor(Pid(NODE, 12345, 0, 7))
    r3 = w.monitor(Atom("nobody"))
    r4 = w.monitor((Atom("nobody"), NODE))
    assert await w.receive(timeout=0) == (DOWN, r1, PROCESS, dead.pid, NOPROC)
    assert await w.receive(timeout=0) == (DOWN, r2, PROCESS, Pid(NODE, 12345, 0, 7), NOPROC)
    assert await w.receive(timeout=0) == (DOWN, r3, PROCESS, (Atom("nobody"), NODE), NOPROC)
    assert await w.receive(timeout=0) == (DOWN, r4, PROCESS, (Atom("nobody"), NODE), NOPROC)
    assert len({r1, r2, r3, r4}) == 4


async def test_monitor_by_name_reports_name_and_node(rt):
    w = rt.spawn(idle)
    t = rt.spawn(wait_for_go, BOOM, name=Atom("named"))
    r1 = w.monitor(Atom("named"))
    r2 = w.monitor((Atom("named"), NODE))
    rt.send(Atom("named"), Atom("go"))
    await ended(t)
    assert await w.receive(timeout=0) == (DOWN, r1, PROCESS, (Atom("named"), NODE), BOOM)
    assert await w.receive(timeout=0) == (DOWN, r2, PROCESS, (Atom("named"), NODE), BOOM)


async def test_demonitor(rt):
    w, t = rt.spawn(idle), rt.spawn(idle)
    ref = w.monitor(t.pid)
    assert w.demonitor(ref)
    assert not w.demonitor(ref)
    rt.exit(t.pid, BOOM)
    await ended(t)
    assert w.message_queue_len == 0
    with pytest.raises(BadArg):
        w.demonitor("not a ref")


async def test_demonitor_flush_removes_a_delivered_down(rt):
    w, t = rt.spawn(idle), rt.spawn(idle)
    ref = w.monitor(t.pid)
    w.deliver("keep me")
    rt.exit(t.pid, BOOM)
    await ended(t)
    assert w.message_queue_len == 2
    assert not w.demonitor(ref, flush=True)
    assert w.mailbox.snapshot() == ["keep me"]


async def test_spawn_monitor_and_several_monitors(rt):
    w = rt.spawn(idle)
    t, ref = w.spawn_monitor(wait_for_go, BOOM)
    ref2 = w.monitor(t.pid)
    self_ref = t.monitor(t.pid)  # monitoring oneself is allowed and never fires
    rt.send(t.pid, Atom("go"))
    await ended(t)
    downs = {(await w.receive(timeout=0))[1] for _ in range(2)}
    assert downs == {ref, ref2}
    assert self_ref not in downs and w.message_queue_len == 0


async def test_watcher_death_removes_its_monitors(rt):
    w, t = rt.spawn(idle), rt.spawn(idle)
    w.monitor(t.pid)
    assert len(t._monitored_by) == 1
    rt.exit(w.pid, BOOM)
    await ended(w)
    assert t._monitored_by == {}


# -- ordering --------------------------------------------------------------------------


async def test_ordering_under_load(rt):
    senders, per_sender = 5, 20_000
    received: list = []

    async def receiver(proc, total):
        for _ in range(total):
            received.append(await proc.receive())

    r = rt.spawn(receiver, senders * per_sender)

    async def sender(proc, tag):
        for seq in range(per_sender):
            proc.send(r.pid, (tag, seq))
            if seq % 97 == tag:  # interleave the senders irregularly
                await asyncio.sleep(0)

    for tag in range(senders):
        rt.spawn(sender, tag)
    assert await ended(r) == NORMAL
    assert len(received) == senders * per_sender
    last = dict.fromkeys(range(senders), -1)
    switches = 0
    prev = None
    for tag, seq in received:
        assert seq == last[tag] + 1
        last[tag] = seq
        switches += tag != prev
        prev = tag
    assert switches > senders  # the streams really were interleaved


async def test_messages_arrive_before_the_exit_signal(rt):
    trapper = rt.spawn(idle, trap_exit=True)

    async def chatty(proc):
        for i in range(1000):
            proc.send(trapper.pid, i)
        proc.exit(BOOM)

    c = rt.spawn(chatty, link_to=trapper.pid)
    mref = trapper.monitor(c.pid)
    await ended(c)
    got = [await trapper.receive(timeout=0) for _ in range(1002)]
    assert got[:1000] == list(range(1000))
    assert set(got[1000:]) == {(EXIT, c.pid, BOOM), (DOWN, mref, PROCESS, c.pid, BOOM)}
