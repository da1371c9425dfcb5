"""The namespace lab of :mod:`pyekka.testing.netns`: hosts reach each other and the
service address, not the test's own namespace; nothing of the lab is left in it
(interfaces, addresses); closing kills what runs inside and removes the namespaces
and their ``/etc/netns`` files; labs of dead processes are removed; a link can be cut
and restored; the hosts can be split into groups and merged again; without
``CAP_SYS_ADMIN`` the reason is clear."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pyekka.testing import netns
from pyekka.testing.netns import ETC_NETNS, NETNS_DIR, NetnsLab, NetnsUnavailable, in_namespace

Lab = Callable[..., NetnsLab]
PORT = 7000


def _ip(*args: str) -> str:
    ip = netns._ip_program()
    assert ip is not None
    return subprocess.run([ip, *args], check=True, capture_output=True, text=True).stdout


def _namespaces() -> set[str]:
    return {line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()}


def _connect(namespace: str, address: str, port: int, timeout: float = 5.0) -> tuple[str, int]:
    """Connect from ``namespace`` to ``address:port``; the local end's address."""

    def connect() -> tuple[str, int]:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            return sock.getsockname()

    return in_namespace(namespace, connect)


def _accepted(server: socket.socket) -> str:
    server.settimeout(5)
    conn, peer = server.accept()
    conn.close()
    return peer[0]


