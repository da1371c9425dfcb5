"""The ``pyekka`` command line for the term layer (``showcase`` and ``term ...``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pyekka.cli import main
from pyekka.term import Atom, binary_to_term, phash2


def test_encode_prints_canonical_hex(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["term", "encode", "{ok, [1, foo]}"]) == 0
    out = capsys.readouterr().out.strip()
    assert binary_to_term(bytes.fromhex(out)) == (Atom("ok"), [1, Atom("foo")])
    assert out == "8368027702" + "6f6b" + "6c000000026101770366" + "6f6f6a"


def test_encode_minor_version_1_uses_latin1_atoms(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["term", "encode", "--minor-version", "1", "abc"]) == 0
    assert capsys.readouterr().out.strip() == "83640003616263"


def test_decode_prints_erlang_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["term", "decode", "83680277026f6b6b00026869"]) == 0
    assert capsys.readouterr().out.strip() == "{ok,[104,105]}"
    assert main(["term", "decode", "--pretty", "83680277026f6b6b00026869"]) == 0
    assert capsys.readouterr().out.strip() == '{ok,"hi"}'


def test_hash_matches_phash2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["term", "hash", "secretcookie"]) == 0
    assert int(capsys.readouterr().out) == phash2(Atom("secretcookie"))
    assert main(["term", "hash", "--range", "4294967295", "{a, <<1,2>>}"]) == 0
    assert int(capsys.readouterr().out) == phash2((Atom("a"), b"\x01\x02"), 4294967295)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["term", "decode", "8364"], "truncated"),
        (["term", "decode", "zz"], None),
        (["term", "encode", "{ok,"], "line 1"),
    ],
)
def test_bad_input_is_a_clear_error(
    argv: list[str], message: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        status = main(argv)
    except SystemExit as e:  # argparse-style exit for non-hex input
        assert "not hex" in str(e.code)
        return
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("pyekka: ")
    assert message is None or message in err


def test_showcase_runs_as_a_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pyekka", "showcase"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "phash2" in proc.stdout
    assert proc.stdout.count("term ") == 4
