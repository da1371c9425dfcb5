"""Connectivity between a mix of pyekka nodes and OTP nodes, cut and restored on demand.

pyekka nodes may be in-process :class:`~pyekka.node.node.Node`\\ s or subprocess
handles with a ``name`` (those are only addressed, never blocked); OTP nodes are
:class:`~pyekka.testing.otp_node.OtpNode`\\ s. A link is cut on its in-process
pyekka end(s) with :meth:`Distribution.block
<pyekka.node.distribution.Distribution.block>`: the connection closes (both ends see
``nodedown``) and every connection attempt either way is refused until the link is
restored. A link between two nodes that are not in-process pyekka nodes cannot be
cut (``ValueError``), since nothing on it can refuse connections.

:func:`connect_mesh` connects every pair of nodes at the distribution level and
waits until each node is connected to every other one.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from typing import Any, Protocol

from pyekka.node.node import Node
from pyekka.term.types import Atom
from pyekka.testing.otp_node import OtpNode
from pyekka.testing.wait import wait_until

__all__ = [
    "AnyNode",
    "Network",
    "connect",
    "connect_mesh",
    "connected_nodes",
    "node_name",
    "visible_nodes",
]


class _Named(Protocol):
    name: Any


AnyNode = Node | OtpNode | _Named
"""A node the helpers accept: in-process, OTP, or anything with a ``name``."""


def node_name(node: AnyNode | Atom | str) -> Atom:
    """The node name of ``node`` as an atom."""
    if isinstance(node, Atom):
        return node
    if isinstance(node, str):
        return Atom(node)
    name = node.name
    return name if isinstance(name, Atom) else Atom(str(name))


def _q(name: Atom) -> str:
    return "'" + name.name.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def visible_nodes(node: AnyNode) -> set[Atom]:
    """``nodes()`` of an in-process pyekka node or an OTP node."""
    if isinstance(node, Node):
        return set(node.nodes())
    if isinstance(node, OtpNode):
        return set(await node.aeval("nodes()"))
    raise TypeError(f"cannot ask {node!r} for its nodes (not a Node or an OtpNode)")


async def connected_nodes(node: AnyNode) -> set[Atom]:
    """``nodes(connected)`` (visible and hidden) of a pyekka node or an OTP node."""
    if isinstance(node, Node):
        return set(node.nodes("connected"))
    if isinstance(node, OtpNode):
        return set(await node.aeval("nodes(connected)"))
    raise TypeError(f"cannot ask {node!r} for its nodes (not a Node or an OtpNode)")


async def connect(a: AnyNode, b: AnyNode) -> bool:
    """Connect ``a`` to ``b`` (``net_kernel:connect_node/1`` on ``a``)."""
    if isinstance(a, Node):
        return await a.connect(node_name(b))
    if isinstance(a, OtpNode):
        return await a.aeval(f"net_kernel:connect_node({_q(node_name(b))})") is True
    if isinstance(b, Node | OtpNode):
        return await connect(b, a)
    raise TypeError(f"cannot connect {a!r} and {b!r}: one must be a Node or an OtpNode")


async def connect_mesh(nodes: Iterable[AnyNode], *, timeout: float = 10.0) -> None:
    """Connect every pair of ``nodes`` and wait until each is connected to all the
    others (``nodes(connected)``, so hidden nodes count)."""
    nodes = list(nodes)
    for a, b in itertools.combinations(nodes, 2):
        if not await connect(a, b):
            raise AssertionError(f"{node_name(a).name} could not connect to {node_name(b).name}")
    names = {node_name(n) for n in nodes}
    for node in nodes:
        if not isinstance(node, Node | OtpNode):
            continue
        me = node_name(node)
        expected = names - {me}

        async def sees_all(node: AnyNode = node, expected: set[Atom] = expected) -> bool:
            return expected <= await connected_nodes(node)

        await wait_until(
            sees_all,
            timeout=timeout,
            message=f"{me.name} sees {sorted(n.name for n in expected)}",
            observe=lambda node=node: connected_nodes(node),
        )


class Network:
    """The links between ``nodes``; cut and restore them, and restore all at the end."""

    def __init__(self, nodes: Iterable[AnyNode] = ()) -> None:
        self.nodes: dict[Atom, AnyNode] = {}
        self._cut: set[frozenset[Atom]] = set()
        for node in nodes:
            self.add(node)

    def add(self, node: AnyNode) -> None:
        """Let the network know ``node`` (nodes passed to :meth:`cut` are added)."""
        self.nodes[node_name(node)] = node

    def _blockers(self, a: AnyNode, b: AnyNode) -> list[tuple[Node, Atom]]:
        ends = [(a, node_name(b)), (b, node_name(a))]
        blockers = [(node, other) for node, other in ends if isinstance(node, Node)]
        if not blockers:
            raise ValueError(
                f"cannot cut {node_name(a).name} from {node_name(b).name}: "
                "one end must be an in-process pyekka Node"
            )
        return blockers

    def cut(self, a: AnyNode, b: AnyNode) -> None:
        """Cut the link between ``a`` and ``b``, both ways."""
        if node_name(a) == node_name(b):
            raise ValueError(f"cannot cut {node_name(a).name} from itself")
        self.add(a)
        self.add(b)
        for node, other in self._blockers(a, b):
            node.distribution.block(other)
        self._cut.add(frozenset((node_name(a), node_name(b))))

    def split(self, *groups: Iterable[AnyNode]) -> None:
        """Cut every link between nodes of different ``groups``."""
        sides = [list(group) for group in groups]
        for left, right in itertools.combinations(sides, 2):
            for a in left:
                for b in right:
                    self.cut(a, b)

    @property
    def cut_pairs(self) -> list[tuple[Atom, Atom]]:
        """The links cut now, as sorted name pairs."""
        pairs = [tuple(sorted(pair, key=lambda n: n.name)) for pair in self._cut]
        return sorted(pairs, key=lambda p: (p[0].name, p[1].name))  # type: ignore[return-value]

    async def restore(self, a: AnyNode, b: AnyNode, *, reconnect: bool = True) -> None:
        """Let ``a`` and ``b`` talk again; with ``reconnect`` connect them now."""
        for node, other in self._blockers(a, b):
            node.distribution.unblock(other)
        self._cut.discard(frozenset((node_name(a), node_name(b))))
        if reconnect:
            await connect(a, b)

    async def heal(self, *, reconnect: bool = True) -> list[tuple[Atom, Atom]]:
        """Restore every cut link (see :meth:`restore`); the pairs that were cut."""
        pairs = self.cut_pairs
        for a, b in pairs:
            await self.restore(self.nodes[a], self.nodes[b], reconnect=False)
        if reconnect:
            await asyncio.gather(*(connect(self.nodes[a], self.nodes[b]) for a, b in pairs))
        return pairs
