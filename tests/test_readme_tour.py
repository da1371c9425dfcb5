"""README's five-minute tour, step by step, against real OTP 25 and 28 nodes."""

from __future__ import annotations

from typing import Any

from pyekka.cluster.app import MemberOptions, cluster_member
from pyekka.cluster.lock import LockType
from pyekka.term import Atom
from pyekka.testing.otp_node import OtpNode


async def test_the_tour(erl: OtpNode, make_py: Any) -> None:
    node = await make_py()
    node.register_function("greeter", "hello", lambda name: (Atom("hello"), name))

    assert await node.ping(erl.name) is True
    release = await node.rpc(erl.name, "erlang", "system_info", [Atom("otp_release")])
    assert release == erl.eval("erlang:system_info(otp_release).")
    assert bytes(release).decode() == erl.runtime.release

    # Erlang calls the Python function, both through Python's rpc and from Erlang itself
    here = node.name
    call = [here, Atom("greeter"), Atom("hello"), [b"erlang"]]
    assert await node.rpc(erl.name, "rpc", "call", call) == (Atom("hello"), b"erlang")
    text = f"rpc:call('{here.name}', greeter, hello, [<<\"erlang\">>])."
    assert await erl.aeval(text) == (Atom("hello"), b"erlang")
    assert await erl.aeval(f"net_adm:ping('{here.name}').") == Atom("pong")

    async with cluster_member(node, MemberOptions(cluster_name="demo")) as member:
        ok, nodes = await member.locker.acquire(b"my-resource", type=LockType.QUORUM)
        assert (ok, nodes) == (True, [here])
        released = await member.locker.release(b"my-resource", type=LockType.QUORUM)
        assert released[0] is True
