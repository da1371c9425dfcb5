"""The cookie of a node started without one, found the way OTP's ``auth`` finds it.

:func:`default_cookie` reads ``$HOME/.erlang.cookie``, else
``<user config dir>/erlang/.erlang.cookie`` (``$XDG_CONFIG_HOME/erlang`` or
``~/.config/erlang`` on Linux, ``~/Library/Application Support/erlang`` on macOS).
When neither exists it creates the first one, as an OTP node does: 20 random
capital letters, mode ``0400``, times set to midnight. A file that is not a
regular file, or that its group or others may access, is refused
(:class:`CookieError`), and so is a file whose text is not a cookie.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import secrets
import stat
import string
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["COOKIE_FILE", "CookieError", "cookie_paths", "default_cookie", "parse_cookie"]

COOKIE_FILE = ".erlang.cookie"
_COOKIE_LENGTH = 20
_TRAILING_BLANKS = frozenset("\n\r ")


class CookieError(Exception):
    """The cookie file is missing and cannot be created, unsafe, or not a cookie."""


def parse_cookie(data: bytes) -> str:
    """The cookie in a cookie file's bytes, checked as ``auth`` checks it.

    The cookie is the leading run of printable ASCII characters (space to ``~``);
    only newlines, carriage returns and spaces may follow it.
    """
    text = data.decode("latin-1")
    end = 0
    while end < len(text) and " " <= text[end] <= "~":
        end += 1
    if not set(text[end:]) <= _TRAILING_BLANKS:
        raise CookieError("bad characters in cookie")
    if end == 0:
        raise CookieError("too short cookie string")
    return text[:end]


def _user_config_dir(env: Mapping[str, str], home: str | None) -> Path | None:
    if sys.platform == "darwin":
        return Path(home, "Library", "Application Support") if home else None
    if env.get("XDG_CONFIG_HOME"):
        return Path(env["XDG_CONFIG_HOME"])
    return Path(home, ".config") if home else None


def cookie_paths(environ: Mapping[str, str] | None = None) -> tuple[Path | None, Path | None]:
    """``($HOME/.erlang.cookie, <user config>/erlang/.erlang.cookie)``; ``None`` for
    a path that cannot be formed (no ``HOME``)."""
    env = os.environ if environ is None else environ
    home = env.get("HOME") or None
    config = _user_config_dir(env, home)
    return (
        Path(home, COOKIE_FILE) if home else None,
        config / "erlang" / COOKIE_FILE if config else None,
    )


def _read(path: Path) -> str | None:
    """The cookie in ``path``, or ``None`` if there is no such file."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CookieError(f"error when reading {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise CookieError(f"cookie file {path} is not a regular file")
    if os.name == "posix" and info.st_mode & 0o077:
        raise CookieError(f"cookie file {path} must be accessible by owner only")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CookieError(f"error when reading {path}: {exc.strerror}") from None
    try:
        return parse_cookie(data)
    except CookieError as exc:
        raise CookieError(f"cookie file {path}: {exc}") from None


def _create(path: Path) -> str:
    cookie = "".join(secrets.choice(string.ascii_uppercase) for _ in range(_COOKIE_LENGTH))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    except FileExistsError:
        cookie_now = _read(path)  # another process made it in the meantime
        if cookie_now is None:  # pragma: no cover - deleted again at once
            raise CookieError(f"failed to create cookie file {path}") from None
        return cookie_now
    except OSError as exc:
        raise CookieError(f"failed to create cookie file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(cookie)
    os.chmod(path, 0o400)  # whatever the umask did
    midnight = datetime.datetime.combine(datetime.date.today(), datetime.time()).timestamp()
    with contextlib.suppress(OSError):  # as OTP, hide when the cookie was made
        os.utime(path, (midnight, midnight))
    return cookie


def default_cookie(environ: Mapping[str, str] | None = None, *, create: bool = True) -> str:
    """The cookie an OTP node started without ``-setcookie`` would use.

    ``create=False`` raises :class:`CookieError` instead of creating a missing file.
    """
    home_path, config_path = cookie_paths(environ)
    for path in (home_path, config_path):
        if path is not None and (cookie := _read(path)) is not None:
            return cookie
    target = home_path or config_path
    if target is None:
        raise CookieError("no home for cookie file: set HOME or give the cookie")
    if not create:
        raise CookieError(f"no cookie file: {target}")
    return _create(target)
