"""The ``sys.config`` reader: ekka's application env as is, every key, errors with file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyekka.config import ConfigError, Settings, build_settings, read_conf, read_erlang_config
from pyekka.config.erlang_config import _locate, _Shape
from pyekka.config.schema import AUTOHEAL_DEFAULT_DELAY_MS, BY_NAME
from pyekka.term import binary_to_term
from pyekka.term.text import format_term, parse_terms
from pyekka.term.types import Atom, ExportFun, exact_equal
from pyekka.testing.otp import OtpRuntime
from tests.config_samples import SAMPLES, erlang_text, setting_of, strict_equal

ETC = Path(__file__).resolve().parents[1] / "etc"


def settings_of(text: str) -> Settings:
    return build_settings(read_erlang_config(text, "etc/a.config"), syntax="config")


@pytest.mark.parametrize("name", list(BY_NAME))
def test_every_key_is_read(name: str) -> None:
    key = BY_NAME[name]
    settings = settings_of(erlang_text(key))
    assert strict_equal(setting_of(settings, key), SAMPLES[name][2])


def test_defaults_are_ekka_code_defaults() -> None:
    cluster = settings_of("[].").cluster
    assert cluster.name is None  # unset: mcast sends `undefined`
    assert cluster.autoheal is True and cluster.autoheal_delay_ms == AUTOHEAL_DEFAULT_DELAY_MS
    assert cluster.discovery.strategy == "manual" and cluster.enable is True
    mcast = settings_of(
        "[{ekka, [{cluster_discovery, {mcast, [{addr, {239,192,0,1}}, {ports, [4369]}]}}]}]."
    ).cluster.discovery
    assert (mcast.ttl, mcast.loop, mcast.iface) == (1, True, "0.0.0.0")
    etcd = settings_of(
        '[{ekka, [{cluster_discovery, {etcd, [{server, ["http://h:2379"]}, {node_ttl, 60000}]}}]}].'
    ).cluster.discovery
    assert etcd.prefix == "undefined"  # ekka's code writes the text `undefined`


def test_the_example_of_ekka_is_read() -> None:
    # data/app.mcast.config of ekka 0.8.1.9, as is.
    text = """[{ekka, [
      {cluster_autoheal,true},
      {cluster_autoclean,300000},
      {cluster_name,ekka},
      {cluster_discovery, {mcast, [
        {addr,{239,192,0,1}},
        {ports,[4369,4370,4371,4372,4373]},
        {iface,{0,0,0,0}},
        {ttl, 255},
        {loop,true}]}}
    ]}]."""
    cluster = settings_of(text).cluster
    assert cluster.autoclean == 300_000 and cluster.name == "ekka"
    assert cluster.discovery.ports == (4369, 4370, 4371, 4372, 4373)
    assert cluster.discovery.ttl == 255


def test_lines_are_found_past_strings_atoms_chars_comments_and_binaries() -> None:
    text = (
        "%% comment with {braces, [and, brackets}\n"
        "[{pyekka, [{cookie, 'a}b,c'},   % ]}]}\n"
        '           {data_dir, "x,{y}]\\"z"},\n'
        "           {net_ticktime, $}}]},\n"
        '  {ekka, [{cluster_name, <<"b,}">>},\n'
        "          {cluster_discovery, {static, [{seeds, ['a@h',\n"
        "                                                 'b@h']}]}},\n"
        "          {proto_dist,\n"
        "              bad}]}].\n"
    )
    with pytest.raises(ConfigError) as info:
        settings_of(text)
    assert str(info.value) == (
        "etc/a.config:9: ekka.proto_dist: expected one of inet_tcp, inet6_tcp, inet_tls, got bad"
    )
    good = settings_of(text.replace("bad", "inet_tls"))
    assert good.node.cookie == "a}b,c" and good.node.data_dir == 'x,{y}]"z'
    assert good.node.net_ticktime == ord("}") and good.cluster.name == "b,}"
    values = read_erlang_config(text.replace("bad", "inet_tls"), "a.config")
    assert values["cluster.static.seeds"].origin.line == 6
    assert values["cluster.discovery"].origin.line == 6
    assert values["node.net_ticktime"].origin.line == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[{ekka, [{cluster_discovery,\n  {mcast, [{addr, {239,1,1,1}},\n"
            "   {ports, [1]},\n   {ttl, abc}]}}]}].",
            "etc/a.config:4: ekka.cluster_discovery.mcast.ttl: expected an integer in 0..255, "
            "got abc",
        ),
        (
            '[{ekka, [{cluster_discovery, {dns, [{app, "a"}]}}]}].',
            "etc/a.config:1: ekka.cluster_discovery.dns.name: required by the dns discovery "
            "strategy",
        ),
        (
            "[{ekka,\n [{cluster_discovery, {mcast, []}}]}].",
            "etc/a.config:2: ekka.cluster_discovery.mcast.addr: required by the mcast",
        ),
        (
            '[{ekka, [{cluster_discovery, {etcd, [{server, ["http://h"]}]}}]}].',
            "etc/a.config:1: ekka.cluster_discovery.etcd.node_ttl: required by the etcd",
        ),
        ("[{ekak, []}].", "etc/a.config:1: ekak: unknown application (did you mean 'ekka'?)"),
        (
            "[{ekka, [{cluster_nme, x}]}].",
            "etc/a.config:1: ekka.cluster_nme: unknown key (did you mean 'cluster_name'?)",
        ),
        (
            "[{pyekka, [{name, 'a@h'}]}].",
            "etc/a.config:1: pyekka.name: unknown key (did you mean 'node_name'?)",
        ),
        (
            "[{ekka, [{cluster_discovery, {statc, []}}]}].",
            "etc/a.config:1: ekka.cluster_discovery: unknown strategy 'statc' (did you mean "
            "'static'?)",
        ),
        (
            "[{ekka, [{cluster_discovery, {static, [{sedes, []}]}}]}].",
            "etc/a.config:1: ekka.cluster_discovery.static.sedes: unknown option (did you mean "
            "'seeds'?)",
        ),
        (
            "[{ekka, [{cluster_discovery, {manual, [{seeds, []}]}}]}].",
            "etc/a.config:1: ekka.cluster_discovery.manual.seeds: unknown option",
        ),
        (
            '[{ekka, [{cluster_discovery, {etcd, [{ssl_options, [{certfle, "c"}]}]}}]}].',
            "etc/a.config:1: ekka.cluster_discovery.etcd.ssl_options.certfle: unknown option "
            "(did you mean 'certfile'?)",
        ),
        (
            "[{ekka, [{cluster_name, a},\n         {cluster_name, b}]}].",
            "etc/a.config:2: ekka.cluster_name: set twice (first at line 1)",
        ),
        ("[{ekka, []},\n {ekka, []}].", "etc/a.config:2: ekka: set twice (first at line 1)"),
        ("[{ekka, [{cluster_name, a}]}", "etc/a.config:1: unexpected end of input"),
        ("[{ekka, [\n{cluster_name, a}}]}].", "etc/a.config:2: syntax error before: '}'"),
        ("{ekka, []}.", "etc/a.config:1: expected a list of {Application, Env} pairs"),
        ("[ekka].", "etc/a.config:1: expected a {Name, Value} pair, got ekka"),
        ("[{ekka, [cluster_enable]}].", "etc/a.config:1: ekka: expected a {Name, Value} pair"),
        ("[{ekka, {cluster_name, a}}].", "etc/a.config:1: ekka: expected a list of {Key, Value}"),
        ("[].\n[].", "etc/a.config:2: expected one term, found more"),
        ("%% nothing\n", "etc/a.config:1: expected one term"),
        (
            "[{ekka, [{cluster_discovery, static}]}].",
            "etc/a.config:1: ekka.cluster_discovery: expected {Strategy, Options}, got static",
        ),
        (
            '[{ekka, [{cluster_discovery, {static, [{seeds, "a@h"}]}}]}].',
            "etc/a.config:1: ekka.cluster_discovery.static.seeds: expected a list of node "
            'names, got "a@h"',
        ),
        (
            '[{ekka, [{cluster_autoclean, "5m"}]}].',
            "etc/a.config:1: ekka.cluster_autoclean: expected an integer number of "
            'milliseconds >= 1, got "5m"',
        ),
        (
            "[{ekka, [{cluster_autoheal, on}]}].",
            "etc/a.config:1: ekka.cluster_autoheal: expected true, false or an integer number "
            "of milliseconds, got on",
        ),
        (
            "[{pyekka, [{epmd, 1}]}].",
            "etc/a.config:1: pyekka.epmd: expected true or false, got 1",
        ),
        (
            "[{ekka, [{cluster_discovery, {mcast, [{addr, {239,1,1}}]}}]}].",
            "etc/a.config:1: ekka.cluster_discovery.mcast.addr: expected a multicast IP "
            "address: a tuple such as {127,0,0,1} or a string, got {239,1,1}",
        ),
        (
            "[{ekka, [{cluster_enable,\n   #{a => [1, 2]}}]}].",
            "etc/a.config:2: ekka.cluster_enable: expected true or false, got #{a => [1,2]}",
        ),
    ],
)
def test_errors_name_file_line_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_of(text)
    assert str(info.value).startswith(message)
    assert info.value.source == "etc/a.config"


def test_example_configs_read_as_a_real_vm_reads_them(otp: OtpRuntime) -> None:
    """``file:consult/1`` of a live VM gives the terms pyekka's reader sees."""
    paths = sorted(ETC.glob("*.config"))
    assert paths
    for path in paths:
        erl_path = str(path).replace("\\", "\\\\").replace('"', '\\"')
        out = otp.eval_text(
            f'{{ok, Terms}} = file:consult("{erl_path}"), '
            'io:format("~s~n", [binary:encode_hex(term_to_binary(Terms))])'
        )
        theirs = binary_to_term(bytes.fromhex(out.strip().splitlines()[-1]))
        ours = parse_terms(path.read_text(encoding="utf-8"))
        assert exact_equal(theirs, ours), path.name


