"""The node commands of ``pyekka``: ``start``, ``ping`` and ``rpc``.

Argument parsing and printing only; :mod:`pyekka.node.cli_support` runs the nodes,
:mod:`pyekka.cluster.app` makes the node of ``start`` a cluster member. The helpers
:func:`node_options`, :func:`temporary_node`, :func:`run_node`, :func:`guarded` ...
serve ``pyekka ctl`` (:mod:`pyekka.cli_ctl`) too.

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

from pyekka.cluster.app import DEFAULT_CLUSTER_NAME, MemberOptions, serving_member
from pyekka.config import ConfigError
from pyekka.config.values import parse_duration
from pyekka.discovery import run as config_run
from pyekka.dist.names import EKKA_BASE_PORT
from pyekka.node.cli_support import (
    NodeSpec,
    call,
    explain,
    ping,
    serve,
    target_name,
    temporary_spec,
)
from pyekka.node.connect_error import ConnectError
from pyekka.node.cookie import CookieError, default_cookie
from pyekka.node.epmd import EpmdError
from pyekka.term import TermSyntaxError, format_term, parse_term
from pyekka.term.types import Atom

__all__ = [
    "EXIT_BADRPC",
    "EXIT_CONNECT",
    "EXIT_USAGE",
    "CommandFailure",
    "add_node_commands",
    "guarded",
    "node_logging",
    "node_options",
    "run_node",
    "temporary_node",
]

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


class CommandFailure(Exception):
    """A command failed: ``status`` is the exit status, the message goes to stderr."""

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


def _autoheal(text: str) -> bool | int:
    word = text.lower()
    if word in ("on", "true"):
        return True
    if word in ("off", "false"):
        return False
    if text.isdigit():
        return int(text)
    try:
        return parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected on, off, a delay in ms or a duration such as 15s: {text!r}"
        ) from None


def _autoclean(text: str) -> int | None:
    if text.lower() == "off":
        return None
    try:
        ms = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if ms < 1:
        raise argparse.ArgumentTypeError(f"the expiry must be positive: {text!r}")
    return ms


def _cluster_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster (the node runs ekka's services)")
    group.add_argument(
        "--data-dir",
        metavar="DIR",
        help="keep the cluster view here, to rejoin after a restart (default: memory only)",
    )
    group.add_argument(
        "--cluster-name",
        default=DEFAULT_CLUSTER_NAME,
        metavar="NAME",
        help=f"ekka's cluster_name, the same on every member (default {DEFAULT_CLUSTER_NAME})",
    )
    group.add_argument(
        "--autoheal",
        type=_autoheal,
        default=True,
        metavar="on|off|DELAY_MS",
        help="heal partitions: on (after ekka's 15 s), off, or after DELAY_MS (default on)",
    )
    group.add_argument(
        "--autoclean",
        type=_autoclean,
        default=None,
        metavar="DURATION",
        help="force-leave members down for longer than this, e.g. 5m (default off)",
    )


def member_options(args: argparse.Namespace) -> MemberOptions:
    """The cluster member ``pyekka start``'s options describe."""
    return MemberOptions(
        data_dir=args.data_dir,
        cluster_name=args.cluster_name,
        autoheal=args.autoheal,
        autoclean_ms=args.autoclean,
    )


def node_options(temporary: bool) -> argparse.ArgumentParser:
    """The options shared by the node commands (a parent parser); ``temporary``: for
    a temporary node (optional names, ``--timeout``)."""
    opts = argparse.ArgumentParser(add_help=False)
    # `start` checks its name itself: with -c FILE the file may name the node
    names = opts.add_mutually_exclusive_group(required=False)
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
        parents=[node_options(temporary=False)],
        help="run a cluster member (node and ekka services) in the foreground until interrupted",
        epilog=_EPILOG,
    )
    _cluster_options(start)
    config_run.add_config_options(start)  # -c FILE, --set KEY=VALUE (pyekka.discovery.run)
    start.set_defaults(func=cmd_start)
    _temporary_command(
        sub, "ping", cmd_ping, "net_adm:ping a node from a temporary hidden node: pong or pang"
    )
    rpc = _temporary_command(
        sub, "rpc", cmd_rpc, "rpc:call a node from a temporary hidden node and print the result"
    )
    rpc.add_argument("module", metavar="MODULE")
    rpc.add_argument("function", metavar="FUNCTION")
    rpc.add_argument("args", metavar="ARGS", help="the arguments, an Erlang list: '[1, foo]'")


def _temporary_command(sub: Any, name: str, func: Any, text: str) -> argparse.ArgumentParser:
    """A command run from a temporary node, with its ``NODE`` argument."""
    parser = sub.add_parser(name, parents=[node_options(temporary=True)], help=text, epilog=_EPILOG)
    parser.add_argument("node", metavar="NODE")
    parser.set_defaults(func=func)
    return parser


