"""Distribution flags: values, the advertised and required sets, against real VMs."""

from __future__ import annotations

import pytest

from pyekka.dist import flags as df
from pyekka.dist.flags import DFlag
from pyekka.testing.otp import OtpRuntime
from tests.vectors import records, requires_vectors


def test_describe() -> None:
    assert df.describe(0) == "0"
    assert df.describe(DFlag.PUBLISHED | DFlag.SPAWN) == "PUBLISHED|SPAWN"
    assert df.describe((1 << 60) | 0x4) == "EXTENDED_REFERENCES|UNKNOWN<0x1000000000000000>"
    with pytest.raises(ValueError):
        df.describe(-1)


def test_sets() -> None:
    assert df.MANDATORY_25 == 0x1070F94  # erts_internal:get_dflags() mandatory, OTP 25
    assert df.MANDATORY_25 | df.MANDATORY_26 == 0x403070F94  # the same on OTP 28
    assert df.REQUIRED_FLAGS & ~df.DEFAULT_FLAGS == 0
    assert df.DEFAULT_FLAGS & df.HEADER_FLAGS == 0
    assert df.DEFAULT_FLAGS & DFlag.PUBLISHED
    for internal in (DFlag.NAME_ME, DFlag.PENDING_CONNECT, DFlag.ETS_COMPRESSED, DFlag.LOCAL_EXT):
        assert not df.DEFAULT_FLAGS & internal
    assert type(df.DEFAULT_FLAGS) is int


def test_expand_and_negotiate() -> None:
    assert df.expand_mandatory_25(DFlag.MANDATORY_25_DIGEST) == (
        df.MANDATORY_25 | DFlag.MANDATORY_25_DIGEST
    )
    assert df.expand_mandatory_25(DFlag.SPAWN) == DFlag.SPAWN
    assert df.negotiate(df.DEFAULT_FLAGS, DFlag.MANDATORY_25_DIGEST) == (
        df.MANDATORY_25 | DFlag.MANDATORY_25_DIGEST
    )
    assert df.missing_flags(df.MANDATORY_25, DFlag.MAP_TAG) == df.MANDATORY_25 & ~DFlag.MAP_TAG
    assert df.uses_dist_header(DFlag.FRAGMENTS)
    assert df.uses_dist_header(DFlag.DIST_HDR_ATOM_CACHE)
    assert not df.uses_dist_header(df.DEFAULT_FLAGS)


@requires_vectors
@pytest.mark.parametrize("r", records("dist", type="handshake", msg="send_name"))
def test_default_flags_are_otp25s_without_the_header_flags(r: dict) -> None:
    """What OTP 25 sent, minus what the capture proxy removed, is what pyekka offers."""
    otp_flags = r["fields"]["flags"]
    assert otp_flags & ~df.HEADER_FLAGS == df.DEFAULT_FLAGS
    if "bytes_forwarded" in r:
        forwarded = int.from_bytes(bytes.fromhex(r["bytes_forwarded"])[3:11], "big")
        assert forwarded == df.DEFAULT_FLAGS


def test_flags_cover_what_the_vm_requires(otp: OtpRuntime) -> None:
    """erts_internal:get_dflags() of each runtime: its mandatory flags are ours."""
    out = otp.eval_text(
        "{erts_dflags, Default, Mandatory, _Add, Reject, _Strict} = "
        'erts_internal:get_dflags(), io:format("~b ~b ~b~n", [Default, Mandatory, Reject])'
    )
    default, mandatory, rejectable = (int(x) for x in out.split())
    assert mandatory & ~df.DEFAULT_FLAGS == 0, df.describe(mandatory & ~df.DEFAULT_FLAGS)
    assert mandatory & ~df.REQUIRED_FLAGS & ~df.MANDATORY_26 == 0
    # pyekka leaves out only what the VM itself may be told to reject, and ALTACT_SIG
    dropped = default & ~df.DEFAULT_FLAGS & ~DFlag.ALTACT_SIG
    assert dropped & ~rejectable == 0, df.describe(dropped & ~rejectable)
    # every flag the VM knows has a name here
    assert "UNKNOWN" not in df.describe(default | mandatory)
