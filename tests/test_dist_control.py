"""Control messages: every operation, the captured ones, and malformed tuples."""

from __future__ import annotations

from typing import Any

import pytest

from pyekka.dist import control as c
from pyekka.dist import ops
from pyekka.dist.control import ControlMessage, message_class, parse_control
from pyekka.dist.errors import ProtocolError
from pyekka.dist.framing import Frame, FrameDecoder
from pyekka.term import binary_to_term, term_to_binary
from pyekka.term.types import Atom, Pid, Reference, exact_equal
from tests.vectors import have_vectors, load, requires_vectors

NODE = Atom("b@127.0.0.1")
P1 = Pid(NODE, 90, 0, 3)
P2 = Pid(Atom("py@127.0.0.1"), 1, 0, 4)
REF = Reference(NODE, 3, (1, 2, 3))
NAME = Atom("ekka_membership")
TOKEN = (Atom("seq"), 1)
MSG = (Atom("$gen_cast"), (Atom("ping"), [1, 2]))

# (message, the control tuple it must produce)
EXAMPLES: list[tuple[ControlMessage, tuple]] = [
    (c.Link(P1, P2), (1, P1, P2)),
    (c.Send(P2, MSG), (2, Atom(""), P2)),
    (c.Exit(P1, P2, Atom("kill")), (3, P1, P2, Atom("kill"))),
    (c.Unlink(P1, P2), (4, P1, P2)),
    (c.NodeLink(), (5,)),
    (c.RegSend(P1, NAME, MSG), (6, P1, Atom(""), NAME)),
    (c.GroupLeader(P1, P2), (7, P1, P2)),
    (c.Exit2(P1, P2, Atom("kill")), (8, P1, P2, Atom("kill"))),
    (c.SendTT(P2, TOKEN, MSG), (12, Atom(""), P2, TOKEN)),
    (c.ExitTT(P1, P2, TOKEN, Atom("x")), (13, P1, P2, TOKEN, Atom("x"))),
    (c.RegSendTT(P1, NAME, TOKEN, MSG), (16, P1, Atom(""), NAME, TOKEN)),
    (c.Exit2TT(P1, P2, TOKEN, Atom("x")), (18, P1, P2, TOKEN, Atom("x"))),
    (c.MonitorP(P1, NAME, REF), (19, P1, NAME, REF)),
    (c.MonitorP(P1, P2, REF), (19, P1, P2, REF)),
    (c.DemonitorP(P1, P2, REF), (20, P1, P2, REF)),
    (c.MonitorPExit(P2, P1, REF, Atom("noproc")), (21, P2, P1, REF, Atom("noproc"))),
    (c.SendSender(P1, P2, MSG), (22, P1, P2)),
    (c.SendSenderTT(P1, P2, TOKEN, MSG), (23, P1, P2, TOKEN)),
    (c.PayloadExit(P1, P2, Atom("normal")), (24, P1, P2)),
    (c.PayloadExitTT(P1, P2, TOKEN, Atom("normal")), (25, P1, P2, TOKEN)),
    (c.PayloadExit2(P1, P2, Atom("kill")), (26, P1, P2)),
    (c.PayloadExit2TT(P1, P2, TOKEN, Atom("kill")), (27, P1, P2, TOKEN)),
    (c.PayloadMonitorPExit(NAME, P2, REF, Atom("noproc")), (28, NAME, P2, REF)),
    (
        c.SpawnRequest(
            REF, P1, P1, (Atom("erpc"), Atom("execute_call"), 4), [Atom("monitor")], [1]
        ),
        (29, REF, P1, P1, (Atom("erpc"), Atom("execute_call"), 4), [Atom("monitor")]),
    ),
    (
        c.SpawnRequestTT(REF, P1, P1, (Atom("m"), Atom("f"), 0), [], TOKEN, []),
        (30, REF, P1, P1, (Atom("m"), Atom("f"), 0), [], TOKEN),
    ),
    (c.SpawnReply(REF, P1, 2, P2), (31, REF, P1, 2, P2)),
    (c.SpawnReply(REF, P1, 0, Atom("notsup")), (31, REF, P1, 0, Atom("notsup"))),
    (c.SpawnReplyTT(REF, P1, 0, P2, TOKEN), (32, REF, P1, 0, P2, TOKEN)),
    (c.AliasSend(P1, REF, MSG), (33, P1, REF)),
    (c.AliasSendTT(P1, REF, TOKEN, MSG), (34, P1, REF, TOKEN)),
    (c.UnlinkId(7, P1, P2), (35, 7, P1, P2)),
    (c.UnlinkIdAck(7, P1, P2), (36, 7, P1, P2)),
]


