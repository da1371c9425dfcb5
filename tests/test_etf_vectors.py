"""The ETF codec against ``etf.jsonl`` (and ekka's multicast packets), byte for byte.

Every expected byte string was written by a real OTP 25 VM. Decoding must give the
record's typed term; encoding (canonical ``minor_version=2``, OTP 25's default
``minor_version=1`` and text-float ``minor_version=0``) must give the VM's bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pyekka.term.decode import binary_to_term
from pyekka.term.encode import term_to_binary
from pyekka.term.tags import COMPRESSED
from pyekka.term.types import exact_equal
from tests.vectors import from_typed, records, requires_vectors

pytestmark = requires_vectors


def _select(params: list, keep: Callable[[dict], bool]) -> list:
    """The records for which ``keep`` holds (the skip marker when vectors are absent)."""
    return [p for p in params if p.values[0] is None or keep(p.values[0])]


ETF = records("etf")
ENCODABLE = _select(ETF, lambda r: not r.get("decode_only"))
# Records the VM compressed, and the hand-picked ones (most of which it did not).
COMPRESSIBLE = _select(ETF, lambda r: "etf_compressed" in r or r["id"].startswith("edge-"))
MCAST = records("ekka", type="mcast")


@pytest.mark.parametrize("rec", ETF)
def test_decode(rec: dict) -> None:
    term = from_typed(rec["term"])
    for field in ("etf", "etf_default", "etf_minor0", "etf_compressed"):
        if field in rec:
            got = binary_to_term(bytes.fromhex(rec[field]))
            assert exact_equal(got, term), f"{field} decodes to {got!r}"


def assert_encodes_to(term: Any, expected: bytes, **opts: Any) -> None:
    assert term_to_binary(term, **opts).hex() == expected.hex()


@pytest.mark.parametrize("rec", ENCODABLE)
def test_encode(rec: dict) -> None:
    """Byte for byte, maps of over 32 keys included: in OTP 25's hash-trie order when
    the keys alone fix it, else (atom keys) in the order of the typed pairs, which is
    the VM's wire order."""
    etf = bytes.fromhex(rec["etf"])
    term = from_typed(rec["term"])
    # Canonical, both from the decoded term and from the term built from the JSON.
    assert_encodes_to(binary_to_term(etf), etf)
    assert_encodes_to(term, etf)
    # OTP 25's default (latin-1 ATOM_EXT) and the text floats of minor version 0.
    assert_encodes_to(term, bytes.fromhex(rec["etf_default"]), minor_version=1)
    if "etf_minor0" in rec:
        assert_encodes_to(term, bytes.fromhex(rec["etf_minor0"]), minor_version=0)


@pytest.mark.parametrize("rec", ETF)
def test_decode_encode_gives_back_the_bytes(rec: dict) -> None:
    """Every record, ``decode_only`` ones too: a decoded map keeps its wire order where
    that order is the VM's own (pid or fun keys), and local funs encode exactly."""
    etf = bytes.fromhex(rec["etf"])
    assert_encodes_to(binary_to_term(etf), etf)


@pytest.mark.parametrize("rec", COMPRESSIBLE)
def test_compressed_round_trip(rec: dict) -> None:
    term = from_typed(rec["term"])
    plain = term_to_binary(term)
    packed = term_to_binary(term, compressed=True)
    assert exact_equal(binary_to_term(packed), term)
    # Like the VM: compressed only when that is not larger, else the plain form.
    if packed[1] == COMPRESSED:
        assert len(packed) <= len(plain)
        assert int.from_bytes(packed[2:6], "big") == len(plain) - 1
    else:
        assert packed == plain


@pytest.mark.parametrize("rec", MCAST)
def test_ekka_mcast_packet(rec: dict) -> None:
    term = from_typed(rec["term"])
    otp25, otp26 = bytes.fromhex(rec["etf"]), bytes.fromhex(rec["etf_v2"])
    assert exact_equal(binary_to_term(otp25), term)
    assert exact_equal(binary_to_term(otp26), term)
    assert term_to_binary(term, minor_version=1) == otp25
    assert term_to_binary(term) == otp26
