"""Operation codes of distribution control messages (``DOP_*`` in OTP's ``dist.h``).

A control message is a tuple whose first element is one of these codes. The
codes in :data:`PAYLOAD_OPS` are followed, in the same frame, by a second term:
the message, exit reason or argument list.
"""

from __future__ import annotations

__all__ = [
    "ALIAS_SEND",
    "ALIAS_SEND_TT",
    "ALTACT_SIG_SEND",
    "DEMONITOR_P",
    "EXIT",
    "EXIT2",
    "EXIT2_TT",
    "EXIT_TT",
    "GROUP_LEADER",
    "LINK",
    "MONITOR_P",
    "MONITOR_P_EXIT",
    "NODE_LINK",
    "OP_NAMES",
    "PAYLOAD_EXIT",
    "PAYLOAD_EXIT2",
    "PAYLOAD_EXIT2_TT",
    "PAYLOAD_EXIT_TT",
    "PAYLOAD_MONITOR_P_EXIT",
    "PAYLOAD_OPS",
    "REG_SEND",
    "REG_SEND_TT",
    "SEND",
    "SEND_SENDER",
    "SEND_SENDER_TT",
    "SEND_TT",
    "SPAWN_REPLY",
    "SPAWN_REPLY_TT",
    "SPAWN_REQUEST",
    "SPAWN_REQUEST_TT",
    "UNLINK",
    "UNLINK_ID",
    "UNLINK_ID_ACK",
]

LINK = 1
SEND = 2
EXIT = 3
UNLINK = 4
NODE_LINK = 5
REG_SEND = 6
GROUP_LEADER = 7
EXIT2 = 8
SEND_TT = 12
EXIT_TT = 13
REG_SEND_TT = 16
EXIT2_TT = 18
MONITOR_P = 19
DEMONITOR_P = 20
MONITOR_P_EXIT = 21
SEND_SENDER = 22
SEND_SENDER_TT = 23
PAYLOAD_EXIT = 24
PAYLOAD_EXIT_TT = 25
PAYLOAD_EXIT2 = 26
PAYLOAD_EXIT2_TT = 27
PAYLOAD_MONITOR_P_EXIT = 28
SPAWN_REQUEST = 29
SPAWN_REQUEST_TT = 30
SPAWN_REPLY = 31
SPAWN_REPLY_TT = 32
ALIAS_SEND = 33
ALIAS_SEND_TT = 34
UNLINK_ID = 35
UNLINK_ID_ACK = 36
ALTACT_SIG_SEND = 37  # OTP 28, only with DFLAG_ALTACT_SIG (pyekka does not offer it)

#: Operations whose control tuple is followed by a payload term.
PAYLOAD_OPS: frozenset[int] = frozenset(
    {
        SEND,
        REG_SEND,
        SEND_TT,
        REG_SEND_TT,
        SEND_SENDER,
        SEND_SENDER_TT,
        PAYLOAD_EXIT,
        PAYLOAD_EXIT_TT,
        PAYLOAD_EXIT2,
        PAYLOAD_EXIT2_TT,
        PAYLOAD_MONITOR_P_EXIT,
        SPAWN_REQUEST,
        SPAWN_REQUEST_TT,
        ALIAS_SEND,
        ALIAS_SEND_TT,
        ALTACT_SIG_SEND,
    }
)

#: Names for logs and error messages (every upper-case int constant above).
OP_NAMES: dict[int, str] = {
    value: name for name, value in list(globals().items()) if name.isupper() and type(value) is int
}
