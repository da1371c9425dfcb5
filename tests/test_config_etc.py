"""The examples in ``etc/``: every file loads, and each .conf/.config pair is the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyekka.config import STRATEGIES, load_config
from tests.config_samples import strict_equal

ETC = Path(__file__).resolve().parents[1] / "etc"
FILES = sorted(p for p in ETC.iterdir() if p.suffix in (".conf", ".config"))


def test_every_strategy_has_an_example_in_both_syntaxes() -> None:
    assert {p.name for p in FILES} == {
        f"{s}{ext}" for s in STRATEGIES for ext in (".conf", ".config")
    }
    assert [p for p in ETC.iterdir() if p.suffix not in (".conf", ".config")] == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_example_loads_and_selects_its_strategy(path: Path) -> None:
    settings = load_config(path, environ={})
    assert settings.cluster.discovery.strategy == path.stem
    assert settings.cluster.name == "pyekka" and settings.node.cookie == "pyekkasecret"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_conf_and_config_examples_are_equal(strategy: str) -> None:
    conf = load_config(ETC / f"{strategy}.conf", environ={})
    config = load_config(ETC / f"{strategy}.config", environ={})
    assert strict_equal(conf, config)
