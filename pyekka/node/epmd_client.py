"""An asyncio EPMD client: register a node, look nodes up, list names.

The messages come from the sans-I/O :mod:`pyekka.dist.epmd`; this module owns
the sockets and the timeouts::

    reg = await register("mynode", listen_port)     # keep it for the node's life
    reg.creation                                     # from epmd
    await port_please("127.0.0.1", "other")          # (port, version) or None
    await names("127.0.0.1")                         # [(name, port), ...]
    await reg.close()                                # unregisters

The epmd port follows OTP (:func:`configured_epmd_port`): the ``ERL_EPMD_PORT``
environment variable, else an explicit ``-epmd_port`` value, else 4369.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from pyekka.dist import epmd as wire
from pyekka.dist.epmd import EPMD_PORT, NODE_TYPE_HIDDEN, NODE_TYPE_NORMAL, NodeInfo
from pyekka.dist.errors import ProtocolError

__all__ = [
    "DEFAULT_TIMEOUT",
    "ENV_EPMD_PORT",
    "EpmdError",
    "EpmdProtocolError",
    "EpmdRegistration",
    "EpmdTimeout",
    "EpmdUnavailable",
    "RegistrationRefused",
    "configured_epmd_port",
    "lookup_node",
    "names",
    "port_please",
    "register",
    "select_best_version",
]

log = logging.getLogger("pyekka.node.epmd")

#: The environment variable OTP reads for the epmd port (``erlexec`` turns it
#: into ``-epmd_port``, placed before the command line's own arguments).
ENV_EPMD_PORT = "ERL_EPMD_PORT"
#: How long a client waits for epmd (connect and reply), as ``erl_epmd`` does.
DEFAULT_TIMEOUT = 10.0

_READ_SIZE = 4096
# A NAMES reply larger than this is not from an epmd.
_MAX_NAMES_REPLY = 16 * 1024 * 1024
# Erlang's list_to_integer/1: an optional sign and ASCII digits, nothing else.
_ERLANG_INTEGER = re.compile(r"[+-]?[0-9]+")


class EpmdError(Exception):
    """Talking to epmd failed."""


class EpmdUnavailable(EpmdError):
    """No epmd answers at that address and port (not running, refused, unreachable)."""


class EpmdTimeout(EpmdError, TimeoutError):
    """epmd accepted the connection but did not answer in time."""


class EpmdProtocolError(EpmdError):
    """epmd answered something that is not a valid reply, or hung up without one."""


class RegistrationRefused(EpmdError):
    """epmd refused ALIVE2 (result != 0): the name is already registered."""

    def __init__(self, name: str, result: int) -> None:
        super().__init__(f"epmd refused to register {name!r} (result {result}): name in use?")
        self.name = name
        self.result = result


# ------------------------------------------------------------------ configuration


def configured_epmd_port(
    environ: Mapping[str, str] | None = None, epmd_port_arg: str | int | None = None
) -> int:
    """The epmd port an OTP node would use.

    ``erlexec`` turns ``ERL_EPMD_PORT`` into an ``-epmd_port`` argument placed
    before the command line's own, and ``erl_epmd`` takes the first one, so the
    environment variable wins over ``epmd_port_arg`` (the ``-epmd_port`` value);
    with neither the port is 4369. The text must be what Erlang's
    ``list_to_integer/1`` accepts (optional sign, ASCII digits, no blanks);
    anything else, or a number outside 1..65535, raises ``ValueError`` (OTP's
    ``erl_epmd`` crashes with ``badarg`` instead).
    """
    env = os.environ if environ is None else environ
    text = env.get(ENV_EPMD_PORT)
    source = ENV_EPMD_PORT
    if text is None:
        if epmd_port_arg is None:
            return EPMD_PORT
        text, source = str(epmd_port_arg), "-epmd_port"
    if not _ERLANG_INTEGER.fullmatch(text):
        raise ValueError(f"{source}={text!r} is not an integer")
    port = int(text)
    if not 0 < port <= 0xFFFF:
        raise ValueError(f"{source}={text!r} is not a TCP port number")
    return port


def select_best_version(our_low: int, our_high: int, low: int, high: int) -> int:
    """The distribution version to use with a peer announcing ``low..high``.

    As ``erl_epmd``: the smaller of the two highest versions, or ``0`` when the
    ranges do not overlap.
    """
    if our_low > high or low > our_high:
        return 0
    return min(our_high, high)


# ------------------------------------------------------------------ requests


async def _open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.open_connection(host, port)
    except OSError as exc:
        detail = exc.strerror or str(exc) or type(exc).__name__
        raise EpmdUnavailable(
            f"no epmd at {host}:{port}: {detail} (is epmd running? is {ENV_EPMD_PORT} right?)"
        ) from exc


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _read_reply(
    reader: asyncio.StreamReader,
    parse: Callable[[bytearray], Any],
    at_eof: Callable[[bytearray], Any] | None,
    what: str,
    where: str,
) -> Any:
    """Read until ``parse`` returns a value, or until EOF if ``at_eof`` is given."""
    data = bytearray()
    while True:
        try:
            reply = parse(data)
        except ProtocolError as exc:
            raise EpmdProtocolError(f"epmd at {where}: bad {what}: {exc}") from exc
        if reply is not None:
            return reply
        try:
            chunk = await reader.read(_READ_SIZE)
        except OSError as exc:
            raise EpmdProtocolError(f"epmd at {where} reset the connection: {exc}") from exc
        if not chunk:
            if at_eof is None:
                raise EpmdProtocolError(f"epmd at {where} closed the connection without a {what}")
            try:
                return at_eof(data)
            except ProtocolError as exc:
                raise EpmdProtocolError(f"epmd at {where}: bad {what}: {exc}") from exc
        data += chunk


async def _exchange(
    host: str,
    port: int,
    request: bytes,
    what: str,
    timeout: float | None,
    parse: Callable[[bytearray], Any],
    at_eof: Callable[[bytearray], Any] | None = None,
    *,
    keep: bool = False,
) -> tuple[Any, asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to epmd, send ``request``, read the reply; close unless ``keep``."""
    where = f"{host}:{port}"
    connected = False
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await _open(host, port)
            connected = True
            try:
                writer.write(request)
                await writer.drain()
                reply = await _read_reply(reader, parse, at_eof, what, where)
            except BaseException:
                await _close_writer(writer)
                raise
            if not keep:
                await _close_writer(writer)
            return reply, reader, writer
    except TimeoutError as exc:
        if isinstance(exc, EpmdError):
            raise
        if not connected:
            raise EpmdUnavailable(f"no epmd at {where}: connect timed out") from exc
        raise EpmdTimeout(f"epmd at {where} did not send its {what} within {timeout} s") from exc
    except OSError as exc:
        raise EpmdProtocolError(f"epmd at {where}: connection failed: {exc}") from exc


