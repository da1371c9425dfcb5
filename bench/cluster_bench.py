"""Benchmark pyekka clusters: lock latency per lock type, and partition healing time.

Run ``python bench/cluster_bench.py`` (``--help`` for options; see bench/README.md).

In one run, on a 3-node and a 5-node Python-only cluster (pyekka ``Node``\\ s in this
process, one asyncio event loop, epmd-less on 127.0.0.1), it measures:

* ``ekka_locker`` acquire and release latency (p50, p99) for each lock type
  (``local``, ``leader``, ``quorum``, ``all``), the caller rotating over the members;
* the time from a healed network to a single cluster after a majority|minority
  partition (links cut with :class:`pyekka.testing.partition.Partition`), autoheal
  doing the work.

Each member is assembled by :func:`pyekka.cluster.app.start_member`, as ``pyekka
start`` assembles it, with the node monitor's delays shortened (printed with the
results) unless ``--ekka-delays``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from _run import run_and_report  # noqa: E402  (bench/ is this script's sys.path[0])

from pyekka.cluster.app import ClusterMember, MemberOptions, start_member  # noqa: E402
from pyekka.cluster.constants import (  # noqa: E402
    AUTOHEAL_DEFAULT_DELAY_MS,
    HEARTBEAT_MAX_MS,
    HEARTBEAT_MIN_MS,
    PARTITION_CONFIRM_DELAY_MS,
    REBOOT_PAUSE_MAX_MS,
    REBOOT_PAUSE_MIN_MS,
    SUSPECT_DELAY_MS,
)
from pyekka.cluster.lock import LockType  # noqa: E402
from pyekka.cluster.member import MemberStatus, MnesiaStatus  # noqa: E402
from pyekka.cluster.service_autoheal import AutohealSettings  # noqa: E402
from pyekka.node.node import Node  # noqa: E402
from pyekka.term.types import Atom  # noqa: E402
from pyekka.testing.partition import Partition  # noqa: E402

HOST = "127.0.0.1"
COOKIE = "pyekka-cluster-bench"
SIZES = (3, 5)
TYPES = tuple(LockType)
WAIT_S = 120.0  # the longest any convergence may take before the run fails


@dataclass(frozen=True)
class Delays:
    """The node monitor's fixed waits (ms) used for the run."""

    confirm: int
    autoheal: int
    reboot_pause: tuple[int, int]
    suspect: int
    heartbeat: tuple[int, int]

    def options(self, data_dir: Path) -> MemberOptions:
        """Member options with these delays."""
        return MemberOptions(
            data_dir=data_dir,
            cluster_name="bench",
            autoheal=AutohealSettings(
                delay_ms=self.autoheal, reboot_pause_ms=self.reboot_pause, heal_rpc_timeout=30.0
            ),
            rpc_timeout=30.0,
            monitor={
                "confirm_delay_ms": self.confirm,
                "suspect_delay_ms": self.suspect,
                "heartbeat_ms": self.heartbeat,
                "leader_rpc_timeout": 10.0,
            },
        )

    def fixed_wait_ms(self) -> tuple[int, int]:
        """The least and most a heal waits on timers: confirm + delay + reboot pause."""
        low, high = self.reboot_pause
        return self.confirm + self.autoheal + low, self.confirm + self.autoheal + high


EKKA_DELAYS = Delays(
    PARTITION_CONFIRM_DELAY_MS,
    AUTOHEAL_DEFAULT_DELAY_MS,
    (REBOOT_PAUSE_MIN_MS, REBOOT_PAUSE_MAX_MS),
    SUSPECT_DELAY_MS,
    (HEARTBEAT_MIN_MS, HEARTBEAT_MAX_MS),
)
SHORT_DELAYS = Delays(100, 300, (10, 50), 100, (200, 400))


@dataclass
class Samples:
    """Latencies in nanoseconds."""

    ns: list[int] = field(default_factory=list)

    def percentile(self, p: float) -> float | None:
        """The ``p``-th percentile in microseconds (nearest rank), if any."""
        if not self.ns:
            return None
        ordered = sorted(self.ns)
        return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1] / 1000


@dataclass
class LockStats:
    """One lock type on one cluster."""

    acquire: Samples = field(default_factory=Samples)
    release: Samples = field(default_factory=Samples)
    nodes_asked: list[int] = field(default_factory=list)


@dataclass
class HealStats:
    """Partition rounds on one cluster: seconds from the healed network to one cluster."""

    split: str
    seconds: list[float] = field(default_factory=list)
    rebooted: list[int] = field(default_factory=list)


# -- the cluster ---------------------------------------------------------------------


def port_base(offsets: list[int]) -> int:
    """A base port such that ``base + offset`` is free on 127.0.0.1 for every offset."""
    for base in range(21000, 60000 - max(offsets), 997):
        socks: list[socket.socket] = []
        try:
            for offset in offsets:
                s = socket.socket()
                socks.append(s)
                s.bind((HOST, base + offset))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise SystemExit("cluster_bench: no block of free ports on 127.0.0.1")


