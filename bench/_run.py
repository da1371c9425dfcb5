"""What the asyncio benchmarks share: run the measuring coroutine, then print.

SIGTERM ends a run as Ctrl-C does (the main task is cancelled, so every node and VM
is stopped on the way out); an interrupted run exits with status 130.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any


async def _cancel_on_sigterm(run: Callable[[argparse.Namespace], Awaitable[Any]], args: Any) -> Any:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await run(args)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def run_and_report(
    name: str,
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace], Awaitable[Any]],
    to_json: Callable[[Any], Any],
    print_report: Callable[[Any], None],
) -> int:
    """``run(args)`` in a new event loop; print the report (JSON with ``args.json``)."""
    try:
        report = asyncio.run(_cancel_on_sigterm(run, args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"{name}: interrupted; every node was stopped", file=sys.stderr)
        return 130
    if args.json:
        json.dump(to_json(report), sys.stdout, indent=2)
        print()
    else:
        print_report(report)
    return 0
