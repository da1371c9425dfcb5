"""ekka_guid's layout, NPid derivation and sequence (spec 3.2), and pyekka's guid policy.

The NPid is checked against the spec's observed example; with ``PYEKKA_EKKA_EBIN``
pointing at a genuine ekka build, also against ``ekka_guid:gen/0`` in a real VM.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyekka.cluster.guid import (
    DEFER_BIT,
    MAX_SEQ,
    GuidGenerator,
    GuidParts,
    GuidPolicy,
    from_hexstr,
    guid_bytes,
    is_deferred,
    npid,
    to_hexstr,
)
from pyekka.term import Atom, Pid, binary_to_term
from pyekka.testing.otp import OtpRuntime, clean_env

EMQX1 = Atom("emqx1@127.0.0.1")
# Spec 3.1/3.2 (run): membership process <0.145.0>, creation 3.
SPEC_GUID = bytes.fromhex("000660D19D75EC0670F1000000910000")


def test_npid_of_the_spec_example() -> None:
    """NodeByte1 0x70, NodeByte2 0xF2 ^ 3, pid bytes 00 00 00 91."""
    assert npid(EMQX1, Pid(EMQX1, 145, 0, 3)) == 0x70F100000091
    assert npid("emqx1@127.0.0.1", Pid(EMQX1, 145, 0, 3)) == 0x70F100000091


def test_spec_guid_fields() -> None:
    parts = GuidParts.from_bytes(SPEC_GUID)
    assert parts == GuidParts(0x000660D19D75EC06, 0x70F100000091, 0)
    assert parts.to_bytes() == SPEC_GUID


def test_generator_reproduces_the_spec_guid() -> None:
    gen = GuidGenerator(EMQX1, Pid(EMQX1, 145, 0, 3), GuidPolicy.GENUINE)
    assert gen.next(0x000660D19D75EC06) == SPEC_GUID


@pytest.mark.parametrize(
    ("ident", "serial", "low32"),
    [
        # P1 = I1^S4, P2 = I2^S3, P3 = I3^S2, P4 = I4^S1
        (0x01020304, 0x10203040, 0x41322314),
        (0xAABBCCDD, 0, 0xAABBCCDD),
        (0, 0xAABBCCDD, 0xDDCCBBAA),
        (145, 0, 0x00000091),
    ],
)
def test_pid_bytes_fold_id_with_reversed_serial(ident: int, serial: int, low32: int) -> None:
    value = npid(EMQX1, Pid(EMQX1, ident, serial, 3))
    assert value & 0xFFFFFFFF == low32
    assert value >> 32 == 0x70F1  # the node bytes do not depend on id or serial


def test_creation_folds_into_node_byte2() -> None:
    """Four creation bytes XOR together; the old PID_EXT has one."""
    base = npid(EMQX1, Pid(EMQX1, 145, 0, 0))
    assert npid(EMQX1, Pid(EMQX1, 145, 0, 0x01020304)) == base ^ ((1 ^ 2 ^ 3 ^ 4) << 32)
    assert npid(EMQX1, Pid(EMQX1, 145, 0, 3), legacy_pid_ext=True) == base ^ (3 << 32)
    # the old form keeps only the low byte of the creation
    assert npid(EMQX1, Pid(EMQX1, 145, 0, 0x0103), legacy_pid_ext=True) == base ^ (3 << 32)


def test_sequence_starts_at_zero_and_wraps_after_65535() -> None:
    gen = GuidGenerator(EMQX1, Pid(EMQX1, 1, 0, 1), GuidPolicy.GENUINE)
    seqs = [GuidParts.from_bytes(gen.next(1000 + i)).seq for i in range(MAX_SEQ + 3)]
    assert seqs[:3] == [0, 1, 2]
    assert seqs[MAX_SEQ - 1 :] == [MAX_SEQ - 1, MAX_SEQ, 0, 1]


def test_every_guid_takes_the_time_given() -> None:
    gen = GuidGenerator(EMQX1, Pid(EMQX1, 1, 0, 1), GuidPolicy.GENUINE)
    assert [GuidParts.from_bytes(gen.next(t)).timestamp for t in (5, 7, 7)] == [5, 7, 7]


def test_defer_policy_sets_the_top_bit() -> None:
    gen = GuidGenerator(EMQX1, Pid(EMQX1, 1, 0, 1))
    assert gen.policy is GuidPolicy.DEFER
    guid = gen.next(1_700_000_000_000_000)
    assert GuidParts.from_bytes(guid).timestamp == DEFER_BIT | 1_700_000_000_000_000
    assert is_deferred(guid)
    assert not is_deferred(SPEC_GUID)
    assert not is_deferred(None)
    assert not is_deferred(b"\xff")


@given(
    genuine_us=st.integers(0, DEFER_BIT - 1),
    python_us=st.integers(0, DEFER_BIT - 1),
    npids=st.tuples(st.integers(0, (1 << 48) - 1), st.integers(0, (1 << 48) - 1)),
    seqs=st.tuples(st.integers(0, MAX_SEQ), st.integers(0, MAX_SEQ)),
)
def test_deferred_guids_are_younger_than_every_genuine_one(
    genuine_us: int, python_us: int, npids: tuple[int, int], seqs: tuple[int, int]
) -> None:
    """Byte order (= Erlang binary order) puts every DEFER guid after every genuine one."""
    genuine = guid_bytes(GuidPolicy.GENUINE.time_field(genuine_us), npids[0], seqs[0])
    deferred = guid_bytes(GuidPolicy.DEFER.time_field(python_us), npids[1], seqs[1])
    assert genuine < deferred


@given(st.integers(0, DEFER_BIT - 1), st.integers(0, DEFER_BIT - 1))
def test_defer_keeps_chronological_order(t1: int, t2: int) -> None:
    g1 = guid_bytes(GuidPolicy.DEFER.time_field(t1), 0xFFFFFFFFFFFF, MAX_SEQ)
    g2 = guid_bytes(GuidPolicy.DEFER.time_field(t2), 0, 0)
    if t1 < t2:
        assert g1 < g2


@given(st.integers(0, (1 << 128) - 1))
def test_hexstr_round_trip(value: int) -> None:
    guid = value.to_bytes(16, "big")
    text = to_hexstr(guid)
    assert text == text.upper() and (text == "0" or not text.startswith("0"))
    assert from_hexstr(text) == guid
    assert from_hexstr(text.lower()) == guid


@pytest.mark.parametrize("bad", ["", "0x10", "1_0", "g", "1" * 33])
def test_from_hexstr_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        from_hexstr(bad)


@pytest.mark.parametrize("fields", [(-1, 0, 0), (1 << 64, 0, 0), (0, 1 << 48, 0), (0, 0, 1 << 16)])
def test_guid_bytes_rejects_out_of_range(fields: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError):
        guid_bytes(*fields)


def test_time_field_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        GuidPolicy.DEFER.time_field(DEFER_BIT)


def test_from_bytes_rejects_other_sizes() -> None:
    with pytest.raises(ValueError):
        GuidParts.from_bytes(bytes(15))


# -- against genuine ekka_guid, when a genuine ekka build is available --

ENV_EKKA_EBIN = "PYEKKA_EKKA_EBIN"


def _ekka_ebin() -> Path:
    ebin = os.environ.get(ENV_EKKA_EBIN)
    if not ebin or not (Path(ebin) / "ekka_guid.beam").is_file():
        pytest.skip(f"set {ENV_EKKA_EBIN} to a genuine ekka ebin directory to compare")
    return Path(ebin)


_GEN_EXPR = """
Report = fun(G) -> io:format("~s ~s~n", [binary:encode_hex(term_to_binary(self())),
                                          binary:encode_hex(G)]) end,