@pytest.mark.parametrize(("message", "term"), EXAMPLES, ids=lambda x: type(x).__name__)
def test_to_term_and_back(message: ControlMessage, term: tuple) -> None:
    assert exact_equal(message.to_term(), term)
    assert term[0] == message.OP
    assert message.has_payload() == (term[0] in ops.PAYLOAD_OPS)
    payload = message.payload() if message.has_payload() else None
    assert parse_control(term, payload) == message
    # through the wire and back
    etf_control = binary_to_term(term_to_binary(term))
    etf_payload = None if payload is None else binary_to_term(term_to_binary(payload))
    assert parse_control(etf_control, etf_payload) == message


def test_every_known_operation_has_a_class() -> None:
    classes = {op: message_class(op) for op in ops.OP_NAMES}
    missing = [ops.OP_NAMES[op] for op, cls in classes.items() if cls is None]
    assert missing == ["ALTACT_SIG_SEND"]  # OTP 28 only, never negotiated by pyekka
    assert {type(m).OP for m, _ in EXAMPLES} == {op for op, cls in classes.items() if cls}
    assert message_class(99) is None


def test_payload_accessor() -> None:
    assert c.RegSend(P1, NAME, MSG).payload() == MSG
    assert c.PayloadExit(P1, P2, Atom("normal")).payload() == Atom("normal")
    assert c.SpawnRequest(REF, P1, P1, (Atom("m"), Atom("f"), 1), [], [5]).payload() == [5]
    with pytest.raises(TypeError):
        c.Link(P1, P2).payload()


def test_messages_are_frozen_and_hashable() -> None:
    link = c.Link(P1, P2)
    with pytest.raises(AttributeError):
        link.from_pid = P2  # type: ignore[misc]
    assert hash(link) == hash(c.Link(P1, P2))


@pytest.mark.parametrize(
    ("control", "payload", "message"),
    [
        (Atom("x"), None, "not a tuple with an op code"),
        ((), None, "not a tuple with an op code"),
        ((True, P1, P2), None, "not a tuple with an op code"),
        ((99, P1), None, "unknown distribution operation 99"),
        ((1, P1), None, "LINK control tuple has 2 elements, not 3"),
        ((1, P1, P2), Atom("x"), "LINK carries no payload"),
        ((6, P1, Atom(""), NAME), None, "REG_SEND needs a payload"),
        ((1, P1, REF), None, "LINK: to_pid is not a pid"),
        ((6, P1, Atom(""), "name"), MSG, "REG_SEND: to_name is not an atom"),
        ((19, P1, 5, REF), None, "MONITOR_P: to_proc is not a pid or a registered name"),
        ((19, P1, P2, P1), None, "MONITOR_P: ref is not a reference"),
        ((35, 1.0, P1, P2), None, "UNLINK_ID: id is not an integer"),
        ((31, REF, P1, True, P2), None, "SPAWN_REPLY: flags is not an integer"),
        ((29, REF, P1, P1, (Atom("m"), Atom("f")), []), [], "mfa is not a {Module"),
        ((29, REF, P1, P1, (Atom("m"), Atom("f"), 1), ()), [], "opts is not a list"),
        ((29, REF, P1, P1, (Atom("m"), Atom("f"), 1), []), (1,), "args is not a list"),
    ],
)
def test_malformed_control_tuples(control: Any, payload: Any, message: str) -> None:
    with pytest.raises(ProtocolError, match=message.replace("{", r"\{")):
        parse_control(control, payload)


# --------------------------------------------------------------- captured traffic


def _frames() -> list:
    if not have_vectors():
        return [pytest.param(None, None, marks=requires_vectors, id="no-vectors")]
    out = []
    decoders: dict[tuple[str, str], FrameDecoder] = {}
    for r in load("dist"):
        if r["type"] != "dist":
            continue
        decoder = decoders.setdefault((r["variant"], r["direction"]), FrameDecoder())
        frame = decoder.receive_data(bytes.fromhex(r["bytes"]))[0]
        out.append(pytest.param(r, frame, id=r["id"]))
    return out


EXPECTED_CLASSES = {
    6: c.RegSend,
    19: c.MonitorP,
    20: c.DemonitorP,
    22: c.SendSender,
    28: c.PayloadMonitorPExit,
    29: c.SpawnRequest,
    31: c.SpawnReply,
}


@requires_vectors
@pytest.mark.parametrize(("r", "frame"), _frames())
def test_captured_control_messages_parse_and_rebuild(r: dict, frame: Frame) -> None:
    message = parse_control(frame.control, frame.payload)
    assert type(message) is EXPECTED_CLASSES[frame.control[0]]
    assert exact_equal(message.to_term(), frame.control)
    if r["kind"] == "pass_through":
        # the rebuilt control tuple encodes to the very bytes the VM sent
        assert term_to_binary(message.to_term()).hex() == r["control_etf"]
        if message.has_payload():
            assert term_to_binary(message.payload()).hex() == r["payload_etf"]
