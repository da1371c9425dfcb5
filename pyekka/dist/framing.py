"""Distribution frames after the handshake: length framing, ticks, headers, fragments.

Every frame is ``Length:32`` followed by ``Length`` bytes; a zero length is a tick.
The body is one of:

* pass-through (``112``): ``112, 131 Control, [131 Payload]`` -- what peers send
  when neither DIST_HDR_ATOM_CACHE nor FRAGMENTS was negotiated;
* distribution header (``131, 68``): ``131, 68, NumberOfAtomCacheRefs:8,
  [Flags, AtomCacheRefs], Control, [Payload]``; the terms have no 131 byte and may
  use ``ATOM_CACHE_REF`` (82, an index into this header's reference list);
* fragmented (``131, 69``): the same header preceded by ``SequenceId:64,
  FragmentId:64``, then the first part of the data; continued by frames
  ``131, 70, SequenceId:64, FragmentId:64, Data`` with fragment ids counting down
  to 1. Sequences from different senders may interleave.

Atom cache references: for each reference a half-byte of flags (``NewCacheEntry``
bit 3, ``SegmentIndex`` bits 0-2; even references in the low half of a byte),
then one more half-byte whose bit 0 says whether atom lengths take 2 bytes. Each
reference is ``InternalSegmentIndex:8`` and, for a new entry, the atom's length
and UTF-8 text. The cache slot is ``SegmentIndex * 256 + InternalSegmentIndex``;
the receiving side keeps 2048 slots per connection and direction.

:class:`FrameDecoder` turns received bytes into :class:`Tick` and :class:`Frame`
(control term, payload term or ``None``). Malformed or oversized input raises
:class:`~pyekka.dist.errors.ProtocolError`; the connection must then be closed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from pyekka.dist.errors import ProtocolError
from pyekka.dist.ops import OP_NAMES, PAYLOAD_OPS
from pyekka.term import DecodeError, decode_term, encode_term, term_to_binary
from pyekka.term.types import Atom

__all__ = [
    "ATOM_CACHE_SIZE",
    "DEFAULT_MAX_FRAGMENTED_BYTES",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_SEQUENCES",
    "DIST_FRAG_CONT",
    "DIST_FRAG_HEADER",
    "DIST_HEADER",
    "PASS_THROUGH",
    "TICK",
    "AtomCache",
    "Frame",
    "FrameDecoder",
    "Tick",
    "encode_header_frame",
    "encode_pass_through",
]

PASS_THROUGH = 112
VERSION_MAGIC = 131
DIST_HEADER = 68
DIST_FRAG_HEADER = 69
DIST_FRAG_CONT = 70
ATOM_CACHE_SIZE = 2048

TICK = b"\0\0\0\0"
"""A tick: a frame of length zero."""

DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024
DEFAULT_MAX_FRAGMENTED_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_SEQUENCES = 1024

_LONG_ATOMS = 0x1
_NEW_ENTRY = 0x8


@dataclass(frozen=True, slots=True)
class Tick:
    """The peer ticked (a zero-length frame)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One whole distribution message: the control tuple and the payload term.

    ``payload`` is ``None`` when the operation carries none (decoded terms are
    never ``None``).
    """

    control: Any
    payload: Any = None


class AtomCache:
    """The receiving side of one connection's atom cache (2048 slots)."""

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: list[Atom | None] = [None] * ATOM_CACHE_SIZE

    def __getitem__(self, index: int) -> Atom:
        atom = self._slots[index]
        if atom is None:
            raise ProtocolError(f"atom cache slot {index} used before it was set")
        return atom

    def __setitem__(self, index: int, atom: Atom) -> None:
        self._slots[index] = atom


