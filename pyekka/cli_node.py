"""The node commands of ``pyekka``: ``start``, ``ping`` and ``rpc``.

Argument parsing and printing only; :mod:`pyekka.node.cli_support` runs the nodes.

Exit statuses: 0 success (``pong``, a result); 1 ``pang`` or ``{badrpc, _}``;
2 bad input (options, term syntax, cookie file); 3 the node could not start or
could not connect (refused, for instance for a wrong cookie, or unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import logging
import sys
from collections.abc import Iterator
from typing import Any

from pyekka.dist.names import EKKA_BASE_PORT
from pyekka.node.cli_support import (
    ConnectFailed,
    NodeSpec,
    call,
    ping,
    serve,
    target_name,
    temporary_spec,
)
from pyekka.node.cookie import CookieError, default_cookie
from pyekka.node.epmd import EpmdError
from pyekka.term import TermSyntaxError, format_term, parse_term
from pyekka.term.types import Atom

__all__ = ["EXIT_BADRPC", "EXIT_CONNECT", "EXIT_USAGE", "add_node_commands"]

EXIT_BADRPC = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3
DEFAULT_TIMEOUT = 30.0
BADRPC = Atom("badrpc")

_EPILOG = (
    "Without --cookie the cookie is read from $HOME/.erlang.cookie (or the user "
    "config dir's erlang/.erlang.cookie), which is created, as OTP does, if missing. "
    "ERL_EPMD_PORT selects the epmd port as for OTP. Exit status: 0 ok, 1 pang or "
    "{badrpc, _}, 2 bad input, 3 cannot start or connect."
)


class _Failure(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _timeout(text: str) -> float | None:
    if text == "infinity":
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def _node_options(temporary: bool) -> argparse.ArgumentParser:
    opts = argparse.ArgumentParser(add_help=False)
    names = opts.add_mutually_exclusive_group(required=not temporary)
    default = " (default: remsh-pyekka-<random> on NODE's host)" if temporary else ""
    names.add_argument("--name", help="long node name, NAME@HOST or NAME" + default)
    names.add_argument(
        "--sname", metavar="NAME", help="short node name, NAME@HOST or NAME" + default
    )
    opts.add_argument("--cookie", help="the magic cookie (default: the cookie file)")
    opts.add_argument(
        "--no-epmd",
        dest="epmd",
        action="store_false",
        help="no epmd: ekka's port rule (base port + the name's trailing digits)",
    )
    opts.add_argument(
        "--dist-base-port",
        type=int,
        default=EKKA_BASE_PORT,
        metavar="P",
        help=f"base port of ekka's rule (default {EKKA_BASE_PORT})",
    )
    opts.add_argument(
        "--dist-interface",
        metavar="IP",
        help="bind the listening and outgoing distribution sockets to this address",
    )
    opts.add_argument(
        "--net-ticktime", type=float, default=60.0, metavar="S", help="as OTP's (default 60)"
    )
    opts.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more to stderr (-vv: debug)"
    )
    if temporary:
        opts.add_argument(
            "--timeout",
            type=_timeout,
            default=DEFAULT_TIMEOUT,
            metavar="S",
            help=f"seconds to wait for the answer, or infinity (default {DEFAULT_TIMEOUT:g})",
        )
    return opts


def add_node_commands(sub: Any) -> None:
    """Add ``start``, ``ping`` and ``rpc`` to the ``pyekka`` subparsers ``sub``."""
    start = sub.add_parser(
        "start",
        parents=[_node_options(temporary=False)],
        help="run a node in the foreground until interrupted",
        epilog=_EPILOG,
    )
    start.set_defaults(func=cmd_start)
    png = sub.add_parser(
        "ping",
        parents=[_node_options(temporary=True)],
        help="net_adm:ping a node from a temporary hidden node: pong or pang",
        epilog=_EPILOG,
    )
    png.add_argument("node", metavar="NODE")
    png.set_defaults(func=cmd_ping)
    rpc = sub.add_parser(
        "rpc",
        parents=[_node_options(temporary=True)],
        help="rpc:call a node from a temporary hidden node and print the result",
        epilog=_EPILOG,
    )
    rpc.add_argument("node", metavar="NODE")
    rpc.add_argument("module", metavar="MODULE")
    rpc.add_argument("function", metavar="FUNCTION")
    rpc.add_argument("args", metavar="ARGS", help="the arguments, an Erlang list: '[1, foo]'")
    rpc.set_defaults(func=cmd_rpc)


@contextlib.contextmanager
def _node_logging(verbose: int, *, quiet: bool) -> Iterator[None]:
    """Node logs to stderr while a command runs: INFO for ``start``, nothing for
    temporary nodes unless -v; the ``pyekka`` logger is restored afterwards."""
    logger = logging.getLogger("pyekka")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    shown = logging.DEBUG if verbose > 1 else logging.INFO
    handler.setLevel(logging.CRITICAL + 1 if quiet and not verbose else shown)
    level = logger.level
    logger.addHandler(handler)
    # the records must still flow: the reason of a failed connection is read from them
    logger.setLevel(min(shown, logging.WARNING))
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _spec(args: argparse.Namespace) -> NodeSpec:
    try:
        cookie = args.cookie if args.cookie is not None else default_cookie()
    except CookieError as exc:
        raise _Failure(EXIT_USAGE, str(exc)) from None
    return NodeSpec(
        name=args.name or args.sname or "",
        cookie=cookie,
        long_names=args.name is not None,
        epmd=args.epmd,
        dist_base_port=args.dist_base_port,
        dist_interface=args.dist_interface,
        net_ticktime=args.net_ticktime,
    )


def _temporary(args: argparse.Namespace) -> tuple[NodeSpec, str]:
    spec = _spec(args)
    try:
        target = target_name(args.node, long_names=args.name is not None)
    except ValueError as exc:
        raise _Failure(EXIT_USAGE, f"bad node name {args.node!r}: {exc}") from None
    named = args.name is not None or args.sname is not None
    return temporary_spec(spec, target, name_given=named), target


def _run(work: Any) -> Any:
    """Run a coroutine; the errors of a node that cannot start become failures."""
    try:
        return asyncio.run(work)
    except ConnectFailed as exc:
        raise _Failure(EXIT_CONNECT, str(exc)) from None
    except EpmdError as exc:
        raise _Failure(EXIT_CONNECT, f"cannot register with epmd: {exc}") from None
    except OSError as exc:
        raise _Failure(EXIT_CONNECT, f"cannot start the node: {exc}") from None
    except ValueError as exc:
        raise _Failure(EXIT_USAGE, str(exc)) from None


def _print_line(text: str) -> None:
    stamp = datetime.datetime.now().isoformat(sep=" ", timespec="seconds")
    print(f"{stamp} {text}", flush=True)


def _guarded(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except _Failure as exc:
            print(f"pyekka: {exc}", file=sys.stderr)
            return exc.status

    run.__doc__ = fn.__doc__
    return run


@_guarded
def cmd_start(args: argparse.Namespace) -> int:
    """Run a node until SIGINT or SIGTERM, printing peers coming and going."""
    with _node_logging(args.verbose, quiet=False):
        _run(serve(_spec(args), _print_line))
    return 0


@_guarded
def cmd_ping(args: argparse.Namespace) -> int:
    """Print pong (exit 0) or pang (exit 1)."""
    spec, target = _temporary(args)
    with _node_logging(args.verbose, quiet=True):
        pong = _run(ping(spec, target, timeout=args.timeout))
    print("pong" if pong else "pang", flush=True)
    return 0 if pong else 1


@_guarded
def cmd_rpc(args: argparse.Namespace) -> int:
    """Print the result of ``rpc:call`` in Erlang syntax; exit 1 on ``{badrpc, _}``."""
    try:
        call_args = parse_term(args.args)
    except TermSyntaxError as exc:
        raise _Failure(EXIT_USAGE, f"ARGS: {exc}") from None
    if type(call_args) is not list:
        raise _Failure(EXIT_USAGE, f"ARGS must be a list, not {format_term(call_args)}")
    spec, target = _temporary(args)
    with _node_logging(args.verbose, quiet=True):
        result = _run(
            call(spec, target, args.module, args.function, call_args, timeout=args.timeout)
        )
    print(format_term(result, pretty=True), flush=True)
    is_badrpc = type(result) is tuple and len(result) == 2 and result[0] == BADRPC
    return EXIT_BADRPC if is_badrpc else 0
