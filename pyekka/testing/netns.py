"""Network namespace labs: isolated hosts with addresses of their own, for tests.

A :class:`NetnsLab` builds, without touching the network of the namespace the test
runs in:

* a *switch* namespace holding a Linux bridge (``br0``), with an optional service
  address (``.1`` of the subnet) on it for servers (DNS, an API emulator, ...);
* ``hosts`` host namespaces, each with ``lo`` up and an ``eth0`` veth whose peer is
  a port of the bridge, addressed ``.2``, ``.3``, ... of the lab's private subnet.

Labs are isolated from each other, so they all use the same subnet. Commands run in
a host with :meth:`NetnsLab.exec_argv` (``ip netns exec NS ...``); a socket is made
inside a namespace from the test process itself with :meth:`NetnsLab.listen` (a
short-lived thread joins the namespace with ``setns(2)`` and creates the socket,
which stays there), e.g. to serve an in-process ``aiohttp`` application to the lab.
:meth:`NetnsLab.write_etc` gives the hosts their own ``/etc/hosts`` or
``resolv.conf`` (``ip netns exec`` bind-mounts ``/etc/netns/NS/FILE``), and
:meth:`NetnsLab.cut` / :meth:`NetnsLab.restore` take a host's link down and up;
:meth:`NetnsLab.split` / :meth:`NetnsLab.merge` put groups of hosts on bridges of
their own and back.

:meth:`NetnsLab.close` kills every process still inside the lab's namespaces, deletes
them and removes their ``/etc/netns`` files. Namespace names carry the creating
process's id and a counter (``pyekka-<pid>-<n>-...``); opening a lab first removes the
labs of processes that are gone. Creating namespaces needs root (``CAP_SYS_ADMIN``)
and iproute2: :class:`NetnsUnavailable` says why a lab cannot be built.

Linux only. No pytest import.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

__all__ = ["LabHost", "NetnsLab", "NetnsUnavailable", "in_namespace", "netns_unavailable"]

T = TypeVar("T")

PREFIX = "pyekka"
"""The first part of every lab namespace name."""
DEFAULT_SUBNET = "10.77.0.0/24"
NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")
CLONE_NEWNET = 0x40000000
_NAME = re.compile(rf"^{PREFIX}-(\d+)-(\d+)-(?:sw|h\d+)$")
_counter = itertools.count(1)
_counter_lock = threading.Lock()


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be created here (the reason is the message)."""


def _ip_program() -> str | None:
    return shutil.which("ip") or shutil.which("ip", path=os.pathsep.join(("/usr/sbin", "/sbin")))


