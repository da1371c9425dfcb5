"""The ``pyekka demo`` scenario as library code: a local cluster, step by step.

:class:`Demo` starts three pyekka nodes in this event loop on 127.0.0.1 (epmd-less,
ekka's port rule on a block of free ports, a random cookie), lets them find each
other through a static seed list and join, takes a quorum lock on one node and has
it refused on another, cuts the network between two sides, lets autoheal bring them
back into one cluster, optionally calls an Erlang/OTP node by RPC, and stops
everything. Each step ends in a :class:`Milestone` (``event``, ``t`` in seconds since
the start, and the facts behind it) given to ``on_milestone``; :meth:`Demo.snapshot`
is the members table at any moment and :attr:`Demo.progress` what is awaited now.
The command line (:mod:`pyekka.cli_demo`) only renders these.

Delays are shortened so the demo takes seconds (see :data:`DEMO_MONITOR`); the code
paths are ekka's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyekka.cluster.app import ClusterMember, MemberOptions, start_member
from pyekka.cluster.cluster import Cluster
from pyekka.cluster.lock import LockType
from pyekka.cluster.locker import LockRefused
from pyekka.cluster.service_autoheal import AutohealSettings
from pyekka.discovery.static import StaticStrategy
from pyekka.node.node import Node
from pyekka.term.types import Atom
from pyekka.testing.partition import Partition

if TYPE_CHECKING:
    from pyekka.testing.otp_node import OtpNode

__all__ = [
    "DEMO_AUTOHEAL",
    "DEMO_MONITOR",
    "Demo",
    "DemoError",
    "DemoOptions",
    "MemberRow",
    "Milestone",
    "free_port_block",
]

HOST = "127.0.0.1"
RESOURCE = b"demo-resource"

DEMO_AUTOHEAL = AutohealSettings(delay_ms=300, reboot_pause_ms=(10, 50), heal_rpc_timeout=5.0)
"""Autoheal after 300 ms (ekka: 15 s)."""

DEMO_MONITOR: dict[str, Any] = {
    "confirm_delay_ms": 100,
    "suspect_delay_ms": 100,
    "heartbeat_ms": (200, 400),
    "leader_rpc_timeout": 5.0,
}
"""Node monitor delays: partition confirmation after 100 ms (ekka: 3 s) ..."""


class DemoError(RuntimeError):
    """A step of the demo did not happen in time (the message says which)."""


@dataclass(frozen=True)
class Milestone:
    """One step of the demo: ``event``, ``t`` (seconds since the start) and ``facts``."""

    event: str
    t: float
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``{"event": ..., "t": ..., **facts}`` (``t`` rounded to milliseconds)."""
        return {"event": self.event, "t": round(self.t, 3), **self.facts}


@dataclass(frozen=True)
class MemberRow:
    """One node as it sees the cluster now."""

    node: str
    state: str
    """``running``, ``rebooting``, ``cut off``, ``stopping`` or ``stopped``."""
    sees: list[str]
    """The running members it sees (itself included)."""
    leader: str | None
    partitions: list[str]
    lang: str = "python"


@dataclass(frozen=True)
class DemoOptions:
    """What the demo runs: ``nodes`` pyekka nodes, an OTP node with ``with_erlang``;
    ``timeout`` bounds each awaited step (seconds)."""

    nodes: int = 3
    with_erlang: bool = False
    timeout: float = 15.0
    base_port: int | None = None
    pace: float = 0.0
    """Seconds of pause after each step, for a person to follow (0: none)."""

    def settings(self) -> dict[str, Any]:
        """The shortened delays, for the output."""
        return {
            "autoheal_delay_ms": DEMO_AUTOHEAL.delay_ms,
            "partition_confirm_ms": DEMO_MONITOR["confirm_delay_ms"],
            "heartbeat_ms": list(DEMO_MONITOR["heartbeat_ms"]),
        }


def free_port_block(count: int, host: str = HOST) -> int:
    """A base port whose ports ``base + 1`` .. ``base + count`` are free on ``host``."""
    candidates = list(range(20000, 30000, 50))
    random.shuffle(candidates)
    for base in candidates:
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base + 1, base + count + 1):
                    s = stack.enter_context(socket.socket())
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((host, port))
            except OSError:
                continue
            return base
    raise DemoError(f"no block of {count} free ports on {host}")


