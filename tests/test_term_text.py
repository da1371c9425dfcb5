"""Erlang term text: ``parse_term``/``parse_terms`` and ``format_term``.

Ground truth is the VM: the ``erl`` fields of the golden vectors (``io_lib:format("~tw")``
of OTP 25) and, in the ``otp`` tests, a live OTP 25 ``erl`` that parses and prints
generated text side by side with pyekka.
"""

from __future__ import annotations

import enum
import math
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyekka.term.errors import TermSyntaxError
from pyekka.term.text import DEFAULT_MAX_DEPTH, format_term, parse_term, parse_terms
from pyekka.term.types import (
    Atom,
    BitString,
    ErlMap,
    ExportFun,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
    exact_equal,
    map_from_pairs,
)
from pyekka.testing.otp import OtpRuntime, clean_env
from tests.vectors import from_typed, records

# ---------------------------------------------------------------------------
# The golden vectors
# ---------------------------------------------------------------------------

# erl_scan's reserved words in OTP 25.
_RESERVED = (
    *("after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor"),
    *("case", "catch", "cond", "div", "end", "fun", "if", "let", "not", "of", "or"),
    *("orelse", "receive", "rem", "try", "when", "xor"),
)


def _typed_parts(typed: Any) -> Iterator[list]:
    """Every compound node of a vector's typed term (iteratively)."""
    stack = [typed]
    while stack:
        t = stack.pop()
        if isinstance(t, int):
            continue
        yield t
        kind = t[0]
        if kind in ("list", "tuple"):
            stack.extend(t[1])
        elif kind == "improper_list":
            stack.extend(t[1])
            stack.append(t[2])
        elif kind == "map":
            for k, v in t[1]:
                stack += [k, v]


def _kinds(typed: Any) -> set[str]:
    return {t[0] for t in _typed_parts(typed)}


def _export_funs(typed: Any) -> list[ExportFun]:
    return [from_typed(t) for t in _typed_parts(typed) if t[0] == "export"]


def _vm_fun_names_differ(typed: Any) -> bool:
    """Whether OTP 25 printed a ``fun M:F/A`` name's UTF-8 bytes as characters."""
    return any(not (f.module.name + f.function.name).isascii() for f in _export_funs(typed))


def _text_records() -> list:
    """Vector records with a complete ``erl`` text and a typed term."""
    out = []
    for name in ("etf", "etf_decode", "phash2", "ekka"):
        for param in records(name):
            rec = param.values[0]
            if rec is None:  # vectors absent: a single skipping param
                return [param]
            if "erl" not in rec or "term" not in rec or rec.get("erl_truncated"):
                continue
            big_opaque_map = rec.get("decode_only") and any(
                t[0] == "map" and len(t[1]) > 32 for t in _typed_parts(rec["term"])
            )
            if big_opaque_map:  # the VM's own order differs between runs
                continue
            out.append(pytest.param(rec, id=f"{name}:{rec['id']}"))
    return out


_TEXT_RECORDS = _text_records()
# Those whose terms have source syntax (no pids, ports, references or local funs).
_SOURCE_RECORDS = [
    p
    for p in _TEXT_RECORDS
    if p.values[0] is None or not _kinds(p.values[0]["term"]) & {"pid", "port", "ref", "fun"}
]
# Pids, ports and refs: pyekka names the node where OTP prints a node-table index.
# Quoted atoms are matched whole so that nothing inside them is taken for a pid.
_QUOTED_ATOM = r"'(?:[^'\\]|\\.)*'"
_NODE_OR_QUOTED = re.compile(rf"(<|#Ref<|#Port<)({_QUOTED_ATOM}|[\w@]+)(?=[.>])|{_QUOTED_ATOM}")


def _without_nodes(text: str) -> str:
    return _NODE_OR_QUOTED.sub(lambda m: m.group(1) + "N" if m.group(1) else m.group(0), text)


