"""pyekka's replicated cluster view: what mnesia's ``db_nodes`` are to genuine ekka.

Genuine ekka 0.8 says a node is "in the cluster" when it is one of mnesia's
``db_nodes`` (spec 1, 7). pyekka has no mnesia, so every pyekka node keeps a
:class:`NodeView` of the nodes that form its cluster, replicated to every member and
persisted in the node's data directory (so that a restarted node rejoins its cluster
without discovery, as an ekka node does from its mnesia schema):

* **pyekka members** are the cluster's db nodes: ``ekka_mnesia:cluster_view/0``,
  ``cluster_status/1``, ``running_nodes`` and autoheal work on them only;
* **genuine members** are genuine ekka nodes the cluster is attached to at the
  membership level (spec 14.2): pyekka nodes ping them so that they list the pyekka
  nodes as ``up``, but they are never db nodes (pyekka cannot join mnesia, spec 16.4).

The view is a last-writer-wins map ``node -> (member?, stamp, kind)``: joining stamps a
node in, leaving and force-leaving stamp it out (a tombstone that keeps a removed node
from being resurrected by a stale copy); two copies merge entry by entry, the higher
stamp winning (a removal wins a tie). Stamps are wall-clock microseconds made monotonic
per node, so nodes whose clocks differ by more than the time between two changes of
one entry may order those changes wrongly.

Copies meet through ``pyekka_cluster:sync/1`` (rpc): at start, on every connection to
a member, and after every local change (pushed to every member). A node merges a
peer's copy only if it counts the peer as a member, and a node learns that it was
removed only from a member's copy. A node that finds itself removed resets to a
standalone view (and :class:`~pyekka.cluster.cluster.Cluster` reboots it); so does a
node about to join another cluster, before it asks (:mod:`~pyekka.cluster.cluster_ops`).

Running db nodes, incarnations and partitions (mnesia's ``running_db_nodes`` and
``inconsistent_database``): see :mod:`pyekka.cluster.cluster_db`.

The pieces, each in its own module (every name below is importable from here too):

* :mod:`~pyekka.cluster.node_view`: :class:`NodeView`, :class:`ViewEntry`,
  :class:`NodeKind`, the pure view and its merge;
* :mod:`~pyekka.cluster.view_file`: :func:`save_view`, :func:`load_view` and
  :data:`VIEW_FILE`, the view's file in the data directory;
* :mod:`~pyekka.cluster.cluster_db`: :class:`ClusterDb` and :class:`DbEvent`, the
  db facade (what ``ekka_mnesia`` answers, running nodes, incarnations);
* :mod:`~pyekka.cluster.view_replicator`: :class:`ViewReplicator`, the
  ``pyekka_cluster`` process that carries the syncs.
"""

from pyekka.cluster.cluster_db import ClusterDb, DbEvent, cluster_name_term, cluster_name_value
from pyekka.cluster.node_view import NodeKind, NodeView, ViewEntry
from pyekka.cluster.view_file import VIEW_FILE, load_view, save_view
from pyekka.cluster.view_replicator import PYEKKA_CLUSTER, ViewReplicator

__all__ = [
    "PYEKKA_CLUSTER",
    "VIEW_FILE",
    "ClusterDb",
    "DbEvent",
    "NodeKind",
    "NodeView",
    "ViewEntry",
    "ViewReplicator",
    "cluster_name_term",
    "cluster_name_value",
    "load_view",
    "save_view",
]