def _short(node: Atom | str) -> str:
    return node.name if isinstance(node, Atom) else node


def _names(nodes: list[Atom]) -> list[str]:
    return [n.name for n in nodes]


class Demo:
    """The scenario (see the module doc); :meth:`run` it once."""

    def __init__(
        self,
        options: DemoOptions | None = None,
        on_milestone: Callable[[Milestone], None] | None = None,
    ) -> None:
        self.options = options or DemoOptions()
        self.on_milestone = on_milestone or (lambda m: None)
        self.progress: str | None = None
        """What the demo waits for now (``None``: nothing)."""
        self.progress_since = 0.0
        self.milestones: list[Milestone] = []
        self.members: list[ClusterMember] = []
        self.otp_node: OtpNode | None = None
        self._started = time.monotonic()
        self._guids: dict[Atom, bytes | None] = {}
        self._cut: set[Atom] = set()
        self._phase = "running"
        self._stop_errors: list[str] = []
        self._otp_start: asyncio.Future[None] | None = None

    # -- output --------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since the demo started."""
        return time.monotonic() - self._started

    def waited(self) -> float:
        """Seconds spent waiting for :attr:`progress` so far."""
        return time.monotonic() - self.progress_since

    def _emit(self, event: str, **facts: Any) -> Milestone:
        milestone = Milestone(event, self.elapsed(), facts)
        self.milestones.append(milestone)
        self.on_milestone(milestone)
        return milestone

    async def _step(self, event: str, **facts: Any) -> None:
        """Emit a milestone, then pause ``options.pace`` seconds so a person can read it."""
        self._emit(event, **facts)
        if self.options.pace > 0:
            await asyncio.sleep(self.options.pace)

    @contextlib.contextmanager
    def _waiting(self, text: str) -> Iterator[None]:
        self.progress, self.progress_since = text, time.monotonic()
        try:
            yield
        finally:
            self.progress = None

    def snapshot(self) -> list[MemberRow]:
        """The members table now: one row per node, as that node sees the cluster."""
        rows = []
        for member in self.members:
            c = member.cluster
            table = c.membership.table if c.running else None
            if self._phase != "running":
                state = self._phase
            elif table is None:
                state = "rebooting"
            elif member.node.name in self._cut:
                state = "cut off"
            else:
                state = "running"
            rows.append(
                MemberRow(
                    node=member.node.name.name,
                    state=state,
                    sees=_names(c.running_nodes()) if table is not None else [],
                    leader=_short(c.leader()) if table is not None and c.leader() else None,
                    partitions=_names(c.partitions()) if table is not None else [],
                )
            )
        if self.otp_node is not None:
            rows.append(MemberRow(self.otp_node.name, "connected", [], None, [], lang="erlang"))
        return rows

    # -- the scenario ----------------------------------------------------------------

    async def run(self) -> list[Milestone]:
        """Run every step; everything started is stopped when it returns or raises
        (also when cancelled). Returns the milestones."""
        self._started = time.monotonic()
        opts = self.options
        if opts.with_erlang and shutil.which("erl") is None:
            raise DemoError("--with-erlang: no `erl` on PATH")
        base = opts.base_port if opts.base_port is not None else free_port_block(opts.nodes + 1)
        cookie = "demo-" + secrets.token_hex(8)
        names = [f"demo{i}@{HOST}" for i in range(1, opts.nodes + 1)]
        try:
            with tempfile.TemporaryDirectory(prefix="pyekka-demo-") as tmp:
                async with self._cluster(names, cookie, base, Path(tmp)):
                    await self._step(
                        "started",
                        nodes=names,
                        base_port=base,
                        discovery="static",
                        seeds=names,
                        settings=opts.settings(),
                    )
                    await self._form()
                    await self._locks()
                    await self._partition_and_heal()
                    if opts.with_erlang:
                        await self._erlang(cookie, base, opts.nodes + 1)
        finally:
            await self._close_otp()
        self._emit("stopped", nodes=names, clean=not self._stop_errors, errors=self._stop_errors)
        return self.milestones

    async def _close_otp(self) -> None:
        """Kill the OTP node, waiting for it to finish starting if it is starting."""
        if self._otp_start is not None:
            with contextlib.suppress(BaseException):
                await self._otp_start
            self._otp_start = None
        if self.otp_node is not None:
            self.otp_node.close()
            self.otp_node = None

    @contextlib.asynccontextmanager
    async def _cluster(
        self, names: list[str], cookie: str, base: int, data: Path
    ) -> AsyncIterator[None]:
        nodes: list[Node] = []
        options = MemberOptions(
            autoheal=DEMO_AUTOHEAL, monitor=DEMO_MONITOR, rpc_timeout=5.0, ctl=False
        )
        try:
            for name in names:
                node = Node(name, cookie, epmd=False, dist_base_port=base, dist_interface=HOST)
                await node.start()
                nodes.append(node)
                member_options = dataclasses.replace(options, data_dir=data / name)
                self.members.append(await start_member(node, member_options))
            yield
        finally:
            self._phase = "stopping"
            for part in [*reversed(self.members), *reversed(nodes)]:
                try:
                    await part.stop()
                except Exception as e:  # stop the others anyway, report it in `stopped`
                    self._stop_errors.append(f"stopping {part!r}: {e!r}")
            self._phase = "stopped"

    async def _all(self, text: str, check: Callable[[Cluster], bool]) -> None:
        clusters = [m.cluster for m in self.members]
        with self._waiting(text):
            try:
                async with asyncio.timeout(self.options.timeout):
                    while not all(check(c) for c in clusters):
                        for c in clusters:
                            await c.wait_for(lambda c=c: check(c), self.options.timeout)
            except TimeoutError:
                raise DemoError(f"timed out: {text}") from None

    def _converged(self) -> Callable[[Cluster], bool]:
        want = sorted((m.node.name for m in self.members), key=lambda a: a.name)
        leader = self.members[0].node.name  # the oldest member
        return lambda c: (
            c.running
            and c.leader() == leader
            and c.running_nodes() == want
            and c.partitions() == []
            and all(m.status.value == "up" for m in c.members())
            and len(c.members()) == len(want)
        )

    async def _form(self) -> None:
        seeds = StaticStrategy([m.node.name.name for m in self.members])
        first = self.members[0]
        for member in self.members[1:]:
            with self._waiting(f"{member.node.name.name} discovering seeds and joining"):
                discovered = await seeds.discover()
                target = next(s for s in discovered if s != member.node.name.name)
                await member.cluster.join(target)
        await self._all("cluster forming", self._converged())
        leader = first.cluster.leader()
        await self._step(
            "cluster_formed",
            members=_names(first.cluster.running_nodes()),
            leader=_short(leader) if leader else None,
        )
        self._guids = {m.node.name: m.cluster.local_member().guid for m in self.members}

    async def _locks(self) -> None:
        holder, other = self.members[0], self.members[1]
        resource = RESOURCE.decode()
        with self._waiting(f"a quorum lock on {resource} from {holder.node.name.name}"):
            handle = holder.locker.lock(RESOURCE, LockType.QUORUM)
            await handle.__aenter__()  # held across the next steps, released below
        try:
            await self._step(
                "lock_acquired",
                node=holder.node.name.name,
                resource=resource,
                type="quorum",
                owner=str(handle.owner),
                granted_by=[_short(n) for n in handle.nodes],
            )
            refusing = await self._refused(other, RESOURCE)
            await self._step(
                "lock_refused",
                node=other.node.name.name,
                resource=resource,
                type="quorum",
                held_by=holder.node.name.name,
                refused_by=[_short(n[0] if type(n) is tuple else n) for n in refusing],
            )
        finally:
            await handle.__aexit__(None, None, None)
        released = handle.released is not None and handle.released[0] is True
        await self._step("lock_released", node=holder.node.name.name, released=released)

    async def _refused(self, member: ClusterMember, resource: bytes) -> list[Any]:
        """Ask for a quorum lock held elsewhere; the nodes that refused it."""
        with self._waiting(f"the same lock from {member.node.name.name}"):
            try:
                async with member.locker.lock(resource, LockType.QUORUM):
                    pass
            except LockRefused as refused:
                return list(refused.result[1])
        raise DemoError(f"{member.node.name.name} was granted a lock held by another node")

    async def _partition_and_heal(self) -> None:
        majority, minority = self.members[:-1], self.members[-1:]
        net = Partition(m.node for m in self.members)
        net.split([m.node for m in majority], [m.node for m in minority])
        self._cut = {m.node.name for m in minority}
        sides = [[m.node.name.name for m in majority], [m.node.name.name for m in minority]]
        for side in (majority, minority):
            want = sorted((m.node.name for m in side), key=lambda a: a.name)
            clusters = [m.cluster for m in side]
            with self._waiting("each side noticing the other is gone"):
                try:
                    for c in clusters:
                        await c.wait_for(
                            lambda c=c, want=want: c.running_nodes() == want, self.options.timeout
                        )
                except TimeoutError:
                    raise DemoError("timed out: the sides did not notice the partition") from None
        await self._step(
            "partitioned", sides=sides, cut=[[a.name, b.name] for a, b in net.cut_pairs]
        )
        started = time.monotonic()
        with self._waiting("restoring the network"):
            await net.heal()
        self._cut = set()
        await self._step("network_restored", links=len(sides[0]) * len(sides[1]))
        await self._all("autoheal merging the sides", self._converged())
        heal_seconds = time.monotonic() - started
        rebooted = [
            m.node.name.name
            for m in self.members
            if m.cluster.local_member().guid != self._guids.get(m.node.name)
        ]
        await self._step(
            "healed",
            heal_seconds=round(heal_seconds, 3),
            members=_names(self.members[0].cluster.running_nodes()),
            rebooted=rebooted,
            autoheal_delay_ms=DEMO_AUTOHEAL.delay_ms,
        )

    async def _erlang(self, cookie: str, base: int, number: int) -> None:
        from pyekka.testing.otp import OtpError, OtpRuntime, compile_interop
        from pyekka.testing.otp_node import OtpNode, epmd_less_args

        loop = asyncio.get_running_loop()
        name = f"erl{number}@{HOST}"
        try:
            with self._waiting("finding erl and compiling the interop modules"):
                erl = shutil.which("erl")
                if erl is None:
                    raise DemoError("--with-erlang: no `erl` on PATH")
                runtime = OtpRuntime(Path(erl), "PATH")
                ebin = await loop.run_in_executor(
                    None, lambda: compile_interop(_interop_cache(), runtimes=[runtime])
                )
            with self._waiting(f"starting the OTP node {name}"):

                def start() -> None:
                    # set here, in the thread: a cancelled demo still finds the VM to close
                    self.otp_node = OtpNode(
                        runtime, ebin, name, cookie, args=epmd_less_args(base, HOST)
                    )

                self._otp_start = loop.run_in_executor(None, start)
                await self._otp_start
        except OtpError as e:
            raise DemoError(f"--with-erlang: {e}") from None
        otp = self.otp_node
        assert otp is not None
        py = self.members[0].node
        with self._waiting(f"{name} pinging {py.name.name}"):
            pong = await otp.aeval(f"net_adm:ping('{py.name.name}')", 10)
        with self._waiting(f"calling {name} by rpc"):
            release = await py.rpc(name, "erlang", "system_info", [Atom("otp_release")], 10)
            version = await py.rpc(name, "erlang", "system_info", [Atom("version")], 10)
            nodes = await py.rpc(name, "erlang", "nodes", [], 10)
        if pong != Atom("pong") or not isinstance(release, list):
            raise DemoError(f"{name}: ping gave {pong}, rpc gave {release}")
        await self._step(
            "erlang_rpc",
            node=name,
            called_from=py.name.name,
            ping=_short(pong) if isinstance(pong, Atom) else str(pong),
            otp_release=_text(release),
            erts_version=_text(version),
            os_pid=otp.os_pid,
            erlang_sees=sorted(_short(n) for n in nodes) if isinstance(nodes, list) else [],
        )


def _text(value: Any) -> str:
    """A charlist (list of ints) or binary as text; anything else as ``str``."""
    if isinstance(value, list) and all(isinstance(c, int) for c in value):
        return "".join(map(chr, value))
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _interop_cache() -> Path:
    """Where the compiled ``erl_interop`` beams are kept between demos."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "pyekka" / "interop"
