"""Tag bytes of the external term format (ETF), as named in OTP's ``erl_ext_dist``.

One place for every wire constant of the term codec. Distribution-only tags
(``DIST_HEADER``, ``ATOM_CACHE_REF``, ...) are listed too so the decoder can name
them in its errors.
"""

from __future__ import annotations

VERSION_MAGIC = 131
"""The first byte of every ``term_to_binary`` result."""

COMPRESSED = 80
"""``80 | UncompressedSize:32 | zlib stream``; only right after the version byte."""

DIST_HEADER = 68
DIST_FRAG_HEADER = 69
"""Distribution headers: after ``VERSION_MAGIC`` they start a frame, never a term."""

NEW_FLOAT_EXT = 70
BIT_BINARY_EXT = 77
ATOM_CACHE_REF = 82
NEW_PID_EXT = 88
NEW_PORT_EXT = 89
NEWER_REFERENCE_EXT = 90
SMALL_INTEGER_EXT = 97
INTEGER_EXT = 98
FLOAT_EXT = 99
ATOM_EXT = 100
REFERENCE_EXT = 101
PORT_EXT = 102
PID_EXT = 103
SMALL_TUPLE_EXT = 104
LARGE_TUPLE_EXT = 105
NIL_EXT = 106
STRING_EXT = 107
LIST_EXT = 108
BINARY_EXT = 109
SMALL_BIG_EXT = 110
LARGE_BIG_EXT = 111
NEW_FUN_EXT = 112
EXPORT_EXT = 113
NEW_REFERENCE_EXT = 114
SMALL_ATOM_EXT = 115
MAP_EXT = 116
FUN_EXT = 117
ATOM_UTF8_EXT = 118
SMALL_ATOM_UTF8_EXT = 119
V4_PORT_EXT = 120
LOCAL_EXT = 121

FLOAT_EXT_SIZE = 31
"""Bytes of NUL-padded text after a ``FLOAT_EXT`` tag."""

MAX_ATOM_CHARS = 255
"""Longest atom, in characters (OTP counts characters, not bytes)."""

MAX_ATOM_UTF8_BYTES = 4 * MAX_ATOM_CHARS
"""Longest UTF-8 form of an atom."""

MAX_STRING_EXT_LEN = 0xFFFF
"""Longest list that ``STRING_EXT`` can hold."""

MAX_REF_WORDS = 5
"""Most id words a reference may carry (OTP 25: ``ERTS_MAX_REF_NUMBERS``)."""

MAX_OLD_CREATION = 3
"""Largest creation the legacy 8-bit creation fields may hold."""

MAX_OLD_REF_WORD0 = (1 << 18) - 1
"""Largest first id word of a ``REFERENCE_EXT`` / ``NEW_REFERENCE_EXT``."""

NEW_PORT_EXT_LIMIT = 1 << 28
"""Port ids at or above this are written as ``V4_PORT_EXT``."""

SMALL_MAP_LIMIT = 32
"""Maps with at most this many keys are flatmaps (sorted keys on the wire)."""

TAG_NAMES: dict[int, str] = {
    COMPRESSED: "COMPRESSED",
    DIST_HEADER: "DIST_HEADER",
    DIST_FRAG_HEADER: "DIST_FRAG_HEADER",
    NEW_FLOAT_EXT: "NEW_FLOAT_EXT",
    BIT_BINARY_EXT: "BIT_BINARY_EXT",
    ATOM_CACHE_REF: "ATOM_CACHE_REF",
    NEW_PID_EXT: "NEW_PID_EXT",
    NEW_PORT_EXT: "NEW_PORT_EXT",
    NEWER_REFERENCE_EXT: "NEWER_REFERENCE_EXT",
    SMALL_INTEGER_EXT: "SMALL_INTEGER_EXT",
    INTEGER_EXT: "INTEGER_EXT",
    FLOAT_EXT: "FLOAT_EXT",
    ATOM_EXT: "ATOM_EXT",
    REFERENCE_EXT: "REFERENCE_EXT",
    PORT_EXT: "PORT_EXT",
    PID_EXT: "PID_EXT",
    SMALL_TUPLE_EXT: "SMALL_TUPLE_EXT",
    LARGE_TUPLE_EXT: "LARGE_TUPLE_EXT",
    NIL_EXT: "NIL_EXT",
    STRING_EXT: "STRING_EXT",
    LIST_EXT: "LIST_EXT",
    BINARY_EXT: "BINARY_EXT",
    SMALL_BIG_EXT: "SMALL_BIG_EXT",
    LARGE_BIG_EXT: "LARGE_BIG_EXT",
    NEW_FUN_EXT: "NEW_FUN_EXT",
    EXPORT_EXT: "EXPORT_EXT",
    NEW_REFERENCE_EXT: "NEW_REFERENCE_EXT",
    SMALL_ATOM_EXT: "SMALL_ATOM_EXT",
    MAP_EXT: "MAP_EXT",
    FUN_EXT: "FUN_EXT",
    ATOM_UTF8_EXT: "ATOM_UTF8_EXT",
    SMALL_ATOM_UTF8_EXT: "SMALL_ATOM_UTF8_EXT",
    V4_PORT_EXT: "V4_PORT_EXT",
    LOCAL_EXT: "LOCAL_EXT",
}
"""Names of the tags, for messages."""


def tag_name(tag: int) -> str:
    """The name of a tag byte, or ``tag N`` when it has none."""
    return TAG_NAMES.get(tag, f"tag {tag}")
