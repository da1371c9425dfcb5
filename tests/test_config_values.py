"""Value types of the configuration: cuttlefish durations, byte sizes, flags, lists, ..."""

from __future__ import annotations

import pytest

from pyekka.config.values import (
    Bytesize,
    CommaList,
    Duration,
    Enum,
    Flag,
    FlagOrDuration,
    Integer,
    IpAddress,
    NodeName,
    Text,
    Url,
    format_bytesize,
    format_duration,
    parse_bytesize,
    parse_duration,
)
from pyekka.term import Atom

# cuttlefish_duration's own test table, and a few more.
DURATIONS = [
    ("500ms", 500),
    (".5s", 500),
    ("1s1ms", 1001),
    ("1s599ms", 1599),
    ("1.599s", 1599),
    ("1.5999s", 1600),  # fractions round up
    ("1m", 60_000),
    ("60s", 60_000),
    ("60000ms", 60_000),
    ("1.5m", 90_000),
    ("1m30s", 90_000),
    ("1m29s1000ms", 90_000),
    (".5h", 1_800_000),
    ("5m", 300_000),
    ("5M", 300_000),  # case-insensitive
    ("1h", 3_600_000),
    ("1d", 86_400_000),
    ("1w", 604_800_000),
    ("1f", 1_209_600_000),
    ("10ms", 10),
]
BAD_DURATIONS = ["", "300", "0s", "05s", "5 m", "m", "1.s", "-5s", "5x", "5m ", "1.5"]


@pytest.mark.parametrize(("text", "ms"), DURATIONS)
def test_durations_follow_cuttlefish(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", BAD_DURATIONS)
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration such as"):
        parse_duration(text)


@pytest.mark.parametrize("ms", [1, 500, 1500, 60_000, 90_000, 300_000, 694_861_001])
def test_durations_round_trip(ms: int) -> None:
    assert parse_duration(format_duration(ms)) == ms


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("20", 20),
        ("1kb", 1024),
        ("2KB", 2048),
        ("10mb", 10 * 1024**2),
        ("1GB", 1024**3),
        ("1.5KB", 1536),
        (".5MB", 512 * 1024),
    ],
)
def test_bytesizes_follow_cuttlefish(text: str, size: int) -> None:
    assert parse_bytesize(text) == size
    assert parse_bytesize(format_bytesize(size)) == size


def test_bytesize_terms_are_integers() -> None:
    size = Bytesize()
    assert size.from_term(65536) == 65536 and size.to_text(65536) == "64KB"
    for term in (-1, True, [49, 75, 66]):
        with pytest.raises(ValueError, match="expected an integer number of bytes"):
            size.from_term(term)


@pytest.mark.parametrize("text", ["10MB10kb", "1Kb", "KB", "-1", "10 KB", "1.2.3KB", ""])
def test_bad_bytesizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a byte size"):
        parse_bytesize(text)


def test_flags() -> None:
    flag = Flag()
    assert [flag.from_text(t) for t in ("on", "off", "true", "false")] == [True, False, True, False]
    assert flag.from_term(True) is True and flag.from_term(False) is False
    for bad in ("yes", "On", "1", ""):
        with pytest.raises(ValueError, match="expected on or off"):
            flag.from_text(bad)
    for term in (1, Atom("on"), [111, 110]):
        with pytest.raises(ValueError, match="expected true or false"):
            flag.from_term(term)


def test_integers_refuse_booleans_and_out_of_range() -> None:
    ttl = Integer(0, 255)
    assert ttl.from_text("+7") == 7 and ttl.from_term(255) == 255
    with pytest.raises(ValueError, match=r"in 0\.\.255, got '256'"):
        ttl.from_text("256")
    with pytest.raises(ValueError, match="got true"):
        ttl.from_term(True)
    with pytest.raises(ValueError, match=r"got '1\.0'"):
        ttl.from_text("1.0")


