"""Settings -> strategy (``pyekka.discovery.factory``): every ``etc/`` example in both
syntaxes, the unit and name differences between the configuration and the strategy
classes, and strategy options refused with the key named. Then ``pyekka start -c
FILE``'s settings: which flags override the file, and configuration errors."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from pyekka.cli import build_parser, main
from pyekka.config import ConfigError, load_config
from pyekka.discovery import (
    DnsStrategy,
    EtcdV2Strategy,
    EtcdV3Strategy,
    K8sStrategy,
    McastStrategy,
    StaticStrategy,
)
from pyekka.discovery.factory import make_strategy
from pyekka.discovery.run import given_flags, load_start_settings, node_spec
from pyekka.dist.names import EKKA_BASE_PORT

ETC = Path(__file__).resolve().parents[1] / "etc"
NODE = "n1@127.0.0.1"

EXPECTED = {
    "manual": type(None),
    "static": StaticStrategy,
    "mcast": McastStrategy,
    "dns": DnsStrategy,
    "etcd": EtcdV2Strategy,
    "k8s": K8sStrategy,
}


def _strategy(tmp_path: Path, text: str, suffix: str = ".conf") -> object:
    path = tmp_path / f"node{suffix}"
    path.write_text(text)
    return make_strategy(load_config(path, environ={}).cluster, node=NODE, cookie="secret")


@pytest.mark.parametrize("suffix", [".conf", ".config"])
@pytest.mark.parametrize("strategy", sorted(EXPECTED))
async def test_every_example_makes_its_strategy(strategy: str, suffix: str) -> None:
    settings = load_config(ETC / f"{strategy}{suffix}", environ={})
    made = make_strategy(settings.cluster, node=NODE, cookie="secret")
    assert type(made) is EXPECTED[strategy]
    if made is not None:
        assert made.name == strategy
        await made.close()


async def test_etcd_units_tls_and_version(tmp_path: Path) -> None:
    for name in ("ca.pem", "client.pem", "client-key.pem"):
        (tmp_path / name).write_text("not a certificate")
    conf = (
        "cluster.name = c1\ncluster.discovery = etcd\n"
        "cluster.etcd.server = http://127.0.0.1:2379,https://127.0.0.1:2380\n"
        "cluster.etcd.prefix = pfx\ncluster.etcd.node_ttl = 30s\n"
        "cluster.etcd.version = v3\n"
    )
    made = _strategy(tmp_path, conf)
    assert isinstance(made, EtcdV3Strategy)
    assert made.options.node_ttl == 30.0  # ms in the configuration, seconds here
    assert made.options.servers == ("http://127.0.0.1:2379", "https://127.0.0.1:2380")
    assert (made.options.prefix, made.cluster, made.options.tls) == ("pfx", "c1", None)
    await made.close()
    # the three ssl files become one TlsOptions; unusable ones name the key
    tls = (
        f"cluster.etcd.ssl.cacertfile = {tmp_path / 'ca.pem'}\n"
        f"cluster.etcd.ssl.certfile = {tmp_path / 'client.pem'}\n"
        f"cluster.etcd.ssl.keyfile = {tmp_path / 'client-key.pem'}\n"
    )
    with pytest.raises(ConfigError, match=r"^cluster\.etcd: etcd TLS options unusable"):
        _strategy(tmp_path, conf + tls)


async def test_etcd_v2_without_cluster_name_in_a_sys_config(tmp_path: Path) -> None:
    made = _strategy(
        tmp_path,
        '[{ekka, [{cluster_discovery, {etcd, [{server, ["http://127.0.0.1:2379"]},'
        " {node_ttl, 2000}]}}]}].",
        ".config",
    )
    assert isinstance(made, EtcdV2Strategy)
    # ekka's code defaults: prefix undefined, cluster segment ekka, ttl 2 s
    assert made.nodes_path == "v2/keys/undefined/ekka/nodes"
    assert made.options.node_ttl == 2.0
    await made.close()


def test_dns_type_name_and_nameserver(tmp_path: Path) -> None:
    made = _strategy(
        tmp_path,
        "cluster.discovery = dns\ncluster.dns.name = _ekka._tcp.example.org\n"
        "cluster.dns.app = emqx\ncluster.dns.type = srv\n"
        "cluster.dns.nameserver = 127.0.0.1\ncluster.dns.port = 5353\n",
    )
    assert isinstance(made, DnsStrategy)
    assert (made.record_type, made.domain, made.app) == ("srv", "_ekka._tcp.example.org", "emqx")
    assert (made.nameserver, made.port) == ("127.0.0.1", 5353)


def test_k8s_names(tmp_path: Path) -> None:
    made = _strategy(
        tmp_path,
        "cluster.discovery = k8s\ncluster.k8s.apiserver = https://10.0.0.1:6443/\n"
        "cluster.k8s.service_name = emqx\ncluster.k8s.address_type = hostname\n"
        "cluster.k8s.namespace = prod\ncluster.k8s.suffix = svc.cluster.local\n"
        "cluster.k8s.use_endpoint_slices = on\n"
        f"cluster.k8s.token_file = {tmp_path / 'token'}\n"
        f"cluster.k8s.cacertfile = {tmp_path / 'ca.crt'}\n",
    )
    assert isinstance(made, K8sStrategy)
    o = made.options
    assert (o.apiserver, o.service_name, o.address_type, o.namespace, o.suffix) == (
        "https://10.0.0.1:6443",
        "emqx",
        "hostname",
        "prod",
        "svc.cluster.local",
    )
    assert o.use_endpoint_slices is True
    assert (o.token_path, o.ca_path) == (tmp_path / "token", tmp_path / "ca.crt")
    assert o.app_name == "ekka"


def test_mcast_options_and_cluster_name(tmp_path: Path) -> None:
    made = _strategy(
        tmp_path,
        "cluster.discovery = mcast\ncluster.mcast.addr = 239.1.2.3\n"
        "cluster.mcast.ports = 5000,5001\ncluster.mcast.iface = 127.0.0.1\n"
        "cluster.mcast.ttl = 3\ncluster.mcast.loop = off\n",
    )
    assert isinstance(made, McastStrategy)
    o = made.options
    assert (o.addr, o.ports, o.iface, o.ttl, o.loop) == (
        "239.1.2.3",
        (5000, 5001),
        "127.0.0.1",
        3,
        False,
    )
    # the .conf default of cluster.name, sent and expected
    assert (made.responder.sent_cluster, made.responder.expected_cluster) == ("ekka", "ekka")


def test_sys_config_mcast_without_cluster_name_sends_undefined(tmp_path: Path) -> None:
    made = _strategy(
        tmp_path,
        "[{ekka, [{cluster_discovery, {mcast, [{addr, {239,192,0,1}}, {ports, [4369]}]}}]}].",
        ".config",
    )
    assert isinstance(made, McastStrategy)
    # unset in a sys.config: ekka sends undefined but compares with ekka
    assert (made.responder.sent_cluster, made.responder.expected_cluster) == ("undefined", "ekka")


# ---------------------------------------------------------------- pyekka start -c FILE


def _start_args(*argv: str) -> tuple[argparse.Namespace, dict[str, Any]]:
    args = build_parser().parse_args(["start", *argv])
    return args, given_flags(args)


def test_flags_override_the_file_and_only_when_given(tmp_path: Path) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text(
        "node.name = n7@127.0.0.1\nnode.cookie = fromfile\nnode.epmd = on\n"
        "node.dist_base_port = 5000\nnode.net_ticktime = 20\ncluster.name = filecl\n"
        "cluster.autoheal = on\ncluster.discovery = static\n"
        "cluster.static.seeds = n7@127.0.0.1\n"
    )
    args, given = _start_args("-c", str(conf))
    assert given == {}
    settings = load_start_settings(args, given, environ={})
    assert (settings.node.dist_base_port, settings.node.net_ticktime) == (5000, 20)
    assert (settings.node.cookie, settings.cluster.name) == ("fromfile", "filecl")

    args, given = _start_args(
        "-c",
        str(conf),
        "--name",
        "m8@127.0.0.1",
        "--cookie",
        "fromflag",
        "--no-epmd",
        "--net-ticktime",
        "30",
        "--autoheal",
        "off",
        "--cluster-name",
        "flagcl",
        "--set",
        "cluster.static.seeds=a@h,b@h",
        "--set",
        "cluster.name=setcl",  # --set wins over the flag
    )
    settings = load_start_settings(args, given, environ={"PYEKKA_NODE__COOKIE": "fromenv"})
    assert settings.node.name == "m8@127.0.0.1" and settings.node.cookie == "fromflag"
    assert settings.node.epmd is False and settings.node.net_ticktime == 30
    assert settings.node.dist_base_port == 5000  # not given: the file's
    assert settings.cluster.autoheal is False and settings.cluster.name == "setcl"
    assert settings.cluster.discovery.seeds == ("a@h", "b@h")
    spec = node_spec(settings, cookie="c", long_names=True)
    assert (spec.name, spec.epmd, spec.net_ticktime, spec.long_names) == (
        "m8@127.0.0.1",
        False,
        30.0,
        True,
    )


def test_without_a_file_the_flags_keep_their_defaults() -> None:
    args, given = _start_args("--name", "a@127.0.0.1")
    assert given == {"name": "a@127.0.0.1"}
    assert (args.config, args.dist_base_port, args.net_ticktime, args.epmd) == (
        None,
        EKKA_BASE_PORT,
        60.0,
        True,
    )


@pytest.mark.parametrize(
    ("text", "extra", "message"),
    [
        ("cluster.mcast.ttl = 300\n", [], ":1: cluster.mcast.ttl: "),
        ("cluster.discovery = etcd\n", [], "cluster.etcd.server: required by the etcd"),
        ("", ["--set", "cluster.discovery"], "--set expects KEY=VALUE"),
        ("", ["--set", "cluster.nope=1"], "command line: cluster.nope: unknown key"),
        ("", ["--net-ticktime", "0.5"], "command line: node.net_ticktime"),
    ],
)
def test_bad_configuration_is_a_usage_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    extra: list[str],
    message: str,
) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    assert main(["start", "-c", str(conf), *extra]) == 2
    assert message in capsys.readouterr().err