# -- properties -------------------------------------------------------------------------

# Text biased towards what the line finder must step over in strings and atoms.
_tricky = st.text(st.sampled_from(list("a,\"'\\}{[]%$ \n>")) | st.characters(), max_size=6)
_leaves = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _tricky.map(Atom),
    _tricky.map(lambda s: s.encode()),
    _tricky.map(lambda s: [ord(c) for c in s if not 0xD800 <= ord(c) <= 0xDFFF]),
    st.builds(ExportFun, _tricky.map(Atom), _tricky.map(Atom), st.integers(0, 9)),
)
_terms = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=3).map(Atom), inner, max_size=3),
    ),
    max_leaves=12,
)
_PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def _same_structure(term: Any, shape: _Shape) -> None:
    if isinstance(term, tuple):
        assert shape.items is not None and len(shape.items) == len(term)
    elif isinstance(term, list) and shape.items is not None:
        assert len(shape.items) == len(term)
    else:
        return
    for item, item_shape in zip(term, shape.items, strict=True):
        _same_structure(item, item_shape)


@_PROPERTY
@given(
    terms=st.lists(_terms, min_size=1, max_size=3),
    pretty=st.booleans(),
    comma=st.sampled_from([",", ", ", ",\n", ",\n  % a comment {[,\n  "]),
)
def test_the_line_finder_sees_the_structure_the_parser_sees(
    terms: list, pretty: bool, comma: str
) -> None:
    # Commas inside strings and atoms change too: the text is parsed again.
    text = "".join(format_term(t, pretty=pretty) + ".\n" for t in terms).replace(",", comma)
    parsed = parse_terms(text)
    shapes = _locate(text)
    assert len(shapes) == len(parsed)
    for term, shape in zip(parsed, shapes, strict=True):
        _same_structure(term, shape)


@_PROPERTY
@given(
    text=st.text(alphabet=st.sampled_from(list("{}[](),.'\"$%\\ \n\tab1<>#=|:x@-_")), max_size=80)
)
def test_readers_raise_only_config_errors(text: str) -> None:
    for reader, syntax in ((read_erlang_config, "config"), (read_conf, "conf")):
        try:
            build_settings(reader(text, "f"), syntax=syntax)
        except ConfigError as e:
            assert e.source == "f"