def test_duration_and_autoheal_terms() -> None:
    assert Duration().from_term(300_000) == 300_000
    with pytest.raises(ValueError, match="integer number of milliseconds"):
        Duration().from_term(True)
    with pytest.raises(ValueError, match="at least 1s"):
        Duration(minimum=1000).from_text("500ms")
    heal = FlagOrDuration()
    assert heal.from_text("on") is True and heal.from_text("off") is False
    assert heal.from_text("15s") == 15_000 and heal.from_term(15_000) == 15_000
    assert heal.from_term(True) is True
    assert heal.to_text(15_000) == "15s" and heal.to_text(False) == "off"
    with pytest.raises(ValueError, match="true, false or an integer"):
        heal.from_term(-1)


def test_text_accepts_strings_binaries_and_atoms() -> None:
    text = Text()
    assert text.from_term([104, 105]) == "hi"
    assert text.from_term(b"h\xc3\xa9") == "hé"
    assert text.from_term(Atom("hi")) == "hi"
    assert text.from_term([]) == ""
    for term in (1, (104,), b"\xff", [104, -1], True):
        with pytest.raises(ValueError, match="expected a string"):
            text.from_term(term)
    with pytest.raises(ValueError, match="empty"):
        Text(empty=False).from_text("")


def test_enums() -> None:
    kind = Enum("a", "aaaa", "srv")
    assert kind.from_text("srv") == "srv" and kind.from_term(Atom("aaaa")) == "aaaa"
    with pytest.raises(ValueError, match="one of a, aaaa, srv, got 'SRV'"):
        kind.from_text("SRV")
    with pytest.raises(ValueError, match="got mx"):
        kind.from_term(Atom("mx"))


def test_ip_addresses() -> None:
    ip = IpAddress()
    assert ip.from_text("0.0.0.0") == "0.0.0.0"
    assert ip.from_term((10, 0, 0, 1)) == "10.0.0.1"
    assert ip.from_term((0, 0, 0, 0, 0, 0, 0, 1)) == "::1"
    assert ip.from_term([49, 46, 50, 46, 51, 46, 52]) == "1.2.3.4"
    assert ip.to_term("10.0.0.1") == (10, 0, 0, 1)
    assert ip.to_term("::1") == (0, 0, 0, 0, 0, 0, 0, 1)
    for term in ((1, 2, 3), (256, 0, 0, 1), Atom("localhost"), 7):
        with pytest.raises(ValueError, match="expected an IP address"):
            ip.from_term(term)
    with pytest.raises(ValueError, match="not multicast"):
        IpAddress(multicast=True).from_text("10.0.0.1")
    assert IpAddress(multicast=True).from_text("ff02::1") == "ff02::1"


def test_node_names() -> None:
    peer, own = NodeName(), NodeName(own=True)
    assert peer.from_term(Atom("a@h")) == "a@h"
    assert own.from_text("n1") == "n1"
    for bad in ("a", "a@b@c", "@h", "a@"):
        with pytest.raises(ValueError, match="expected a node name"):
            peer.from_text(bad)
    with pytest.raises(ValueError, match="invalid alive part"):
        own.from_text("a b@h")


def test_urls() -> None:
    url = Url()
    assert url.from_text("https://h:6443/base") == "https://h:6443/base"
    for bad in ("h:2379", "ftp://h", "http://", "http://h:99999"):
        with pytest.raises(ValueError, match="expected an http:// or https:// URL"):
            url.from_text(bad)


def test_comma_lists() -> None:
    ports = CommaList(Integer(1, 65535), min_items=1, what="ports")
    assert ports.from_text("4369,4370") == (4369, 4370)
    assert ports.from_text("4369,,4370,") == (4369, 4370)  # string:tokens drops empties
    assert ports.from_term([4369]) == (4369,)
    assert ports.to_text((1, 2)) == "1,2" and ports.to_term((1, 2)) == [1, 2]
    with pytest.raises(ValueError, match=r"\(at least 1\)"):
        ports.from_text(",")
    with pytest.raises(ValueError, match="a list of ports, got 4369"):
        ports.from_term(4369)
    seeds = CommaList(NodeName())
    assert seeds.from_text("") == ()
    with pytest.raises(ValueError, match='got "a@h"'):  # a string where a list belongs
        seeds.from_term([97, 64, 104])