@pytest.mark.parametrize("rec", _TEXT_RECORDS)
def test_format_term_prints_what_the_vm_printed(rec: dict) -> None:
    term = from_typed(rec["term"])
    ours, expected = format_term(term), rec["erl"]
    for fun in _export_funs(rec["term"]):  # OTP 25 prints the UTF-8 bytes of the names
        text = format_term(fun)
        expected = expected.replace(text.encode().decode("latin-1"), text)
    if _kinds(rec["term"]) & {"pid", "port", "ref"}:
        ours, expected = _without_nodes(ours), _without_nodes(expected)
    assert ours == expected


@pytest.mark.parametrize("rec", _SOURCE_RECORDS)
def test_parse_term_reads_what_the_vm_printed(rec: dict) -> None:
    if _vm_fun_names_differ(rec["term"]):
        pytest.skip("OTP 25 prints non-ASCII fun names as UTF-8 bytes")
    assert exact_equal(parse_term(rec["erl"]), from_typed(rec["term"]))


@pytest.mark.parametrize("rec", _SOURCE_RECORDS)
def test_vector_terms_survive_format_and_parse(rec: dict) -> None:
    term = from_typed(rec["term"])
    assert exact_equal(parse_term(format_term(term)), term)
    assert exact_equal(parse_term(format_term(term, pretty=True)), term)


# ---------------------------------------------------------------------------
# Generated terms and texts
# ---------------------------------------------------------------------------

_atom_names = st.one_of(
    st.sampled_from(["ok", "", "A", "hello world", "it's", "a\\b", "n@h", "Köln", *_RESERVED]),
    st.text(st.characters(codec="utf-8", exclude_characters="\ufffe\uffff"), max_size=12),
    st.text(st.characters(max_codepoint=255), max_size=8),
)


def _atom(name: str) -> Any:
    return {"true": True, "false": False}.get(name, Atom(name))


def _map(pairs: list) -> Any:
    kept: list = []
    for k, v in pairs:
        if not any(exact_equal(k, k2) for k2, _ in kept):
            kept.append((k, v))
    return map_from_pairs(kept)


def _improper(items: list, tail: Any) -> Any:
    """``[items | tail]``: improper unless the tail is a proper list."""
    if type(tail) is list:
        return items + tail
    if type(tail) is ImproperList:
        return ImproperList(items + list(tail.items), tail.tail)
    return ImproperList(items, tail)


_leaves = st.one_of(
    st.integers(-300, 300),
    st.integers(),
    st.integers(-(2**300), 2**300),
    st.floats(allow_nan=False, allow_infinity=False),
    _atom_names.map(_atom),
    st.binary(max_size=12),
    st.text(max_size=8).map(lambda s: s.encode()),
    st.text(st.characters(max_codepoint=255), max_size=8).map(lambda s: s.encode("latin-1")),
    st.builds(BitString, st.binary(min_size=1, max_size=4), st.integers(1, 7)),
    st.lists(st.integers(0, 0x10FFFF).filter(lambda c: not 0xD800 <= c <= 0xDFFF), max_size=6),
    st.text(st.characters(max_codepoint=255), max_size=8).map(lambda s: [ord(c) for c in s]),
    st.builds(ExportFun, _atom_names.map(Atom), _atom_names.map(Atom), st.integers(0, 255)),
)
# Everything that has source syntax: no pids, ports, references or local funs.
parseable_terms = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.builds(_improper, st.lists(inner, min_size=1, max_size=4), inner),
        st.lists(st.tuples(inner, inner), max_size=6).map(_map),
    ),
    max_leaves=25,
)