class EpmdRegistration:
    """A node registered with epmd: the registration lasts as long as this connection.

    Made by :func:`register`. ``await close()`` (or leaving ``async with``)
    unregisters: it half-closes the connection and waits for epmd to close its
    side, which epmd does only after forgetting the name. :meth:`wait_lost`
    returns if epmd goes away first.
    """

    def __init__(
        self,
        node: NodeInfo,
        creation: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        where: str,
    ) -> None:
        self.node = node
        self.creation = creation
        self.where = where
        self._reader = reader
        self._writer = writer
        self._lost = asyncio.Event()
        self._closing = False
        self._watch = asyncio.get_running_loop().create_task(self._watch_connection())

    @property
    def name(self) -> str:
        """The registered alive part."""
        return self.node.name

    @property
    def port(self) -> int:
        """The distribution port registered."""
        return self.node.port

    @property
    def lost(self) -> bool:
        """Whether the connection to epmd has ended (the name is no longer registered)."""
        return self._lost.is_set()

    async def wait_lost(self) -> None:
        """Return once the connection to epmd has ended (epmd died, or :meth:`close`)."""
        await self._lost.wait()

    async def _watch_connection(self) -> None:
        try:
            while await self._reader.read(_READ_SIZE):
                pass  # epmd never talks on this connection; it closes it on errors
        except OSError:
            pass
        finally:
            self._lost.set()
            if not self._closing:
                log.warning("epmd at %s dropped the registration of %r", self.where, self.name)

    async def close(self, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Unregister: returns once epmd has closed its side (or after ``timeout``)."""
        if self._closing:
            await self._lost.wait()
            return
        self._closing = True
        with contextlib.suppress(OSError, RuntimeError):
            if self._writer.can_write_eof():
                self._writer.write_eof()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._lost.wait()
        self._watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watch
        await _close_writer(self._writer)

    async def __aenter__(self) -> EpmdRegistration:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "lost" if self.lost else "registered"
        return f"<EpmdRegistration {self.name!r} port={self.port} creation={self.creation} {state}>"


async def register(
    name: str,
    port: int,
    *,
    host: str = "127.0.0.1",
    epmd_port: int | None = None,
    hidden: bool = False,
    highest_version: int = 6,
    lowest_version: int = 5,
    extra: bytes = b"",
    timeout: float | None = DEFAULT_TIMEOUT,
) -> EpmdRegistration:
    """Register node ``name`` (alive part) listening on ``port`` with epmd (ALIVE2).

    Keep the returned :class:`EpmdRegistration` for the node's lifetime: epmd
    forgets the name when its connection closes. Its ``creation`` is the one epmd
    handed out (32-bit when ``highest_version`` >= 6, else 1..3). ``hidden``
    registers node type ``H`` instead of ``M``. Raises
    :class:`RegistrationRefused` if the name is taken, :class:`EpmdUnavailable`
    if no epmd answers, :class:`EpmdTimeout` or :class:`EpmdProtocolError`.
    """
    node = NodeInfo(
        name=name,
        port=port,
        node_type=NODE_TYPE_HIDDEN if hidden else NODE_TYPE_NORMAL,
        highest_version=highest_version,
        lowest_version=lowest_version,
        extra=extra,
    )
    epmd_port = configured_epmd_port() if epmd_port is None else epmd_port
    reply, reader, writer = await _exchange(
        host,
        epmd_port,
        wire.encode_alive2_req(node),
        "ALIVE2 reply",
        timeout,
        wire.read_alive2_resp,
        keep=True,
    )
    assert isinstance(reply, wire.Alive2Response)
    if reply.result != 0:
        await _close_writer(writer)
        raise RegistrationRefused(name, reply.result)
    where = f"{host}:{epmd_port}"
    log.debug(
        "registered %r (port %d) with epmd at %s: creation %d", name, port, where, reply.creation
    )
    return EpmdRegistration(node, reply.creation, reader, writer, where)


async def lookup_node(
    host: str,
    name: str,
    *,
    epmd_port: int | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> NodeInfo | None:
    """PORT_PLEASE2 for ``name`` at the epmd on ``host``: everything epmd knows, or ``None``."""
    epmd_port = configured_epmd_port() if epmd_port is None else epmd_port
    request = wire.encode_port_please2_req(name)
    reply, _, _ = await _exchange(
        host, epmd_port, request, "PORT2 reply", timeout, wire.read_port2_resp
    )
    assert isinstance(reply, wire.Port2Response)
    return reply.node


async def port_please(
    host: str,
    name: str,
    *,
    epmd_port: int | None = None,
    lowest_version: int = 5,
    highest_version: int = 6,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> tuple[int, int] | None:
    """``(port, version)`` of node ``name`` (alive part) on ``host``, or ``None``.

    ``version`` is the distribution version to use with it given the versions we
    speak (:func:`select_best_version`; ``0`` if they do not overlap), as
    ``erl_epmd:port_please/2`` answers ``{port, Port, Version}``.
    """
    node = await lookup_node(host, name, epmd_port=epmd_port, timeout=timeout)
    if node is None:
        return None
    version = select_best_version(
        lowest_version, highest_version, node.lowest_version, node.highest_version
    )
    return node.port, version


def _names_incomplete(data: bytearray) -> None:
    """NAMES replies end at EOF: never complete while reading, but bounded."""
    if len(data) > _MAX_NAMES_REPLY:
        raise ProtocolError(f"NAMES reply larger than {_MAX_NAMES_REPLY} bytes")
    return None


async def names(
    host: str = "127.0.0.1",
    *,
    epmd_port: int | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    check_port: bool = True,
) -> list[tuple[str, int]]:
    """The ``(name, port)`` pairs epmd on ``host`` lists, in the order it lists them.

    That is the order ``epmd -names`` prints (most recently registered first).
    As ``erl_epmd:names/1``, a reply announcing another epmd port than the one
    asked is an error (``check_port=False`` accepts it, e.g. behind port
    forwarding).
    """
    epmd_port = configured_epmd_port() if epmd_port is None else epmd_port
    (reported, pairs), _, _ = await _exchange(
        host,
        epmd_port,
        wire.encode_names_req(),
        "NAMES reply",
        timeout,
        _names_incomplete,
        wire.read_names_resp,
    )
    if check_port and reported != epmd_port:
        raise EpmdProtocolError(f"epmd at {host}:{epmd_port} says it listens on port {reported}")
    return pairs
