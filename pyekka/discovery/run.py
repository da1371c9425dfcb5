"""A node run from a configuration file, autoclustering: ``pyekka start -c FILE``.

The pieces, usable without the command line:

* :func:`node_spec` and :func:`member_options`: the node and the cluster member a
  :class:`~pyekka.config.settings.Settings` describes;
* :func:`autoclustering_member`: the member (:func:`pyekka.cluster.app.serving_member`)
  plus an :class:`~pyekka.discovery.autocluster.Autocluster` running the configured
  discovery strategy with the configured timings (:func:`autocluster_options`),
  reporting its rounds;
* for the command line: :func:`add_config_options` adds ``-c/--config FILE`` and
  ``--set KEY=VALUE`` to ``pyekka start``, :func:`given_flags` tells the node flags
  given from their defaults, and :func:`load_start_settings` reads the file with
  those flags and the ``--set`` values as overrides (:data:`FLAG_KEYS` maps flags to
  keys). Precedence, lowest first: the file, ``PYEKKA_*`` environment variables,
  node flags, ``--set``.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyekka.cluster.app import ClusterMember, MemberOptions, serving_member
from pyekka.cluster.cluster import ClusterError
from pyekka.cluster.ctl import CTL_MODULE
from pyekka.config import ConfigError, Settings, load_config
from pyekka.config.values import format_duration
from pyekka.discovery.autocluster import Autocluster, RoundResult
from pyekka.discovery.factory import make_strategy
from pyekka.node.cli_support import NodeSpec
from pyekka.term.types import Atom

if TYPE_CHECKING:
    from pyekka.node.node import Node

__all__ = [
    "FLAG_KEYS",
    "ConfiguredMember",
    "add_config_options",
    "autocluster_options",
    "autoclustering_member",
    "given_flags",
    "load_start_settings",
    "member_options",
    "node_spec",
]

Report = Callable[[str], None]

FLAG_KEYS: dict[str, str] = {
    "name": "node.name",
    "sname": "node.name",
    "cookie": "node.cookie",
    "epmd": "node.epmd",
    "dist_base_port": "node.dist_base_port",
    "dist_interface": "node.dist_interface",
    "net_ticktime": "node.net_ticktime",
    "data_dir": "node.data_dir",
    "cluster_name": "cluster.name",
    "autoheal": "cluster.autoheal",
    "autoclean": "cluster.autoclean",
}
"""``pyekka start`` flags (argparse destinations) and the keys they override."""


class _Unset:
    """The default of a node flag while the command line is parsed: not given."""

    def __repr__(self) -> str:
        return "<not given>"


_UNSET: Any = _Unset()
_FLAG_DEFAULTS = "_pyekka_flag_defaults"


def _is_long_host(host: str) -> bool:
    return "." in host or ":" in host


def node_spec(settings: Settings, *, cookie: str, long_names: bool | None = None) -> NodeSpec:
    """The node of ``settings.node`` with ``cookie`` (the configured one or the cookie
    file's). ``long_names=None``: long names when the host has a dot (or is IPv6);
    a bare ``alive`` name then takes short names."""
    n = settings.node
    if long_names is None:
        long_names = "@" in n.name and _is_long_host(n.name.split("@", 1)[1])
    return NodeSpec(
        name=n.name,
        cookie=cookie,
        long_names=long_names,
        epmd=n.epmd,
        port=n.dist_port,
        dist_base_port=n.dist_base_port,
        dist_interface=n.dist_interface,
        net_ticktime=float(n.net_ticktime),
    )


def member_options(settings: Settings, **extra: Any) -> MemberOptions:
    """The cluster member of ``settings`` (data directory, cluster name, autoheal,
    autoclean); ``extra`` sets more :class:`MemberOptions` fields (tests)."""
    c = settings.cluster
    return MemberOptions(
        data_dir=settings.node.data_dir,
        cluster_name=c.name,
        autoheal=c.autoheal,
        autoclean_ms=c.autoclean,
        **extra,
    )


def autocluster_options(settings: Settings) -> dict[str, Any]:
    """The :class:`Autocluster` timings of ``settings.cluster.autocluster`` (keyword
    arguments: seconds, and ``ignore_delay_ms``)."""
    t = settings.cluster.autocluster
    return {
        "interval": t.interval / 1000,
        "ignore_delay_ms": t.ignore_delay,
        "ready_timeout": t.ready_timeout / 1000,
        "member_timeout": t.member_timeout / 1000,
        "ping_timeout": t.ping_timeout / 1000,
    }


def _timings_line(auto: Autocluster) -> str:
    """The timings ``auto`` runs with, named as the ``cluster.autocluster.*`` keys."""
    ms = {
        "interval": round(auto.interval * 1000),
        "ignore_delay": auto.ignore_delay_ms,
        "ready_timeout": round(auto.ready_timeout * 1000),
        "member_timeout": round(auto.member_timeout * 1000),
        "ping_timeout": round(auto.ping_timeout * 1000),
    }
    shown = ", ".join(f"{name} {format_duration(value)}" for name, value in ms.items())
    return f"autocluster timings: {shown}"


@dataclass
class ConfiguredMember:
    """A running member and its autocluster (see :func:`autoclustering_member`)."""

    member: ClusterMember
    autocluster: Autocluster
    settings: Settings = field(repr=False)


@contextlib.asynccontextmanager
async def autoclustering_member(
    node: Node,
    settings: Settings,
    report: Report,
    *,
    options: MemberOptions | None = None,
    autocluster: Mapping[str, Any] | None = None,
) -> AsyncIterator[ConfiguredMember]:
    """Make the started ``node`` the member ``settings`` describe and autocluster it.

    ``report`` gets :func:`~pyekka.cluster.app.serving_member`'s lines, a line naming
    the discovery strategy, one with the loop's timings (when it runs) and one line
    per autocluster round. ``options`` replaces :func:`member_options`; the timings
    are ``settings.cluster.autocluster``'s (:func:`autocluster_options`), and
    ``autocluster`` holds keyword arguments of :class:`Autocluster` that override
    them (tests). The member's
    ``pyekka_ctl:leave()`` (``pyekka ctl leave``) becomes :meth:`Autocluster.leave`:
    leave, then unregister. On exit the rounds stop and the strategy is closed
    (without unregistering: an etcd key then expires, as in ekka).
    """
    strategy = make_strategy(settings.cluster, node=node.name.name, cookie=node.cookie)
    auto: Autocluster | None = None

    def round_done(result: RoundResult) -> None:
        rounds = auto.rounds if auto is not None else 0
        report(f"autocluster round {rounds}: {result.summary()}")

    try:
        async with serving_member(node, options or member_options(settings), report) as member:
            auto = Autocluster(
                member.cluster,
                strategy,
                enabled=settings.cluster.enable,
                on_round=round_done,
                **{**autocluster_options(settings), **(autocluster or {})},
            )
            status = auto.status()
            enabled = "" if auto.enabled or strategy is None else " (cluster.enable is off)"
            report(f"discovery {status.strategy} {status.detail}".rstrip() + enabled)
            if auto.enabled:
                report(_timings_line(auto))
            try:
                await auto.start()
                if member.ctl is not None:
                    node.register_function(CTL_MODULE, "leave", _ctl_leave(auto))
                yield ConfiguredMember(member, auto, settings)
            finally:
                await auto.stop()  # closes the strategy
    finally:
        if auto is None and strategy is not None:
            await strategy.close()


def _ctl_leave(auto: Autocluster) -> Callable[[], Awaitable[Any]]:
    """``pyekka_ctl:leave()`` of a member that autoclusters: ekka's leave, then
    unregister (the reply is :class:`~pyekka.cluster.ctl.CtlServer`'s)."""

    async def leave() -> Any:
        try:
            await auto.leave()
        except ClusterError as exc:
            return (Atom("error"), exc.reason)
        return Atom("ok")

    return leave


# -- the command line ------------------------------------------------------------------


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """Add ``-c/--config FILE`` and ``--set KEY=VALUE`` to ``parser`` (``pyekka start``),
    and make its node flags default to "not given" (see :func:`given_flags`).

    Call it once the node flags are added.
    """
    group = parser.add_argument_group("configuration file")
    group.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="read the node and cluster settings from FILE (.conf or .config); the "
        "flags above override it, PYEKKA_* variables too; autocluster with "
        "cluster.discovery",
    )
    group.add_argument(
        "--set",
        action="append",
        default=[],
        dest="config_set",
        metavar="KEY=VALUE",
        help="override one key (.conf syntax), e.g. cluster.discovery=static; repeatable",
    )
    defaults = {dest: parser.get_default(dest) for dest in FLAG_KEYS}
    parser.set_defaults(**{dest: _UNSET for dest in FLAG_KEYS}, **{_FLAG_DEFAULTS: defaults})


def given_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The node flags given on the command line (by destination), and every flag not
    given set back to its default in ``args`` (call once, before using ``args``)."""
    defaults: dict[str, Any] = getattr(args, _FLAG_DEFAULTS, {})
    given = {}
    for dest in FLAG_KEYS:
        value = getattr(args, dest, _UNSET)
        if value is _UNSET:
            setattr(args, dest, defaults.get(dest))
        else:
            given[dest] = value
    return given


def _flag_value(dest: str, value: Any) -> Any:
    if dest == "net_ticktime" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _set_values(items: list[str]) -> dict[str, str]:
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, not {item!r}")
        values[key.strip()] = value.strip()
    return values


def load_start_settings(
    args: argparse.Namespace, given: Mapping[str, Any], *, environ: Mapping[str, str] | None = None
) -> Settings:
    """The settings of ``args.config``, overridden by the environment, the ``given``
    flags and ``--set`` (:class:`~pyekka.config.ConfigError` naming the file, line and
    key, or ``command line``)."""
    overrides: dict[str, Any] = {FLAG_KEYS[d]: _flag_value(d, v) for d, v in given.items()}
    overrides.update(_set_values(getattr(args, "config_set", [])))
    return load_config(args.config, environ=environ, overrides=overrides)