# Erlang-ish source text, valid or not, to hammer the scanner and the parser.
_ws = st.sampled_from(["", " ", "\n", "\t", " % c\n", "\r\n", "\xa0"])
_digits = st.text(st.sampled_from("0123456789"), min_size=1, max_size=5)
_decimal = st.one_of(_digits, st.lists(_digits, min_size=2, max_size=3).map("_".join))
_escape = st.sampled_from(
    [
        *(r"\n", r"\s", r"\d", r"\e", r"\'", r"\"", r"\\", r"\z", r"\^A", r"\^?", r"\x41"),
        *(r"\x4", r"\x{}", r"\x{41}", r"\x{10FFFF}", r"\x{110000}", r"\x{D800}"),
        *(r"\1", r"\123", r"\1234", r"\8", "\\\n", "\\"),
    ]
)
_body = st.lists(st.one_of(st.characters(exclude_characters="\\"), _escape), max_size=5).map(
    "".join
)
_number = st.one_of(
    _decimal,
    st.tuples(st.integers(0, 40), st.text(st.sampled_from("019afzAZ_"), max_size=5)).map(
        lambda a: f"{a[0]}#{a[1]}"
    ),
    st.tuples(_decimal, _decimal, st.sampled_from(["", "e", "E-", "e+"]), _decimal).map(
        lambda a: f"{a[0]}.{a[1]}{a[2]}{a[3] if a[2] else ''}"
    ),
    st.one_of(st.characters(), _escape).map(lambda c: "$" + c),
)
_signed = st.tuples(st.sampled_from(["", "-", "+", "- ", "--"]), _number).map("".join)
_string = _body.map(lambda s: '"' + s.replace('"', '\\"') + '"')
_bit_types = st.lists(
    st.sampled_from(["integer", "float", "binary", "bytes", "bits", "utf8", "utf16"])
    | st.sampled_from(["little", "native", "signed", "unit:8", "unit:3", "unit:0", "foo"]),
    min_size=1,
    max_size=3,
).map(lambda names: "/" + "-".join(names))
_segment = st.tuples(
    st.one_of(_signed, _string, st.sampled_from(["<<1,2>>", "<<1:3>>", "(1)"])),
    st.sampled_from(["", ":0", ":3", ":12", ":16", ":32", ":(4)", ":-1"]),
    st.one_of(st.just(""), _bit_types),
).map("".join)
_leaf_text = st.one_of(
    _signed,
    _string,
    _body.map(lambda s: "'" + s.replace("'", "\\'") + "'"),
    st.from_regex(r"[a-zA-Z_ßÄ][a-zA-Z0-9_@]{0,4}", fullmatch=True),
    st.lists(_segment, max_size=4).map(lambda segs: "<<" + ",".join(segs) + ">>"),
    st.sampled_from(["fun m:f/2", "fun 'M':g/0", "fun m:f/256", "<0.1.2>", "#{a := 1}", "()"]),
)
erlang_texts = st.recursive(
    _leaf_text,
    lambda inner: st.one_of(
        st.tuples(
            st.sampled_from(["{%s}", "[%s]", "(%s)"]),
            st.lists(st.tuples(_ws, inner, _ws).map("".join), max_size=4),
        ).map(lambda a: a[0] % ",".join(a[1])),
        st.tuples(st.lists(inner, min_size=1, max_size=3), inner).map(
            lambda a: "[" + ",".join(a[0]) + "|" + a[1] + "]"
        ),
        st.lists(st.tuples(inner, inner), max_size=3).map(
            lambda pairs: "#{" + ",".join(f"{k} => {v}" for k, v in pairs) + "}"
        ),
        st.tuples(inner, st.sampled_from([",", " ", "|", "=>", ". "]), inner).map("".join),
    ),
    max_leaves=10,
)

_hypothesis = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


@_hypothesis
@given(parseable_terms)
def test_generated_terms_survive_format_and_parse(term: Any) -> None:
    assert exact_equal(parse_term(format_term(term)), term)
    assert exact_equal(parse_term(format_term(term, pretty=True)), term)


@_hypothesis
@given(st.one_of(erlang_texts, st.text()))
def test_parse_term_raises_only_term_syntax_error(text: str) -> None:
    for parse in (parse_term, parse_terms):
        try:
            parse(text)
        except TermSyntaxError as exc:
            assert exc.line >= 1 and exc.column >= 1


