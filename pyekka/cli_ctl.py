"""``pyekka ctl``: cluster commands for a running member, as ``emqx_ctl cluster`` has.

Argument parsing and printing only: a temporary hidden node calls the member's
``pyekka_ctl`` functions (:mod:`pyekka.cluster.ctl`) over the distribution protocol.

Exit statuses: 0 success; 1 the command failed (``{error, _}`` from the member, a
refused lock, a resource not locked, ``{badrpc, _}``); 2 bad input; 3 the temporary
node could not start or connect to the member.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyekka.cli_node import (
    CommandFailure,
    guarded,
    node_logging,
    node_options,
    run_node,
    temporary_node,
)
from pyekka.cluster.ctl import CtlError, LockOutcome, ctl_call, member_json, status_json
from pyekka.cluster.lock import LockType
from pyekka.discovery.autocluster import discovery_json, discovery_rows
from pyekka.dist.names import split_node
from pyekka.term import TermSyntaxError, format_term, parse_term
from pyekka.term.types import Atom

__all__ = ["EXIT_FAILED", "add_ctl_command"]

EXIT_FAILED = 1
EXIT_USAGE = 2

_OK = Atom("ok")
_IGNORE = Atom("ignore")
_ERROR = Atom("error")

_EPILOG = (
    "The member must run `pyekka start`. --cookie, --no-epmd and --dist-base-port "
    "are those of the member's cluster. Exit status: 0 ok, 1 the command failed (a "
    "refused lock included), 2 bad input, 3 cannot connect."
)


@dataclass(frozen=True)
class _Command:
    """A ctl command: the ``pyekka_ctl`` function, its arguments, how to show the answer."""

    function: str
    args: Callable[[argparse.Namespace], list[Any]]
    show: Callable[[argparse.Namespace, Any], int]


# -- arguments ---------------------------------------------------------------------------


def _peer(args: argparse.Namespace) -> Atom:
    """``NODE`` of join/force-leave; a bare name takes the host of ``--node``."""
    text: str = args.peer
    if "@" not in text:
        text = f"{text}@{args.node.split('@', 1)[1]}"
    try:
        split_node(text)
    except ValueError as exc:
        raise CommandFailure(EXIT_USAGE, f"bad node name {args.peer!r}: {exc}") from None
    args.peer = text
    return Atom(text)


def _resource(args: argparse.Namespace) -> Any:
    if not args.term:
        return args.resource.encode()
    try:
        return parse_term(args.resource)
    except TermSyntaxError as exc:
        raise CommandFailure(EXIT_USAGE, f"RESOURCE: {exc}") from None


def _lock_args(args: argparse.Namespace) -> list[Any]:
    return [_resource(args), LockType(args.type).atom]


# -- printing ----------------------------------------------------------------------------


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2), flush=True)


def _fail(args: argparse.Namespace, message: str, details: dict[str, Any]) -> int:
    if args.json:
        _print_json({"ok": False, "error": message, **details})
    else:
        print(f"pyekka: {message}", file=sys.stderr, flush=True)
    return EXIT_FAILED


def _unexpected(args: argparse.Namespace, reply: Any) -> int:
    return _fail(args, f"unexpected answer from {args.node}: {format_term(reply)}", {})


def _nodes_text(nodes: list[str]) -> str:
    return " ".join(nodes) if nodes else "-"


def _show_status(args: argparse.Namespace, reply: Any) -> int:
    try:
        status = status_json(reply)
    except ValueError:
        return _unexpected(args, reply)
    discovery = getattr(args, "discovery", None)  # pyekka_ctl:discovery(), see cmd_ctl
    if args.json:
        _print_json({**status, "discovery": discovery})
        return 0
    up = sum(1 for m in status["members"] if m["status"] == "up")
    rows = [
        ("node", f"{status['node']} ({'running' if status['running'] else 'stopped'})"),
        ("cluster", status["cluster_name"] or "(unnamed)"),
        ("leader", status["leader"] or "-"),
        ("coordinator", status["coordinator"] or "-"),
        ("running nodes", _nodes_text(status["running_nodes"])),
        ("stopped nodes", _nodes_text(status["stopped_nodes"])),
        ("genuine nodes", _nodes_text(status["genuine_nodes"])),
        ("partitions", _nodes_text(status["partitions"])),
        ("members", f"{len(status['members'])} ({up} up)"),
        *(discovery_rows(discovery) if discovery else [("discovery", "- (no autocluster)")]),
    ]
    for key, value in rows:
        print(f"{key:<14} {value}")
    return 0


def _show_members(args: argparse.Namespace, reply: Any) -> int:
    try:
        members = [member_json(m) for m in reply] if type(reply) is list else None
    except ValueError:
        members = None
    if members is None:
        return _unexpected(args, reply)
    if args.json:
        _print_json(members)
        return 0
    header = ("NODE", "STATUS", "MNESIA", "GUID", "HASH")
    rows = [
        (
            m["node"],
            m["status"],
            {False: "false", None: "-"}.get(m["mnesia"], m["mnesia"]),
            m["guid"] or "-",
            "-" if m["hash"] is None else str(m["hash"]),
        )
        for m in members
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _membership_result(verb: str, done: str) -> Callable[[argparse.Namespace, Any], int]:
    """How ``ok | ignore | {error, Reason}`` of join/leave/force-leave is shown."""

    def show(args: argparse.Namespace, reply: Any) -> int:
        if reply in (_OK, _IGNORE):
            text = done if reply == _OK else "nothing to do: {peer} is {node} itself"
            text = text.format(node=args.node, peer=getattr(args, "peer", ""))
            if args.json:
                _print_json({"ok": True, "result": reply.name})
            else:
                print(text, flush=True)
            return 0
        if type(reply) is tuple and len(reply) == 2 and reply[0] == _ERROR:
            reason = format_term(reply[1])
            what = f"{verb} {args.peer}" if hasattr(args, "peer") else verb
            return _fail(args, f"{args.node} cannot {what}: {reason}", {"reason": reason})
        return _unexpected(args, reply)

    return show


def _show_lock(action: str) -> Callable[[argparse.Namespace, Any], int]:
    def show(args: argparse.Namespace, reply: Any) -> int:
        try:
            outcome = LockOutcome.from_term(reply)
        except ValueError:
            return _unexpected(args, reply)
        what = f"{args.resource} ({args.type})"
        details = {"resource": args.resource, "type": args.type, "nodes": outcome.nodes}
        if outcome.not_locked:
            message = f"{what} is not locked by pyekka ctl on {args.node}"
            return _fail(args, message, {**details, "not_locked": True})
        if outcome.lost is not None:
            message = f"{what} was lost: its holder exited ({outcome.lost}; ekka's lease?)"
            return _fail(args, message, {**details, "lost": outcome.lost})
        if not outcome.ok:
            if action == "lock":
                by = f"by {', '.join(outcome.nodes)}" if outcome.nodes else "(no node answered)"
                return _fail(args, f"lock on {what} refused {by}", details)
            return _fail(args, f"unlock of {what} failed on {', '.join(outcome.nodes)}", details)
        if args.json:
            _print_json({"ok": True, **details})
        else:
            past = "locked" if action == "lock" else "unlocked"
            print(f"{past} {what} on {', '.join(outcome.nodes) or '-'}", flush=True)
        return 0

    return show


_COMMANDS = {
    "status": _Command("status", lambda a: [], _show_status),
    "members": _Command("members", lambda a: [], _show_members),
    "join": _Command(
        "join",
        lambda a: [_peer(a)],
        _membership_result("join", "{node} joined the cluster of {peer}"),
    ),
    "leave": _Command(
        "leave", lambda a: [], _membership_result("leave", "{node} left its cluster")
    ),
    "force-leave": _Command(
        "force_leave",
        lambda a: [_peer(a)],
        _membership_result("force-leave", "{peer} was removed from the cluster of {node}"),
    ),
    "lock": _Command("lock", _lock_args, _show_lock("lock")),
    "unlock": _Command("unlock", _lock_args, _show_lock("unlock")),
}


@guarded
def cmd_ctl(args: argparse.Namespace) -> int:
    """Call the member's ``pyekka_ctl`` function and show its answer."""
    command = _COMMANDS[args.ctl_command]
    spec, target = temporary_node(args)
    args.node = target
    call_args = command.args(args)
    with node_logging(args.verbose, quiet=True):
        try:
            reply = run_node(
                ctl_call(spec, target, command.function, call_args, timeout=args.timeout)
            )
        except CtlError as exc:
            return _fail(args, str(exc), {})
        if args.ctl_command == "status":
            args.discovery = _discovery(spec, target, args.timeout)
    return command.show(args, reply)


