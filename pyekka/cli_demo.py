"""``pyekka demo``: renders :class:`pyekka.demo.Demo` for a person, or as JSON lines.

On a terminal the members table and a progress line are redrawn in place (plain ANSI)
under the steps printed so far; otherwise every step, table and wait is an appended
line. ``--json`` prints one JSON object per milestone and nothing else on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from pyekka.demo import DEMO_AUTOHEAL, DEMO_MONITOR, Demo, DemoError, DemoOptions, Milestone

__all__ = ["LiveView", "add_demo_command", "cmd_demo", "describe_milestone"]

_SPINNER = "|/-\\"
_REFRESH = 0.1
_HEADERS = ("node", "lang", "state", "sees running", "leader", "partitions")


def _short(name: str | None) -> str:
    return "-" if not name else name.split("@", 1)[0]


def _list(names: list[str]) -> str:
    return " ".join(_short(n) for n in names) or "-"


def describe_milestone(m: Milestone) -> list[str]:
    """The lines a person reads for one milestone."""
    f, t = m.facts, f"[{m.t:6.2f} s]"
    if m.event == "started":
        return [
            f"{t} started {len(f['nodes'])} pyekka nodes on 127.0.0.1 "
            f"(epmd-less, base port {f['base_port']}), static seeds: {_list(f['seeds'])}",
            f"{'':10} demo timings: autoheal after {DEMO_AUTOHEAL.delay_ms} ms (ekka: 15 s), "
            f"partition confirmed after {DEMO_MONITOR['confirm_delay_ms']} ms (ekka: 3 s)",
        ]
    if m.event == "cluster_formed":
        return [
            f"{t} cluster formed: {len(f['members'])} members {_list(f['members'])}, "
            f"leader {_short(f['leader'])}"
        ]
    if m.event == "lock_acquired":
        return [
            f"{t} {_short(f['node'])} took a {f['type']} lock on {f['resource']} "
            f"(granted by {_list(f['granted_by'])})"
        ]
    if m.event == "lock_refused":
        return [
            f"{t} {_short(f['node'])} asked for the same lock: refused by "
            f"{_list(f['refused_by'])} (held by {_short(f['held_by'])})"
        ]
    if m.event == "lock_released":
        return [f"{t} {_short(f['node'])} released the lock"]
    if m.event == "partitioned":
        sides = " | ".join(_list(side) for side in f["sides"])
        return [f"{t} network cut between {sides}: each side runs on its own"]
    if m.event == "network_restored":
        return [f"{t} network restored ({f['links']} links): autoheal takes over"]
    if m.event == "healed":
        return [
            f"{t} autoheal: one cluster again after {f['heal_seconds']:.2f} s "
            f"(rebooted {_list(f['rebooted'])}; members {_list(f['members'])})"
        ]
    if m.event == "erlang_rpc":
        return [
            f"{t} OTP {f['otp_release']} node {_short(f['node'])} connected "
            f"(net_adm:ping -> {f['ping']}); {_short(f['called_from'])} called "
            f'erlang:system_info(otp_release) by rpc -> "{f["otp_release"]}" '
            f"(erts {f['erts_version']})"
        ]
    if m.event == "stopped":
        if f.get("clean", True):
            return [f"{t} stopped every node cleanly"]
        return [f"{t} stopped every node, with errors:", *(f"{'':10} {e}" for e in f["errors"])]
    return [f"{t} {m.event} {json.dumps(f)}"]


class LiveView:
    """The human rendering: steps appended, a members table and a progress line
    redrawn in place on a terminal (``tty``), appended otherwise."""

    def __init__(self, demo: Demo, out: TextIO, tty: bool) -> None:
        self.demo = demo
        self.out = out
        self.tty = tty
        self._drawn = 0
        self._tick = 0
        self._last_progress: str | None = None
        self._last_table: list[str] = []

    def table(self) -> list[str]:
        """The members table as lines."""
        rows = [
            (
                r.node,
                r.lang,
                r.state,
                _list(r.sees) if r.lang == "python" else "-",
                _short(r.leader),
                _list(r.partitions),
            )
            for r in self.demo.snapshot()
        ]
        widths = [max(len(x) for x in col) for col in zip(_HEADERS, *rows, strict=False)]
        return [
            "  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
            for row in (_HEADERS, *rows)
        ]

    def _progress_line(self) -> str | None:
        text = self.demo.progress
        if text is None:
            return None
        spin = _SPINNER[self._tick % len(_SPINNER)]
        return f"  {spin} waiting: {text} ({self.demo.waited():.1f} s)"

    def _erase(self) -> None:
        if self.tty and self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw_block(self, final: bool = False) -> None:
        lines = self.table()
        progress = None if final else self._progress_line()
        if progress is not None:
            lines.append(progress)
        self.out.write("".join(line + "\n" for line in lines))
        self._drawn = len(lines)

    def print_lines(self, lines: list[str]) -> None:
        """Lines that stay (steps, logs), above the live block."""
        self._erase()
        self.out.write("".join(line + "\n" for line in lines))
        if self.tty and self.demo.members:
            self._draw_block()
        self.out.flush()

    def milestone(self, m: Milestone) -> None:
        """Print a step (and, without a terminal, the table when it changed)."""
        self.print_lines(describe_milestone(m))
        if not self.tty:
            self._append_table()

    def _append_table(self) -> None:
        table = self.table()
        if table != self._last_table and self.demo.members:
            self.out.write("".join(line + "\n" for line in table))
            self._last_table = table
            self.out.flush()

    def refresh(self) -> None:
        """Redraw the live block (terminal) or append a new wait (otherwise)."""
        self._tick += 1
        if self.tty:
            if self.demo.members:
                self._erase()
                self._draw_block()
                self.out.flush()
            return
        text = self.demo.progress
        if text is not None and text != self._last_progress:
            self.out.write(f"  ... waiting: {text}\n")
            self.out.flush()
        self._last_progress = text

    def finish(self) -> None:
        """The final table, without a progress line."""
        if self.tty:
            self._erase()
            self._draw_block(final=True)
            self.out.flush()

    async def run_refresher(self) -> None:
        """Refresh the view every 0.1 s until cancelled (display only; the demo
        itself awaits cluster events)."""
        while True:
            self.refresh()
            await asyncio.sleep(_REFRESH)


class _ViewLogHandler(logging.Handler):
    def __init__(self, view: LiveView) -> None:
        super().__init__(logging.INFO)
        self.view = view

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.view.print_lines([f"{'':10}  . {record.getMessage()}"])


@contextlib.contextmanager
def _logging_to(handler: logging.Handler | None) -> Iterator[None]:
    root = logging.getLogger()
    old_level, old_handlers = root.level, root.handlers[:]
    root.handlers = [handler] if handler is not None else [logging.NullHandler()]
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.handlers, root.level = old_handlers, old_level


async def _run(demo: Demo, view: LiveView | None, signals: list[int]) -> None:
    """Run ``demo`` with ``view`` refreshing; SIGINT and SIGTERM cancel it (cleanly)
    and are recorded in ``signals``."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    assert task is not None

    def stop(signum: int) -> None:
        signals.append(signum)
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop, signum)
    refresher = asyncio.create_task(view.run_refresher()) if view is not None else None
    try:
        await demo.run()
    finally:
        if refresher is not None:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
        if view is not None:
            view.finish()


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo; exit 0 when every step happened, 1 when one failed, 130 on Ctrl-C."""
    out = sys.stdout
    tty = out.isatty()
    pace = args.pace if args.pace is not None else (0.8 if tty and not args.json else 0.0)
    options = DemoOptions(with_erlang=args.with_erlang, pace=pace)
    view: LiveView | None = None
    if args.json:

        def on_milestone(m: Milestone) -> None:
            out.write(json.dumps(m.to_json()) + "\n")
            out.flush()

        demo = Demo(options, on_milestone)
        handler: logging.Handler | None = (
            logging.StreamHandler(sys.stderr) if args.verbose else None
        )
    else:
        demo = Demo(options)
        view = LiveView(demo, out, tty)
        demo.on_milestone = view.milestone
        handler = _ViewLogHandler(view)
    signals: list[int] = []
    try:
        with _logging_to(handler):
            asyncio.run(_run(demo, view, signals))
    except (KeyboardInterrupt, asyncio.CancelledError, DemoError, OSError) as e:
        if signals or isinstance(e, KeyboardInterrupt):
            # a signal may also surface as the failure of a step it interrupted
            signum = signals[0] if signals else signal.SIGINT
            what = "interrupted" if signum == signal.SIGINT else "terminated"
            print(f"pyekka demo: {what}; every node stopped", file=sys.stderr)
            return 128 + signum
        if isinstance(e, asyncio.CancelledError):
            raise
        print(f"pyekka demo: {e}", file=sys.stderr)
        return 1
    return 0


def add_demo_command(sub: Any) -> None:
    """Register ``pyekka demo`` on the ``pyekka`` subcommand parser ``sub``."""
    demo = sub.add_parser(
        "demo",
        help="a local 3-node cluster: forming, a quorum lock, a partition, autoheal",
        description=(
            "Start three pyekka nodes on 127.0.0.1 and show, step by step: the cluster "
            "forming, a quorum lock taken and refused, a partition, autoheal, shutdown."
        ),
    )
    demo.add_argument("--json", action="store_true", help="print milestones as JSON lines")
    demo.add_argument(
        "--with-erlang",
        action="store_true",
        help="also start an OTP node (erl on PATH) and call it by rpc",
    )
    demo.add_argument(
        "--pace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="pause after each step (default: 0.8 on a terminal, else 0)",
    )
    demo.add_argument(
        "--verbose", action="store_true", help="with --json: cluster log lines on stderr"
    )
    demo.set_defaults(func=cmd_demo)
