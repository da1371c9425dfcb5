"""The asyncio node runtime: Python processes with Erlang's semantics.

Processes, mailboxes with selective receive, registered names, links, monitors,
exit signals, aliases, node status subscriptions and the gen_server protocol.
Signals to other nodes leave through a :class:`RemoteRouter`; signals from them
enter through the ``deliver``/``remote_*``/``node_*`` methods of
:class:`ProcessRuntime`.
"""

from pyekka.node.exits import (
    BadArg,
    CallError,
    CallTimeout,
    ErlangError,
    ProcessExit,
)
from pyekka.node.gen_server import NOREPLY, GenServer, call, cast, reply
from pyekka.node.mailbox import Mailbox
from pyekka.node.process import Process, ProcessFn
from pyekka.node.router import RemoteRouter, UnreachableRouter
from pyekka.node.runtime import ProcessRuntime

__all__ = [
    "NOREPLY",
    "BadArg",
    "CallError",
    "CallTimeout",
    "ErlangError",
    "GenServer",
    "Mailbox",
    "Process",
    "ProcessExit",
    "ProcessFn",
    "ProcessRuntime",
    "RemoteRouter",
    "UnreachableRouter",
    "call",
    "cast",
    "reply",
]