def _discovery(spec: Any, target: str, timeout: float | None) -> dict[str, Any] | None:
    """``pyekka_ctl:discovery()`` as JSON: the strategy and the last autocluster round
    of a member run with ``pyekka start -c FILE`` (``None`` for other members)."""
    try:
        return discovery_json(run_node(ctl_call(spec, target, "discovery", [], timeout=timeout)))
    except (CtlError, ValueError):
        return None


# -- the parser --------------------------------------------------------------------------


def add_ctl_command(sub: Any) -> None:
    """Add ``ctl`` and its commands to the ``pyekka`` subparsers ``sub``."""
    ctl = sub.add_parser(
        "ctl",
        parents=[node_options(temporary=True)],
        help="cluster commands for a running member (status, members, join, lock ...)",
        description="Run a cluster command on a member started by `pyekka start`, "
        "from a temporary hidden node.",
        epilog=_EPILOG,
    )
    ctl.add_argument("--node", required=True, metavar="NODE", help="the member to act on")
    ctl.add_argument("--json", action="store_true", help="print JSON")
    ctl.set_defaults(func=cmd_ctl)
    # --json is accepted after the command too; SUPPRESS keeps the value given before it
    json_opt = argparse.ArgumentParser(add_help=False)
    json_opt.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON"
    )
    cmds = ctl.add_subparsers(dest="ctl_command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return cmds.add_parser(name, parents=[json_opt], help=text, description=text)

    command("status", "the cluster as the member sees it (as ekka:info())")
    command("members", "the member table (as ekka:members())")
    join = command("join", "make the member join the cluster of NODE (as ekka:join/1)")
    join.add_argument("peer", metavar="NODE")
    command("leave", "make the member leave its cluster (as ekka:leave/0)")
    force = command("force-leave", "remove NODE from the cluster (as ekka:force_leave/1)")
    force.add_argument("peer", metavar="NODE")
    types = [t.value for t in LockType]
    for name, text in (
        ("lock", "take a lock held by the member until unlock (as ekka_locker:acquire/3)"),
        ("unlock", "release a lock taken by `lock` on the same member"),
    ):
        parser = command(name, text)
        parser.add_argument("resource", metavar="RESOURCE", help="sent as a binary")
        parser.add_argument(
            "--type",
            choices=types,
            default=LockType.LOCAL.value,
            help="where the lock is taken (default local, as ekka_locker)",
        )
        parser.add_argument(
            "--term",
            action="store_true",
            help="RESOURCE is an Erlang term (e.g. '{client, 42}'), not a binary",
        )
