"""Erlang terms in Python: the external term format, term order, phash2 and term text.

Pure code: no I/O, no asyncio.
"""

from pyekka.term.decode import binary_to_term, decode_term
from pyekka.term.encode import encode_term, term_to_binary
from pyekka.term.errors import DecodeError, EncodeError, TermSyntaxError
from pyekka.term.order import compare, term_sort_key
from pyekka.term.phash2 import phash2, phash2_32
from pyekka.term.text import format_term, parse_term
from pyekka.term.types import (
    Atom,
    BitString,
    ErlMap,
    ExportFun,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
)

__all__ = [
    "Atom",
    "BitString",
    "DecodeError",
    "EncodeError",
    "ErlMap",
    "ExportFun",
    "Fun",
    "ImproperList",
    "Pid",
    "Port",
    "Reference",
    "TermSyntaxError",
    "binary_to_term",
    "compare",
    "decode_term",
    "encode_term",
    "format_term",
    "parse_term",
    "phash2",
    "phash2_32",
    "term_sort_key",
    "term_to_binary",
]
