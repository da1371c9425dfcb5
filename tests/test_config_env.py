"""``load_config``: file kinds, environment-variable and command-line overrides, file errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyekka.config import ConfigError, Settings, load_config, read_environ
from pyekka.config.schema import BY_NAME
from tests.config_samples import SAMPLES, conf_lines, setting_of, strict_equal


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", list(BY_NAME))
def test_every_key_has_an_environment_variable(name: str) -> None:
    key = BY_NAME[name]
    environ = {BY_NAME[line.split(" = ")[0]].env_var: line.split(" = ", 1)[1]
               for line in conf_lines(key)}  # fmt: skip
    settings = load_config(None, environ=environ)
    assert strict_equal(setting_of(settings, key), SAMPLES[name][2])


def test_variable_names_follow_the_documented_scheme() -> None:
    assert BY_NAME["cluster.static.seeds"].env_var == "PYEKKA_CLUSTER__STATIC__SEEDS"
    assert BY_NAME["cluster.etcd.ssl.certfile"].env_var == "PYEKKA_CLUSTER__ETCD__SSL__CERTFILE"
    assert BY_NAME["node.data_dir"].env_var == "PYEKKA_NODE__DATA_DIR"


def test_environment_overrides_the_file_and_overrides_win(tmp_path: Path) -> None:
    path = write(tmp_path, "a.conf", "node.name = n1@127.0.0.1\ncluster.discovery = manual\n")
    environ = {
        "PYEKKA_CLUSTER__DISCOVERY": "static",
        "PYEKKA_CLUSTER__STATIC__SEEDS": "n1@127.0.0.1,n2@127.0.0.1",
        "PYEKKA_NODE__NAME": "n2@127.0.0.1",
        "PYEKKA_VECTORS": "/elsewhere",  # not configuration: no "__"
        "HOME": "/home/x",
    }
    settings = load_config(path, environ=environ)
    assert settings.node.name == "n2@127.0.0.1"
    assert settings.cluster.discovery.seeds == ("n1@127.0.0.1", "n2@127.0.0.1")
    settings = load_config(
        path,
        environ=environ,
        overrides={"node.name": "n3@127.0.0.1", "node.epmd": False, "node.cookie": None},
    )
    assert settings.node.name == "n3@127.0.0.1" and settings.node.epmd is False
    assert settings.node.cookie is None  # None: the flag was not given


def test_overrides_take_conf_text_or_python_values() -> None:
    settings = load_config(
        None,
        environ={},
        overrides={
            "cluster.discovery": "static",
            "cluster.static.seeds": ["a@h", "b@h"],
            "cluster.autoclean": "5m",
            "cluster.autoheal": 20_000,
            "node.dist_port": "4999",
        },
    )
    assert settings.cluster.discovery.seeds == ("a@h", "b@h")
    assert settings.cluster.autoclean == 300_000 and settings.cluster.autoheal == 20_000
    assert settings.node.dist_port == 4999


def test_environment_applies_to_erlang_config_files(tmp_path: Path) -> None:
    path = write(tmp_path, "a.config", "[{ekka, [{cluster_name, fromfile}]}].")
    settings = load_config(path, environ={"PYEKKA_CLUSTER__AUTOHEAL": "off"})
    assert settings.cluster.name == "fromfile" and settings.cluster.autoheal is False


def test_no_file_means_conf_defaults() -> None:
    assert strict_equal(load_config(None, environ={}), Settings())


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"PYEKKA_CLUSTER__MCAST__TTL": "abc"},
            "$PYEKKA_CLUSTER__MCAST__TTL: cluster.mcast.ttl: expected an integer in 0..255, "
            "got 'abc'",
        ),
        (
            {"PYEKKA_CLUSTER__DISCOVERYY": "static"},
            "$PYEKKA_CLUSTER__DISCOVERYY: unknown configuration variable (did you mean "
            "'PYEKKA_CLUSTER__DISCOVERY'?)",
        ),
        (
            {"PYEKKA_CLUSTER_DISCOVERY": "static"},
            "$PYEKKA_CLUSTER_DISCOVERY: write PYEKKA_CLUSTER__DISCOVERY to set this key",
        ),
        (
            {"PYEKKA_CLUSTER__DISCOVERY": "dns"},
            "$PYEKKA_CLUSTER__DISCOVERY: cluster.dns.name: required by the dns discovery",
        ),
    ],
)
def test_environment_errors_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, environ=environ)
    assert str(info.value).startswith(message)


def test_read_environ_ignores_other_variables() -> None:
    assert (
        read_environ({"PATH": "/bin", "PYEKKA_OTP_ROOTS": "/x", "EKKA_PROTO_DIST_MOD": "y"}) == {}
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"node.nam": "a@h"}, "command line: node.nam: unknown key (did you mean 'node.name'?)"),
        ({"node.epmd": "maybe"}, "command line: node.epmd: expected on or off, got 'maybe'"),
        ({"node.epmd": 1}, "command line: node.epmd: expected true or false, got 1"),
    ],
)
def test_override_errors(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, environ={}, overrides=overrides)
    assert str(info.value).startswith(message)


def test_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.conf"
    with pytest.raises(ConfigError, match=r"missing\.conf: cannot read: No such file"):
        load_config(missing, environ={})
    other = write(tmp_path, "a.yaml", "x: 1")
    with pytest.raises(ConfigError, match=r"a\.yaml: unknown kind of configuration file '\.yaml'"):
        load_config(other, environ={})
    binary = tmp_path / "b.conf"
    binary.write_bytes(b"node.name = a@h\nnode.cookie = \xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load_config(binary, environ={})
    assert str(info.value) == f"{binary}:2: not UTF-8 text"
    bad = write(tmp_path, "c.conf", "node.name = a@h\ncluster.mcast.ttl = 300\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad, environ={})
    assert (
        str(info.value) == f"{bad}:2: cluster.mcast.ttl: expected an integer in 0..255, got '300'"
    )
    assert (info.value.source, info.value.line, info.value.key) == (
        str(bad),
        2,
        "cluster.mcast.ttl",
    )


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.conf"
    path.write_bytes(b"\xef\xbb\xbfnode.cookie = c\n")
    assert load_config(path, environ={}).node.cookie == "c"
