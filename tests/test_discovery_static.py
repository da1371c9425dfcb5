"""static discovery and the strategy contract shared by every strategy."""

from __future__ import annotations

import pytest

from pyekka.discovery import DiscoveryError, Outcome, StaticStrategy, Strategy
from pyekka.discovery.strategy import check_node_name, short_name


async def test_static_returns_the_seeds_in_order() -> None:
    seeds = ["n2@10.0.0.2", "n1@10.0.0.1"]
    async with StaticStrategy(seeds) as s:
        assert await s.discover() == seeds
        for op in (s.lock, s.unlock, s.register, s.unregister):
            assert await op() is Outcome.IGNORE


async def test_static_defaults_to_no_seeds() -> None:
    assert await StaticStrategy().discover() == []  # ekka 0.8.1.9's default


def test_static_refuses_what_cannot_be_a_node_name() -> None:
    with pytest.raises(ValueError, match="not a node name"):
        StaticStrategy(["justahost"])
    with pytest.raises(ValueError):
        StaticStrategy(["a" * 250 + "@hosts"])


def test_helpers() -> None:
    assert check_node_name("a@b") == "a@b"
    assert short_name("emqx@10.0.0.1") == "emqx"


def test_discovery_error_names_the_strategy() -> None:
    class Broken(Strategy):
        name = "broken"

        async def discover(self) -> list[str]:
            raise self.error("server said %s", "no")

    err = DiscoveryError("broken", "server said no")
    assert str(err) == "broken discovery: server said no"
    assert (err.strategy, err.message) == ("broken", "server said no")


async def test_errors_are_logged_and_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Strategy):
        name = "broken"

        async def discover(self) -> list[str]:
            raise self.error("server said %s", "no")

    with pytest.raises(DiscoveryError, match="broken discovery: server said no"):
        await Broken().discover()
    assert "broken discovery: server said no" in caplog.text