Parent = self(),
Pids = [spawn(fun() -> [Report(ekka_guid:gen()) || _ <- [1, 2]], Parent ! {done, self()} end)
        || _ <- lists:seq(1, 5)],
[receive {done, P} -> ok end || P <- Pids],
Gs = [ekka_guid:gen() || _ <- lists:seq(1, 65537)],
Report(lists:nth(65536, Gs)), Report(lists:nth(65537, Gs)),
halt().
"""


@pytest.mark.parametrize("node", ["emqx1@127.0.0.1", "pyekka-guid@localhost"])
def test_npid_and_seq_match_genuine_ekka_guid(otp: OtpRuntime, node: str) -> None:
    ebin = _ekka_ebin()
    argv = otp.command(
        "-name", node, "-dist_listen", "false", "-start_epmd", "false",
        "-pa", str(ebin), "-eval", " ".join(_GEN_EXPR.split()),
    )  # fmt: skip
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env=clean_env(), check=True
    ).stdout.split()
    rows = [
        (binary_to_term(bytes.fromhex(p)), bytes.fromhex(g))
        for p, g in zip(out[::2], out[1::2], strict=True)
    ]
    assert len(rows) == 12
    for pid, guid in rows:
        assert pid.node == Atom(node)
        assert GuidParts.from_bytes(guid).npid == npid(node, pid)
    per_process: dict[Pid, list[int]] = {}
    for pid, guid in rows[:10]:
        per_process.setdefault(pid, []).append(GuidParts.from_bytes(guid).seq)
    assert sorted(per_process.values()) == [[0, 1]] * 5
    assert [GuidParts.from_bytes(g).seq for _, g in rows[-2:]] == [MAX_SEQ, 0]