@contextlib.contextmanager
def node_logging(verbose: int, *, quiet: bool) -> Iterator[None]:
    """Node logs to stderr while a command runs: INFO for ``start``, nothing for
    temporary nodes unless -v; the ``pyekka`` logger is restored afterwards."""
    logger = logging.getLogger("pyekka")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    shown = logging.DEBUG if verbose > 1 else logging.INFO
    if quiet and not verbose:
        shown = logging.CRITICAL + 1  # the handler still keeps Python's last resort quiet
    handler.setLevel(shown)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(shown)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def node_spec(args: argparse.Namespace) -> NodeSpec:
    """The node the options describe (the cookie read from its file if not given)."""
    try:
        cookie = args.cookie if args.cookie is not None else default_cookie()
    except CookieError as exc:
        raise CommandFailure(EXIT_USAGE, str(exc)) from None
    return NodeSpec(
        name=args.name or args.sname or "",
        cookie=cookie,
        long_names=args.name is not None,
        epmd=args.epmd,
        dist_base_port=args.dist_base_port,
        dist_interface=args.dist_interface,
        net_ticktime=args.net_ticktime,
    )


def temporary_node(args: argparse.Namespace) -> tuple[NodeSpec, str]:
    """The temporary hidden node the options describe, and the full name of
    ``args.node`` (the target)."""
    spec = node_spec(args)
    try:
        target = target_name(args.node, long_names=args.name is not None)
    except ValueError as exc:
        raise CommandFailure(EXIT_USAGE, f"bad node name {args.node!r}: {exc}") from None
    named = args.name is not None or args.sname is not None
    return temporary_spec(spec, target, name_given=named), target


def run_node(work: Any) -> Any:
    """Run a coroutine; the errors of a node that cannot start become failures."""
    try:
        return asyncio.run(work)
    except ConnectError as exc:
        raise CommandFailure(EXIT_CONNECT, explain(exc)) from None
    except EpmdError as exc:
        raise CommandFailure(EXIT_CONNECT, f"cannot register with epmd: {exc}") from None
    except OSError as exc:
        raise CommandFailure(EXIT_CONNECT, f"cannot start the node: {exc}") from None
    except ValueError as exc:
        raise CommandFailure(EXIT_USAGE, str(exc)) from None


def _print_line(text: str) -> None:
    stamp = datetime.datetime.now().isoformat(sep=" ", timespec="seconds")
    print(f"{stamp} {text}", flush=True)


def guarded(fn: Any) -> Any:
    """Wrap a command: a :class:`CommandFailure` is printed and becomes its status."""

    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except CommandFailure as exc:
            print(f"pyekka: {exc}", file=sys.stderr)
            return exc.status

    run.__doc__ = fn.__doc__
    return run


@guarded
def cmd_start(args: argparse.Namespace) -> int:
    """Run a cluster member until SIGINT or SIGTERM, printing peers coming and going
    and the cluster's events."""
    given = config_run.given_flags(args)
    if args.config is not None or args.config_set:
        return _start_from_config(args, given)
    if args.name is None and args.sname is None:  # a usage error, as argparse exits
        print("pyekka start: error: one of --name, --sname, -c FILE is required", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    options = member_options(args)

    def attach(node: Any) -> Any:
        return serving_member(node, options, _print_line)

    with node_logging(args.verbose, quiet=False):
        run_node(serve(node_spec(args), _print_line, attach=attach))
    return 0


def _start_from_config(args: argparse.Namespace, given: dict[str, Any]) -> int:
    """``start -c FILE``: the node and cluster of the file (flags and ``--set``
    overriding it), autoclustering with its discovery strategy."""
    try:
        settings = config_run.load_start_settings(args, given)
        cookie = settings.node.cookie or default_cookie()
    except (ConfigError, CookieError) as exc:
        raise CommandFailure(EXIT_USAGE, str(exc)) from None
    long_names = True if "name" in given else False if "sname" in given else None
    spec = config_run.node_spec(settings, cookie=cookie, long_names=long_names)

    def attach(node: Any) -> Any:
        return config_run.autoclustering_member(node, settings, _print_line)

    with node_logging(args.verbose, quiet=False):
        run_node(serve(spec, _print_line, attach=attach))
    return 0


@guarded
def cmd_ping(args: argparse.Namespace) -> int:
    """Print pong (exit 0) or pang (exit 1)."""
    spec, target = temporary_node(args)
    with node_logging(args.verbose, quiet=True):
        pong = run_node(ping(spec, target, timeout=args.timeout))
    print("pong" if pong else "pang", flush=True)
    return 0 if pong else 1


@guarded
def cmd_rpc(args: argparse.Namespace) -> int:
    """Print the result of ``rpc:call`` in Erlang syntax; exit 1 on ``{badrpc, _}``."""
    try:
        call_args = parse_term(args.args)
    except TermSyntaxError as exc:
        raise CommandFailure(EXIT_USAGE, f"ARGS: {exc}") from None
    if type(call_args) is not list:
        raise CommandFailure(EXIT_USAGE, f"ARGS must be a list, not {format_term(call_args)}")
    spec, target = temporary_node(args)
    with node_logging(args.verbose, quiet=True):
        result = run_node(
            call(spec, target, args.module, args.function, call_args, timeout=args.timeout)
        )
    print(format_term(result, pretty=True), flush=True)
    is_badrpc = type(result) is tuple and len(result) == 2 and result[0] == BADRPC
    return EXIT_BADRPC if is_badrpc else 0
