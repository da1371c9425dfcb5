"""ekka 0.8.1.9's wire names and timing constants, in one place.

Every value is the genuine one (spec sections 3, 5, 6, 8, 9 and 10); the modules of
:mod:`pyekka.cluster` and the services built on them import them from here.
"""

from __future__ import annotations

from typing import Final

from pyekka.term.types import Atom

__all__ = [
    "AUTOCLEAN_DIVISOR",
    "AUTOHEAL_DEFAULT_DELAY_MS",
    "CLUSTER_VIEW_TIMEOUT_MS",
    "EKKA",
    "EKKA_LOCKER",
    "EKKA_MEMBERSHIP",
    "EKKA_NODE_MONITOR",
    "HASH_RANGE",
    "HEARTBEAT_MAX_MS",
    "HEARTBEAT_MIN_MS",
    "LEASE_CHECK_INTERVAL_MS",
    "LEASE_TIME_MS",
    "LOCK_MULTICALL_TIMEOUT_MS",
    "PARTITION_CONFIRM_DELAY_MS",
    "REBOOT_PAUSE_MAX_MS",
    "REBOOT_PAUSE_MIN_MS",
    "SUSPECT_DELAY_MS",
    "UNDEFINED",
]

UNDEFINED: Final = Atom("undefined")
"""The atom ekka leaves in record fields it has not set."""

EKKA: Final = Atom("ekka")
EKKA_MEMBERSHIP: Final = Atom("ekka_membership")
EKKA_NODE_MONITOR: Final = Atom("ekka_node_monitor")
EKKA_LOCKER: Final = Atom("ekka_locker")
"""Registered names (spec 1): the membership, node monitor and default locker."""

HASH_RANGE: Final = 4294967295
"""``trunc(math:pow(2, 32) - 1)``: the range of every ``phash2`` ekka computes (spec 4.1)."""

# Node monitor (spec 6.2).
SUSPECT_DELAY_MS: Final = 3000
HEARTBEAT_MIN_MS: Final = 2001
HEARTBEAT_MAX_MS: Final = 4000

# Autoheal (spec 8.1).
AUTOHEAL_DEFAULT_DELAY_MS: Final = 15000
PARTITION_CONFIRM_DELAY_MS: Final = 3000
CLUSTER_VIEW_TIMEOUT_MS: Final = 30000
REBOOT_PAUSE_MIN_MS: Final = 101
REBOOT_PAUSE_MAX_MS: Final = 1100

# Autoclean (spec 9): the check runs every ``Expiry div 4`` ms.
AUTOCLEAN_DIVISOR: Final = 4

# Locker (spec 10).
LEASE_TIME_MS: Final = 15000
LEASE_CHECK_INTERVAL_MS: Final = 2 * LEASE_TIME_MS
LOCK_MULTICALL_TIMEOUT_MS: Final = 30000
