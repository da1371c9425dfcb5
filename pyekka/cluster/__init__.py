"""ekka 0.8.1.9's cluster layer: pure decision modules and the services built on them.

The services (the package re-exports their main classes, listed in ``__all__``;
importing it starts no process, no task and no I/O):

* :mod:`~pyekka.cluster.cluster`: :class:`Cluster`, pyekka's ``ekka`` application.
* :mod:`~pyekka.cluster.cluster_view`: the replicated cluster view (pyekka's mnesia):
  :mod:`~pyekka.cluster.node_view` (the pure view), :mod:`~pyekka.cluster.view_file`,
  :mod:`~pyekka.cluster.cluster_db` (the db facade),
  :mod:`~pyekka.cluster.view_replicator` (the ``pyekka_cluster`` process).
* :mod:`~pyekka.cluster.service_membership`: the ``ekka_membership`` process.
* :mod:`~pyekka.cluster.service_node_monitor`, :mod:`~pyekka.cluster.service_autoheal`,
  :mod:`~pyekka.cluster.service_autoclean`: node monitor, autoheal, autoclean.
* :mod:`~pyekka.cluster.service_locker` (with :mod:`~pyekka.cluster.locker_server`,
  one locker process), :mod:`~pyekka.cluster.locker`: ``ekka_locker``.
* :mod:`~pyekka.cluster.rpc_surface`: the RPCs genuine ekka nodes make.
* :mod:`~pyekka.cluster.app`: one running member, all of the above wired together;
  :mod:`~pyekka.cluster.ctl`: the ``pyekka_ctl`` functions behind ``pyekka ctl``.

The pure modules (no I/O, no asyncio), whose decisions the services carry out:

* :mod:`~pyekka.cluster.guid`: ekka_guid's layout and pyekka's guid policy.
* :mod:`~pyekka.cluster.member`: the ``#member{}`` 8-tuple and ekka's timestamps.
* :mod:`~pyekka.cluster.election`: oldest, leader and coordinator.
* :mod:`~pyekka.cluster.policy`: how Python nodes live next to genuine ones.
* :mod:`~pyekka.cluster.membership`: the membership table and its casts.
* :mod:`~pyekka.cluster.events`: membership and partition events.
* :mod:`~pyekka.cluster.ring`: ekka_ring, for ``quorum`` locks.
* :mod:`~pyekka.cluster.lock`, :mod:`~pyekka.cluster.locker_core`: ekka_locker.
* :mod:`~pyekka.cluster.split_view`, :mod:`~pyekka.cluster.heal_plan`: autoheal.
* :mod:`~pyekka.cluster.monitor_messages`: the node monitor's casts.
* :mod:`~pyekka.cluster.autoclean`: autoclean's expiry rule.
* :mod:`~pyekka.cluster.constants`: registered names and timings.
"""

from pyekka.cluster.app import ClusterMember, MemberOptions, serving_member, start_member
from pyekka.cluster.cluster import Cluster, ClusterError, ClusterService
from pyekka.cluster.cluster_db import ClusterDb
from pyekka.cluster.ctl import CtlServer
from pyekka.cluster.election import coordinator, coordinator_of, leader, nodelist, oldest
from pyekka.cluster.events import Event, EventType, MnesiaEvent, NodeEvent, PartitionEvent
from pyekka.cluster.guid import GuidGenerator, GuidPolicy
from pyekka.cluster.heal_plan import HealPlan, plan_heal
from pyekka.cluster.lock import Lock, LockType, Piggyback
from pyekka.cluster.locker import Locker
from pyekka.cluster.locker_core import Lockers, LockTable, MergeMode, lock_nodes, merge_results
from pyekka.cluster.member import Member, MemberStatus, MnesiaStatus, member_hash
from pyekka.cluster.membership import MembershipTable
from pyekka.cluster.node_view import NodeView
from pyekka.cluster.ring import find_node, find_nodes, quorum_count, ring
from pyekka.cluster.service_autoclean import Autoclean
from pyekka.cluster.service_autoheal import Autoheal
from pyekka.cluster.service_locker import LockerService
from pyekka.cluster.service_membership import MembershipService
from pyekka.cluster.service_node_monitor import NodeMonitor
from pyekka.cluster.split_view import ClusterView, heal_partition, split_view
from pyekka.cluster.view_replicator import ViewReplicator

__all__ = [
    "Autoclean",
    "Autoheal",
    "Cluster",
    "ClusterDb",
    "ClusterError",
    "ClusterMember",
    "ClusterService",
    "ClusterView",
    "CtlServer",
    "Event",
    "EventType",
    "GuidGenerator",
    "GuidPolicy",
    "HealPlan",
    "Lock",
    "LockTable",
    "LockType",
    "Locker",
    "LockerService",
    "Lockers",
    "Member",
    "MemberOptions",
    "MemberStatus",
    "MembershipService",
    "MembershipTable",
    "MergeMode",
    "MnesiaEvent",
    "MnesiaStatus",
    "NodeEvent",
    "NodeMonitor",
    "NodeView",
    "PartitionEvent",
    "Piggyback",
    "ViewReplicator",
    "coordinator",
    "coordinator_of",
    "find_node",
    "find_nodes",
    "heal_partition",
    "leader",
    "lock_nodes",
    "member_hash",
    "merge_results",
    "nodelist",
    "oldest",
    "plan_heal",
    "quorum_count",
    "ring",
    "serving_member",
    "split_view",
    "start_member",
]
