"""The table of every configuration key: type, defaults, place in each syntax, doc.

This table is the single source of the configuration: the readers, the defaults of
:class:`~pyekka.config.settings.Settings` and the generated reference all come from
it. The ``cluster.*`` keys are those of ekka 0.8.1.9's cuttlefish schema
(``priv/ekka.schema``); the ``node.*`` keys, the ``cluster.autocluster.*`` keys
(the timings of the autocluster loop, which ekka hard-codes; their defaults are
ekka's values) and the keys marked as pyekka extensions are pyekka's own.

Defaults come in two columns because genuine ekka has two: ``default`` is what
ekka's cuttlefish schema (and its translation) gives when a ``.conf`` file leaves a
key out, ``app_default`` what ekka's code does when the application environment of
a ``sys.config`` file leaves it out. They differ for ``cluster.name``,
``cluster.autoheal``, ``cluster.mcast.*`` and ``cluster.etcd.*``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pyekka.config.values import (
    AtomText,
    Bytesize,
    CommaList,
    Duration,
    Enum,
    Flag,
    FlagOrDuration,
    Integer,
    IpAddress,
    NodeName,
    Text,
    Url,
    ValueType,
)
from pyekka.dist.names import EKKA_BASE_PORT

__all__ = [
    "AUTOCLUSTER_GROUP",
    "AUTOHEAL_DEFAULT_DELAY_MS",
    "ENV_PREFIX",
    "KEYS",
    "REQUIRED",
    "SAME",
    "STRATEGIES",
    "Key",
    "did_you_mean",
]

#: ekka's partition-confirmation delay when ``cluster_autoheal`` is ``true``.
AUTOHEAL_DEFAULT_DELAY_MS = 15_000
#: The ``.conf`` prefix of the autocluster-loop timings (``ClusterSettings.autocluster``).
AUTOCLUSTER_GROUP = "cluster.autocluster."
#: Environment variables ``PYEKKA_<KEY>`` override keys (``.`` written ``__``).
ENV_PREFIX = "PYEKKA_"
#: The discovery strategies, in ekka's order.
STRATEGIES = ("manual", "static", "mcast", "dns", "etcd", "k8s")
#: Kubernetes' in-cluster service-account directory (read by ekka's k8s strategy).
K8S_SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: The key has no default: the strategy that uses it needs it set.
REQUIRED: Any = _Marker("REQUIRED")
#: ``app_default`` only: the same as ``default``.
SAME: Any = _Marker("SAME")


@dataclass(frozen=True)
class Key:
    """One configuration key.

    ``name`` is the ``.conf`` key; ``app`` and ``path`` its place in a ``sys.config``
    file (``{App, [{path[0], ...}]}``, the strategy options nested under
    ``cluster_discovery``); ``strategy`` the discovery strategy it configures;
    ``ekka`` whether genuine ekka 0.8.1.9 knows it; ``group`` the sub-section of the
    cluster settings that holds it (``autocluster``), if any.
    """

    name: str
    type: ValueType
    doc: str
    default: Any = REQUIRED
    app_default: Any = SAME
    app: str = "ekka"
    path: tuple[str, ...] = ()
    strategy: str | None = None
    ekka: bool = True
    group: str | None = None

    def default_for(self, syntax: str) -> Any:
        """The default of this key in a ``"conf"`` or ``"config"`` file."""
        if syntax == "config" and self.app_default is not SAME:
            return self.app_default
        return self.default

    @property
    def field(self) -> str:
        """The attribute of the settings object that holds this key."""
        parts = self.name.split(".")
        return "_".join(parts[2:] if self.strategy or self.group else parts[1:])

    @property
    def env_var(self) -> str:
        """The environment variable that overrides this key."""
        return ENV_PREFIX + self.name.upper().replace(".", "__")

    @property
    def erl_name(self) -> str:
        """This key's place in a ``sys.config`` file, dotted: ``ekka.cluster_name``."""
        return ".".join((self.app, *self.path))


def _node(name: str, type: ValueType, doc: str, default: Any, *, path: str = "") -> Key:
    return Key(f"node.{name}", type, doc, default, app="pyekka", path=(path or name,), ekka=False)


