"""The cuttlefish-style ``.conf`` reader: syntax, every key, defaults, errors with file:line."""

from __future__ import annotations

import pytest

from pyekka.config import (
    ConfigError,
    McastDiscovery,
    Settings,
    StaticDiscovery,
    build_settings,
    read_conf,
)
from pyekka.config.schema import BY_NAME, KEYS, REQUIRED
from tests.config_samples import SAMPLES, conf_lines, setting_of, strict_equal


def settings_of(text: str) -> Settings:
    return build_settings(read_conf(text, "etc/a.conf"), syntax="conf")


def test_every_key_has_a_sample() -> None:
    assert set(SAMPLES) == set(BY_NAME)


@pytest.mark.parametrize("name", list(BY_NAME))
def test_every_key_is_read(name: str) -> None:
    key = BY_NAME[name]
    settings = settings_of("\n".join(conf_lines(key)) + "\n")
    assert strict_equal(setting_of(settings, key), SAMPLES[name][2])
    assert not strict_equal(SAMPLES[name][2], key.default), "the sample must not be the default"


def test_defaults_are_ekka_schema_defaults() -> None:
    settings = settings_of("")
    assert strict_equal(settings, Settings())
    cluster = settings.cluster
    assert cluster.name == "ekka" and cluster.enable is True
    assert cluster.discovery.strategy == "manual"
    assert cluster.autoheal is False and cluster.autoheal_delay_ms is None
    assert cluster.autoclean is None and cluster.proto_dist == "inet_tcp"
    assert settings.node.epmd is True and settings.node.dist_base_port == 4370


def test_strategy_defaults_are_ekka_schema_defaults() -> None:
    mcast = settings_of("cluster.discovery = mcast").cluster.discovery
    assert strict_equal(
        mcast,
        McastDiscovery(
            addr="239.192.0.1", ports=(4369,), iface="0.0.0.0", ttl=255, loop=True,
            sndbuf=16384, recbuf=16384, buffer=32768,
        ),
    )  # fmt: skip
    assert settings_of("cluster.discovery = static").cluster.discovery == StaticDiscovery(seeds=())
    etcd = settings_of("cluster.discovery = etcd\ncluster.etcd.server = http://h:2379")
    assert etcd.cluster.discovery.prefix == "emqcl" and etcd.cluster.discovery.node_ttl == 60_000
    k8s = settings_of(
        "cluster.discovery = k8s\ncluster.k8s.apiserver = https://k\ncluster.k8s.service_name = s"
    ).cluster.discovery
    assert (k8s.namespace, k8s.address_type, k8s.app_name, k8s.suffix) == (
        "default",
        "ip",
        "ekka",
        "",
    )
    dns = settings_of("cluster.discovery = dns\ncluster.dns.name = n\ncluster.dns.app = a")
    assert dns.cluster.discovery.type == "a" and dns.cluster.discovery.port == 53


def test_every_default_is_a_valid_value() -> None:
    for key in KEYS:
        for default in (key.default, key.default_for("config")):
            if default is REQUIRED or default is None:
                continue
            assert strict_equal(key.type.from_text(key.type.to_text(default)), default), key.name
            assert strict_equal(key.type.from_term(key.type.to_term(default)), default), key.name


def test_syntax_comments_blanks_and_quotes() -> None:
    text = (
        "# a comment\n"
        "   ## indented comment\n"
        "\n"
        "\t \n"
        "node.name=n1@127.0.0.1   # trailing comment\n"
        "node.cookie = 'has # and  spaces '\n"
        'node.data_dir = "/tmp/x y"  # double quotes too\n'
        "cluster.k8s.suffix = ''\n"
        "cluster.name = first\r\n"
        "cluster.name = second\n"  # a key set twice: the later value wins
        "cluster.dns.name = '''\n"
        "multi.example.com\n"
        "'''   # after a multi-line value\n"
        "cluster.autoheal\t=\ton"
    )
    values = read_conf(text, "a.conf")
    assert values["node.name"].value == "n1@127.0.0.1"
    assert values["node.cookie"].value == "has # and  spaces "
    assert values["node.data_dir"].value == "/tmp/x y"
    assert values["cluster.k8s.suffix"].value == ""
    assert values["cluster.name"].value == "second"
    assert values["cluster.name"].origin.line == 10
    assert values["cluster.dns.name"].value == "multi.example.com"
    assert values["cluster.autoheal"].value is True
    assert values["cluster.autoheal"].origin.line == 14


