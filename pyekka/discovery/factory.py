"""The discovery strategy a configuration selects (``cluster.discovery`` and its options).

>>> settings = load_config("etc/etcd.conf", environ={})
>>> strategy = make_strategy(settings.cluster, node="n1@127.0.0.1", cookie="secret")

The configuration keeps ekka's units and names; the strategies take Python's:

* etcd ``node_ttl`` is read in milliseconds and given to :class:`EtcdOptions` in
  seconds; the three ``ssl.*`` files become one :class:`TlsOptions`;
* dns ``type`` is :class:`DnsStrategy`'s ``record_type``, ``name`` its ``domain``;
* mcast ``sndbuf``/``recbuf``/``buffer`` are dropped, as ekka's schema translation
  drops them;
* the cluster name is handed to the strategies that use it (mcast, etcd), ``None``
  (unset in a ``sys.config``) included, so that they apply ekka's defaults.
"""

from __future__ import annotations

from pyekka.config.errors import ConfigError
from pyekka.config.settings import (
    ClusterSettings,
    Discovery,
    DnsDiscovery,
    EtcdDiscovery,
    K8sDiscovery,
    ManualDiscovery,
    McastDiscovery,
    StaticDiscovery,
)
from pyekka.discovery._http import TlsOptions
from pyekka.discovery.dns import DnsStrategy
from pyekka.discovery.etcd import EtcdOptions, etcd_strategy
from pyekka.discovery.k8s import K8sOptions, K8sStrategy
from pyekka.discovery.mcast import McastOptions, McastStrategy
from pyekka.discovery.static import StaticStrategy
from pyekka.discovery.strategy import Strategy

__all__ = ["etcd_options", "k8s_options", "make_strategy", "mcast_options"]


def mcast_options(d: McastDiscovery) -> McastOptions:
    """The socket options of ``cluster.mcast.*``."""
    return McastOptions(addr=d.addr, ports=d.ports, iface=d.iface, ttl=d.ttl, loop=d.loop)


def etcd_options(d: EtcdDiscovery) -> EtcdOptions:
    """``cluster.etcd.*`` as :class:`EtcdOptions` (``node_ttl`` ms -> s, TLS files)."""
    files = (d.ssl_cacertfile, d.ssl_certfile, d.ssl_keyfile)
    tls = None
    if any(f is not None for f in files):
        tls = TlsOptions(cacertfile=files[0], certfile=files[1], keyfile=files[2])
    return EtcdOptions(
        servers=d.server,
        prefix=d.prefix,
        node_ttl=d.node_ttl / 1000,
        version=d.version,
        tls=tls,
    )


def k8s_options(d: K8sDiscovery) -> K8sOptions:
    """``cluster.k8s.*`` as :class:`K8sOptions`."""
    return K8sOptions(
        apiserver=d.apiserver,
        service_name=d.service_name,
        namespace=d.namespace,
        address_type=d.address_type,
        app_name=d.app_name,
        suffix=d.suffix,
        use_endpoint_slices=d.use_endpoint_slices,
        token_file=d.token_file,
        cacertfile=d.cacertfile,
    )


def _build(d: Discovery, cluster_name: str | None, node: str, cookie: str) -> Strategy | None:
    match d:
        case ManualDiscovery():
            return None
        case StaticDiscovery():
            return StaticStrategy(d.seeds)
        case McastDiscovery():
            return McastStrategy(node, cookie, cluster_name, mcast_options(d))
        case DnsDiscovery():
            return DnsStrategy(
                d.name, d.app, d.type, node=node, nameserver=d.nameserver, port=d.port
            )
        case EtcdDiscovery():
            return etcd_strategy(node, etcd_options(d), cluster_name)
        case K8sDiscovery():
            return K8sStrategy(k8s_options(d))
    raise TypeError(f"not a discovery setting: {d!r}")


def make_strategy(cluster: ClusterSettings, *, node: str, cookie: str) -> Strategy | None:
    """The strategy of ``cluster.discovery`` for the local ``node`` (``None``: manual).

    ``cookie`` is the node's cookie (mcast packets carry its hash). Options the
    strategy refuses raise :class:`ConfigError` naming ``cluster.<strategy>``.
    """
    discovery = cluster.discovery
    try:
        return _build(discovery, cluster.name, node, cookie)
    except ValueError as exc:
        raise ConfigError(str(exc), key=f"cluster.{discovery.strategy}") from None
