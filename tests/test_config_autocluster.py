"""The autocluster loop's timings (``cluster.autocluster.*``, pyekka's keys): both
syntaxes, environment overrides, errors with file:line:key, and what reaches
:class:`~pyekka.discovery.autocluster.Autocluster`."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyekka.config import AutoclusterSettings, ConfigError, Settings, load_config
from pyekka.config.schema import AUTOCLUSTER_GROUP, BY_NAME, KEYS
from pyekka.discovery import autocluster
from pyekka.discovery.run import autocluster_options

CONF = """\
# the loop of a test cluster
cluster.discovery = static
cluster.static.seeds = a@127.0.0.1
cluster.autocluster.interval = 250ms
cluster.autocluster.ignore_delay = 100ms
cluster.autocluster.ready_timeout = 2s
cluster.autocluster.member_timeout = 1m30s
cluster.autocluster.ping_timeout = 1.5s
"""

CONFIG = """\
%% the loop of a test cluster
[{pyekka, [{autocluster, [{interval, 250},
                          {ignore_delay, 100},
                          {ready_timeout, 2000},
                          {member_timeout, 90000},
                          {ping_timeout, 1500}]}]},
 {ekka, [{cluster_discovery, {static, [{seeds, ['a@127.0.0.1']}]}}]}].