def test_strategy_keys_of_other_strategies_are_checked_then_ignored() -> None:
    settings = settings_of("cluster.discovery = static\ncluster.mcast.ttl = 3")
    assert settings.cluster.discovery == StaticDiscovery()
    with pytest.raises(ConfigError, match=r"a\.conf:2: cluster\.mcast\.ttl: expected"):
        settings_of("cluster.discovery = static\ncluster.mcast.ttl = abc")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "node.name = n1@h\ncluster.mcast.ttl = abc",
            "etc/a.conf:2: cluster.mcast.ttl: expected an integer in 0..255, got 'abc'",
        ),
        (
            "cluster.discover = static",
            "etc/a.conf:1: cluster.discover: unknown key (did you mean 'cluster.discovery'?)",
        ),
        ("cluster.zzz = 1", "etc/a.conf:1: cluster.zzz: unknown key"),
        ("\n\njust text", "etc/a.conf:3: expected 'key = value', got 'just text'"),
        ("bad key = 1", "etc/a.conf:1: expected 'key = value', got 'bad key = 1'"),
        ("node.name =", "etc/a.conf:1: node.name: missing value after '='"),
        ("node.name = # only a comment", "etc/a.conf:1: node.name: missing value after '='"),
        ("node.cookie = 'abc", "etc/a.conf:1: node.cookie: unterminated ' value"),
        ("node.cookie = '''abc\nd", "etc/a.conf:1: node.cookie: unterminated ''' value"),
        (
            "node.cookie = 'abc' x",
            "etc/a.conf:1: node.cookie: unexpected text after the value: 'x'",
        ),
        ("include more.conf", "etc/a.conf:1: include is not supported"),
        (
            "cluster.discovery = dns\ncluster.dns.app = a",
            "etc/a.conf:1: cluster.dns.name: required by the dns discovery strategy",
        ),
        (
            "cluster.discovery = etcd",
            "etc/a.conf:1: cluster.etcd.server: required by the etcd discovery strategy",
        ),
        (
            "cluster.discovery = k8s\ncluster.k8s.apiserver = http://k",
            "etc/a.conf:1: cluster.k8s.service_name: required by the k8s discovery strategy",
        ),
        (
            "cluster.discovery = multicast",
            "etc/a.conf:1: cluster.discovery: expected one of manual, static, mcast, dns, etcd, "
            "k8s, got 'multicast'",
        ),
        (
            "cluster.autoclean = 300",
            "etc/a.conf:1: cluster.autoclean: expected a duration such as 500ms, 30s, 5m or 1h, "
            "got '300'",
        ),
        (
            "cluster.autoheal = yes",
            "etc/a.conf:1: cluster.autoheal: expected on, off or a duration such as 15s, got 'yes'",
        ),
        ("cluster.enable = 1", "etc/a.conf:1: cluster.enable: expected on or off, got '1'"),
        (
            "cluster.mcast.addr = 10.0.0.1",
            "etc/a.conf:1: cluster.mcast.addr: expected a multicast IP address, got '10.0.0.1' "
            "(not multicast)",
        ),
        (
            "cluster.mcast.ports = 4369,x",
            "etc/a.conf:1: cluster.mcast.ports: expected an integer in 1..65535, got 'x'",
        ),
        (
            "cluster.mcast.sndbuf = lots",
            "etc/a.conf:1: cluster.mcast.sndbuf: expected a byte size such as 16KB",
        ),
        (
            "cluster.static.seeds = a@h,b",
            "etc/a.conf:1: cluster.static.seeds: expected a node name alive@host, got 'b'",
        ),
        (
            "cluster.etcd.server = 127.0.0.1:2379",
            "etc/a.conf:1: cluster.etcd.server: expected an http:// or https:// URL",
        ),
        (
            "cluster.etcd.node_ttl = 500ms",
            "etc/a.conf:1: cluster.etcd.node_ttl: expected a duration such as 500ms, 30s, 5m "
            "or 1h, at least 1s, got '500ms'",
        ),
        ("node.net_ticktime = 0", "etc/a.conf:1: node.net_ticktime: expected an integer >= 1"),
        ("node.name = a b@h", "etc/a.conf:1: node.name: expected a node name"),
    ],
)
def test_errors_name_file_line_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_of(text)
    assert str(info.value).startswith(message)
    assert info.value.source == "etc/a.conf"
    assert info.value.line == int(message.split(":")[1])
