"""The plugin's OTP fixtures: ``otp_node`` (live OTP nodes) and ``compile_erlang``.

Part of :mod:`pyekka.testing.plugin`, which registers these fixtures.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import pytest

from pyekka.testing.otp import OtpMissing, OtpRuntime, run_erlc
from pyekka.testing.otp_node import OtpNode, epmd_less_args
from pyekka.testing.plugin_runtime import COOKIE, HOST, START_TIMEOUT, node_name, otp_discovery

__all__ = ["compile_erlang", "compile_erlang_sources", "otp_node"]


def _code_path_args(code_paths: Iterable[Path | str]) -> list[str]:
    args: list[str] = []
    for path in code_paths:
        args += ["-pa", str(path)]
    return args


@pytest.fixture
def otp_node(
    pyekka_otp_runtime: OtpRuntime, pyekka_erl_ebin: Path, pyekka_port_base: int
) -> Iterator[Callable[..., OtpNode]]:
    """Start OTP nodes for this test: ``otp_node(name="erl", cookie=COOKIE,
    code_paths=(), eval=None, args=(), start_timeout=30)``; all killed afterwards.

    ``eval`` is Erlang expressions run once at start (``erl -eval``), before the node
    answers :meth:`~pyekka.testing.otp_node.OtpNode.eval`.
    """
    started: list[OtpNode] = []

    def start(
        name: str = "erl",
        *,
        cookie: str = COOKIE,
        code_paths: Iterable[Path | str] = (),
        eval: str | None = None,
        args: Sequence[str] = (),
        start_timeout: float = START_TIMEOUT,
    ) -> OtpNode:
        argv = [*epmd_less_args(pyekka_port_base, HOST), *_code_path_args(code_paths), *args]
        if eval is not None:
            argv += ["-eval", eval]
        node = OtpNode(
            pyekka_otp_runtime,
            pyekka_erl_ebin,
            node_name(name),
            cookie,
            args=argv,
            start_timeout=start_timeout,
        )
        started.append(node)
        return node

    try:
        yield start
    finally:
        for node in started:
            node.close()


def _compiler(runtime: OtpRuntime) -> Path:
    if runtime.erlc is not None:
        return runtime.erlc
    for other in otp_discovery().runtimes:
        if other.erlc is not None:
            return other.erlc
    raise OtpMissing("no OTP runtime with a compiler (erlc) was found")


_MODULE_RE = re.compile(r"^\s*-module\(\s*'?([^')\s]+)'?\s*\)", re.MULTILINE)


def compile_erlang_sources(
    sources: Iterable[str | Path], out_dir: Path, erlc: Path, *, timeout: float = 120.0
) -> Path:
    """Compile Erlang ``sources`` (text with a ``-module`` line, or ``.erl`` paths) into
    ``out_dir/ebin``; that directory."""
    src_dir = out_dir / "src"
    ebin = out_dir / "ebin"
    src_dir.mkdir(parents=True, exist_ok=True)
    ebin.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for source in sources:
        if isinstance(source, Path):
            files.append(source)
            continue
        match = _MODULE_RE.search(source)
        if match is None:
            raise ValueError("Erlang source text without a -module(...) attribute")
        path = src_dir / f"{match.group(1)}.erl"
        path.write_text(source, encoding="utf-8")
        files.append(path)
    if not files:
        raise ValueError("nothing to compile")
    run_erlc(erlc, ebin, files, timeout=timeout)
    return ebin


@pytest.fixture
def compile_erlang(
    pyekka_otp_runtime: OtpRuntime, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Path]:
    """Compile Erlang modules for this test: ``compile_erlang(source_or_path, ...)``
    returns the directory of the beams (by the oldest ``erlc`` found, so that every
    runtime loads them)."""

    def run(*sources: str | Path) -> Path:
        try:
            erlc = _compiler(pyekka_otp_runtime)
        except OtpMissing as exc:
            pytest.skip(str(exc))
        return compile_erlang_sources(sources, tmp_path_factory.mktemp("erlang"), erlc)

    return run
