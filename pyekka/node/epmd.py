"""EPMD over asyncio: the client and the embedded server, in one namespace.

* :mod:`pyekka.node.epmd_client`: :func:`register` a node (keep the returned
  :class:`EpmdRegistration`), :func:`port_please` / :func:`lookup_node` /
  :func:`names`, and the epmd port as OTP picks it (:func:`configured_epmd_port`:
  ``ERL_EPMD_PORT``, else ``-epmd_port``, else 4369);
* :mod:`pyekka.node.epmd_server`: :class:`EpmdServer`, an embedded epmd that real
  OTP nodes and OTP's ``epmd -names``/``-kill`` talk to.

The bytes on the wire come from the sans-I/O layer (:mod:`pyekka.dist.epmd`,
:mod:`pyekka.dist.epmd_server`).
"""

from pyekka.node.epmd_client import (
    DEFAULT_TIMEOUT,
    ENV_EPMD_PORT,
    EpmdError,
    EpmdProtocolError,
    EpmdRegistration,
    EpmdTimeout,
    EpmdUnavailable,
    RegistrationRefused,
    configured_epmd_port,
    lookup_node,
    names,
    port_please,
    register,
    select_best_version,
)
from pyekka.node.epmd_server import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PACKET_TIMEOUT,
    EpmdServer,
    is_local_peer,
)

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_PACKET_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "ENV_EPMD_PORT",
    "EpmdError",
    "EpmdProtocolError",
    "EpmdRegistration",
    "EpmdServer",
    "EpmdTimeout",
    "EpmdUnavailable",
    "RegistrationRefused",
    "configured_epmd_port",
    "is_local_peer",
    "lookup_node",
    "names",
    "port_please",
    "register",
    "select_best_version",
]
