"""Network partitions between pyekka nodes of one process, for tests.

:class:`Partition` cuts the links between chosen :class:`~pyekka.node.node.Node`\\ s
with :meth:`Distribution.block <pyekka.node.distribution.Distribution.block>` on
*both* ends: the connection closes (both sides see ``nodedown`` while they keep
running), connection attempts either way are refused (``not_allowed``) and signals
are dropped, as across a broken network; :meth:`Partition.heal` lets traffic through
again and, by default, reconnects every pair that was cut (otherwise the nodes
reconnect on their own next message, e.g. a node monitor heartbeat)::

    net = Partition([n1, n2, n3])
    net.split([n1, n2], [n3])      # n3 is cut off from n1 and n2
    ...
    await net.heal()               # one network again
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable

from pyekka.node.node import Node
from pyekka.term.types import Atom

__all__ = ["Partition"]


class Partition:
    """The links between ``nodes`` (started :class:`Node` objects), cut on demand."""

    def __init__(self, nodes: Iterable[Node]) -> None:
        self.nodes: dict[Atom, Node] = {n.name: n for n in nodes}
        self._cut: set[frozenset[Atom]] = set()

    def _node(self, node: Node | Atom | str) -> Node:
        if isinstance(node, Node):
            name = node.name
        else:
            name = node if isinstance(node, Atom) else Atom(node)
        return self.nodes[name]

    def cut(self, a: Node | Atom | str, b: Node | Atom | str) -> None:
        """Cut the link between ``a`` and ``b`` (both ways)."""
        na, nb = self._node(a), self._node(b)
        if na is nb:
            raise ValueError(f"cannot cut {na.name.name} from itself")
        na.distribution.block(nb.name)
        nb.distribution.block(na.name)
        self._cut.add(frozenset((na.name, nb.name)))

    def restore(self, a: Node | Atom | str, b: Node | Atom | str) -> None:
        """Let ``a`` and ``b`` talk again (they reconnect on their next message)."""
        na, nb = self._node(a), self._node(b)
        na.distribution.unblock(nb.name)
        nb.distribution.unblock(na.name)
        self._cut.discard(frozenset((na.name, nb.name)))

    def split(self, *groups: Iterable[Node | Atom | str]) -> None:
        """Cut every link between nodes of different ``groups`` (nodes not named in any
        group keep all their links)."""
        sides = [[self._node(n) for n in group] for group in groups]
        for left, right in itertools.combinations(sides, 2):
            for a in left:
                for b in right:
                    self.cut(a, b)

    @property
    def cut_pairs(self) -> list[tuple[Atom, Atom]]:
        """The links cut now, as sorted name pairs."""
        pairs = (sorted(pair, key=lambda a: a.name) for pair in self._cut)
        return sorted(((a, b) for a, b in pairs), key=lambda p: (p[0].name, p[1].name))

    async def heal(self, *, reconnect: bool = True) -> list[tuple[Atom, Atom]]:
        """Restore every cut link; with ``reconnect`` connect each such pair now.

        Returns the pairs that were cut (those a reconnection was attempted for)."""
        pairs = self.cut_pairs
        for a, b in pairs:
            self.restore(a, b)
        if reconnect:
            await asyncio.gather(*(self.nodes[a].connect(b) for a, b in pairs))
        return pairs