def _parse_atom_cache_refs(body: bytes, pos: int, cache: AtomCache) -> tuple[list[Atom], int]:
    """Read NumberOfAtomCacheRefs, Flags and AtomCacheRefs at ``pos``; update ``cache``.

    Returns the reference list of this header and the position after it.
    """
    if pos >= len(body):
        raise ProtocolError("distribution header truncated before the atom count")
    count = body[pos]
    pos += 1
    if count == 0:
        return [], pos
    flag_bytes = count // 2 + 1
    if pos + flag_bytes > len(body):
        raise ProtocolError("distribution header truncated in the atom cache flags")
    flags = body[pos : pos + flag_bytes]
    pos += flag_bytes
    long_atoms = bool((flags[count // 2] >> (4 * (count % 2))) & _LONG_ATOMS)
    refs: list[Atom] = []
    for i in range(count):
        nibble = (flags[i // 2] >> (4 * (i % 2))) & 0xF
        if pos >= len(body):
            raise ProtocolError("distribution header truncated in the atom cache refs")
        index = ((nibble & 0x7) << 8) | body[pos]
        pos += 1
        if nibble & _NEW_ENTRY:
            size_len = 2 if long_atoms else 1
            if pos + size_len > len(body):
                raise ProtocolError("distribution header truncated in an atom length")
            length = int.from_bytes(body[pos : pos + size_len], "big")
            pos += size_len
            if pos + length > len(body):
                raise ProtocolError("distribution header truncated in an atom's text")
            try:
                text = body[pos : pos + length].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ProtocolError("atom in the distribution header is not UTF-8") from exc
            if len(text) > 255:
                raise ProtocolError("atom in the distribution header is over 255 characters")
            pos += length
            atom = Atom(text)
            cache[index] = atom
        else:
            atom = cache[index]
        refs.append(atom)
    return refs, pos


def _decode_terms(body: bytes, pos: int, *, versioned: bool, atoms: list[Atom] | None) -> Frame:
    """Decode the control term and, if its op has one, the payload term."""
    control, pos = _decode_one(body, pos, versioned=versioned, atoms=atoms, what="control")
    op = control[0] if type(control) is tuple and control and type(control[0]) is int else None
    if op is None:
        raise ProtocolError(f"control message is not a tuple with an op code: {control!r}")
    payload = None
    if op in PAYLOAD_OPS:
        if pos >= len(body):
            raise ProtocolError(f"{OP_NAMES.get(op, op)} frame has no payload term")
        payload, pos = _decode_one(body, pos, versioned=versioned, atoms=atoms, what="payload")
    if pos != len(body):
        raise ProtocolError(f"{len(body) - pos} unexpected bytes after the message")
    return Frame(control, payload)


def _decode_one(
    body: bytes, pos: int, *, versioned: bool, atoms: list[Atom] | None, what: str
) -> tuple[Any, int]:
    if versioned:
        if pos >= len(body) or body[pos] != VERSION_MAGIC:
            raise ProtocolError(f"{what} term does not start with the version byte 131")
        pos += 1
    elif pos < len(body) and body[pos] == VERSION_MAGIC:
        raise ProtocolError(f"{what} term after a distribution header must not have 131")
    try:
        return decode_term(body, pos, atom_cache=atoms)
    except DecodeError as exc:
        raise ProtocolError(f"bad {what} term: {exc}") from exc


@dataclass(slots=True)
class _Sequence:
    atoms: list[Atom]
    next_fragment: int
    data: bytearray


class FrameDecoder:
    """Received bytes -> :class:`Tick` and :class:`Frame` events, sans I/O.

    Holds the connection's receive-side atom cache and the fragmented messages
    being reassembled. All of pass-through, header and fragment frames are
    accepted whatever was negotiated (OTP only ever sends what was).

    ``max_frame_size`` bounds one frame's length field; ``max_fragmented_bytes``
    the bytes buffered for all unfinished fragmented messages together;
    ``max_sequences`` how many may be unfinished at once.
    """

    def __init__(
        self,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_fragmented_bytes: int = DEFAULT_MAX_FRAGMENTED_BYTES,
        max_sequences: int = DEFAULT_MAX_SEQUENCES,
    ) -> None:
        self.max_frame_size = max_frame_size
        self.max_fragmented_bytes = max_fragmented_bytes
        self.max_sequences = max_sequences
        self.atom_cache = AtomCache()
        self._buf = bytearray()
        self._sequences: dict[int, _Sequence] = {}
        self._buffered = 0

    @property
    def pending_sequences(self) -> int:
        """How many fragmented messages are partly received."""
        return len(self._sequences)

    def receive_data(self, data: bytes) -> list[Tick | Frame]:
        """Feed bytes from the peer; returns every event completed by them, in order."""
        self._buf += data
        events: list[Tick | Frame] = []
        while len(self._buf) >= 4:
            (size,) = struct.unpack_from(">I", self._buf, 0)
            if size > self.max_frame_size:
                raise ProtocolError(
                    f"frame of {size} bytes exceeds the limit of {self.max_frame_size}"
                )
            if len(self._buf) < 4 + size:
                break
            body = bytes(self._buf[4 : 4 + size])
            del self._buf[: 4 + size]
            if not body:
                events.append(Tick())
                continue
            frame = self.decode_frame(body)
            if frame is not None:
                events.append(frame)
        return events

    def decode_frame(self, body: bytes) -> Frame | None:
        """Decode one frame body (without its length); ``None`` if it is an unfinished
        fragment."""
        if body[0] == PASS_THROUGH:
            return _decode_terms(body, 1, versioned=True, atoms=None)
        if body[0] != VERSION_MAGIC or len(body) < 2:
            raise ProtocolError(f"frame starts with {body[0]}, not 112 or 131")
        kind = body[1]
        if kind == DIST_HEADER:
            atoms, pos = _parse_atom_cache_refs(body, 2, self.atom_cache)
            return _decode_terms(body, pos, versioned=False, atoms=atoms)
        if kind == DIST_FRAG_HEADER:
            return self._fragment_header(body)
        if kind == DIST_FRAG_CONT:
            return self._fragment_cont(body)
        raise ProtocolError(f"unknown distribution header tag {kind}")

    def _ids(self, body: bytes) -> tuple[int, int]:
        if len(body) < 18:
            raise ProtocolError("fragment frame shorter than its sequence and fragment ids")
        seq_id, frag_id = struct.unpack_from(">QQ", body, 2)
        if frag_id == 0:
            raise ProtocolError("fragment id 0")
        return seq_id, frag_id

    def _fragment_header(self, body: bytes) -> Frame | None:
        seq_id, frag_id = self._ids(body)
        atoms, pos = _parse_atom_cache_refs(body, 18, self.atom_cache)
        if seq_id == 0 or frag_id == 1:
            # Sequence id 0 means "not fragmented" to OTP, as does a single fragment.
            if seq_id in self._sequences:
                raise ProtocolError(f"fragment sequence {seq_id} started twice")
            return _decode_terms(body, pos, versioned=False, atoms=atoms)
        if seq_id in self._sequences:
            raise ProtocolError(f"fragment sequence {seq_id} started twice")
        if len(self._sequences) >= self.max_sequences:
            raise ProtocolError(f"more than {self.max_sequences} fragmented messages at once")
        data = bytearray(body[pos:])
        self._account(len(data))
        self._sequences[seq_id] = _Sequence(atoms, frag_id - 1, data)
        return None

    def _fragment_cont(self, body: bytes) -> Frame | None:
        seq_id, frag_id = self._ids(body)
        seq = self._sequences.get(seq_id)
        if seq is None:
            raise ProtocolError(f"continuation of unknown fragment sequence {seq_id}")
        if frag_id != seq.next_fragment:
            raise ProtocolError(
                f"fragment {frag_id} of sequence {seq_id} out of order "
                f"(expected {seq.next_fragment})"
            )
        self._account(len(body) - 18)
        seq.data += body[18:]
        if frag_id > 1:
            seq.next_fragment -= 1
            return None
        del self._sequences[seq_id]
        self._buffered -= len(seq.data)
        return _decode_terms(bytes(seq.data), 0, versioned=False, atoms=seq.atoms)

    def _account(self, size: int) -> None:
        self._buffered += size
        if self._buffered > self.max_fragmented_bytes:
            raise ProtocolError(
                f"fragmented messages exceed {self.max_fragmented_bytes} buffered bytes"
            )


# ------------------------------------------------------------------------ encoding


def _length_prefixed(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def encode_pass_through(control: tuple, *payload: Any) -> bytes:
    """A pass-through frame: ``Length, 112, 131 Control[, 131 Payload]``.

    Give the payload term as the second argument when the operation carries one.
    """
    if len(payload) > 1:
        raise TypeError("at most one payload term")
    parts = [bytes([PASS_THROUGH]), term_to_binary(control)]
    parts.extend(term_to_binary(p) for p in payload)
    return _length_prefixed(b"".join(parts))


def encode_header_frame(control: tuple, *payload: Any) -> bytes:
    """A distribution header frame without atom cache references:
    ``Length, 131, 68, 0, Control[, Payload]`` (terms without the 131 byte).

    This is the form to send once DIST_HDR_ATOM_CACHE or FRAGMENTS is negotiated.
    """
    if len(payload) > 1:
        raise TypeError("at most one payload term")
    parts = [bytes([VERSION_MAGIC, DIST_HEADER, 0]), encode_term(control)]
    parts.extend(encode_term(p) for p in payload)
    return _length_prefixed(b"".join(parts))