def node_names(size: int) -> list[str]:
    """``bench<size><i>@127.0.0.1``: ekka's rule gives each the port base + <size><i>."""
    return [f"bench{size}{i}@{HOST}" for i in range(1, size + 1)]


def converged(members: list[ClusterMember]) -> Callable[[ClusterMember], bool]:
    """One cluster: the same running db nodes everywhere, every member up, no partition."""
    want = sorted((m.node.name for m in members), key=lambda a: a.name)
    table = [(n, MemberStatus.UP, MnesiaStatus.RUNNING) for n in want]

    def check(m: ClusterMember) -> bool:
        c = m.cluster
        return (
            c.running
            and c.db_nodes() == want
            and c.running_nodes() == want
            and [(x.node, x.status, x.mnesia) for x in c.members()] == table
            and c.partitions() == []
        )

    return check


async def all_hold(members: list[ClusterMember], check: Callable[[ClusterMember], bool]) -> None:
    """Wait until ``check`` holds on every member (``TimeoutError`` after ``WAIT_S``)."""
    await asyncio.gather(*(m.cluster.wait_for(lambda m=m: check(m), WAIT_S) for m in members))


@contextlib.asynccontextmanager
async def cluster(size: int, delays: Delays, root: Path) -> AsyncIterator[list[ClusterMember]]:
    """``size`` members joined into one cluster, the first one the leader."""
    names = node_names(size)
    base = port_base([int(n.split("@")[0].removeprefix("bench")) for n in names])
    members: list[ClusterMember] = []
    try:
        for name in names:
            node = Node(name, COOKIE, epmd=False, dist_base_port=base, dist_interface=HOST)
            await node.start()
            try:
                members.append(await start_member(node, delays.options(root / name)))
            except BaseException:
                await node.stop()
                raise
        for m in members[1:]:
            await m.cluster.join(members[0].node.name)
        await all_hold(members, converged(members))
        yield members
    finally:
        for m in reversed(members):
            with contextlib.suppress(Exception):
                await m.stop()
            await m.node.stop()


# -- measures ----------------------------------------------------------------------


async def measure_locks(members: list[ClusterMember], ops: int) -> dict[LockType, LockStats]:
    """``ops`` acquire/release pairs per type, the types interleaved, the caller
    rotating over the members; each resource is new."""
    stats = {t: LockStats() for t in TYPES}
    for t in TYPES:  # warm-up: connections, code paths
        for m in members:
            await lock_once(m, t, b"warm-up", None)
    for i in range(ops):
        for t in TYPES:
            caller = members[i % len(members)]
            await lock_once(caller, t, f"bench-{t.value}-{i}".encode(), stats[t])
    return stats


async def lock_once(caller: ClusterMember, t: LockType, resource: bytes, into: Any) -> None:
    """One acquire and one release, timed into ``into`` (a :class:`LockStats`)."""
    locker = caller.locker
    t0 = time.perf_counter_ns()
    granted = await locker.acquire(resource, t)
    t1 = time.perf_counter_ns()
    released = await locker.release(resource, t)
    t2 = time.perf_counter_ns()
    if granted[0] is not True or released[0] is not True:
        raise RuntimeError(f"{t.value} lock on {resource!r}: {granted!r}, release {released!r}")
    if into is not None:
        into.acquire.ns.append(t1 - t0)
        into.release.ns.append(t2 - t1)
        into.nodes_asked.append(len(locker.nodes_for(resource, t)))


