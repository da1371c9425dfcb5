"""EPMD, the Erlang port mapper: its messages, sans I/O.

Client side: ``encode_*`` functions build requests (with their 2-byte length
prefix) and ``read_*`` functions parse replies from the bytes received so far,
returning ``None`` while a reply is still incomplete. Replies have no length
prefix; NAMES and DUMP replies end when epmd closes the connection. The server
side's parsers and reply builders are here too; the embedded server itself is
:mod:`pyekka.dist.epmd_server`.

Wire formats (all integers big-endian)::

    ALIVE2_REQ        len:16 'x' port:16 type:8 proto:8 high:16 low:16
                      nlen:16 name elen:16 extra
    ALIVE2_X_RESP     'v' result:8 creation:32     (to nodes with high >= 6)
    ALIVE2_RESP       'y' result:8 creation:16     (older nodes)
    PORT_PLEASE2_REQ  len:16 'z' name
    PORT2_RESP        'w' result:8 [port:16 type:8 proto:8 high:16 low:16
                      nlen:16 name elen:16 extra]  (fields only when result = 0)
    NAMES_REQ         len:16 'n'   -> epmd_port:32 then "name N at port P\\n" lines
    DUMP_REQ          len:16 'd'   -> epmd_port:32 then NUL-terminated lines
    KILL_REQ          len:16 'k'   -> "OK" or "NO"
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from pyekka.dist.errors import ProtocolError

__all__ = [
    "ALIVE2_REQ",
    "ALIVE2_RESP",
    "ALIVE2_X_RESP",
    "DUMP_REQ",
    "EPMD_PORT",
    "KILL_REQ",
    "MAX_SYM_LEN",
    "NAMES_REQ",
    "NODE_TYPE_HIDDEN",
    "NODE_TYPE_NORMAL",
    "PORT2_RESP",
    "PORT_PLEASE2_REQ",
    "PROTOCOL_TCP",
    "Alive2Response",
    "NodeInfo",
    "Port2Response",
    "encode_alive2_req",
    "encode_alive2_resp",
    "encode_dump_req",
    "encode_kill_req",
    "encode_names_req",
    "encode_names_resp",
    "encode_port2_resp",
    "encode_port_please2_req",
    "parse_alive2_req",
    "read_alive2_resp",
    "read_kill_resp",
    "read_names_resp",
    "read_port2_resp",
]

#: The well-known epmd port (``ERL_EPMD_PORT`` overrides it in OTP).
EPMD_PORT = 4369

ALIVE2_REQ = 120  # 'x'
ALIVE2_X_RESP = 118  # 'v'
ALIVE2_RESP = 121  # 'y'
PORT_PLEASE2_REQ = 122  # 'z'
PORT2_RESP = 119  # 'w'
NAMES_REQ = 110  # 'n'
DUMP_REQ = 100  # 'd'
KILL_REQ = 107  # 'k'

NODE_TYPE_NORMAL = 77  # 'M'
NODE_TYPE_HIDDEN = 72  # 'H'
PROTOCOL_TCP = 0

#: OTP's epmd limit on a node name or extra field: 255 characters of UTF-8.
MAX_SYM_LEN = 255 * 4


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node as epmd knows it: what ALIVE2_REQ registers and PORT2_RESP returns."""

    name: str
    port: int
    node_type: int = NODE_TYPE_NORMAL
    protocol: int = PROTOCOL_TCP
    highest_version: int = 6
    lowest_version: int = 5
    extra: bytes = b""

    def body(self) -> bytes:
        """The fields from ``port`` to ``extra`` as they appear on the wire."""
        name = self.name.encode("utf-8")
        return (
            struct.pack(
                ">HBBHHH",
                self.port,
                self.node_type,
                self.protocol,
                self.highest_version,
                self.lowest_version,
                len(name),
            )
            + name
            + struct.pack(">H", len(self.extra))
            + self.extra
        )


@dataclass(frozen=True, slots=True)
class Alive2Response:
    """epmd's answer to ALIVE2_REQ. ``result`` 0 means registered."""

    result: int
    creation: int
    extended: bool  # True for ALIVE2_X_RESP (32-bit creation)


@dataclass(frozen=True, slots=True)
class Port2Response:
    """epmd's answer to PORT_PLEASE2_REQ; ``node`` is ``None`` unless ``result`` is 0."""

    result: int
    node: NodeInfo | None


# --------------------------------------------------------------------- client side


def _packet(body: bytes) -> bytes:
    if len(body) > 0xFFFF:
        raise ValueError("epmd request too long")
    return struct.pack(">H", len(body)) + body


def encode_alive2_req(node: NodeInfo) -> bytes:
    """ALIVE2_REQ registering ``node`` (the connection must then stay open)."""
    return _packet(bytes([ALIVE2_REQ]) + node.body())


def encode_port_please2_req(name: str) -> bytes:
    """PORT_PLEASE2_REQ for the alive part ``name`` (no ``@host``)."""
    return _packet(bytes([PORT_PLEASE2_REQ]) + name.encode("utf-8"))


def encode_names_req() -> bytes:
    """NAMES_REQ."""
    return _packet(bytes([NAMES_REQ]))


def encode_dump_req() -> bytes:
    """DUMP_REQ (epmd answers only local peers)."""
    return _packet(bytes([DUMP_REQ]))


def encode_kill_req() -> bytes:
    """KILL_REQ (epmd answers only local peers)."""
    return _packet(bytes([KILL_REQ]))