def _gone(pid: int) -> bool:
    """The process ended (reaped, or a zombie waiting for its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_hosts_reach_each_other_and_the_service_address(netns_lab: Lab) -> None:
    lab = netns_lab(hosts=3)
    a, b, c = lab.hosts
    assert lab.service_address == "10.77.0.1" and lab.addresses == [
        "10.77.0.2",
        "10.77.0.3",
        "10.77.0.4",
    ]
    shown = subprocess.run(
        lab.exec_argv(b, "ip", "-o", "-4", "addr", "show", "dev", "eth0"),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert f"inet {b.address}/24" in shown
    with lab.listen(a, a.address, PORT) as server:
        for other in (b, c):
            assert _connect(other.namespace, a.address, PORT)[0] == other.address
            assert _accepted(server) == other.address
    assert lab.service_address is not None
    with lab.listen(lab.switch, lab.service_address, PORT) as service:
        assert _connect(c.namespace, lab.service_address, PORT)[0] == c.address
        assert _accepted(service) == c.address
    with lab.listen(b, "127.0.0.1", PORT) as local:  # every host has its own lo
        assert _connect(b.namespace, "127.0.0.1", PORT)[0] == "127.0.0.1"
        assert _accepted(local) == "127.0.0.1"
        with pytest.raises(ConnectionRefusedError):
            _connect(a.namespace, "127.0.0.1", PORT)


def test_one_host_calls_another(netns_lab: Lab) -> None:
    """The example of ``docs/testing.md``, as it is written there."""
    lab = netns_lab(hosts=2)
    a, b = lab.hosts
    with lab.listen(a, a.address, 7000) as server:  # made by this process, inside a
        call = f"import socket; socket.create_connection(({a.address!r}, 7000))"
        subprocess.run(lab.exec_argv(b, sys.executable, "-c", call), check=True)
        conn, (peer, _port) = server.accept()
        conn.close()
    assert peer == b.address


def test_the_test_namespace_is_untouched(netns_lab: Lab) -> None:
    links, addresses = _ip("-o", "link"), _ip("-o", "addr")
    with socket.socket() as outside:
        outside.bind(("127.0.0.1", 0))
        outside.listen()
        port = outside.getsockname()[1]
        lab = netns_lab(hosts=2)
        with pytest.raises(ConnectionRefusedError):  # a host's 127.0.0.1 is not ours
            _connect(lab.hosts[0].namespace, "127.0.0.1", port)
    assert _ip("-o", "link") == links  # no bridge, no veth end here
    assert _ip("-o", "addr") == addresses
    with pytest.raises(OSError), socket.socket() as sock:
        sock.bind((lab.hosts[0].address, 0))  # the lab's addresses are not ours


def test_in_namespace_moves_only_its_own_thread(netns_lab: Lab) -> None:
    lab = netns_lab(hosts=1)
    ours = os.readlink("/proc/thread-self/ns/net")
    inside = in_namespace(lab.hosts[0].namespace, lambda: os.readlink("/proc/thread-self/ns/net"))
    assert inside != ours
    assert inside == f"net:[{os.stat(NETNS_DIR / lab.hosts[0].namespace).st_ino}]"
    assert os.readlink("/proc/thread-self/ns/net") == ours
    with pytest.raises(ZeroDivisionError):
        in_namespace(lab.switch, lambda: 1 / 0)


def test_close_kills_processes_and_removes_namespaces_and_files() -> None:
    lab = NetnsLab(2)
    try:
        lab.open()
    except NetnsUnavailable as exc:
        pytest.skip(str(exc))
    try:
        lab.write_etc({"hosts": lab.hosts_file({"peer.test": lab.addresses[1]})})
        resolved = subprocess.run(
            lab.exec_argv(lab.hosts[0], "getent", "hosts", "peer.test"),
            capture_output=True,
            text=True,
        )
        assert resolved.stdout.split() == [lab.addresses[1], "peer.test"]
        places = (lab.switch, lab.hosts[1].namespace)
        sleepers = [
            subprocess.Popen(lab.exec_argv(ns, "sleep", "600"), start_new_session=True)
            for ns in places
        ]
        for ns, sleeper in zip(places, sleepers, strict=True):
            while sleeper.pid not in netns._pids(ns):  # ip netns exec joins, then execs
                assert sleeper.poll() is None
                time.sleep(0.01)
        assert set(lab.namespaces) <= _namespaces()
    finally:
        lab.close()
    for sleeper in sleepers:
        assert sleeper.wait(10) == -9
    assert not set(lab.namespaces) & _namespaces()
    for ns in lab.namespaces:
        assert not (NETNS_DIR / ns).exists() and not (ETC_NETNS / ns).exists()
    lab.close()  # a second close does nothing


_CRASHING_LAB = """
import os, subprocess, sys
from pyekka.testing.netns import NetnsLab
lab = NetnsLab(1).open()
lab.write_etc({"hosts": lab.hosts_file({})})
quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # no pipe held open
argv = lab.exec_argv(lab.hosts[0], "sleep", "600")
sleeper = subprocess.Popen(argv, start_new_session=True, **quiet)
print(sleeper.pid, *lab.namespaces, flush=True)
os._exit(0)  # a test process that dies without closing its lab
"""


def test_labs_of_dead_processes_are_removed(netns_lab: Lab) -> None:
    netns_lab(hosts=1)  # skips the test where no lab can be built
    out = subprocess.run(
        [sys.executable, "-c", _CRASHING_LAB],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    sleeper, stale = int(out[0]), out[1:]
    try:
        assert set(stale) <= _namespaces() and (ETC_NETNS / stale[1]).is_dir()
        lab = netns_lab(hosts=1)  # opening a lab removes the stale ones
        assert set(lab.namespaces) <= _namespaces()
        assert not set(stale) & _namespaces()
        assert not any((ETC_NETNS / ns).exists() for ns in stale)
        assert _wait_gone(sleeper)
    finally:
        netns.remove_stale_labs()


def test_cut_and_restore_a_hosts_link(netns_lab: Lab) -> None:
    lab = netns_lab(hosts=2)
    a, b = lab.hosts
    with lab.listen(b, b.address, PORT) as server:
        _connect(a.namespace, b.address, PORT)
        _accepted(server)
        lab.cut(b)
        with pytest.raises(OSError):  # a timeout, or no route to the host
            _connect(a.namespace, b.address, PORT, timeout=0.5)
        lab.restore(b)
        assert _connect(a.namespace, b.address, PORT)[0] == a.address
        assert _accepted(server) == a.address


def test_split_between_groups_and_merge(netns_lab: Lab) -> None:
    lab = netns_lab(hosts=4)
    a, b, c, d = lab.hosts
    servers = {h: lab.listen(h, h.address, PORT) for h in (b, c)}
    try:
        _connect(a.namespace, c.address, PORT)  # reachable before the split
        _accepted(servers[c])
        lab.split([a, b], [c, d])
        assert _connect(a.namespace, b.address, PORT)[0] == a.address  # same side
        assert _accepted(servers[b]) == a.address
        assert _connect(d.namespace, c.address, PORT)[0] == d.address
        assert _accepted(servers[c]) == d.address
        with pytest.raises(OSError):  # across: dropped (a timeout)
            _connect(a.namespace, c.address, PORT, timeout=0.5)
        with pytest.raises(OSError):
            _connect(d.namespace, b.address, PORT, timeout=0.5)
        shown = _ip("-n", lab.switch, "-o", "link", "show", "dev", f"port{c.index}")
        assert "master br1" in shown and "state UP" in shown  # links stay up
        lab.merge()
        assert _connect(a.namespace, c.address, PORT)[0] == a.address
        assert _accepted(servers[c]) == a.address
        assert _connect(d.namespace, b.address, PORT)[0] == d.address
        assert _accepted(servers[b]) == d.address
    finally:
        for server in servers.values():
            server.close()


def test_without_cap_sys_admin_the_reason_is_given() -> None:
    if reason := netns.netns_unavailable():
        pytest.skip(reason)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    code = (
        "from pyekka.testing.netns import NetnsLab, NetnsUnavailable\n"
        "try:\n    NetnsLab(1).open()\n"
        "except NetnsUnavailable as exc:\n    print('unavailable:', exc)\n"
    )
    drop = ["--bounding-set=-sys_admin", "--inh-caps=-sys_admin"]
    got = subprocess.run(
        [setpriv, *drop, sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert got.stdout.startswith("unavailable: cannot build a namespace lab"), got
    assert "CAP_SYS_ADMIN" in got.stdout
    netns.remove_stale_labs()  # whatever the dead child could not delete


def test_not_root_is_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert netns.netns_unavailable() == "creating network namespaces needs root (CAP_SYS_ADMIN)"
    with pytest.raises(NetnsUnavailable, match="needs root"):
        NetnsLab(1).open()
    monkeypatch.setattr(netns, "_ip_program", lambda: None)
    assert netns.netns_unavailable() == "the ip program (iproute2) is not installed"


def test_bad_sizes() -> None:
    with pytest.raises(ValueError):
        NetnsLab(0)
    with pytest.raises(ValueError):
        NetnsLab(7, subnet="10.0.0.0/29")
