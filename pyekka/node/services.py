"""The registered processes OTP peers expect on every node.

* ``net_kernel`` answers ``{is_auth, Node}`` with ``yes``: that is what
  ``net_adm:ping/1`` asks (anything else would make it return ``pang``).
* ``rex``, the classic rpc server: ``{call, M, F, A, GL}`` and ``{block_call, ...}``
  calls (what OTP 22 and older, or a caller facing a node without spawn support,
  send), ``{cast, M, F, A, GL}`` casts, the ``{From, {call, ...}}`` form of C nodes,
  ``{From, {send, Name, Msg}}`` and ``{From, {sbcast, Name, Msg}}``, and
  ``{From, features_request}``, answered ``{features_reply, Node, [erpc]}`` so that
  OTP 23/24 peers use ``erpc`` (spawn requests) with this node.
* ``user``, an I/O server and the group leader of what this node spawns on others:
  output requests are answered ``ok`` and logged, input requests refused, so that
  an Erlang function printing something while called from Python never blocks.

Unknown requests are ignored, as OTP's servers ignore them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pyekka.node.exits import DOWN, NORMAL, format_pid
from pyekka.node.functions import FunctionRegistry
from pyekka.node.gen_server import GEN_CALL, GEN_CAST, reply
from pyekka.node.spawn import ERPC, rpc_result
from pyekka.term import format_term
from pyekka.term.types import Atom, Pid

if TYPE_CHECKING:
    from pyekka.node.process import Process
    from pyekka.node.runtime import ProcessRuntime

__all__ = ["NET_KERNEL", "REX", "USER", "start_services"]

log = logging.getLogger("pyekka.node.services")
io_log = logging.getLogger("pyekka.node.io")

NET_KERNEL = Atom("net_kernel")
REX = Atom("rex")
USER = Atom("user")
IS_AUTH = Atom("is_auth")
YES = Atom("yes")
CALL = Atom("call")
BLOCK_CALL = Atom("block_call")
CAST = Atom("cast")
SEND = Atom("send")
SBCAST = Atom("sbcast")
FEATURES_REQUEST = Atom("features_request")
FEATURES_REPLY = Atom("features_reply")
NONEXISTING_NAME = Atom("nonexisting_name")
BADRPC = Atom("badrpc")
EXIT_TAG = Atom("EXIT")
IO_REQUEST = Atom("io_request")
IO_REPLY = Atom("io_reply")
OK = Atom("ok")
ERROR = Atom("error")
ENOTSUP = Atom("enotsup")
REQUEST = Atom("request")
REQUESTS = Atom("requests")
PUT_CHARS = Atom("put_chars")


def _is_from(term: Any) -> bool:
    return type(term) is tuple and len(term) == 2 and type(term[0]) is Pid


def _is_mfa_request(req: Any, tag: Atom) -> bool:
    return (
        type(req) is tuple
        and len(req) == 5
        and req[0] == tag
        and type(req[1]) is Atom
        and type(req[2]) is Atom
        and type(req[3]) is list
    )


def start_services(runtime: ProcessRuntime, functions: FunctionRegistry) -> list[Process]:
    """Spawn and register ``net_kernel``, ``rex`` and ``user``; the group leader for
    remote spawns becomes ``user``."""
    procs = [
        runtime.spawn(net_kernel, name=NET_KERNEL),
        runtime.spawn(rex, functions, name=REX),
        runtime.spawn(io_server, name=USER),
    ]
    runtime.group_leader = procs[2].pid
    return procs


async def net_kernel(proc: Process) -> None:
    """The part of ``net_kernel`` other nodes talk to."""
    while True:
        msg = await proc.receive()
        if type(msg) is tuple and len(msg) == 3 and msg[0] == GEN_CALL and _is_from(msg[1]):
            request = msg[2]
            if type(request) is tuple and len(request) == 2 and request[0] == IS_AUTH:
                reply(proc, msg[1], YES)


async def rex(proc: Process, functions: FunctionRegistry) -> None:
    """The classic rpc server (``rpc``'s ``rex``)."""
    runtime = proc.runtime
    pending: dict[Any, Any] = {}  # worker monitor -> where its answer goes
    while True:
        msg = await proc.receive()
        if type(msg) is not tuple:
            continue
        if len(msg) == 3 and msg[0] == GEN_CALL and _is_from(msg[1]):
            req = msg[2]
            if _is_mfa_request(req, CALL) or _is_mfa_request(req, BLOCK_CALL):
                _start_call(proc, functions, req, ("gen", msg[1]), pending)
        elif len(msg) == 2 and msg[0] == GEN_CAST and _is_mfa_request(msg[1], CAST):
            _, m, f, a, _gl = msg[1]
            runtime.spawn(_cast_worker, functions, m, f, a)
        elif len(msg) == 2 and type(msg[0]) is Pid:
            _rex_info(proc, functions, msg[0], msg[1], pending)
        elif len(msg) == 5 and msg[0] == DOWN and msg[1] in pending:
            dest = pending.pop(msg[1])
            if msg[4] != NORMAL:
                _answer(proc, dest, (BADRPC, (EXIT_TAG, msg[4])))


def _rex_info(
    proc: Process, functions: FunctionRegistry, sender: Pid, body: Any, pending: dict
) -> None:
    runtime = proc.runtime
    if body == FEATURES_REQUEST:
        proc.send(sender, (FEATURES_REPLY, runtime.node, [ERPC]))
    elif _is_mfa_request(body, CALL):
        _start_call(proc, functions, body, ("rex", sender), pending)
    elif type(body) is tuple and len(body) == 3 and body[0] in (SEND, SBCAST):
        kind, name, message = body
        delivered = message if kind == SBCAST else (sender, message)
        if type(name) is not Atom or not proc.try_send(name, delivered):
            proc.send(sender, (REX, runtime.node, (NONEXISTING_NAME, name)))
        elif kind == SBCAST:
            proc.send(sender, (REX, runtime.node, runtime.node))


def _start_call(
    proc: Process, functions: FunctionRegistry, req: tuple, dest: Any, pending: dict
) -> None:
    _, m, f, a, _gl = req
    _worker, mref = proc.spawn_monitor(_call_worker, functions, m, f, a, dest)
    pending[mref] = dest


def _answer(proc: Process, dest: tuple[str, Any], result: Any) -> None:
    kind, to = dest
    if kind == "gen":
        reply(proc, to, result)
    else:
        proc.send(to, (REX, result))


async def _call_worker(
    proc: Process, functions: FunctionRegistry, m: Atom, f: Atom, a: list, dest: Any
) -> None:
    caller = dest[1][0] if dest[0] == "gen" else dest[1]
    outcome = await functions.apply(m, f, a, caller=caller)
    _answer(proc, dest, rpc_result(outcome))


async def _cast_worker(
    proc: Process, functions: FunctionRegistry, m: Atom, f: Atom, a: list
) -> None:
    outcome = await functions.apply(m, f, a)
    if outcome.kind == ERROR:
        log.error(
            "rpc:cast of %s:%s/%d in %s failed: %s",
            m.name,
            f.name,
            len(a),
            format_pid(proc.pid),
            format_term((outcome.value, outcome.stack)),
        )


async def io_server(proc: Process) -> None:
    """A minimal I/O server: output is logged and acknowledged, input refused."""
    while True:
        msg = await proc.receive()
        if type(msg) is tuple and len(msg) == 4 and msg[0] == IO_REQUEST and type(msg[1]) is Pid:
            _, sender, reply_as, request = msg
            proc.send(sender, (IO_REPLY, reply_as, _io_answer(sender, request)))


def _io_answer(sender: Pid, request: Any) -> Any:
    if type(request) is tuple and request and request[0] == REQUESTS and len(request) == 2:
        answer: Any = OK
        for item in request[1] if type(request[1]) is list else []:
            answer = _io_answer(sender, item)
            if answer != OK:
                break
        return answer
    if type(request) is tuple and request and request[0] == PUT_CHARS:
        text = _chars(request[-1]) if len(request) in (2, 3) else format_term(request[1:])
        io_log.info("output from %s: %s", format_pid(sender), text.rstrip("\n"))
        return OK
    return (ERROR, ENOTSUP if type(request) is tuple else REQUEST)


def _chars(data: Any) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    if type(data) is list:
        out = []
        for item in data:
            if type(item) is int and 0 <= item <= 0x10FFFF:
                out.append(chr(item))
            else:
                out.append(_chars(item))
        return "".join(out)
    return format_term(data)
