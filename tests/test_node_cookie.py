"""The default cookie (``pyekka.node.cookie``), checked against what OTP 25/28 do.

Each case lays out cookie files in a fresh ``HOME`` (and ``XDG_CONFIG_HOME``), then
asks a real OTP node started there without ``-setcookie`` for its cookie, and
:func:`default_cookie` for ours: both must read the same cookie, or both refuse
the files for the same reason, or both create the same kind of file.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from pyekka.node.cookie import CookieError, cookie_paths, default_cookie, parse_cookie
from pyekka.testing.otp import OtpRuntime, clean_env
from pyekka.testing.otp_node import epmd_less_args
from tests.otp_nodes import next_number

HOME_FILE = "home/.erlang.cookie"
XDG_FILE = "xdg/erlang/.erlang.cookie"

# id -> {file relative to tmp_path: (bytes, mode)}
CASES: dict[str, dict[str, tuple[bytes, int]]] = {
    "plain": {HOME_FILE: (b"abc\n", 0o400)},
    "trailing-space-kept": {HOME_FILE: (b"abc \n", 0o400)},
    "inner-spaces-crlf": {HOME_FILE: (b"  x y\r\n\n", 0o600)},
    "tab": {HOME_FILE: (b"a\tb", 0o400)},
    "two-lines": {HOME_FILE: (b"ab\ncd", 0o400)},
    "latin1": {HOME_FILE: (b"caf\xe9", 0o400)},
    "empty": {HOME_FILE: (b"", 0o400)},
    "only-newline": {HOME_FILE: (b"\n", 0o400)},
    "group-readable": {HOME_FILE: (b"secret", 0o640)},
    "xdg-only": {XDG_FILE: (b"from-xdg\n", 0o400)},
    "home-wins": {HOME_FILE: (b"from-home", 0o400), XDG_FILE: (b"from-xdg", 0o400)},
    "missing": {},
}


def _lay_out(root: Path, files: Mapping[str, tuple[bytes, int]]) -> dict[str, str]:
    (root / "home").mkdir(parents=True)
    (root / "xdg").mkdir()
    for rel, (data, mode) in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    return {"HOME": str(root / "home"), "XDG_CONFIG_HOME": str(root / "xdg")}


def _otp_cookie(
    otp: OtpRuntime, ebin: Path, base: int, env: dict[str, str], cwd: Path
) -> str | CookieError:
    """The cookie of an OTP node started with ``env`` and no ``-setcookie``, or its
    refusal as a :class:`CookieError` with OTP's text."""
    name = f"ck{next_number()}@127.0.0.1"
    expr = 'io:format("COOKIE ~w~n", [atom_to_list(erlang:get_cookie())]), halt().'
    argv = otp.command("-pa", str(ebin), "-name", name, *epmd_less_args(base), "-eval", expr)
    environ = clean_env()
    environ.update(env, ERL_CRASH_DUMP_SECONDS="0")
    proc = subprocess.run(
        argv, env=environ, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if m := re.search(r"^COOKIE (\[[\d,]*\])$", proc.stdout, re.M):
        return "".join(chr(int(c)) for c in m.group(1)[1:-1].split(",") if c)
    m = re.search(r'failed_to_start_child,auth,\{"([^"]+)"', proc.stdout + proc.stderr)
    assert m, proc.stdout + proc.stderr
    return CookieError(m.group(1))


def _ours(env: dict[str, str]) -> str | CookieError:
    try:
        return default_cookie(env)
    except CookieError as exc:
        return exc


def _created(path: Path) -> tuple[int, bool, bool]:
    info = path.stat()
    midnight = datetime.datetime.fromtimestamp(info.st_mtime).time() == datetime.time()
    text = path.read_text()
    return stat.S_IMODE(info.st_mode), len(text) == 20 and text.isupper(), midnight


@pytest.mark.parametrize("case", CASES)
def test_default_cookie_as_otp_finds_it(
    otp: OtpRuntime, interop_ebin: Path, ekka_base: int, tmp_path: Path, case: str
) -> None:
    files = CASES[case]
    erl_env = _lay_out(tmp_path / "erl", files)
    py_env = _lay_out(tmp_path / "py", files)
    theirs = _otp_cookie(otp, interop_ebin, ekka_base, erl_env, tmp_path)
    ours = _ours(py_env)
    if case == "missing":  # both make $HOME/.erlang.cookie: random, so compare its kind
        made = [Path(e["HOME"], ".erlang.cookie") for e in (erl_env, py_env)]
        assert _created(made[0]) == _created(made[1]) == (0o400, True, True)
        assert (made[0].read_text(), made[1].read_text()) == (theirs, ours)
        assert default_cookie(py_env) == ours  # read back, not created twice
    elif isinstance(theirs, CookieError):
        assert isinstance(ours, CookieError), (ours, theirs)
        words = str(theirs).lower().replace("cookie file ", "").split(" ")
        assert " ".join(words[-4:]) in str(ours).lower(), (ours, theirs)
    else:
        assert ours == theirs


@pytest.mark.parametrize(
    ("data", "cookie"),
    [
        (b"abc", "abc"),
        (b"abc\r\n", "abc"),
        (b"a b c \n", "a b c "),
        (b"~!@#$%^&*()", "~!@#$%^&*()"),
    ],
)
def test_parse_cookie(data: bytes, cookie: str) -> None:
    assert parse_cookie(data) == cookie


@pytest.mark.parametrize("data", [b"", b"\n", b"\r\n", b"ab\x00", b"ab\ncd", b"\x7f"])
def test_parse_cookie_refuses(data: bytes) -> None:
    with pytest.raises(CookieError):
        parse_cookie(data)


@pytest.mark.skipif(sys.platform != "linux", reason="the user config dir of Linux")
def test_cookie_paths_follow_home_and_xdg() -> None:
    assert cookie_paths({"HOME": "/h"}) == (
        Path("/h/.erlang.cookie"),
        Path("/h/.config/erlang/.erlang.cookie"),
    )
    assert cookie_paths({"HOME": "/h", "XDG_CONFIG_HOME": "/x"})[1] == Path(
        "/x/erlang/.erlang.cookie"
    )
    assert cookie_paths({}) == (None, None)


def test_no_home_and_no_file_is_an_error(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    with pytest.raises(CookieError, match="no cookie file"):
        default_cookie({"HOME": str(tmp_path)}, create=False)
    with pytest.raises(CookieError):  # the config dir's erlang/ does not exist
        default_cookie(env)
    assert not any(tmp_path.iterdir())


def test_a_directory_is_not_a_cookie_file(tmp_path: Path) -> None:
    (tmp_path / ".erlang.cookie").mkdir()
    with pytest.raises(CookieError, match="not a regular file"):
        default_cookie({"HOME": str(tmp_path)})


def test_created_cookie_is_unreadable_to_others(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        cookie = default_cookie({"HOME": str(tmp_path)})
    finally:
        os.umask(old)
    path = tmp_path / ".erlang.cookie"
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert path.read_text() == cookie
