"""Decoding what OTP decodes, rejecting what it rejects: ``etf_decode.jsonl`` and more.

``etf_decode.jsonl`` holds hand-made inputs and what OTP 25's ``binary_to_term/1``
did with each. ``OTP25_OBSERVED`` below adds corner cases of the same kind; each
expectation was observed on OTP 25.2.3 (erts 13.1.5): ``binary_to_term`` of the
input, then ``term_to_binary(T, [{minor_version, 2}])`` of the result, or
``badarg``.
"""

from __future__ import annotations

import struct
import zlib

import pytest

from pyekka.term.decode import binary_to_term
from pyekka.term.encode import term_to_binary
from pyekka.term.errors import DecodeError
from pyekka.term.types import exact_equal
from tests.vectors import from_typed, records, requires_vectors


@requires_vectors
@pytest.mark.parametrize("rec", records("etf_decode"))
def test_etf_decode_record(rec: dict) -> None:
    data = bytes.fromhex(rec["input"])
    if not rec["ok"]:
        with pytest.raises(DecodeError) as excinfo:
            binary_to_term(data)
        assert 0 <= excinfo.value.offset <= len(data)
        return
    got = binary_to_term(data)
    assert exact_equal(got, from_typed(rec["term"]))
    canonical = term_to_binary(got)
    assert canonical.hex() == rec["etf"]
    assert (canonical == data) == rec["canonical_equals_input"]


# --- corner cases observed on OTP 25 -------------------------------------------------

NODE = "770f656b6b6131403132372e302e302e31"  # 'ekka1@127.0.0.1' as SMALL_ATOM_UTF8_EXT
OK_ATOM = "77026f6b"  # ok
LISTS_MAP = "77056c6973747377036d6170"  # lists, map: module and function of an export


def float_ext(text: bytes, pad: int = 31) -> str:
    """A FLOAT_EXT with ``text`` NUL-padded to ``pad`` bytes."""
    return "63" + text.ljust(pad, b"\0").hex()


def compressed(inner: bytes, *, size: int | None = None, wbits: int = 15) -> str:
    """A COMPRESSED wrapper of ``inner`` declaring ``size`` (default: the true size)."""
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    body = packer.compress(inner) + packer.flush()
    return "50" + struct.pack(">I", len(inner) if size is None else size).hex() + body.hex()


ABC = bytes.fromhex("6b0003616263")  # "abc"
ABC_Z = zlib.compress(ABC)

# A local fun (no free variables) as the VM wrote it; Size field at bytes 1..4.
FUN = (
    "700000004d00802bd97764c59847989f7c9e081bafd00000000a00000000770b67656e5f766563746f7273"
    "610a6204015ecb58770d6e6f6e6f6465406e6f686f7374000000090000000000000000"
)
FUN_PID = "58770d6e6f6e6f6465406e6f686f7374000000090000000000000000"
FUN_OLD_PID = "67770d6e6f6e6f6465406e6f686f73740000000900000000" + "00"  # as PID_EXT
FUN_OLD = "610a6204015ecb"  # OldIndex 10, OldUniq 67198667


def fun_size(hexfun: str, size: int) -> str:
    return hexfun[:2] + struct.pack(">I", size).hex() + hexfun[10:]


