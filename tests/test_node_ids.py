"""Pid, reference and unlink-id allocation."""

from __future__ import annotations

from pyekka.node.ids import (
    PID_ID_LIMIT,
    PID_SERIAL_LIMIT,
    REF_WORD0_LIMIT,
    PidAllocator,
    RefAllocator,
    UnlinkIdAllocator,
)
from pyekka.term.types import Atom, Pid, Reference

NODE = Atom("py@127.0.0.1")


def test_pids_start_after_the_reserved_one():
    alloc = PidAllocator(NODE, 5)
    assert alloc.next(lambda p: False) == Pid(NODE, 1, 0, 5)
    assert alloc.next(lambda p: False) == Pid(NODE, 2, 0, 5)


def test_pid_number_wraps_into_the_serial():
    alloc = PidAllocator(NODE, 5)
    alloc._id = PID_ID_LIMIT - 2
    assert alloc.next(lambda p: False) == Pid(NODE, PID_ID_LIMIT - 1, 0, 5)
    assert alloc.next(lambda p: False) == Pid(NODE, 0, 1, 5)


def test_serial_wraps_and_skips_the_reserved_pid():
    alloc = PidAllocator(NODE, 5)
    alloc._id, alloc._serial = PID_ID_LIMIT - 1, PID_SERIAL_LIMIT - 1
    assert alloc.next(lambda p: False) == Pid(NODE, 1, 0, 5)


def test_pids_in_use_are_skipped():
    alloc = PidAllocator(NODE, 5)
    taken = {Pid(NODE, 1, 0, 5), Pid(NODE, 2, 0, 5)}
    assert alloc.next(taken.__contains__) == Pid(NODE, 3, 0, 5)


def test_refs_are_unique_and_shaped_like_otp_refs():
    alloc = RefAllocator(NODE, 9, start=REF_WORD0_LIMIT - 2)
    refs = [alloc.next() for _ in range(4)]
    assert len(set(refs)) == 4
    assert all(type(r) is Reference and r.node == NODE and r.creation == 9 for r in refs)
    assert all(len(r.ids) == 3 and r.ids[0] < REF_WORD0_LIMIT for r in refs)
    assert [r.ids for r in refs] == [
        (REF_WORD0_LIMIT - 2, 0, 0),
        (REF_WORD0_LIMIT - 1, 0, 0),
        (0, 1, 0),
        (1, 1, 0),
    ]


def test_ref_counter_wraps_within_82_bits():
    alloc = RefAllocator(NODE, 9, start=(1 << 82) - 1)
    assert alloc.next().ids == (REF_WORD0_LIMIT - 1, 0xFFFFFFFF, 0xFFFFFFFF)
    assert alloc.next().ids == (0, 0, 0)


def test_random_ref_start_differs_between_incarnations():
    a, b = RefAllocator(NODE, 9), RefAllocator(NODE, 9)
    assert a.next() != b.next()


def test_unlink_ids_are_never_zero():
    alloc = UnlinkIdAllocator()
    assert [alloc.next() for _ in range(3)] == [1, 2, 3]
    alloc._next = (1 << 64) - 1
    assert alloc.next() == (1 << 64) - 1
    assert alloc.next() == 1
