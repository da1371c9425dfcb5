"""The two examples of ``docs/testing.md``, as they are written there.

They use only the fixtures of pyekka's pytest plugin (``pyekka.testing.plugin``), as a
user's test suite would; the OTP ones are skipped when no Erlang/OTP runtime is found.
"""

from __future__ import annotations

import pytest

from pyekka.term.types import Atom
from pyekka.testing.network import connect_mesh, visible_nodes
from pyekka.testing.wait import wait_until

# --- example 1: call an Erlang gen_server from Python --------------------------------

COUNTER = """
-module(counter).
-behaviour(gen_server).
-export([start/0, init/1, handle_call/3, handle_cast/2]).

start() -> gen_server:start({local, counter}, ?MODULE, 0, []).

init(Total) -> {ok, Total}.

handle_call({add, N}, _From, Total) -> {reply, {ok, Total + N}, Total + N};
handle_call(total, _From, Total) -> {reply, Total, Total}.

handle_cast(_Msg, Total) -> {noreply, Total}.
"""


@pytest.mark.otp
async def test_call_an_erlang_gen_server(compile_erlang, otp_node, pyekka_node) -> None:
    ebin = compile_erlang(COUNTER)
    erl = otp_node("counter", code_paths=[ebin], eval="{ok, _} = counter:start()")
    py = await pyekka_node()

    # from Python, over the Erlang distribution: rpc:call/4 -> gen_server:call/2
    reply = await py.rpc(erl.name, "gen_server", "call", [Atom("counter"), (Atom("add"), 5)])
    assert reply == (Atom("ok"), 5)

    # the node's own view, evaluated there and returned as a Python value
    assert await erl.aeval("gen_server:call(counter, total)") == 5
    assert await erl.aeval("nodes()") == [py.name]


# --- example 2: partition a mixed cluster ---------------------------------------------


@pytest.mark.otp
async def test_partition_a_mixed_cluster(otp_node, pyekka_node, network) -> None:
    erl = otp_node()
    py1 = await pyekka_node()
    py2 = await pyekka_node()
    nodes = [erl, py1, py2]
    await connect_mesh(nodes)

    network.split([py1], [erl, py2])  # cut py1 off from the other two

    async def erl_sees(expected: set[Atom]) -> bool:
        return await visible_nodes(erl) == expected

    await wait_until(lambda: erl_sees({py2.name}), timeout=10, message="erl lost py1")
    await wait_until(lambda: py1.nodes() == [], timeout=10, message="py1 is alone")
    assert set(py2.nodes()) == {erl.atom}
    assert not await py1.connect(erl.name)  # the link stays cut

    await network.heal()  # restore the links, reconnect the pairs
    await connect_mesh(nodes)
    assert await visible_nodes(erl) == {py1.name, py2.name}