async def measure_heals(members: list[ClusterMember], rounds: int) -> HealStats:
    """Split majority|minority, wait until each side runs alone, heal the network and
    time it until the cluster is one again (``rounds`` times)."""
    majority = members[: len(members) // 2 + 1]
    minority = members[len(members) // 2 + 1 :]
    stats = HealStats(f"{len(majority)}|{len(minority)}")
    net = Partition(m.node for m in members)
    for _ in range(rounds):
        net.split([m.node for m in majority], [m.node for m in minority])
        for side in (majority, minority):
            names = sorted((m.node.name for m in side), key=lambda a: a.name)
            await all_hold(side, lambda m, names=names: m.cluster.running_nodes() == names)
        before = guids(members)
        started = time.perf_counter()
        await net.heal()
        await all_hold(members, converged(members))
        stats.seconds.append(time.perf_counter() - started)
        after = guids(members)
        stats.rebooted.append(sum(1 for n in before if before[n] != after[n]))
    return stats


def guids(members: list[ClusterMember]) -> dict[Atom, bytes | None]:
    return {m.node.name: m.cluster.local_member().guid for m in members}


async def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Every measure on every cluster size."""
    delays = EKKA_DELAYS if args.ekka_delays else SHORT_DELAYS
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "ops": args.ops,
        "heals": args.heals,
        "delays": delays,
        "locks": {},
        "heal": {},
    }
    with tempfile.TemporaryDirectory(prefix="pyekka-cluster-bench-") as tmp:
        for size in args.sizes:
            async with cluster(size, delays, Path(tmp) / str(size)) as members:
                report["locks"][size] = await measure_locks(members, args.ops)
                if args.heals:
                    report["heal"][size] = await measure_heals(members, args.heals)
    return report


# -- output ------------------------------------------------------------------------


def _us(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def print_report(report: dict[str, Any]) -> None:
    """The side-by-side tables."""
    delays: Delays = report["delays"]
    sizes = list(report["locks"])
    print(
        f"pyekka cluster benchmark  (Python {report['python']}; every node in this process, "
        f"one asyncio event loop, epmd-less on {HOST})"
    )
    print(
        f"\nlock latency, microseconds ({report['ops']} acquire + release per type and "
        "cluster, caller rotating over the members; asked: mean nodes per lock)"
    )
    head = f"  {'type':<8}"
    for size in sizes:
        head += f" | {size} nodes: {'asked':>5}{'acq p50':>9}{'p99':>7}{'rel p50':>9}{'p99':>7}"
    print(head)
    for t in TYPES:
        line = f"  {t.value:<8}"
        for size in sizes:
            s: LockStats = report["locks"][size][t]
            asked = sum(s.nodes_asked) / len(s.nodes_asked) if s.nodes_asked else 0
            line += (
                f" | {'':9}{asked:>5.1f}{_us(s.acquire.percentile(50)):>9}"
                f"{_us(s.acquire.percentile(99)):>7}{_us(s.release.percentile(50)):>9}"
                f"{_us(s.release.percentile(99)):>7}"
            )
        print(line)
    if not report["heal"]:
        return
    low, high = delays.fixed_wait_ms()
    print(
        "\npartition healing: seconds from the healed network to a single cluster "
        f"({report['heals']} round(s) per cluster)"
    )
    print(
        f"  delays: partition confirm {delays.confirm} ms, autoheal {delays.autoheal} ms, "
        f"reboot pause {delays.reboot_pause[0]}-{delays.reboot_pause[1]} ms "
        f"(timers alone: {low / 1000:.2f}-{high / 1000:.2f} s), heartbeat "
        f"{delays.heartbeat[0]}-{delays.heartbeat[1]} ms"
    )
    print(f"  {'nodes':<6}{'split':>6}{'min':>8}{'p50':>8}{'max':>8}{'rebooted':>10}")
    for size, h in report["heal"].items():
        seconds = sorted(h.seconds)
        p50 = seconds[max(1, math.ceil(len(seconds) / 2)) - 1]
        rebooted = "/".join(str(n) for n in sorted(set(h.rebooted)))
        print(
            f"  {size:<6}{h.split:>6}{seconds[0]:>8.2f}{p50:>8.2f}{seconds[-1]:>8.2f}{rebooted:>10}"
        )


def to_json(report: dict[str, Any]) -> dict[str, Any]:
    """The report as plain JSON data."""
    delays: Delays = report["delays"]

    def lock(s: LockStats) -> dict[str, Any]:
        return {
            "ops": len(s.acquire.ns),
            "nodes_asked_mean": sum(s.nodes_asked) / len(s.nodes_asked) if s.nodes_asked else 0,
            "acquire_p50_us": s.acquire.percentile(50),
            "acquire_p99_us": s.acquire.percentile(99),
            "release_p50_us": s.release.percentile(50),
            "release_p99_us": s.release.percentile(99),
        }

    return {
        "python": report["python"],
        "delays_ms": {
            "partition_confirm": delays.confirm,
            "autoheal": delays.autoheal,
            "reboot_pause": list(delays.reboot_pause),
            "suspect": delays.suspect,
            "heartbeat": list(delays.heartbeat),
        },
        "locks": {
            str(size): {t.value: lock(s) for t, s in per.items()}
            for size, per in report["locks"].items()
        },
        "heal": {
            str(size): {"split": h.split, "seconds": h.seconds, "rebooted": h.rebooted}
            for size, h in report["heal"].items()
        },
    }


# -- main --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ops", type=int, default=None, help="acquire/release pairs per type")
    p.add_argument("--heals", type=int, default=None, help="partition rounds per cluster")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="cluster sizes (default 3,5)")
    p.add_argument(
        "--ekka-delays",
        action="store_true",
        help="ekka's real node monitor delays (15 s autoheal: each heal takes ~20 s)",
    )
    p.add_argument("--quick", action="store_true", help="fast smoke run (well under 30 s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("-v", "--verbose", action="store_true", help="show the nodes' warnings")
    args = p.parse_args(argv)
    if args.ops is None:
        args.ops = 50 if args.quick else 1000
    if args.heals is None:
        args.heals = 1 if args.quick else 5
    try:
        args.sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        p.error("--sizes is a comma-separated list of integers")
    if args.ops < 1 or args.heals < 0 or not all(2 <= s <= 9 for s in args.sizes):
        p.error("--ops >= 1, --heals >= 0, sizes in 2..9")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    args = parse_args(argv)
    logger = logging.getLogger("pyekka")
    if args.verbose:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    else:  # partitions are logged as critical: expected here
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    return run_and_report("cluster_bench", args, run_bench, to_json, print_report)


if __name__ == "__main__":
    sys.exit(main())