def _cluster(
    name: str, path: str, type: ValueType, doc: str, default: Any, app_default: Any = SAME
) -> Key:
    return Key(f"cluster.{name}", type, doc, default, app_default, path=(path,))


def _autocluster(name: str, doc: str, default_ms: int) -> Key:
    """A timing of the autocluster loop: ``{pyekka, [{autocluster, [{Name, Ms}]}]}``."""
    return Key(
        f"{AUTOCLUSTER_GROUP}{name}",
        Duration(minimum=1),
        doc,
        default_ms,
        app="pyekka",
        path=("autocluster", name),
        ekka=False,
        group="autocluster",
    )


def _option(
    strategy: str,
    name: str,
    type: ValueType,
    doc: str,
    default: Any = REQUIRED,
    app_default: Any = SAME,
    *,
    ekka: bool = True,
) -> Key:
    path = ("cluster_discovery", strategy, *name.replace("ssl.", "ssl_options.").split("."))
    return Key(
        f"cluster.{strategy}.{name}", type, doc, default, app_default, "ekka", path, strategy, ekka
    )


_PORT = Integer(1, 65535)
_FILE = Text("a file path", empty=False)

KEYS: tuple[Key, ...] = (
    # -- the node itself (pyekka) ---------------------------------------------------
    _node(
        "name",
        NodeName(own=True),
        "The node's name, `alive@host`. A bare `alive` takes this machine's host "
        "name; a host with a dot (or an IPv6 colon) makes a long-names node.",
        "pyekka@127.0.0.1",
        path="node_name",
    ),
    _node(
        "cookie",
        Text("a cookie", empty=False),
        "The distribution cookie. Unset: read `~/.erlang.cookie` as `erl` does.",
        None,
    ),
    _node(
        "data_dir",
        Text("a directory path", empty=False),
        "Directory for the node's files; relative paths are relative to the "
        "working directory of the node.",
        "data",
    ),
    _node(
        "epmd",
        Flag(),
        "`on`: register with EPMD and listen on `node.dist_port`. `off`: no EPMD; "
        "listen on ekka's port rule, `node.dist_base_port` + the trailing digits of "
        "the short name (as `-proto_dist ekka -epmd_module ekka_epmd`).",
        True,
    ),
    _node(
        "dist_port",
        Integer(0, 65535),
        "With `node.epmd = on`: the distribution listening port (0: any free port).",
        0,
    ),
    _node(
        "dist_base_port",
        Integer(1, 65535),
        "ekka's base port (kernel `inet_dist_base_port`), used with `node.epmd = off` "
        "for this node's port and for every peer's. All nodes must agree on it.",
        EKKA_BASE_PORT,
    ),
    _node(
        "dist_interface",
        IpAddress(),
        "The address the distribution listens on and connects from (kernel "
        "`inet_dist_use_interface`). Unset: all interfaces.",
        None,
    ),
    _node(
        "net_ticktime",
        Integer(1, unit=" (seconds)"),
        "OTP's `net_ticktime`, in seconds: a peer silent for about this long is "
        "considered down. Must match the other nodes.",
        60,
    ),
    # -- the cluster (ekka's schema) ---------------------------------------------------
    _cluster(
        "name",
        "cluster_name",
        AtomText(),
        "The cluster's name. mcast packets carry it and the receiver drops packets "
        "of another cluster; etcd paths contain it. Unset in a `sys.config`, ekka "
        "sends `undefined` in mcast packets but compares with `ekka` (so two such "
        "nodes never accept each other) and uses `ekka` in etcd paths.",
        "ekka",
        None,
    ),
    _cluster(
        "enable",
        "cluster_enable",
        Flag(),
        "Whether the node runs autocluster (discovery and join) at start.",
        True,
    ),
    _cluster(
        "discovery",
        "cluster_discovery",
        Enum(*STRATEGIES),
        "The discovery strategy: `manual` (no autocluster: joins are explicit), "
        "`static` (a seed list), `mcast` (UDP multicast), `dns` (A, AAAA or SRV "
        "records), `etcd`, `k8s` (the Kubernetes API). In a `sys.config` this is "
        "`{cluster_discovery, {Strategy, Options}}` with the strategy's options below.",
        "manual",
    ),
    _cluster(
        "autoheal",
        "cluster_autoheal",
        FlagOrDuration(),
        "Heal network partitions automatically: `on` (after "
        f"{AUTOHEAL_DEFAULT_DELAY_MS} ms), a delay such as `15s`, or `off`. "
        "ekka's schema defaults to `off`, its code (a `sys.config` without the "
        "key) to enabled.",
        False,
        True,
    ),
    _cluster(
        "autoclean",
        "cluster_autoclean",
        Duration(minimum=1),
        "Remove a member that has been down for longer than this (e.g. `5m`); "
        "checked every quarter of it. Unset: never.",
        None,
    ),
    _cluster(
        "proto_dist",
        "proto_dist",
        Enum("inet_tcp", "inet6_tcp", "inet_tls"),
        "The distribution carrier of ekka's epmd-less mode: TCP over IPv4 or IPv6, or TLS.",
        "inet_tcp",
    ),
    # -- the autocluster loop (pyekka: ekka hard-codes these) ----------------------------
    _autocluster(
        "interval",
        "Time between two autocluster rounds while the node is not in a cluster (ekka: 5 s).",
        5000,
    ),
    _autocluster(
        "ignore_delay",
        "A strategy without a lock (static, dns, k8s, mcast) waits a random time "
        "between 1 ms and this before discovering (ekka: 3 s).",
        3000,
    ),
    _autocluster(
        "ready_timeout",
        "How long a round waits for the cluster's services to run before going on "
        "(ekka: 10 tries 1 s apart).",
        10_000,
    ),
    _autocluster(
        "member_timeout",
        "Timeout of the `ekka_membership:local_member()` calls that pick the oldest "
        "discovered node to join (ekka's multicall: 30 s).",
        30_000,
    ),
    _autocluster(
        "ping_timeout",
        "Timeout of the ping that tells whether a discovered node is alive (ekka's "
        "`net_adm:ping/1` is bounded by the kernel's connection setup time).",
        10_000,
    ),
    # -- static -------------------------------------------------------------------------
    _option(
        "static",
        "seeds",
        CommaList(NodeName(), what="node names"),
        "The nodes to try to join, e.g. `ekka1@127.0.0.1,ekka2@127.0.0.1`.",
        (),
    ),
    # -- mcast --------------------------------------------------------------------------
    _option(
        "mcast",
        "addr",
        IpAddress(multicast=True),
        "The multicast group pings and pongs are sent to.",
        "239.192.0.1",
        REQUIRED,
    ),
    _option(
        "mcast",
        "ports",
        CommaList(_PORT, min_items=1, what="UDP ports"),
        "Pings go to every port of the list; the node binds the first it can.",
        (4369,),
        REQUIRED,
    ),
    _option(
        "mcast",
        "iface",
        IpAddress(),
        "The interface that sends and joins the group.",
        "0.0.0.0",
    ),
    _option(
        "mcast",
        "ttl",
        Integer(0, 255),
        "The multicast TTL (ekka's schema: 255, its code: 1).",
        255,
        1,
    ),
    _option("mcast", "loop", Flag(), "Multicast loopback (needed for nodes on one host).", True),
    _option(
        "mcast",
        "sndbuf",
        Bytesize(),
        "Send buffer size. In ekka's schema but dropped by its translation: "
        "genuine ekka never applies it.",
        16 * 1024,
    ),
    _option(
        "mcast",
        "recbuf",
        Bytesize(),
        "Receive buffer size; in ekka's schema, never applied by genuine ekka.",
        16 * 1024,
    ),
    _option(
        "mcast",
        "buffer",
        Bytesize(),
        "Driver buffer size; in ekka's schema, never applied by genuine ekka.",
        32 * 1024,
    ),
    # -- dns ----------------------------------------------------------------------------
    _option("dns", "name", Text("a domain name", empty=False), "The domain name to resolve."),
    _option(
        "dns",
        "app",
        Text("a node-name prefix", empty=False),
        "The alive part of the discovered node names: `app@<address>` for A/AAAA "
        "records, `app@<target>` for SRV records.",
    ),
    _option(
        "dns",
        "type",
        Enum("a", "aaaa", "srv"),
        "The record type to look up (`aaaa` is a pyekka extension, as in newer ekka).",
        "a",
    ),
    _option(
        "dns",
        "nameserver",
        IpAddress(),
        "Ask this DNS server instead of the system resolver.",
        None,
        ekka=False,
    ),
    _option(
        "dns",
        "port",
        _PORT,
        "The port of `cluster.dns.nameserver`.",
        53,
        ekka=False,
    ),
    # -- etcd ---------------------------------------------------------------------------
    _option(
        "etcd",
        "server",
        CommaList(Url(), min_items=1, what="URLs"),
        "The etcd servers, e.g. `http://127.0.0.1:2379`; each request picks one at random.",
    ),
    _option(
        "etcd",
        "prefix",
        Text("a key prefix", empty=False),
        "The first segment of the keys: `<prefix>/<cluster.name>/nodes/<node>`. "
        "ekka's schema defaults it to `emqcl`; ekka's code, when the option is "
        "missing, writes the text `undefined`.",
        "emqcl",
        "undefined",
    ),
    _option(
        "etcd",
        "node_ttl",
        Duration(minimum=1000),
        "Time to live of the node's key, refreshed every half of it.",
        60_000,
        REQUIRED,
    ),
    _option("etcd", "ssl.keyfile", _FILE, "TLS client private key (PEM).", None),
    _option("etcd", "ssl.certfile", _FILE, "TLS client certificate (PEM).", None),
    _option(
        "etcd",
        "ssl.cacertfile",
        _FILE,
        "CA certificates (PEM) to verify the servers with.",
        None,
    ),
    _option(
        "etcd",
        "version",
        Enum("v2", "v3"),
        "The etcd API: `v2` (the keys layout of ekka 0.8) or `v3` (through etcd's "
        "JSON gateway, with leases, as in newer ekka).",
        "v2",
        ekka=False,
    ),
    # -- k8s ----------------------------------------------------------------------------
    _option(
        "k8s",
        "apiserver",
        Url(),
        "The Kubernetes API server, e.g. `https://kubernetes.default.svc`.",
    ),
    _option(
        "k8s",
        "service_name",
        Text("a service name", empty=False),
        "The service whose endpoints are the cluster's nodes.",
    ),
    _option(
        "k8s",
        "address_type",
        Enum("ip", "dns", "hostname"),
        "How the host part of node names is built from an endpoint: `ip` (the IP), "
        "`dns` (the IP with dashes, then `.<namespace>.<suffix>`), `hostname` "
        "(then `.<service_name>.<namespace>.<suffix>`); the suffix parts only with "
        "a non-empty `cluster.k8s.suffix`.",
        "ip",
    ),
    _option(
        "k8s",
        "app_name",
        Text("a node-name prefix", empty=False),
        "The alive part of the discovered node names.",
        "ekka",
    ),
    _option(
        "k8s", "namespace", Text("a namespace", empty=False), "The service's namespace.", "default"
    ),
    _option(
        "k8s",
        "suffix",
        Text(),
        "Domain suffix for the `dns` and `hostname` address types, e.g. `svc.cluster.local`.",
        "",
    ),
    _option(
        "k8s",
        "token_file",
        _FILE,
        "The service-account token sent as `Authorization: Bearer`.",
        f"{K8S_SERVICE_ACCOUNT}/token",
        ekka=False,
    ),
    _option(
        "k8s",
        "cacertfile",
        _FILE,
        "CA certificate of the API server; when the file does not exist, TLS is "
        "not verified, as in ekka.",
        f"{K8S_SERVICE_ACCOUNT}/ca.crt",
        ekka=False,
    ),
    _option(
        "k8s",
        "use_endpoint_slices",
        Flag(),
        "Read the EndpointSlices API (`discovery.k8s.io/v1`, ready endpoints only) "
        "instead of Endpoints.",
        False,
        ekka=False,
    ),
)

#: The keys by ``.conf`` name.
BY_NAME: dict[str, Key] = {k.name: k for k in KEYS}
#: The keys by ``(app, *path)`` in a ``sys.config`` file.
BY_PATH: dict[tuple[str, ...], Key] = {(k.app, *k.path): k for k in KEYS}
#: The keys by environment variable.
BY_ENV: dict[str, Key] = {k.env_var: k for k in KEYS}


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