# ---------------------------------------------------------------------------
# Parsing: features, checked against erl_parse:parse_term of OTP 25
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16#ff_FF", 0xFFFF),
        ("2#101", 5),
        ("36#zz", 1295),
        ("1_000", 1000),
        ("1_0.0_1e1_0", 1.001e11),
        ("2.0e-3", 0.002),
        ("1.0e-400", 0.0),
        ("- 1", -1),
        ("+1", 1),
        ("-(1)", -1),
        ("-$a", -97),
        ("$ ", 32),
        ("$\\s", 32),
        ("$\\^A", 1),
        ("(1)", 1),
        ('"\\^?"', [31]),
        ('"a\\x{41}\\101\\x41\\z\\d\\e\\s"', [97, 65, 65, 65, 122, 127, 27, 32]),
        ('"a" "b"', [97, 98]),
        ("'\\x{101}'", Atom("\u0101")),
        ("'true'", True),
        ("[1|[2|3]]", ImproperList([1, 2], 3)),
        ("[1|[2,3]]", [1, 2, 3]),
        ("#{a=>1,a=>2}", {Atom("a"): 2}),
        ("#{1 => i, 1.0 => f}", ErlMap([(1, Atom("i")), (1.0, Atom("f"))])),
        ("#{[1] => a, [1] => b}", ErlMap([([1], Atom("b"))])),
        ("fun 'M':'f'/2", ExportFun(Atom("M"), Atom("f"), 2)),
        ("fun m:end/0", ExportFun(Atom("m"), Atom("end"), 0)),
        ('<<"\u0101">>', b"\x01"),
        ('<<"é">>', b"\xe9"),
        ('<<"é"/utf8>>', "é".encode()),
        ("<<300, -1>>", b"\x2c\xff"),
        ('<<"ab":16>>', b"\x00a\x00b"),
        ('<<"ab"/utf16-little>>', b"a\x00b\x00"),
        ("<<1:4,2:4>>", b"\x12"),
        ("<<1:3/unit:2>>", BitString(b"\x04", 6)),
        ("<<16#ABC:12/little>>", BitString(b"\xbc\xa0", 4)),
        ("<<(-1):12/little>>", BitString(b"\xff\xf0", 4)),
        ("<<1:2/integer-unit:8-little>>", b"\x01\x00"),
        ("<<1.5/float>>", b"\x3f\xf8\x00\x00\x00\x00\x00\x00"),
        ("<<3.0e40:32/float>>", b"\x7f\x80\x00\x00"),
        ("<<1:1/float-unit:64>>", b"\x3f\xf0\x00\x00\x00\x00\x00\x00"),
        ('<<"ab"/float>>', b"\x40\x58\x40\x00\x00\x00\x00\x00\x40\x58\x80\x00\x00\x00\x00\x00"),
        ('<<""/float>>', b""),
        ("<<<<1,2>>:1/binary, <<1:3>>/bits>>", BitString(b"\x01\x20", 3)),
        ("<<<<1:3>>:0/binary>>", b""),
        ("<<1:0>>", b""),
        ("<<65/utf8>>", b"A"),
    ],
)
def test_parse_term_follows_erl_parse(text: str, expected: Any) -> None:
    assert exact_equal(parse_term(text), expected)
    assert exact_equal(parse_term(text + "."), expected)


def test_parse_terms_reads_a_config_file() -> None:
    text = (
        "%% sys.config\n"
        "[{ekka, [{cluster_name, ekka}, % the cluster\n"
        "         {cluster_discovery, {static, [{seeds, ['a@127.0.0.1']}]}}]}].\n"
        '{cookie, <<"s3cret">>}.\n'
        "'end'.% no white space needed after the last dot\n"
    )
    static = (Atom("static"), [(Atom("seeds"), [Atom("a@127.0.0.1")])])
    ekka = [(Atom("cluster_name"), Atom("ekka")), (Atom("cluster_discovery"), static)]
    expected = [[(Atom("ekka"), ekka)], (Atom("cookie"), b"s3cret"), Atom("end")]
    assert exact_equal(parse_terms(text), expected)
    assert parse_terms("  % nothing\n") == []


