"""Discovery strategies: how a node finds its cluster peers (ekka's ``cluster_discovery``).

One module per strategy, all behind :class:`~pyekka.discovery.strategy.Strategy`
(``discover``, ``lock``, ``unlock``, ``register``, ``unregister``; errors are
:class:`DiscoveryError`):

* :class:`StaticStrategy` — a seed list;
* :class:`McastStrategy` — UDP multicast pings, wire-compatible with ekka 0.8;
* :class:`DnsStrategy` — A, AAAA or SRV records;
* :func:`etcd_strategy` — etcd v2 keys (ekka 0.8) or v3 through the JSON gateway;
* :class:`K8sStrategy` — the Kubernetes Endpoints (or EndpointSlice) API.

``manual`` discovery is the absence of a strategy.
"""

from pyekka.discovery._http import TlsOptions
from pyekka.discovery.dns import DnsStrategy
from pyekka.discovery.etcd import EtcdOptions, EtcdV2Strategy, EtcdV3Strategy, etcd_strategy
from pyekka.discovery.k8s import K8sOptions, K8sStrategy
from pyekka.discovery.mcast import McastOptions, McastStrategy
from pyekka.discovery.static import StaticStrategy
from pyekka.discovery.strategy import DiscoveryError, Outcome, Strategy

__all__ = [
    "DiscoveryError",
    "DnsStrategy",
    "EtcdOptions",
    "EtcdV2Strategy",
    "EtcdV3Strategy",
    "K8sOptions",
    "K8sStrategy",
    "McastOptions",
    "McastStrategy",
    "Outcome",
    "StaticStrategy",
    "Strategy",
    "TlsOptions",
    "etcd_strategy",
]
