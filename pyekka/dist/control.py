"""Distribution control messages as small frozen dataclasses.

Each class is one ``DOP_*`` operation. ``to_term()`` gives the control tuple as it
travels (unused slots are the atom ``''``, as OTP writes them);
:func:`parse_control` turns a received control tuple (and the payload term, for
operations that carry one) back into an instance, checking the arity and the
types of pids, references and names. Operations with a payload keep it in a
field named for what it is (``message``, ``reason`` or ``args``); ``payload()``
returns it.

>>> from pyekka.term import Atom, Pid
>>> me = Pid(Atom("py@127.0.0.1"), 1, 0, 7)
>>> RegSend(me, Atom("ekka_membership"), (Atom("$gen_cast"), Atom("hi"))).to_term()
(6, Pid(Atom('py@127.0.0.1'), 1, 0, 7), Atom(''), Atom('ekka_membership'))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, dataclass_transform

from pyekka.dist import ops
from pyekka.dist.errors import ProtocolError
from pyekka.term.types import Atom, Pid, Reference

__all__ = [
    "SPAWN_REPLY_LINK",
    "SPAWN_REPLY_MONITOR",
    "AliasSend",
    "AliasSendTT",
    "ControlMessage",
    "DemonitorP",
    "Exit",
    "Exit2",
    "Exit2TT",
    "ExitTT",
    "GroupLeader",
    "Link",
    "MonitorP",
    "MonitorPExit",
    "NodeLink",
    "PayloadExit",
    "PayloadExit2",
    "PayloadExit2TT",
    "PayloadExitTT",
    "PayloadMonitorPExit",
    "RegSend",
    "RegSendTT",
    "Send",
    "SendSender",
    "SendSenderTT",
    "SendTT",
    "SpawnReply",
    "SpawnReplyTT",
    "SpawnRequest",
    "SpawnRequestTT",
    "Unlink",
    "UnlinkId",
    "UnlinkIdAck",
    "message_class",
    "parse_control",
]

UNUSED = Atom("")
"""What OTP puts in the unused slot of SEND and REG_SEND tuples."""

_BY_OP: dict[int, type[ControlMessage]] = {}


def _is_atom(value: Any) -> bool:
    return type(value) is Atom or type(value) is bool


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_mfa(value: Any) -> bool:
    return (
        type(value) is tuple
        and len(value) == 3
        and _is_atom(value[0])
        and _is_atom(value[1])
        and _is_int(value[2])
    )


_CHECKS = {
    "pid": (lambda v: type(v) is Pid, "a pid"),
    "ref": (lambda v: type(v) is Reference, "a reference"),
    "atom": (_is_atom, "an atom"),
    "proc": (lambda v: type(v) is Pid or _is_atom(v), "a pid or a registered name"),
    "int": (_is_int, "an integer"),
    "list": (lambda v: type(v) is list, "a list"),
    "mfa": (_is_mfa, "a {Module, Function, Arity} tuple"),
}


class ControlMessage:
    """Base of the control messages. ``OP`` is the operation code."""

    __slots__ = ()
    OP: ClassVar[int]
    #: The tuple slots after the op code, by field name; ``None`` is an unused slot.
    WIRE: ClassVar[tuple[str | None, ...]]
    #: The field holding the payload term, or ``None``.
    PAYLOAD: ClassVar[str | None] = None
    #: Type checks applied by :func:`parse_control` (field name -> kind).
    KINDS: ClassVar[dict[str, str]] = {}

    def to_term(self) -> tuple:
        """The control tuple."""
        return (self.OP, *(UNUSED if n is None else getattr(self, n) for n in self.WIRE))

    def payload(self) -> Any:
        """The payload term (``TypeError`` for operations without one)."""
        if self.PAYLOAD is None:
            raise TypeError(f"{type(self).__name__} carries no payload")
        return getattr(self, self.PAYLOAD)

    @classmethod
    def has_payload(cls) -> bool:
        """Whether the operation is followed by a payload term."""
        return cls.PAYLOAD is not None


@dataclass_transform(frozen_default=True)
def _message(cls: type) -> type:
    cls = dataclass(frozen=True, slots=True)(cls)
    assert (cls.PAYLOAD is not None) == (cls.OP in ops.PAYLOAD_OPS), cls
    _BY_OP[cls.OP] = cls
    return cls


def message_class(op: int) -> type[ControlMessage] | None:
    """The class for operation code ``op``, or ``None`` if pyekka does not know it."""
    return _BY_OP.get(op)


def parse_control(control: Any, payload: Any = None) -> ControlMessage:
    """Build the message from a received control tuple and its payload.

    ``payload`` is ``None`` when the frame had no payload term (a decoded term is
    never ``None``). Raises :class:`~pyekka.dist.errors.ProtocolError` for an
    unknown operation, a wrong arity or field type, or a missing or extra payload.
    """
    if type(control) is not tuple or not control or not _is_int(control[0]):
        raise ProtocolError(f"control message is not a tuple with an op code: {control!r}")
    op = control[0]
    cls = _BY_OP.get(op)
    if cls is None:
        raise ProtocolError(f"unknown distribution operation {op}")
    name = ops.OP_NAMES.get(op, str(op))
    if len(control) != len(cls.WIRE) + 1:
        raise ProtocolError(
            f"{name} control tuple has {len(control)} elements, not {len(cls.WIRE) + 1}"
        )
    values: dict[str, Any] = {}
    for field_name, value in zip(cls.WIRE, control[1:], strict=True):
        if field_name is not None:
            values[field_name] = value
    if cls.PAYLOAD is None:
        if payload is not None:
            raise ProtocolError(f"{name} carries no payload but one was sent")
    else:
        if payload is None:
            raise ProtocolError(f"{name} needs a payload term")
        values[cls.PAYLOAD] = payload
    for field_name, kind in cls.KINDS.items():
        check, what = _CHECKS[kind]
        if not check(values[field_name]):
            raise ProtocolError(f"{name}: {field_name} is not {what}: {values[field_name]!r}")
    return cls(**values)


# --------------------------------------------------------------------- messages


@_message
class Link(ControlMessage):
    """``{1, FromPid, ToPid}``: link request."""

    OP = ops.LINK
    WIRE = ("from_pid", "to_pid")
    KINDS = {"from_pid": "pid", "to_pid": "pid"}
    from_pid: Pid
    to_pid: Pid


@_message
class Send(ControlMessage):
    """``{2, '', ToPid}`` + message."""

    OP = ops.SEND
    WIRE = (None, "to_pid")
    PAYLOAD = "message"
    KINDS = {"to_pid": "pid"}
    to_pid: Pid
    message: Any


@_message
class Exit(ControlMessage):
    """``{3, FromPid, ToPid, Reason}``: a linked process died."""

    OP = ops.EXIT
    WIRE = ("from_pid", "to_pid", "reason")
    KINDS = {"from_pid": "pid", "to_pid": "pid"}
    from_pid: Pid
    to_pid: Pid
    reason: Any


@_message
class Unlink(ControlMessage):
    """``{4, FromPid, ToPid}``: the old unlink (OTP 26+ peers use UNLINK_ID)."""

    OP = ops.UNLINK
    WIRE = ("from_pid", "to_pid")
    KINDS = {"from_pid": "pid", "to_pid": "pid"}
    from_pid: Pid
    to_pid: Pid


@_message
class NodeLink(ControlMessage):
    """``{5}``: obsolete node link."""

    OP = ops.NODE_LINK
    WIRE = ()


@_message
class RegSend(ControlMessage):
    """``{6, FromPid, '', ToName}`` + message: send to a registered name."""

    OP = ops.REG_SEND
    WIRE = ("from_pid", None, "to_name")
    PAYLOAD = "message"
    KINDS = {"from_pid": "pid", "to_name": "atom"}
    from_pid: Pid
    to_name: Atom
    message: Any


@_message
class GroupLeader(ControlMessage):
    """``{7, FromPid, ToPid}``: set the group leader of ``to_pid``."""

    OP = ops.GROUP_LEADER
    WIRE = ("from_pid", "to_pid")
    KINDS = {"from_pid": "pid", "to_pid": "pid"}
    from_pid: Pid
    to_pid: Pid


@_message
class Exit2(ControlMessage):
    """``{8, FromPid, ToPid, Reason}``: ``exit(ToPid, Reason)``."""

    OP = ops.EXIT2
    WIRE = ("from_pid", "to_pid", "reason")
    KINDS = {"from_pid": "pid", "to_pid": "pid"}
    from_pid: Pid
    to_pid: Pid
    reason: Any


@_message
class SendTT(ControlMessage):
    """``{12, '', ToPid, TraceToken}`` + message."""

    OP = ops.SEND_TT
    WIRE = (None, "to_pid", "trace_token")
    PAYLOAD = "message"
    KINDS = {"to_pid": "pid"}
    to_pid: Pid
    trace_token: Any
    message: Any


@_message
class ExitTT(ControlMessage):
    """``{13, FromPid, ToPid, TraceToken, Reason}``."""

    OP = ops.EXIT_TT
    WIRE = ("from_pid", "to_pid", "trace_token", "reason")
    KINDS = {"from_pid": "pid", "to_pid": "pid"}
    from_pid: Pid
    to_pid: Pid
    trace_token: Any
    reason: Any


@_message
class RegSendTT(ControlMessage):
    """``{16, FromPid, '', ToName, TraceToken}`` + message."""

    OP = ops.REG_SEND_TT
    WIRE = ("from_pid", None, "to_name", "trace_token")
    PAYLOAD = "message"
    KINDS = {"from_pid": "pid", "to_name": "atom"}
    from_pid: Pid
    to_name: Atom
    trace_token: Any
    message: Any


@_message
class Exit2TT(ControlMessage):
    """``{18, FromPid, ToPid, TraceToken, Reason}``."""

    OP = ops.EXIT2_TT
    WIRE = ("from_pid", "to_pid", "trace_token", "reason")
    KINDS = {"from_pid": "pid", "to_pid": "pid"}
    from_pid: Pid
    to_pid: Pid
    trace_token: Any
    reason: Any


@_message
class MonitorP(ControlMessage):
    """``{19, FromPid, ToProc, Ref}``: monitor a pid or a registered name."""

    OP = ops.MONITOR_P
    WIRE = ("from_pid", "to_proc", "ref")
    KINDS = {"from_pid": "pid", "to_proc": "proc", "ref": "ref"}
    from_pid: Pid
    to_proc: Pid | Atom
    ref: Reference


@_message
class DemonitorP(ControlMessage):
    """``{20, FromPid, ToProc, Ref}``."""

    OP = ops.DEMONITOR_P
    WIRE = ("from_pid", "to_proc", "ref")
    KINDS = {"from_pid": "pid", "to_proc": "proc", "ref": "ref"}
    from_pid: Pid
    to_proc: Pid | Atom
    ref: Reference


@_message
class MonitorPExit(ControlMessage):
    """``{21, FromProc, ToPid, Ref, Reason}``: a monitored process died."""

    OP = ops.MONITOR_P_EXIT
    WIRE = ("from_proc", "to_pid", "ref", "reason")
    KINDS = {"from_proc": "proc", "to_pid": "pid", "ref": "ref"}
    from_proc: Pid | Atom
    to_pid: Pid
    ref: Reference
    reason: Any


@_message
class SendSender(ControlMessage):
    """``{22, FromPid, ToPid}`` + message."""

    OP = ops.SEND_SENDER
    WIRE = ("from_pid", "to_pid")
    PAYLOAD = "message"
    KINDS = {"from_pid": "pid", "to_pid": "pid"}
    from_pid: Pid
    to_pid: Pid
    message: Any


@_message
class SendSenderTT(ControlMessage):
    """``{23, FromPid, ToPid, TraceToken}`` + message."""

    OP = ops.SEND_SENDER_TT
    WIRE = ("from_pid", "to_pid", "trace_token")
    PAYLOAD = "message"
    KINDS = {"from_pid": "pid", "to_pid": "pid"}
    from_pid: Pid
    to_pid: Pid
    trace_token: Any
    message: Any


@_message
class PayloadExit(ControlMessage):
    """``{24, FromPid, ToPid}`` + reason."""

    OP = ops.PAYLOAD_EXIT
    WIRE = ("from_pid", "to_pid")
    PAYLOAD = "reason"
    KINDS = {"from_pid": "pid", "to_pid": "pid"}
    from_pid: Pid
    to_pid: Pid
    reason: Any


@_message
class PayloadExitTT(ControlMessage):
    """``{25, FromPid, ToPid, TraceToken}`` + reason."""

    OP = ops.PAYLOAD_EXIT_TT
    WIRE = ("from_pid", "to_pid", "trace_token")
    PAYLOAD = "reason"
    KINDS = {"from_pid": "pid", "to_pid": "pid"}
    from_pid: Pid
    to_pid: Pid
    trace_token: Any
    reason: Any


@_message
class PayloadExit2(ControlMessage):
    """``{26, FromPid, ToPid}`` + reason."""

    OP = ops.PAYLOAD_EXIT2
    WIRE = ("from_pid", "to_pid")
    PAYLOAD = "reason"
    KINDS = {"from_pid": "pid", "to_pid": "pid"}
    from_pid: Pid
    to_pid: Pid
    reason: Any


@_message
class PayloadExit2TT(ControlMessage):
    """``{27, FromPid, ToPid, TraceToken}`` + reason."""

    OP = ops.PAYLOAD_EXIT2_TT
    WIRE = ("from_pid", "to_pid", "trace_token")
    PAYLOAD = "reason"
    KINDS = {"from_pid": "pid", "to_pid": "pid"}
    from_pid: Pid
    to_pid: Pid
    trace_token: Any
    reason: Any


@_message
class PayloadMonitorPExit(ControlMessage):
    """``{28, FromProc, ToPid, Ref}`` + reason."""

    OP = ops.PAYLOAD_MONITOR_P_EXIT
    WIRE = ("from_proc", "to_pid", "ref")
    PAYLOAD = "reason"
    KINDS = {"from_proc": "proc", "to_pid": "pid", "ref": "ref"}
    from_proc: Pid | Atom
    to_pid: Pid
    ref: Reference
    reason: Any


@_message
class SpawnRequest(ControlMessage):
    """``{29, ReqId, From, GroupLeader, {M, F, A}, OptList}`` + argument list."""

    OP = ops.SPAWN_REQUEST
    WIRE = ("req_id", "from_pid", "group_leader", "mfa", "opts")
    PAYLOAD = "args"
    KINDS = {
        "req_id": "ref",
        "from_pid": "pid",
        "group_leader": "pid",
        "mfa": "mfa",
        "opts": "list",
        "args": "list",
    }
    req_id: Reference
    from_pid: Pid
    group_leader: Pid
    mfa: tuple[Atom, Atom, int]
    opts: list
    args: list


@_message
class SpawnRequestTT(ControlMessage):
    """``{30, ReqId, From, GroupLeader, {M, F, A}, OptList, Token}`` + argument list."""

    OP = ops.SPAWN_REQUEST_TT
    WIRE = ("req_id", "from_pid", "group_leader", "mfa", "opts", "trace_token")
    PAYLOAD = "args"
    KINDS = {
        "req_id": "ref",
        "from_pid": "pid",
        "group_leader": "pid",
        "mfa": "mfa",
        "opts": "list",
        "args": "list",
    }
    req_id: Reference
    from_pid: Pid
    group_leader: Pid
    mfa: tuple[Atom, Atom, int]
    opts: list
    trace_token: Any
    args: list


#: ``SPAWN_REPLY`` flags: the new process is linked to, or monitored by, the requester
#: (``ERTS_DIST_SPAWN_FLAG_LINK`` and ``_MONITOR``).
SPAWN_REPLY_LINK = 1
SPAWN_REPLY_MONITOR = 2


@_message
class SpawnReply(ControlMessage):
    """``{31, ReqId, To, Flags, Result}``: ``result`` is the new pid or an error atom."""

    OP = ops.SPAWN_REPLY
    WIRE = ("req_id", "to_pid", "flags", "result")
    KINDS = {"req_id": "ref", "to_pid": "pid", "flags": "int", "result": "proc"}
    req_id: Reference
    to_pid: Pid
    flags: int
    result: Pid | Atom


@_message
class SpawnReplyTT(ControlMessage):
    """``{32, ReqId, To, Flags, Result, Token}``."""

    OP = ops.SPAWN_REPLY_TT
    WIRE = ("req_id", "to_pid", "flags", "result", "trace_token")
    KINDS = {"req_id": "ref", "to_pid": "pid", "flags": "int", "result": "proc"}
    req_id: Reference
    to_pid: Pid
    flags: int
    result: Pid | Atom
    trace_token: Any


@_message
class AliasSend(ControlMessage):
    """``{33, FromPid, Alias}`` + message: send to a process alias."""

    OP = ops.ALIAS_SEND
    WIRE = ("from_pid", "alias")
    PAYLOAD = "message"
    KINDS = {"from_pid": "pid", "alias": "ref"}
    from_pid: Pid
    alias: Reference
    message: Any


@_message
class AliasSendTT(ControlMessage):
    """``{34, FromPid, Alias, Token}`` + message."""

    OP = ops.ALIAS_SEND_TT
    WIRE = ("from_pid", "alias", "trace_token")
    PAYLOAD = "message"
    KINDS = {"from_pid": "pid", "alias": "ref"}
    from_pid: Pid
    alias: Reference
    trace_token: Any
    message: Any


@_message
class UnlinkId(ControlMessage):
    """``{35, Id, FromPid, ToPid}``: unlink with an id to acknowledge."""

    OP = ops.UNLINK_ID
    WIRE = ("id", "from_pid", "to_pid")
    KINDS = {"id": "int", "from_pid": "pid", "to_pid": "pid"}
    id: int
    from_pid: Pid
    to_pid: Pid


@_message
class UnlinkIdAck(ControlMessage):
    """``{36, Id, FromPid, ToPid}``: acknowledges UNLINK_ID."""

    OP = ops.UNLINK_ID_ACK
    WIRE = ("id", "from_pid", "to_pid")
    KINDS = {"id": "int", "from_pid": "pid", "to_pid": "pid"}
    id: int
    from_pid: Pid
    to_pid: Pid
