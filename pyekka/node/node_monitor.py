"""``net_kernel:monitor_nodes/1,2`` subscriptions and the messages they produce.

Options are given as OTP takes them: a list (``[]``, ``nodedown_reason``,
``connection_id``, ``(node_type, visible|hidden|all)``) or a dict with atom keys
(``{Atom("nodedown_reason"): True, Atom("node_type"): Atom("all")}``). With ``[]``
the messages are ``{nodeup, Node}`` / ``{nodedown, Node}`` for visible nodes;
otherwise ``{nodeup, Node, Info}`` / ``{nodedown, Node, Info}`` where ``Info`` is a
list (for list options, in OTP's order ``connection_id, nodedown_reason,
node_type``) or a dict (for dict options).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyekka.node.exits import BadArg
from pyekka.term.types import Atom, Pid

__all__ = ["NodeMonitorOptions", "NodeSubscriptions", "parse_options"]

NODEUP = Atom("nodeup")
NODEDOWN = Atom("nodedown")
NODEDOWN_REASON = Atom("nodedown_reason")
CONNECTION_ID = Atom("connection_id")
NODE_TYPE = Atom("node_type")
VISIBLE = Atom("visible")
HIDDEN = Atom("hidden")
ALL = Atom("all")
_NODE_TYPES = (VISIBLE, HIDDEN, ALL)


@dataclass(frozen=True, slots=True)
class NodeMonitorOptions:
    """Normalised options of one subscription; equal options are the same subscription."""

    style: str = "plain"  # "plain" (2-tuples), "list" or "map" (3-tuples with Info)
    connection_id: bool = False
    nodedown_reason: bool = False
    node_type: Atom | None = None  # None: visible nodes, no node_type in Info

    def wants(self, hidden: bool) -> bool:
        """Whether this subscription reports a node of that kind."""
        kind = self.node_type
        if kind is None or kind == VISIBLE:
            return not hidden
        return hidden if kind == HIDDEN else True

    def message(self, up: bool, node: Atom, hidden: bool, reason: Any, connection_id: Any) -> tuple:
        """The ``nodeup``/``nodedown`` message for this subscription."""
        tag = NODEUP if up else NODEDOWN
        if self.style == "plain":
            return (tag, node)
        items: list[tuple[Atom, Any]] = []
        if self.connection_id:
            items.append((CONNECTION_ID, connection_id))
        if self.nodedown_reason and not up:
            items.append((NODEDOWN_REASON, reason))
        if self.node_type is not None:
            items.append((NODE_TYPE, HIDDEN if hidden else VISIBLE))
        info: Any = dict(items) if self.style == "map" else items
        return (tag, node, info)


def _node_type(value: Any, current: Atom | None) -> Atom:
    if type(value) is not Atom or value not in _NODE_TYPES:
        raise BadArg(f"bad node_type: {value!r}")
    if current is not None and current != value:
        raise BadArg("conflicting node_type options")
    return value


def parse_options(options: Any) -> NodeMonitorOptions:
    """Normalise ``monitor_nodes`` options; ``BadArg`` for anything OTP refuses."""
    if isinstance(options, dict):
        conn = reason = False
        kind: Atom | None = None
        for key, value in options.items():
            if key == CONNECTION_ID and type(value) is bool:
                conn = value
            elif key == NODEDOWN_REASON and type(value) is bool:
                reason = value
            elif key == NODE_TYPE:
                kind = _node_type(value, None)
            else:
                raise BadArg(f"bad monitor_nodes option: {key!r} => {value!r}")
        return NodeMonitorOptions("map", conn, reason, kind)
    if not isinstance(options, list | tuple):
        raise BadArg(f"monitor_nodes options must be a list or a dict: {options!r}")
    if not options:
        return NodeMonitorOptions()
    conn = reason = False
    kind = None
    for opt in options:
        if opt == CONNECTION_ID:
            conn = True
        elif opt == NODEDOWN_REASON:
            reason = True
        elif type(opt) is tuple and len(opt) == 2 and opt[0] == NODE_TYPE:
            kind = _node_type(opt[1], kind)
        else:
            raise BadArg(f"bad monitor_nodes option: {opt!r}")
    return NodeMonitorOptions("list", conn, reason, kind)


class NodeSubscriptions:
    """Who subscribed to node status changes, and how often with which options."""

    def __init__(self) -> None:
        self._subs: dict[Pid, list[NodeMonitorOptions]] = {}

    def subscribe(self, pid: Pid, options: NodeMonitorOptions) -> None:
        """Start one more subscription (a process subscribed twice gets two messages)."""
        self._subs.setdefault(pid, []).append(options)

    def unsubscribe(self, pid: Pid, options: NodeMonitorOptions) -> None:
        """Stop every subscription of ``pid`` made with these options."""
        subs = self._subs.get(pid)
        if subs is None:
            return
        subs[:] = [s for s in subs if s != options]
        if not subs:
            del self._subs[pid]

    def drop(self, pid: Pid) -> None:
        """Forget a terminated process."""
        self._subs.pop(pid, None)

    def count(self, pid: Pid) -> int:
        """How many subscriptions ``pid`` holds."""
        return len(self._subs.get(pid, ()))

    def messages(
        self, up: bool, node: Atom, hidden: bool, reason: Any = None, connection_id: Any = None
    ) -> list[tuple[Pid, tuple]]:
        """``(subscriber, message)`` for every subscription interested in this change."""
        out = []
        for pid, subs in self._subs.items():
            for s in subs:
                if s.wants(hidden):
                    out.append((pid, s.message(up, node, hidden, reason, connection_id)))
        return out
