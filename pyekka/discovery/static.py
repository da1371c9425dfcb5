"""``static`` discovery: a fixed seed list (``ekka_cluster_static``).

``discover`` returns the seeds as given (ekka 0.8.1.9 defaults to no seeds);
lock, unlock, register and unregister are ``IGNORE``.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyekka.discovery.strategy import Strategy, check_node_name

__all__ = ["StaticStrategy"]


class StaticStrategy(Strategy):
    """Discovery from a seed list of node names (``["n1@host1", "n2@host2"]``)."""

    name = "static"

    def __init__(self, seeds: Iterable[str] = ()) -> None:
        self.seeds: tuple[str, ...] = tuple(check_node_name(s) for s in seeds)

    async def discover(self) -> list[str]:
        """The seeds, in their configured order."""
        return list(self.seeds)

    def __repr__(self) -> str:
        return f"<StaticStrategy seeds={list(self.seeds)!r}>"