@pytest.mark.parametrize(
    ("text", "line", "column", "reason"),
    [
        ("{a, b", 1, 6, "unexpected end of input"),
        ("", 1, 1, "unexpected end of input"),
        ("{a,\n  }", 2, 3, "syntax error before: '}'"),
        ("[1,2,\n\t X]", 2, 3, "variable 'X' is not a term"),
        ('{"abc', 1, 2, "unterminated string"),
        ("\n 'abc", 2, 2, "unterminated quoted atom"),
        ("'\\x{D800}'", 1, 2, "illegal character in \\x{...} escape"),
        ('"a\ud800"', 1, 3, "illegal character"),
        ("% \ufffe\n1", 1, 3, "illegal character"),
        ("16#", 1, 1, "illegal integer"),
        ("  37#1", 1, 3, "illegal base 37"),
        ("2#102", 1, 5, "unexpected text after the term"),
        ("1.0e", 1, 1, "illegal float"),
        ("[1.0e400]", 1, 2, "illegal float (out of range)"),
        ("a b", 1, 3, "unexpected text after the term"),
        ("a. b.", 1, 4, "unexpected text after the term"),
        ("#{a := 1}", 1, 5, "syntax error before: ':='"),
        ("{a,b,}", 1, 6, "syntax error before: '}'"),
        ("end", 1, 1, "syntax error before: 'end'"),
        ("a.b", 1, 2, "unexpected text after the term"),
        ("- -1", 1, 1, "'-' must be followed by a number"),
        ("-a", 1, 1, "'-' must be followed by a number"),
        ("<0.1.2>", 1, 1, "syntax error before: '<'"),
        ("fun m:f/256", 1, 9, "fun arity must be 0..255"),
        ("<<1.5>>", 1, 3, "bad binary segment: an integer segment needs an integer"),
        ('x(<<"ab"/binary>>)', 1, 2, "unexpected text after the term"),
        ('<<"ab"/binary>>', 1, 3, "bad binary segment: a binary segment needs a binary"),
        ("<<1/utf8-unit:8>>", 1, 3, "bad binary segment: utf8 segments take no size or unit"),
        ("<<1/integer-unit:8>>", 1, 3, "bad binary segment: a unit needs a size"),
        ("<<1:4/float>>", 1, 3, "bad binary segment: float segments are 16, 32 or 64 bits"),
        ("<<<<1:3>>/binary>>", 1, 3, "bad binary segment: the binary's size is not a multiple"),
        ("<<<<1,2>>:3/bits-unit:2>>", 1, 18, "conflicting bit types: unit 1 and 2"),
        ("<<1/foo>>", 1, 5, "unknown bit type 'foo'"),
        ("<<1:8/unit:257>>", 1, 12, "unit must be an integer 1..256"),
        ("<<1:99999999999999>>", 1, 3, "bad binary segment: binary literal too large"),
        ("<<(1 bsl 2000)/float>>", 1, 6, "syntax error before: 'bsl'"),
    ],
)
def test_syntax_errors_say_where(text: str, line: int, column: int, reason: str) -> None:
    with pytest.raises(TermSyntaxError) as info:
        parse_term(text)
    assert info.value.reason.startswith(reason)
    assert (info.value.line, info.value.column) == (line, column)


def test_parse_terms_needs_a_dot_after_each_term() -> None:
    with pytest.raises(TermSyntaxError) as info:
        parse_terms("a.\nb")
    assert (info.value.reason, info.value.line, info.value.column) == (
        "missing '.' after the last term",
        2,
        2,
    )


def test_atoms_are_at_most_255_characters() -> None:
    assert parse_term("a" * 255) == Atom("a" * 255)
    assert parse_term(f"'{'é' * 255}'") == Atom("é" * 255)
    for text in ("a" * 256, f"'{'b' * 256}'"):
        with pytest.raises(TermSyntaxError, match="atom too long"):
            parse_term(text)


def test_numbers_beyond_pythons_digit_limit() -> None:
    big = 7**20000  # about 17,000 digits
    assert parse_term(format_term(big)) == big
    assert parse_term(format_term(-big)) == -big
    assert parse_term("36#" + "z" * 5000) == 36**5000 - 1


