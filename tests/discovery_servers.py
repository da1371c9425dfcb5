"""Real servers for the discovery tests, on 127.0.0.1 (dnsmasq also in a namespace
lab): etcd, dnsmasq, TLS material.

Each server runs as a child process in its own session; :class:`ServerProcess`
waits for the line that says it is ready (no polling) and always ends it.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

READY_TIMEOUT = 20.0


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that is free on 127.0.0.1 right now (TCP and UDP both, for ``SOCK_DGRAM``)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, other) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def find_program(name: str, package: str) -> str:
    """The path of ``name`` (also looked for in the sbin directories), or skip the test."""
    extra = os.pathsep.join(("/usr/sbin", "/sbin"))
    path = shutil.which(name) or shutil.which(name, path=extra)
    if path is None:
        pytest.skip(f"{name} not installed (Debian package {package})")
    return path


class ServerProcess:
    """A child process whose output is drained by a thread; ready when a line appears."""

    def __init__(self, argv: Sequence[str], ready: str, *, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self._ready_text = ready
        self._ready = threading.Event()
        self._grew = threading.Condition()
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._grew:
                self.lines.append(line.rstrip("\n"))
                self._grew.notify_all()
            if self._ready_text in line:
                self._ready.set()
        self._ready.set()  # EOF: the process ended; wait_ready reports it
        with self._grew:
            self._grew.notify_all()

    def wait_ready(self) -> None:
        """Block until the ready line was printed; fail with the output otherwise."""
        if not self._ready.wait(READY_TIMEOUT) or self.proc.poll() is not None:
            output = "\n".join(self.lines[-30:])
            self.stop()
            raise RuntimeError(f"{self.name} did not start:\n{output}")

    def wait_line(self, text: str, after: int = 0, timeout: float = READY_TIMEOUT) -> str:
        """Block until a line from index ``after`` on contains ``text``; return it
        (``AssertionError`` with the output if none comes in time)."""

        def found() -> str | None:
            return next((line for line in self.lines[after:] if text in line), None)

        with self._grew:
            self._grew.wait_for(lambda: found() is not None or not self._reader.is_alive(), timeout)
            line = found()
        if line is None:
            output = "\n".join(self.lines[-30:])
            raise AssertionError(f"no line with {text!r} from {self.name}:\n{output}")
        return line

    def stop(self) -> None:
        """End the process (its whole session) and reap it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(5)


@dataclass(frozen=True)
class Etcd:
    """A running etcd: its client URL."""

    url: str
    process: ServerProcess


@contextlib.contextmanager
def run_etcd(data_dir: Path, tls: TlsFiles | None = None) -> Iterator[Etcd]:
    """A one-member etcd with the v2 API enabled (https with client certs if ``tls``)."""
    etcd = find_program("etcd", "etcd-server")
    client, peer = free_port(), free_port()
    scheme = "https" if tls else "http"
    url = f"{scheme}://127.0.0.1:{client}"
    argv = [
        etcd,
        "--name=pyekka-test",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={url}",
        f"--advertise-client-urls={url}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=pyekka-test=http://127.0.0.1:{peer}",
        "--enable-v2=true",
    ]
    if tls:
        argv += [
            f"--cert-file={tls.server_cert}",
            f"--key-file={tls.server_key}",
            f"--trusted-ca-file={tls.ca_cert}",
            "--client-cert-auth=true",
        ]
    server = ServerProcess(argv, "ready to serve client requests", name="etcd")
    try:
        server.wait_ready()
        yield Etcd(url, server)
    finally:
        server.stop()


@contextlib.contextmanager
def run_dnsmasq(records: Sequence[str], local_domain: str) -> Iterator[int]:
    """dnsmasq answering ``records`` (dnsmasq options) on 127.0.0.1; yields the port.

    Names under ``local_domain`` that have no record get NXDOMAIN.
    """
    with dnsmasq_server(records, local_domain) as server:
        yield server.port


@dataclass(frozen=True)
class Dnsmasq:
    """A running dnsmasq: where it answers, and its process."""

    address: str
    port: int
    process: ServerProcess

    def reload(self) -> str:
        """SIGHUP: dnsmasq re-reads its ``--addn-hosts`` files; returns once it has
        (the line that says so)."""
        after = len(self.process.lines)
        self.process.proc.send_signal(signal.SIGHUP)
        return self.process.wait_line("read ", after)


@contextlib.contextmanager
def dnsmasq_server(
    records: Sequence[str],
    local_domain: str,
    *,
    address: str = "127.0.0.1",
    port: int | None = None,
    prefix: Sequence[str] = (),
) -> Iterator[Dnsmasq]:
    """dnsmasq answering ``records`` (dnsmasq options, e.g. ``--addn-hosts=FILE``,
    re-read by :meth:`Dnsmasq.reload`) on ``address`` and ``port`` (a free one of
    127.0.0.1 by default). ``prefix`` runs it through another command, such as
    :meth:`~pyekka.testing.netns.NetnsLab.exec_argv` for a namespace."""
    dnsmasq = find_program("dnsmasq", "dnsmasq-base")
    port = free_port(socket.SOCK_DGRAM) if port is None else port
    argv = [
        *prefix,
        dnsmasq,
        "--keep-in-foreground",
        "--log-facility=-",
        f"--port={port}",
        f"--listen-address={address}",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--conf-file=/dev/null",
        "--pid-file=",
        f"--local=/{local_domain}/",
        *records,
    ]
    if os.geteuid() == 0:
        argv.append("--user=root")
    server = ServerProcess(argv, "started, version", name="dnsmasq")
    try:
        server.wait_ready()
        yield Dnsmasq(address, port, server)
    finally:
        server.stop()


# ---------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: a CA, a server cert for 127.0.0.1/localhost and a client cert."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls_files(
    directory: Path, *, common_name: str = "pyekka test CA", addresses: Sequence[str] = ()
) -> TlsFiles:
    """Generate a throw-away CA and the certificates it signs (``cryptography``); the
    server certificate is for 127.0.0.1, localhost and ``addresses``."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return path

    def write_cert(cert: x509.Certificate, path: Path) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name(common_name))
        .issuer_name(name(common_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, usage: x509.ObjectIdentifier) -> tuple[x509.Certificate, object]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        *(x509.IPAddress(ipaddress.ip_address(a)) for a in addresses),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        return cert, key

    directory.mkdir(parents=True, exist_ok=True)
    server, server_key = leaf("127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH)
    client, client_key = leaf("pyekka-client", ExtendedKeyUsageOID.CLIENT_AUTH)
    return TlsFiles(
        ca_cert=write_cert(ca, directory / "ca.pem"),
        server_cert=write_cert(server, directory / "server.pem"),
        server_key=write_key(server_key, directory / "server-key.pem"),  # type: ignore[arg-type]
        client_cert=write_cert(client, directory / "client.pem"),
        client_key=write_key(client_key, directory / "client-key.pem"),  # type: ignore[arg-type]
    )
