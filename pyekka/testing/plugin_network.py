"""The plugin's network fixtures: ``network`` (cut and restore links) and
``netns_lab`` (network namespace labs).

Part of :mod:`pyekka.testing.plugin`, which registers these fixtures.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from pyekka.testing.netns import NetnsLab, NetnsUnavailable
from pyekka.testing.network import Network

__all__ = ["netns_lab", "network"]


@pytest.fixture
async def network() -> AsyncIterator[Network]:
    """A :class:`~pyekka.testing.network.Network`: cut links are restored at the end."""
    net = Network()
    try:
        yield net
    finally:
        for a, b in net.cut_pairs:
            with contextlib.suppress(RuntimeError):  # a node already stopped
                await net.restore(net.nodes[a], net.nodes[b], reconnect=False)


@pytest.fixture
def netns_lab() -> Iterator[Callable[..., NetnsLab]]:
    """Build network namespace labs for this test: ``lab = netns_lab(hosts=3,
    subnet="10.77.0.0/24", service=True)`` (a :class:`~pyekka.testing.netns.NetnsLab`);
    skips the test where namespaces cannot be created. Every lab is closed afterwards:
    its processes killed, its namespaces and files removed."""
    labs: list[NetnsLab] = []

    def build(hosts: int = 3, **options: Any) -> NetnsLab:
        lab = NetnsLab(hosts, **options)
        try:
            lab.open()
        except NetnsUnavailable as exc:
            pytest.skip(f"no network namespace lab: {exc}")
        labs.append(lab)
        return lab

    try:
        yield build
    finally:
        for lab in reversed(labs):
            lab.close()