OTP25_OBSERVED: list[tuple[str, str, str | None]] = [
    # FLOAT_EXT text: [+-]digits[.,]digits[(e|E)[+-]digits] then a NUL, finite.
    ("float_comma_radix", float_ext(b"1,5"), "463ff8000000000000"),
    ("float_plus_sign", float_ext(b"+1.5"), "463ff8000000000000"),
    ("float_upper_E", float_ext(b"1.5E+01"), "46402e000000000000"),
    ("float_garbage_after_nul", float_ext(b"1.5\0abc"), "463ff8000000000000"),
    ("float_leading_space", float_ext(b" 1.5"), None),
    ("float_no_exponent_digits", float_ext(b"1.5e"), None),
    ("float_no_fraction_digits", float_ext(b"1."), None),
    ("float_overflow", float_ext(b"1.0e400"), None),
    ("float_underflow_is_zero", float_ext(b"1.0e-400"), "460000000000000000"),
    ("float_subnormal", float_ext(b"4.9e-324"), "460000000000000001"),
    # The text is read as a C string: its NUL may lie past the 31 bytes.
    ("float_nul_after_31_bytes", "63" + (b"1." + b"0" * 29).hex() + "00", "463ff0000000000000"),
    ("float_no_nul_after_31_bytes", "63" + (b"1." + b"0" * 29).hex() + "61", None),
    # Atoms.
    ("atom_4_byte_utf8", "7704f09f9880", "7704f09f9880"),
    ("atom_255_chars_1020_bytes", "7603fc" + "f09f9880" * 255, "7603fc" + "f09f9880" * 255),
    ("atom_256_chars_1024_bytes", "760400" + "f09f9880" * 256, None),
    ("atom_small_latin1_255", "73ff" + "61" * 255, "77ff" + "61" * 255),
    ("atom_nul_char", "770100", "770100"),
    # Legacy pids, ports and references.
    (
        "pid_ext_full_32_bit_fields",
        "67" + NODE + "ffffffffffffffff01",
        "58" + NODE + "ffffffffffffffff00000001",
    ),
    (
        "port_ext_full_32_bit_id",
        "66" + NODE + "ffffffff01",
        "78" + NODE + "00000000ffffffff00000001",
    ),
    (
        "v4_port_max_id",
        "78" + NODE + "ffffffffffffffff00000001",
        "78" + NODE + "ffffffffffffffff00000001",
    ),
    ("reference_ext_18_bit_word", "65" + NODE + "0003ffff01", "5a0001" + NODE + "000000010003ffff"),
    ("reference_ext_19_bit_word", "65" + NODE + "0004000001", None),
    ("reference_ext_creation_4", "65" + NODE + "0000000704", None),
    ("new_reference_ext_no_words", "720000" + NODE + "01", "5a0000" + NODE + "00000001"),
    (
        "newer_reference_ext_4_words",
        "5a0004" + NODE + "00000001" + "00000001" * 4,
        "5a0004" + NODE + "00000001" + "00000001" * 4,
    ),
    # Export funs: the arity is any integer term, 0..2**31-1 (OTP 25 mishandles more).
    ("export_arity_256", "71" + LISTS_MAP + "6200000100", "71" + LISTS_MAP + "6200000100"),
    ("export_arity_small_big", "71" + LISTS_MAP + "6e0100ff", "71" + LISTS_MAP + "61ff"),
    ("export_arity_2_31", "71" + LISTS_MAP + "6e0400000080", None),
    ("export_arity_negative", "71" + LISTS_MAP + "62ffffffff", None),
    ("export_arity_atom", "71" + LISTS_MAP + "770161", None),
    ("export_module_integer", "71610177036d61706101", None),
    # Local funs: the Size field is not checked; the creator must be a pid.
    ("fun_size_0", fun_size(FUN, 0), FUN),
    ("fun_size_huge", fun_size(FUN, 0xFFFFFFFF), FUN),
    ("fun_creator_pid_ext", FUN.replace(FUN_PID, FUN_OLD_PID), FUN),
    (
        "fun_old_index_negative",
        FUN.replace(FUN_OLD, "62ffffffff6204015ecb"),
        fun_size(FUN.replace(FUN_OLD, "62ffffffff6204015ecb"), 0x50),
    ),
    ("fun_old_uniq_2_59", FUN.replace(FUN_OLD, "610a6e080000000000000008"), None),
    ("fun_free_var_missing", FUN.replace("0000000a00000000770b", "0000000a00000001770b"), None),
    # Maps: 0.0 and -0.0 are the same key in OTP 25; duplicates anywhere are errors.
    (
        "map_zero_and_negative_zero",
        "7400000002460000000000000000610146800000000000000061" + "02",
        None,
    ),
    ("map_duplicate_nested", "6801740000000261016102610161" + "03", None),
    (
        "map_33_keys_duplicate",
        "74"
        + struct.pack(">I", 34).hex()
        + "".join(f"61{i:02x}61{i:02x}" for i in range(33))
        + "6105"
        + "6109",
        None,
    ),
    # Lists and binaries.
    ("list_zero_length_integer_tail", "6c000000006101", "6101"),
    ("list_zero_length_string_tail", "6c000000006b00026162", "6b00026162"),
    ("bit_binary_empty_with_bits", "4d0000000003", None),
    # COMPRESSED: zlib format only, exactly the declared size, only at the top.
    (
        "compressed_trailing_after_stream",
        "50" + struct.pack(">I", 6).hex() + ABC_Z.hex() + "ff",
        "6b0003616263",
    ),
    ("compressed_inner_trailing_bytes", compressed(bytes.fromhex("6101ff")), "6101"),
    ("compressed_size_too_small", compressed(ABC, size=5), None),
    ("compressed_size_zero", compressed(b"", size=0), None),
    ("compressed_raw_deflate", compressed(ABC, wbits=-15), None),
    ("compressed_gzip", compressed(ABC, wbits=31), None),
    ("compressed_no_checksum", "50" + struct.pack(">I", 6).hex() + ABC_Z[:-4].hex(), None),
    ("compressed_bad_checksum", "50" + struct.pack(">I", 6).hex() + ABC_Z[:-1].hex() + "00", None),
    ("compressed_nested", "680150" + struct.pack(">I", 6).hex() + ABC_Z.hex(), None),
    ("fun_ext_117", "75", None),
]


@pytest.mark.parametrize(
    ("data", "expected"),
    [pytest.param("83" + data, exp, id=name) for name, data, exp in OTP25_OBSERVED],
)
def test_otp25_observed(data: str, expected: str | None) -> None:
    raw = bytes.fromhex(data)
    if expected is None:
        with pytest.raises(DecodeError) as excinfo:
            binary_to_term(raw)
        assert 0 <= excinfo.value.offset <= len(raw)
    else:
        assert term_to_binary(binary_to_term(raw)).hex() == "83" + expected