"""

EXPECTED = AutoclusterSettings(
    interval=250, ignore_delay=100, ready_timeout=2000, member_timeout=90_000, ping_timeout=1500
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("name", "text"), [("a.conf", CONF), ("a.config", CONFIG)])
def test_both_syntaxes_set_every_timing(tmp_path: Path, name: str, text: str) -> None:
    settings = load_config(write(tmp_path, name, text), environ={})
    assert settings.cluster.autocluster == EXPECTED
    assert settings.cluster.discovery.strategy == "static"


@pytest.mark.parametrize("name", ["a.conf", "a.config"])
def test_defaults_are_ekka_values_in_both_syntaxes(tmp_path: Path, name: str) -> None:
    text = "" if name.endswith(".conf") else "[]."
    timings = load_config(write(tmp_path, name, text), environ={}).cluster.autocluster
    assert timings == AutoclusterSettings() == Settings().cluster.autocluster
    # ekka 0.8.1.9: 5 s between rounds, rand:uniform(3000), 10 tries 1 s apart, a 30 s
    # multicall; and the loop's own defaults are the same values
    assert (timings.interval, timings.ignore_delay) == (5000, 3000)
    assert (timings.ready_timeout, timings.member_timeout) == (10_000, 30_000)
    assert autocluster_options(Settings()) == {
        "interval": autocluster.RETRY_INTERVAL,
        "ignore_delay_ms": autocluster.IGNORE_DELAY_MS,
        "ready_timeout": autocluster.READY_TIMEOUT,
        "member_timeout": autocluster.MEMBER_CALL_TIMEOUT,
        "ping_timeout": autocluster.PING_TIMEOUT,
    }


def test_the_keys_are_pyekka_extensions_in_the_pyekka_application() -> None:
    keys = [k for k in KEYS if k.name.startswith(AUTOCLUSTER_GROUP)]
    assert [k.field for k in keys] == [
        "interval",
        "ignore_delay",
        "ready_timeout",
        "member_timeout",
        "ping_timeout",
    ]
    for key in keys:
        assert not key.ekka and key.group == "autocluster"
        assert key.erl_name == f"pyekka.autocluster.{key.field}"
        assert key.env_var == f"PYEKKA_CLUSTER__AUTOCLUSTER__{key.field.upper()}"


def test_options_reach_the_autocluster_in_its_units(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, "a.conf", CONF), environ={})
    assert autocluster_options(settings) == {
        "interval": 0.25,
        "ignore_delay_ms": 100,
        "ready_timeout": 2.0,
        "member_timeout": 90.0,
        "ping_timeout": 1.5,
    }


@pytest.mark.parametrize("name", ["a.conf", "a.config"])
def test_environment_overrides_the_file(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, CONF if name.endswith(".conf") else CONFIG)
    environ = {
        "PYEKKA_CLUSTER__AUTOCLUSTER__INTERVAL": "1s",
        "PYEKKA_CLUSTER__AUTOCLUSTER__PING_TIMEOUT": " 300ms ",
    }
    timings = load_config(path, environ=environ).cluster.autocluster
    assert (timings.interval, timings.ping_timeout) == (1000, 300)
    assert timings.member_timeout == 90_000  # from the file
    overridden = load_config(
        path, environ=environ, overrides={"cluster.autocluster.interval": "50ms"}
    )
    assert overridden.cluster.autocluster.interval == 50


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "a.conf",
            "cluster.discovery = static\ncluster.autocluster.interval = 5",
            "{path}:2: cluster.autocluster.interval: expected a duration such as 500ms, 30s, "
            "5m or 1h, got '5'",
        ),
        (
            "a.conf",
            "cluster.autocluster.ignore_delay = 0s",
            "{path}:1: cluster.autocluster.ignore_delay: expected a duration such as 500ms, "
            "30s, 5m or 1h, got '0s'",
        ),
        (
            "a.conf",
            "\n\ncluster.autocluster.intervall = 1s",
            "{path}:3: cluster.autocluster.intervall: unknown key "
            "(did you mean 'cluster.autocluster.interval'?)",
        ),
        (
            "a.config",
            '[{pyekka, [{autocluster, [{interval, 250},\n{ready_timeout, "2s"}]}]}].',
            "{path}:2: pyekka.autocluster.ready_timeout: expected an integer number of "
            'milliseconds >= 1, got "2s"',
        ),
        (
            "a.config",
            "[{pyekka, [{autocluster, [{ping_timeout, 0}]}]}].",
            "{path}:1: pyekka.autocluster.ping_timeout: expected an integer number of "
            "milliseconds >= 1, got 0",
        ),
        (
            "a.config",
            "[{pyekka,\n  [{autocluster,\n    [{member_timout, 100}]}]}].",
            "{path}:3: pyekka.autocluster.member_timout: unknown key "
            "(did you mean 'member_timeout'?)",
        ),
        (
            "a.config",
            "[{pyekka, [{autocluster, 5000}]}].",
            "{path}:1: pyekka.autocluster: expected a list of {Key, Value} pairs, got 5000",
        ),
        (
            "a.config",
            "[{ekka, [{autocluster, []}]}].",
            "{path}:1: ekka.autocluster: unknown key",
        ),
    ],
)
def test_bad_values_name_file_line_and_key(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value).startswith(message.replace("{path}", str(path)))


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"PYEKKA_CLUSTER__AUTOCLUSTER__READY_TIMEOUT": "soon"},
            "$PYEKKA_CLUSTER__AUTOCLUSTER__READY_TIMEOUT: cluster.autocluster.ready_timeout: "
            "expected a duration such as 500ms, 30s, 5m or 1h, got 'soon'",
        ),
        (
            {"PYEKKA_CLUSTER__AUTOCLUSTER__INTERVALL": "1s"},
            "$PYEKKA_CLUSTER__AUTOCLUSTER__INTERVALL: unknown configuration variable "
            "(did you mean 'PYEKKA_CLUSTER__AUTOCLUSTER__INTERVAL'?)",
        ),
        (
            {"PYEKKA_CLUSTER_AUTOCLUSTER_INTERVAL": "1s"},
            "$PYEKKA_CLUSTER_AUTOCLUSTER_INTERVAL: write PYEKKA_CLUSTER__AUTOCLUSTER__INTERVAL "
            "to set this key",
        ),
    ],
)
def test_bad_environment_values_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, environ=environ)
    assert str(info.value).startswith(message)


def test_interval_key_is_documented_as_an_extension_with_ekka_default() -> None:
    key = BY_NAME["cluster.autocluster.interval"]
    assert "ekka: 5 s" in key.doc and key.type.to_text(key.default) == "5s"