def _nested_list_depth(term: Any) -> int:
    depth = 0
    while term:
        (term,) = term
        depth += 1
    return depth


def test_deep_nesting_is_refused_or_handled_without_recursion() -> None:
    limit = DEFAULT_MAX_DEPTH
    assert _nested_list_depth(parse_term("[" * limit + "]" * limit)) == limit - 1
    with pytest.raises(TermSyntaxError, match="nested too deeply") as info:
        parse_term("{" * (limit + 1) + "1" + "}" * (limit + 1))
    assert (info.value.line, info.value.column) == (1, limit + 1)
    n = 100_000
    term = parse_term("[" * n + "]" * n, max_depth=n)
    assert _nested_list_depth(term) == n - 1
    assert format_term(term) == "[" * n + "]" * n
    with pytest.raises(TermSyntaxError, match="nested too deeply"):
        parse_term("<<" * 20 + ">>" * 20, max_depth=10)
    with pytest.raises(TermSyntaxError, match="nested too deeply"):
        parse_term("<<" * 5000 + ">>" * 5000, max_depth=n)


# ---------------------------------------------------------------------------
# Formatting: what the vectors do not show
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "w", "p"),
    [
        ([104, 105], "[104,105]", '"hi"'),
        ([10, 34, 233], "[10,34,233]", '"\\n\\"é"'),
        ([945], "[945]", "[945]"),
        (b"hi", "<<104,105>>", '<<"hi">>'),
        (b"\xe9", "<<233>>", '<<"é">>'),
        ("é".encode(), "<<195,169>>", '<<"é"/utf8>>'),
        ("日".encode(), "<<230,151,165>>", "<<230,151,165>>"),
        ("hi", "<<104,105>>", '<<"hi">>'),
        (b"\x00", "<<0>>", "<<0>>"),
        (BitString(b"\xff", 8), "<<255>>", '<<"ÿ">>'),
        (BitString(b"ab\xe0", 3), "<<97,98,7:3>>", "<<97,98,7:3>>"),
        (None, "undefined", "undefined"),
        (ImproperList([1], ImproperList([2], 3)), "[1,2|3]", "[1,2|3]"),
        ((Atom("maybe"), Atom("else")), "{maybe,else}", "{maybe,else}"),
        (ExportFun(Atom("a@b"), Atom("end"), 1), "fun 'a@b':end/1", "fun 'a@b':end/1"),
        (ExportFun(Atom("m"), Atom("\x01\x7f\x80"), 0), "fun m:'\\001\x7f\\200'/0", None),
    ],
)
def test_format_term_plain_and_pretty(term: Any, w: str, p: str | None) -> None:
    assert format_term(term) == w
    assert format_term(term, pretty=True) == (w if p is None else p)


def test_pids_ports_refs_and_local_funs_name_their_node() -> None:
    node = Atom("ekka1@127.0.0.1")
    pid = Pid(node, 85, 2, 7)
    assert format_term(pid) == "<'ekka1@127.0.0.1'.85.2>"
    assert format_term(Pid(Atom("nonode@nohost"), 1, 0, 0)) == "<nonode@nohost.1.0>"
    assert format_term(Port(node, 12, 3)) == "#Port<'ekka1@127.0.0.1'.12>"
    assert format_term(Reference(node, 3, (1, 2, 3))) == "#Ref<'ekka1@127.0.0.1'.3.2.1>"
    fun = Fun(Atom("Foo.bar"), 0, 0, 18594591, 0, bytes(16), pid, ())
    assert format_term(fun) == "#Fun<Foo.bar.0.18594591>"
    assert str(pid) == format_term(pid)
    assert str(Atom("hello world")) == "'hello world'"


def test_map_print_order() -> None:
    small = {2.5: Atom("f"), Atom("a"): 1, 1: Atom("i")}
    assert format_term(small) == "#{1 => i,2.5 => f,a => 1}"
    assert format_term(ErlMap([(1.0, 2), (1, 3)])) == "#{1 => 3,1.0 => 2}"


class _Color(enum.IntEnum):
    RED = 1


