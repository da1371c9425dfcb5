"""Shared by the configuration tests: a non-default sample value of every key.

``SAMPLES[key] = (conf_text, erlang_text, expected)``: the value written in a
``.conf`` file and as an Erlang term in a ``sys.config`` file, and the value the
settings object must hold for both. ``test_every_key_has_a_sample`` keeps this
table complete, so a new key cannot go untested.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pyekka.config import Settings
from pyekka.config.schema import BY_NAME, Key

SAMPLES: dict[str, tuple[str, str, Any]] = {
    "node.name": ("n7@10.1.2.3", "'n7@10.1.2.3'", "n7@10.1.2.3"),
    "node.cookie": ("s3cret", "s3cret", "s3cret"),
    "node.data_dir": ("/var/lib/pyekka", '"/var/lib/pyekka"', "/var/lib/pyekka"),
    "node.epmd": ("off", "false", False),
    "node.dist_port": ("4999", "4999", 4999),
    "node.dist_base_port": ("5370", "5370", 5370),
    "node.dist_interface": ("127.0.0.1", "{127,0,0,1}", "127.0.0.1"),
    "node.net_ticktime": ("20", "20", 20),
    "cluster.name": ("mycl", "mycl", "mycl"),
    "cluster.enable": ("off", "false", False),
    "cluster.discovery": ("static", "{static, []}", "static"),
    "cluster.autoheal": ("20s", "20000", 20000),
    "cluster.autoclean": ("1h30m", "5400000", 5_400_000),
    "cluster.proto_dist": ("inet6_tcp", "inet6_tcp", "inet6_tcp"),
    "cluster.autocluster.interval": ("200ms", "200", 200),
    "cluster.autocluster.ignore_delay": ("1.5s", "1500", 1500),
    "cluster.autocluster.ready_timeout": ("2s", "2000", 2000),
    "cluster.autocluster.member_timeout": ("1m", "60000", 60_000),
    "cluster.autocluster.ping_timeout": ("750ms", "750", 750),
    "cluster.static.seeds": (
        "a@h1, b@h2",
        "['a@h1', 'b@h2']",
        ("a@h1", "b@h2"),
    ),
    "cluster.mcast.addr": ("239.1.2.3", "{239,1,2,3}", "239.1.2.3"),
    "cluster.mcast.ports": ("5000,5001", "[5000, 5001]", (5000, 5001)),
    "cluster.mcast.iface": ("127.0.0.1", "{127,0,0,1}", "127.0.0.1"),
    "cluster.mcast.ttl": ("3", "3", 3),
    "cluster.mcast.loop": ("off", "false", False),
    "cluster.mcast.sndbuf": ("64KB", "65536", 65536),
    "cluster.mcast.recbuf": ("1MB", "1048576", 1_048_576),
    "cluster.mcast.buffer": ("1000", "1000", 1000),
    "cluster.dns.name": ("nodes.example.com", '"nodes.example.com"', "nodes.example.com"),
    "cluster.dns.app": ("emqx", '"emqx"', "emqx"),
    "cluster.dns.type": ("srv", "srv", "srv"),
    "cluster.dns.nameserver": ("::1", '"::1"', "::1"),
    "cluster.dns.port": ("5353", "5353", 5353),
    "cluster.etcd.server": (
        "http://10.0.0.1:2379,https://10.0.0.2:2379",
        '["http://10.0.0.1:2379", <<"https://10.0.0.2:2379">>]',
        ("http://10.0.0.1:2379", "https://10.0.0.2:2379"),
    ),
    "cluster.etcd.prefix": ("myprefix", '"myprefix"', "myprefix"),
    "cluster.etcd.node_ttl": ("30s", "30000", 30_000),
    "cluster.etcd.ssl.keyfile": ("k.pem", '"k.pem"', "k.pem"),
    "cluster.etcd.ssl.certfile": ("c.pem", '"c.pem"', "c.pem"),
    "cluster.etcd.ssl.cacertfile": ("ca.pem", '"ca.pem"', "ca.pem"),
    "cluster.etcd.version": ("v3", "v3", "v3"),
    "cluster.k8s.apiserver": (
        "https://10.0.0.9:6443",
        '"https://10.0.0.9:6443"',
        "https://10.0.0.9:6443",
    ),
    "cluster.k8s.service_name": ("emqx-headless", '"emqx-headless"', "emqx-headless"),
    "cluster.k8s.address_type": ("hostname", "hostname", "hostname"),
    "cluster.k8s.app_name": ("emqx", '"emqx"', "emqx"),
    "cluster.k8s.namespace": ("prod", '"prod"', "prod"),
    "cluster.k8s.suffix": ("svc.cluster.local", '"svc.cluster.local"', "svc.cluster.local"),
    "cluster.k8s.token_file": ("/t/token", '"/t/token"', "/t/token"),
    "cluster.k8s.cacertfile": ("/t/ca.crt", '"/t/ca.crt"', "/t/ca.crt"),
    "cluster.k8s.use_endpoint_slices": ("on", "true", True),
}

#: Values for the keys a strategy requires, so that a sample of another key of the
#: same strategy can be loaded on its own.
REQUIRED_SAMPLES = {
    "mcast": ("cluster.mcast.addr", "cluster.mcast.ports"),
    "dns": ("cluster.dns.name", "cluster.dns.app"),
    "etcd": ("cluster.etcd.server", "cluster.etcd.node_ttl"),
    "k8s": ("cluster.k8s.apiserver", "cluster.k8s.service_name"),
}


def strict_equal(a: Any, b: Any) -> bool:
    """``a == b`` where also the types agree at every level (``True`` is not ``1``)."""
    if type(a) is not type(b):
        return False
    if dataclasses.is_dataclass(a):
        return all(
            strict_equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
        )
    if isinstance(a, tuple):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def setting_of(settings: Settings, key: Key) -> Any:
    """The value ``settings`` holds for ``key``."""
    if key.name == "cluster.discovery":
        return settings.cluster.discovery.strategy
    if key.strategy is not None:
        return getattr(settings.cluster.discovery, key.field)
    if key.group is not None:
        return getattr(getattr(settings.cluster, key.group), key.field)
    section = settings.node if key.name.startswith("node.") else settings.cluster
    return getattr(section, key.field)


def conf_lines(key: Key) -> list[str]:
    """``.conf`` lines that set ``key`` to its sample (selecting its strategy)."""
    lines = []
    if key.strategy is not None:
        lines.append(f"cluster.discovery = {key.strategy}")
        for other in REQUIRED_SAMPLES.get(key.strategy, ()):
            if other != key.name:
                lines.append(f"{other} = {SAMPLES[other][0]}")
    lines.append(f"{key.name} = {SAMPLES[key.name][0]}")
    return lines


def erlang_text(key: Key) -> str:
    """A ``sys.config`` text that sets ``key`` to its sample (selecting its strategy)."""
    if key.name == "cluster.discovery":
        return f"[{{ekka, [{{cluster_discovery, {SAMPLES[key.name][1]}}}]}}]."
    if key.strategy is None:
        entry = f"{{{key.path[-1]}, {SAMPLES[key.name][1]}}}"
        for outer in reversed(key.path[:-1]):  # {pyekka, [{autocluster, [...]}]}
            entry = f"{{{outer}, [{entry}]}}"
        return f"[{{{key.app}, [{entry}]}}]."
    options = []
    for other in REQUIRED_SAMPLES.get(key.strategy, ()):
        if other != key.name:
            options.append(f"{{{BY_NAME[other].path[2]}, {SAMPLES[other][1]}}}")
    option = f"{{{key.path[-1]}, {SAMPLES[key.name][1]}}}"
    if len(key.path) == 4:  # ssl_options
        option = f"{{{key.path[2]}, [{option}]}}"
    options.append(option)
    return f"[{{ekka, [{{cluster_discovery, {{{key.strategy}, [{', '.join(options)}]}}}}]}}]."