def read_alive2_resp(data: bytes) -> Alive2Response | None:
    """Parse ALIVE2_X_RESP or ALIVE2_RESP from the start of ``data``; ``None`` if short."""
    if not data:
        return None
    tag = data[0]
    if tag == ALIVE2_X_RESP:
        if len(data) < 6:
            return None
        result, creation = struct.unpack_from(">BI", data, 1)
        return Alive2Response(result, creation, True)
    if tag == ALIVE2_RESP:
        if len(data) < 4:
            return None
        result, creation = struct.unpack_from(">BH", data, 1)
        return Alive2Response(result, creation, False)
    raise ProtocolError(f"epmd sent {tag} instead of an ALIVE2 response")


def _read_node_body(data: bytes, offset: int) -> tuple[NodeInfo, int] | None:
    """Parse the NodeInfo fields at ``offset``: ``(node, end)`` or ``None`` if short."""
    if len(data) < offset + 10:
        return None
    port, node_type, protocol, high, low, nlen = struct.unpack_from(">HBBHHH", data, offset)
    pos = offset + 10
    if len(data) < pos + nlen + 2:
        return None
    raw_name = data[pos : pos + nlen]
    pos += nlen
    (elen,) = struct.unpack_from(">H", data, pos)
    pos += 2
    if len(data) < pos + elen:
        return None
    extra = bytes(data[pos : pos + elen])
    try:
        name = raw_name.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"node name is not UTF-8: {raw_name!r}") from exc
    return NodeInfo(name, port, node_type, protocol, high, low, extra), pos + elen


def read_port2_resp(data: bytes) -> Port2Response | None:
    """Parse PORT2_RESP from the start of ``data``; ``None`` while incomplete."""
    if len(data) < 2:
        return None
    if data[0] != PORT2_RESP:
        raise ProtocolError(f"epmd sent {data[0]} instead of PORT2_RESP")
    result = data[1]
    if result != 0:
        return Port2Response(result, None)
    parsed = _read_node_body(data, 2)
    if parsed is None:
        return None
    return Port2Response(0, parsed[0])


_NAME_LINE = re.compile(rb"name (\S+) at port (\d+)")


def read_names_resp(data: bytes) -> tuple[int, list[tuple[str, int]]]:
    """Parse a whole NAMES reply (read until epmd closed): ``(epmd_port, [(name, port)])``.

    Lines that do not parse are skipped, as ``erl_epmd`` does.
    """
    if len(data) < 4:
        raise ProtocolError("NAMES reply shorter than its 4-byte epmd port")
    (epmd_port,) = struct.unpack_from(">I", data, 0)
    names = []
    for line in bytes(data[4:]).split(b"\n")[:-1]:
        match = _NAME_LINE.fullmatch(line)
        if match:
            names.append((match.group(1).decode("utf-8", "replace"), int(match.group(2))))
    return epmd_port, names


def read_kill_resp(data: bytes) -> bool | None:
    """``True`` for ``OK``, ``False`` for ``NO``, ``None`` while incomplete."""
    if len(data) < 2:
        return None
    if data[:2] == b"OK":
        return True
    if data[:2] == b"NO":
        return False
    raise ProtocolError(f"unexpected KILL reply {bytes(data[:2])!r}")


# ------------------------------------------------------- what the server parses and sends


def parse_alive2_req(body: bytes) -> NodeInfo:
    """Parse an ALIVE2_REQ packet body (tag byte first, length prefix removed)."""
    if len(body) <= 13 or body[0] != ALIVE2_REQ:
        raise ProtocolError("ALIVE2_REQ too short")
    (nlen,) = struct.unpack_from(">H", body, 9)
    if nlen + 13 > len(body):
        raise ProtocolError("ALIVE2_REQ node name length beyond the packet")
    (elen,) = struct.unpack_from(">H", body, 11 + nlen)
    if elen + nlen + 13 > len(body):
        raise ProtocolError("ALIVE2_REQ extra length beyond the packet")
    if b"\0" in body[11 : 11 + nlen]:
        raise ProtocolError("ALIVE2_REQ node name contains NUL")
    parsed = _read_node_body(body, 1)
    if parsed is None:  # pragma: no cover - lengths were checked above
        raise ProtocolError("ALIVE2_REQ truncated")
    return parsed[0]


def encode_alive2_resp(result: int, creation: int, *, extended: bool = True) -> bytes:
    """ALIVE2_X_RESP (``extended``) or the old ALIVE2_RESP with a 16-bit creation."""
    if extended:
        return struct.pack(">BBI", ALIVE2_X_RESP, result, creation & 0xFFFFFFFF)
    return struct.pack(">BBH", ALIVE2_RESP, result, creation & 0xFFFF)


def encode_port2_resp(node: NodeInfo | None) -> bytes:
    """PORT2_RESP for a known ``node``, or the 2-byte error reply for ``None``."""
    if node is None:
        return bytes([PORT2_RESP, 1])
    return bytes([PORT2_RESP, 0]) + node.body()


def encode_names_resp(epmd_port: int, nodes: list[NodeInfo]) -> bytes:
    """The NAMES reply: epmd's port, then one ``name N at port P`` line per node."""
    lines = b"".join(b"name " + n.name.encode("utf-8") + b" at port %d\n" % n.port for n in nodes)
    return struct.pack(">I", epmd_port) + lines