def test_format_term_rejects_what_is_not_a_term() -> None:
    assert format_term([_Color.RED, bytearray(b"a"), memoryview(b"b")]) == "[1,<<97>>,<<98>>]"
    for bad in ({1, 2}, object(), [1, 2.0j]):
        with pytest.raises(TypeError):
            format_term(bad)
    for bad in (math.nan, math.inf, (-math.inf,)):
        with pytest.raises(ValueError):
            format_term(bad)


# ---------------------------------------------------------------------------
# Side by side with a live OTP 25
# ---------------------------------------------------------------------------

# Reads hex-encoded UTF-8 lines; answers "ok <~tw hex> <one-line ~tp hex>" or "error".
_ERL_PROGRAM = r"""
Hex = fun(Chars) -> binary:encode_hex(unicode:characters_to_binary(Chars)) end,
Loop = fun Loop() ->
    case io:get_line("") of
        eof -> halt(0);
        Line ->
            Bin = binary:decode_hex(list_to_binary(string:trim(Line))),
            Reply = try
                {ok, Tokens, _} = erl_scan:string(unicode:characters_to_list(Bin)),
                {ok, Term} = erl_parse:parse_term(Tokens),
                Pretty = io_lib_pretty:print(Term, [{line_length, 1 bsl 30}, {encoding, unicode}]),
                ["ok ", Hex(io_lib:format("~tw", [Term])), " ", Hex(Pretty)]
            catch _:_ -> "error"
            end,
            io:put_chars([Reply, "\n"]),
            Loop()
    end
end,
Loop().
"""


class _Otp:
    """A live ``erl`` that parses term text and prints the term with ``~tw`` and ``~tp``."""

    def __init__(self, erl: str) -> None:
        self.proc = subprocess.Popen(
            [erl, "-noshell", "-eval", _ERL_PROGRAM],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )

    def ask(self, text: str) -> tuple[str, str] | None:
        """``(~tw, ~tp)`` of the term in ``text``, or None when OTP cannot parse it."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(text.encode("utf-8", "surrogatepass").hex() + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().split()
        if not reply:
            raise RuntimeError(f"the OTP VM stopped (exit status {self.proc.poll()})")
        if reply[0] != "ok":
            return None
        w, p = (bytes.fromhex(h).decode() for h in reply[1:3])
        return w, p

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def otp_text(otp: OtpRuntime) -> Iterator[_Otp]:
    """The text-printing VM of the runtime ``otp`` (only OTP 25: later releases differ)."""
    if otp.release != "25":
        pytest.skip(f"pyekka's term text follows OTP 25 (this is OTP {otp.release})")
    vm = _Otp(str(otp.erl))
    try:
        yield vm
    finally:
        vm.close()


def _otp_cannot_print_back(term: Any) -> bool:
    """Export funs whose names OTP 25 itself prints unparseably or as UTF-8 bytes."""
    stack = [term]
    while stack:
        t = stack.pop()
        if type(t) is ExportFun:
            names = (t.module.name, t.function.name)
            if any(n in _RESERVED or not n.isascii() for n in names):
                return True
        elif type(t) in (list, tuple):
            stack.extend(t)
        elif type(t) is ImproperList:
            stack.extend(t.items)
            stack.append(t.tail)
        elif type(t) in (dict, ErlMap):
            for k, v in t.items():
                stack += [k, v]
    return False


@pytest.mark.otp
@_hypothesis
@given(parseable_terms)
def test_format_term_matches_live_otp(otp_text: _Otp, term: Any) -> None:
    if _otp_cannot_print_back(term):
        return
    w = format_term(term)
    assert otp_text.ask(w + ".") == (w, format_term(term, pretty=True))


@pytest.mark.otp
@_hypothesis
@given(erlang_texts)
def test_parse_term_matches_live_otp(otp_text: _Otp, text: str) -> None:
    try:
        ours: str | None = format_term(parse_term(text))
    except TermSyntaxError:
        ours = None
    vm = otp_text.ask(text + "\n.")
    assert ours == (vm[0] if vm else None)