def netns_unavailable() -> str | None:
    """Why no lab can be built here (``None`` if one probably can): not Linux, no
    iproute2, or not root."""
    if not Path("/proc/self/ns/net").exists():
        return "network namespaces need Linux"
    if _ip_program() is None:
        return "the ip program (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (CAP_SYS_ADMIN)"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    ip = _ip_program()
    if ip is None:
        raise NetnsUnavailable("the ip program (iproute2) is not installed")
    done = subprocess.run([ip, *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise subprocess.CalledProcessError(
            done.returncode, ["ip", *args], done.stdout, done.stderr
        )
    return done


def _setns(path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def in_namespace(namespace: str, fn: Callable[[], T]) -> T:
    """Call ``fn()`` in a new thread that has joined the named network namespace, and
    return its result (or raise its exception). Sockets it creates stay in that
    namespace; the calling thread's namespace is not changed."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            _setns(NETNS_DIR / namespace)
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=run, name=f"netns-{namespace}", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _pids(namespace: str) -> list[int]:
    done = _ip("netns", "pids", namespace, check=False)
    return [int(p) for p in done.stdout.split() if p.isdigit()]


def _kill_inside(namespace: str, timeout: float = 5.0) -> None:
    """SIGKILL every process in ``namespace`` until none is left (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while (pids := _pids(namespace)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)  # processes need a moment to leave the namespace once killed


def _remove_namespace(namespace: str) -> None:
    _kill_inside(namespace)
    if (NETNS_DIR / namespace).exists():
        _ip("netns", "delete", namespace, check=False)
    shutil.rmtree(ETC_NETNS / namespace, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_labs() -> list[str]:
    """Delete the namespaces (and ``/etc/netns`` files) of labs whose creating process
    is gone; the names removed."""
    names = set()
    for directory in (NETNS_DIR, ETC_NETNS):
        with contextlib.suppress(OSError):
            names.update(p.name for p in directory.iterdir())
    stale = sorted(n for n in names if (m := _NAME.match(n)) and not _alive(int(m.group(1))))
    for name in stale:
        _remove_namespace(name)
    return stale


@dataclass(frozen=True)
class LabHost:
    """One host of a lab: its namespace and address."""

    index: int
    namespace: str
    address: str


class NetnsLab:
    """A switch namespace with a bridge and ``hosts`` host namespaces wired to it.

    ``with NetnsLab(3) as lab:`` (or :meth:`open` / :meth:`close`). ``service``: put
    the subnet's first address (:attr:`service_address`) on the bridge, for servers
    run in :attr:`switch`.
    """

    def __init__(self, hosts: int, *, subnet: str = DEFAULT_SUBNET, service: bool = True) -> None:
        net = ipaddress.ip_network(subnet)
        if hosts < 1 or hosts + 2 > net.num_addresses - 1:
            raise ValueError(f"{hosts} hosts do not fit in {subnet}")
        with _counter_lock:
            number = next(_counter)
        self.tag = f"{PREFIX}-{os.getpid()}-{number}"
        self.network = net
        self.switch = f"{self.tag}-sw"
        first = net.network_address + 1
        self.service_address: str | None = str(first) if service else None
        self.hosts = [LabHost(i, f"{self.tag}-h{i}", str(first + 1 + i)) for i in range(hosts)]
        self._opened = False

    @property
    def namespaces(self) -> list[str]:
        """Every namespace of the lab, the switch first."""
        return [self.switch, *(h.namespace for h in self.hosts)]

    @property
    def addresses(self) -> list[str]:
        """The hosts' addresses, in order."""
        return [h.address for h in self.hosts]

    def open(self) -> NetnsLab:
        """Build the lab (removing stale labs first); :class:`NetnsUnavailable` if
        namespaces cannot be created here."""
        if reason := netns_unavailable():
            raise NetnsUnavailable(reason)
        remove_stale_labs()
        self._opened = True
        try:
            self._build()
        except subprocess.CalledProcessError as exc:
            self.close()
            reason = (exc.stderr or "").strip() or str(exc)
            raise NetnsUnavailable(
                f"cannot build a namespace lab (root with CAP_SYS_ADMIN needed): {reason}"
            ) from None
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        prefix = self.network.prefixlen
        _ip("netns", "add", self.switch)
        sw = ("-n", self.switch)
        _ip(*sw, "link", "set", "lo", "up")
        _ip(*sw, "link", "add", "br0", "type", "bridge")
        _ip(*sw, "link", "set", "br0", "up")
        if self.service_address is not None:
            _ip(*sw, "addr", "add", f"{self.service_address}/{prefix}", "dev", "br0")
        for host in self.hosts:
            _ip("netns", "add", host.namespace)
            port = f"port{host.index}"
            _ip(*sw, "link", "add", port, "type", "veth", "peer", "name", "eth0")
            _ip(*sw, "link", "set", "eth0", "netns", host.namespace)
            _ip(*sw, "link", "set", port, "master", "br0", "up")
            hn = ("-n", host.namespace)
            _ip(*hn, "link", "set", "lo", "up")
            _ip(*hn, "addr", "add", f"{host.address}/{prefix}", "dev", "eth0")
            _ip(*hn, "link", "set", "eth0", "up")

    def close(self) -> None:
        """Kill every process left in the lab, delete its namespaces and files."""
        if not self._opened:
            return
        for namespace in reversed(self.namespaces):
            _remove_namespace(namespace)
        self._opened = False

    def __enter__(self) -> NetnsLab:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exec_argv(self, namespace: str | LabHost, *argv: str) -> list[str]:
        """``ip netns exec NS ARGV``: the command line running ``argv`` in a namespace
        (a host or :attr:`switch`)."""
        ns = namespace.namespace if isinstance(namespace, LabHost) else namespace
        ip = _ip_program() or "ip"
        return [ip, "netns", "exec", ns, *argv]

    def listen(
        self,
        namespace: str | LabHost,
        address: str,
        port: int = 0,
        kind: socket.SocketKind = socket.SOCK_STREAM,
    ) -> socket.socket:
        """A socket bound to ``(address, port)`` inside ``namespace`` (listening, for
        TCP); the caller owns it (e.g. ``aiohttp.web.SockSite(runner, sock)``)."""
        ns = namespace.namespace if isinstance(namespace, LabHost) else namespace

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, kind)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, port))
                if kind == socket.SOCK_STREAM:
                    sock.listen(128)
            except BaseException:
                sock.close()
                raise
            return sock

        return in_namespace(ns, make)

    def write_etc(self, files: Mapping[str, str], hosts: Iterable[LabHost] | None = None) -> None:
        """Give ``hosts`` (all by default) their own ``/etc/FILE`` (e.g. ``hosts``,
        ``resolv.conf``) for commands run with :meth:`exec_argv`; removed by
        :meth:`close`."""
        for host in self.hosts if hosts is None else hosts:
            directory = ETC_NETNS / host.namespace
            directory.mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                (directory / name).write_text(text)

    def hosts_file(self, names: Mapping[str, str]) -> str:
        """The text of an ``/etc/hosts`` mapping each host name of ``names`` to its
        address (``localhost`` included)."""
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost"]
        lines += [f"{address}\t{name}" for name, address in names.items()]
        return "\n".join(lines) + "\n"

    def cut(self, host: LabHost) -> None:
        """Take ``host``'s link to the bridge down (a partition)."""
        _ip("-n", self.switch, "link", "set", f"port{host.index}", "down")

    def restore(self, host: LabHost) -> None:
        """Bring ``host``'s link to the bridge up again."""
        _ip("-n", self.switch, "link", "set", f"port{host.index}", "up")

    def split(self, *groups: Iterable[LabHost]) -> None:
        """Partition the lab between groups of hosts: group ``i`` (``i >= 1``) moves to a
        bridge of its own, ``br<i>``; the first group and the hosts of no group stay on
        ``br0`` (with the service address). Links stay up: packets between groups are
        dropped, connections are not closed. :meth:`merge` undoes it."""
        sw = ("-n", self.switch)
        for number, group in enumerate(groups[1:], start=1):
            bridge = f"br{number}"
            if _ip(*sw, "link", "show", bridge, check=False).returncode != 0:
                _ip(*sw, "link", "add", bridge, "type", "bridge")
                _ip(*sw, "link", "set", bridge, "up")
            for host in group:
                _ip(*sw, "link", "set", f"port{host.index}", "master", bridge)

    def merge(self) -> None:
        """Put every host back on ``br0`` (undo :meth:`split`)."""
        for host in self.hosts:
            _ip("-n", self.switch, "link", "set", f"port{host.index}", "master", "br0")

    def __repr__(self) -> str:
        return f"<NetnsLab {self.tag} {self.network} hosts={self.addresses}>"
