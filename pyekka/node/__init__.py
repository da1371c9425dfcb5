"""The asyncio node runtime: Python processes with Erlang's semantics.

Processes, mailboxes with selective receive, registered names, links, monitors,
exit signals, aliases, node status subscriptions and the gen_server protocol.
Signals to other nodes leave through a :class:`RemoteRouter`; signals from them
enter through the ``deliver``/``remote_*``/``node_*`` methods of
:class:`ProcessRuntime`.

:class:`Node` puts it all on the network: distribution connections
(:mod:`pyekka.node.distribution`, :mod:`pyekka.node.connection`), the services
OTP peers expect (:mod:`pyekka.node.services`, :mod:`pyekka.node.global_server`),
spawn requests and rpc (:mod:`pyekka.node.spawn`, :mod:`pyekka.node.rpc`) against
Python functions registered by module and function name
(:mod:`pyekka.node.functions`).
"""

from pyekka.node.connect_error import ConnectError, ConnectFailure
from pyekka.node.exits import (
    BadArg,
    CallError,
    CallTimeout,
    ErlangError,
    ErlangExit,
    ErlangThrow,
    ProcessExit,
)
from pyekka.node.functions import FunctionRegistry
from pyekka.node.gen_server import NOREPLY, GenServer, call, cast, reply
from pyekka.node.mailbox import Mailbox
from pyekka.node.node import Node
from pyekka.node.process import Process, ProcessFn
from pyekka.node.router import RemoteRouter, UnreachableRouter
from pyekka.node.rpc import RemoteError
from pyekka.node.runtime import ProcessRuntime

__all__ = [
    "NOREPLY",
    "BadArg",
    "CallError",
    "CallTimeout",
    "ConnectError",
    "ConnectFailure",
    "ErlangError",
    "ErlangExit",
    "ErlangThrow",
    "FunctionRegistry",
    "GenServer",
    "Mailbox",
    "Node",
    "Process",
    "ProcessExit",
    "ProcessFn",
    "ProcessRuntime",
    "RemoteError",
    "RemoteRouter",
    "UnreachableRouter",
    "call",
    "cast",
    "reply",
]
