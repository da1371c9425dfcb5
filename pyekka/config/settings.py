"""The typed settings of a pyekka node, and how they are built from read values.

:class:`Settings` is what every reader produces: ``settings.node`` (the node's own
name, cookie, distribution ports, ...) and ``settings.cluster`` (ekka's cluster
settings, with ``settings.cluster.discovery`` one of the strategy classes below and
``settings.cluster.autocluster`` the timings of the autocluster loop).
Every field is a key of :data:`pyekka.config.schema.KEYS`, which holds its type,
defaults and documentation; the defaults of these classes are the ``.conf``
defaults (ekka's cuttlefish schema), so ``Settings()`` is a node started without
a configuration file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field
from typing import Any, ClassVar

from pyekka.config.errors import ConfigError, Origin
from pyekka.config.schema import (
    AUTOCLUSTER_GROUP,
    AUTOHEAL_DEFAULT_DELAY_MS,
    BY_NAME,
    KEYS,
    REQUIRED,
    Key,
)

__all__ = [
    "AutoclusterSettings",
    "ClusterSettings",
    "Discovery",
    "DnsDiscovery",
    "EtcdDiscovery",
    "K8sDiscovery",
    "ManualDiscovery",
    "McastDiscovery",
    "NodeSettings",
    "Settings",
    "StaticDiscovery",
    "Value",
    "build_settings",
]


def _default(key: str) -> Any:
    """The dataclass field of ``key`` with its ``.conf`` default (none when required)."""
    default = BY_NAME[key].default
    return field(default=MISSING if default is REQUIRED else default)


@dataclass(frozen=True, kw_only=True)
class NodeSettings:
    """The node itself: ``node.*`` keys (``{pyekka, [...]}`` in a ``sys.config``)."""

    name: str = _default("node.name")
    cookie: str | None = _default("node.cookie")
    data_dir: str = _default("node.data_dir")
    epmd: bool = _default("node.epmd")
    dist_port: int = _default("node.dist_port")
    dist_base_port: int = _default("node.dist_base_port")
    dist_interface: str | None = _default("node.dist_interface")
    net_ticktime: int = _default("node.net_ticktime")


@dataclass(frozen=True, kw_only=True)
class ManualDiscovery:
    """No autocluster: nodes join with explicit ``join`` calls."""

    strategy: ClassVar[str] = "manual"


@dataclass(frozen=True, kw_only=True)
class StaticDiscovery:
    """``cluster.static.*``: a fixed list of seed nodes."""

    strategy: ClassVar[str] = "static"
    seeds: tuple[str, ...] = _default("cluster.static.seeds")


@dataclass(frozen=True, kw_only=True)
class McastDiscovery:
    """``cluster.mcast.*``: UDP multicast pings and pongs."""

    strategy: ClassVar[str] = "mcast"
    addr: str = _default("cluster.mcast.addr")
    ports: tuple[int, ...] = _default("cluster.mcast.ports")
    iface: str = _default("cluster.mcast.iface")
    ttl: int = _default("cluster.mcast.ttl")
    loop: bool = _default("cluster.mcast.loop")
    sndbuf: int = _default("cluster.mcast.sndbuf")
    recbuf: int = _default("cluster.mcast.recbuf")
    buffer: int = _default("cluster.mcast.buffer")


@dataclass(frozen=True, kw_only=True)
class DnsDiscovery:
    """``cluster.dns.*``: node names from A, AAAA or SRV records."""

    strategy: ClassVar[str] = "dns"
    name: str = _default("cluster.dns.name")
    app: str = _default("cluster.dns.app")
    type: str = _default("cluster.dns.type")
    nameserver: str | None = _default("cluster.dns.nameserver")
    port: int = _default("cluster.dns.port")


@dataclass(frozen=True, kw_only=True)
class EtcdDiscovery:
    """``cluster.etcd.*``: node keys registered in etcd."""

    strategy: ClassVar[str] = "etcd"
    server: tuple[str, ...] = _default("cluster.etcd.server")
    prefix: str = _default("cluster.etcd.prefix")
    node_ttl: int = _default("cluster.etcd.node_ttl")
    ssl_keyfile: str | None = _default("cluster.etcd.ssl.keyfile")
    ssl_certfile: str | None = _default("cluster.etcd.ssl.certfile")
    ssl_cacertfile: str | None = _default("cluster.etcd.ssl.cacertfile")
    version: str = _default("cluster.etcd.version")


@dataclass(frozen=True, kw_only=True)
class K8sDiscovery:
    """``cluster.k8s.*``: the endpoints of a Kubernetes service."""

    strategy: ClassVar[str] = "k8s"
    apiserver: str = _default("cluster.k8s.apiserver")
    service_name: str = _default("cluster.k8s.service_name")
    address_type: str = _default("cluster.k8s.address_type")
    app_name: str = _default("cluster.k8s.app_name")
    namespace: str = _default("cluster.k8s.namespace")
    suffix: str = _default("cluster.k8s.suffix")
    token_file: str = _default("cluster.k8s.token_file")
    cacertfile: str = _default("cluster.k8s.cacertfile")
    use_endpoint_slices: bool = _default("cluster.k8s.use_endpoint_slices")


Discovery = (
    ManualDiscovery | StaticDiscovery | McastDiscovery | DnsDiscovery | EtcdDiscovery | K8sDiscovery
)
_STRATEGY_CLASSES: dict[str, type] = {
    c.strategy: c
    for c in (
        ManualDiscovery,
        StaticDiscovery,
        McastDiscovery,
        DnsDiscovery,
        EtcdDiscovery,
        K8sDiscovery,
    )
}


@dataclass(frozen=True, kw_only=True)
class AutoclusterSettings:
    """``cluster.autocluster.*`` (pyekka): the autocluster loop's timings, in ms.

    ``{pyekka, [{autocluster, [...]}]}`` in a ``sys.config``; the defaults are the
    values ekka 0.8.1.9 hard-codes.
    """

    interval: int = _default("cluster.autocluster.interval")
    ignore_delay: int = _default("cluster.autocluster.ignore_delay")
    ready_timeout: int = _default("cluster.autocluster.ready_timeout")
    member_timeout: int = _default("cluster.autocluster.member_timeout")
    ping_timeout: int = _default("cluster.autocluster.ping_timeout")


@dataclass(frozen=True, kw_only=True)
class ClusterSettings:
    """ekka's cluster settings: ``cluster.*`` keys (``{ekka, [...]}`` in a ``sys.config``).

    ``name`` is ``None`` when a ``sys.config`` leaves ``cluster_name`` unset (see
    its entry in the reference); ``autoheal`` is ekka's ``cluster_autoheal`` value
    (``True``, ``False`` or a delay in ms); ``autoclean`` a time in ms or ``None``;
    ``autocluster`` the loop's timings (pyekka's keys, not ekka's).
    """

    name: str | None = _default("cluster.name")
    enable: bool = _default("cluster.enable")
    discovery: Discovery = field(default_factory=ManualDiscovery)
    autoheal: bool | int = _default("cluster.autoheal")
    autoclean: int | None = _default("cluster.autoclean")
    proto_dist: str = _default("cluster.proto_dist")
    autocluster: AutoclusterSettings = field(default_factory=AutoclusterSettings)

    @property
    def autoheal_delay_ms(self) -> int | None:
        """The autoheal delay in ms, or ``None`` when autoheal is off."""
        if self.autoheal is True:
            return AUTOHEAL_DEFAULT_DELAY_MS
        if self.autoheal is False:
            return None
        return self.autoheal


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything a pyekka node reads from its configuration."""

    node: NodeSettings = field(default_factory=NodeSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)


