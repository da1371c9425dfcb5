"""The configuration reference is generated from the key table and covers every key."""

from __future__ import annotations

import subprocess
import sys

from pyekka.config import reference_markdown
from pyekka.config.schema import KEYS, STRATEGIES


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in reference_markdown().splitlines():
        if line.startswith("| `") and not line.startswith("| `.conf`"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells
    return rows


def test_every_key_has_one_row_with_its_names_and_doc() -> None:
    rows = _rows()
    assert sorted(rows) == sorted(k.name for k in KEYS)
    for key in KEYS:
        _conf, erl, env, _type, _default, doc = rows[key.name]
        assert erl == f"`{key.erl_name}`" and env == f"`{key.env_var}`"
        assert doc.startswith(key.doc.replace("|", "\\|").split("`")[0])


def test_defaults_shown_in_both_syntaxes_where_ekka_disagrees() -> None:
    rows = _rows()
    assert rows["cluster.autoheal"][4] == "`.conf`: `off`; `.config`: `true`"
    assert rows["cluster.mcast.ttl"][4] == "`.conf`: `255`; `.config`: `1`"
    assert rows["cluster.mcast.addr"][4] == "`.conf`: `239.192.0.1`; `.config`: *required*"
    assert rows["cluster.etcd.node_ttl"][4] == "`.conf`: `1m`; `.config`: *required*"
    assert rows["cluster.dns.name"][4] == "*required*"
    assert rows["cluster.autoclean"][4] == "*unset*"
    assert rows["cluster.mcast.sndbuf"][4] == "`16KB`"
    assert "(`.config`: an integer number of milliseconds" in rows["cluster.autoclean"][3]


def test_sections_cover_every_strategy_and_mark_extensions() -> None:
    text = reference_markdown()
    for strategy in STRATEGIES[1:]:
        assert f"## Discovery: {strategy} (`cluster.{strategy}.*`)" in text
    rows = _rows()
    for key in KEYS:
        marked = "*(pyekka extension: not in ekka 0.8.1.9)*" in rows[key.name][5]
        assert marked == (not key.ekka and not key.name.startswith("node.")), key.name
    assert (
        "## Autocluster loop (`cluster.autocluster.*` and `{pyekka, [{autocluster, [...]}]}`)"
        in text
    )
    cluster = text.split("## Cluster ")[1].split("## Autocluster loop")[0]
    assert "cluster.autocluster." not in cluster  # only in its own section


def test_autocluster_timings_show_ekka_defaults() -> None:
    rows = _rows()
    assert rows["cluster.autocluster.interval"][1] == "`pyekka.autocluster.interval`"
    assert rows["cluster.autocluster.interval"][4] == "`5s`"
    assert rows["cluster.autocluster.ignore_delay"][4] == "`3s`"
    assert rows["cluster.autocluster.ready_timeout"][4] == "`10s`"
    assert rows["cluster.autocluster.member_timeout"][4] == "`30s`"
    assert rows["cluster.autocluster.ping_timeout"][4] == "`10s`"


def test_module_prints_the_reference() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pyekka.config"], capture_output=True, text=True, check=True
    ).stdout
    assert out == reference_markdown()
