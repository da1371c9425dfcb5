"""The mailbox on its own: order, selective receive, timeouts, wake-ups."""

from __future__ import annotations

import asyncio

import pytest

from pyekka.node.mailbox import Mailbox


async def test_fifo_without_pattern():
    mb = Mailbox()
    for i in range(5):
        mb.put(i)
    assert [await mb.receive() for _ in range(5)] == [0, 1, 2, 3, 4]
    assert len(mb) == 0


async def test_selective_receive_keeps_the_others_in_order():
    mb = Mailbox()
    for m in ["a", 1, "b", 2, "c", 3]:
        mb.put(m)
    assert await mb.receive(lambda m: isinstance(m, int)) == 1
    assert await mb.receive(lambda m: m == 3) == 3
    assert mb.snapshot() == ["a", "b", 2, "c"]
    assert await mb.receive() == "a"


async def test_selective_receive_waits_for_a_later_match():
    mb = Mailbox()
    mb.put("x")
    tested: list = []

    def want_int(m):
        tested.append(m)
        return isinstance(m, int)

    task = asyncio.create_task(mb.receive(want_int))
    await asyncio.sleep(0)
    assert not task.done()
    mb.put("y")
    await asyncio.sleep(0)
    assert not task.done()
    mb.put(7)
    assert await task == 7
    # Each message was tested once: a wake-up only scans what is new.
    assert tested == ["x", "y", 7]
    assert mb.snapshot() == ["x", "y"]


async def test_receive_select_returns_the_extracted_value():
    mb = Mailbox()
    mb.put(("reply", 1, "one"))
    mb.put(("reply", 2, "two"))

    def second(m):
        return m[2] if m[1] == 2 else None

    assert await mb.receive_select(second) == "two"
    assert mb.snapshot() == [("reply", 1, "one")]


async def test_receive_select_accepts_falsy_values():
    mb = Mailbox()
    mb.put(0)
    assert await mb.receive_select(lambda m: m) == 0


async def test_timeout_zero_polls():
    mb = Mailbox()
    with pytest.raises(TimeoutError):
        await mb.receive(timeout=0)
    mb.put("no")
    with pytest.raises(TimeoutError):
        await mb.receive(lambda m: m == "yes", timeout=0)
    mb.put("yes")
    assert await mb.receive(lambda m: m == "yes", timeout=0) == "yes"
    assert mb.snapshot() == ["no"]


async def test_timeout_expires_and_leaves_mailbox_untouched():
    mb = Mailbox()
    mb.put("other")
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError):
        await mb.receive(lambda m: m == "never", timeout=0.05)
    assert loop.time() - start >= 0.04
    assert mb.snapshot() == ["other"]
    # The mailbox is usable afterwards (no waiter left behind).
    mb.put("later")
    assert await mb.receive(lambda m: m == "later", timeout=1) == "later"


async def test_timeout_not_lost_when_a_non_matching_message_races_it():
    mb = Mailbox()
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(mb.receive(lambda m: m == "never", timeout=0.02))

    def noise() -> None:
        # Keep the mailbox busy with non-matching messages across the deadline.
        if not task.done():
            mb.put("noise")
            loop.call_later(0.001, noise)

    noise()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(task, 1)


async def test_message_arriving_before_timeout_wins():
    mb = Mailbox()
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, mb.put, "hello")
    assert await mb.receive(timeout=5) == "hello"


async def test_only_one_receiver():
    mb = Mailbox()
    first = asyncio.create_task(mb.receive())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await mb.receive()
    mb.put(1)
    assert await first == 1


async def test_cancelled_receive_leaves_no_waiter():
    mb = Mailbox()
    task = asyncio.create_task(mb.receive())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    mb.put(5)
    assert await mb.receive(timeout=0) == 5


async def test_remove_first():
    mb = Mailbox()
    for m in [1, 2, 3, 2]:
        mb.put(m)
    assert mb.remove_first(lambda m: m == 2)
    assert not mb.remove_first(lambda m: m == 9)
    assert mb.snapshot() == [1, 3, 2]


async def test_pattern_may_send_to_the_same_mailbox():
    mb = Mailbox()
    mb.put("a")

    def pattern(m):
        if m == "a":
            mb.put("b")
        return m == "b"

    assert await mb.receive(pattern, timeout=0) == "b"
    assert mb.snapshot() == ["a"]


async def test_receive_since_a_mark_skips_older_messages():
    mb = Mailbox()
    mb.put(1)
    mb.put("old")
    mark = mb.mark()
    mb.put(2)
    tested: list = []

    def want_str(m):
        tested.append(m)
        return isinstance(m, str)

    task = asyncio.create_task(mb.receive(want_str, since=mark, timeout=5))
    await asyncio.sleep(0)
    mb.put("new")
    assert await task == "new"
    assert tested == [2, "new"]
    assert mb.snapshot() == [1, "old", 2]
    # Without the mark the older messages are seen again.
    assert await mb.receive_select(lambda m: m if m == 2 else None, timeout=0) == 2