@dataclass(frozen=True)
class Value:
    """A key's value as read, and where it was written."""

    value: Any
    origin: Origin


def _key_label(key: Key, syntax: str) -> str:
    """How errors name ``key`` for a file of ``syntax`` (``"conf"`` or ``"config"``)."""
    return key.erl_name if syntax == "config" else key.name


def build_settings(
    values: Mapping[str, Value], *, syntax: str = "conf", source: Origin | None = None
) -> Settings:
    """The :class:`Settings` of read ``values`` (by ``.conf`` key), defaults filled in.

    ``syntax`` (``"conf"`` or ``"config"``) selects the defaults of that kind of
    file (see :mod:`pyekka.config.schema`). Keys of strategies other than the
    selected one are ignored, as ekka's schema translation does. A key the
    selected strategy needs but that is not set raises :class:`ConfigError`
    naming where the strategy was selected (``source`` if it was not).
    """

    if syntax not in ("conf", "config"):
        raise ValueError(f"syntax must be 'conf' or 'config', not {syntax!r}")

    def get(key: Key) -> Any:
        found = values.get(key.name)
        return found.value if found is not None else key.default_for(syntax)

    strategy = get(BY_NAME["cluster.discovery"])
    options: dict[str, Any] = {}
    for key in KEYS:
        if key.strategy != strategy:
            continue
        value = get(key)
        if value is REQUIRED:
            chosen = values.get("cluster.discovery")
            raise ConfigError(
                f"required by the {strategy} discovery strategy",
                origin=chosen.origin if chosen is not None else source,
                key=_key_label(key, syntax),
            )
        options[key.field] = value

    def section(prefix: str) -> dict[str, Any]:
        return {
            k.field: get(k)
            for k in KEYS
            if k.strategy is None
            and k.name.startswith(prefix)
            and k.name != "cluster.discovery"
            and (k.group is None or prefix == AUTOCLUSTER_GROUP)
        }

    return Settings(
        node=NodeSettings(**section("node.")),
        cluster=ClusterSettings(
            discovery=_STRATEGY_CLASSES[strategy](**options),
            autocluster=AutoclusterSettings(**section(AUTOCLUSTER_GROUP)),
            **section("cluster."),
        ),
    )
