"""The ``pyekka`` command line: argument parsing and printing only.

Every command calls the library; nothing here knows the wire format.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pyekka import __version__
from pyekka.cli_ctl import add_ctl_command
from pyekka.cli_demo import add_demo_command
from pyekka.cli_node import add_node_commands
from pyekka.term import (
    DecodeError,
    EncodeError,
    TermSyntaxError,
    binary_to_term,
    format_term,
    parse_term,
    phash2,
    term_to_binary,
)

SHOWCASE_TERMS = (
    '{ok, [1, foo, <<"bar">>]}',
    "#{node => 'emqx@127.0.0.1', port => 4370, tags => [a, b]}",
    "{ping, 'ekka1@127.0.0.1', ekka, 105751525}",
    '[3.14, -12345678901234567890, "chars", {}, []]',
)


def _read_term(text: str) -> object:
    if text == "-":
        text = sys.stdin.read()
    return parse_term(text)


def cmd_term_encode(args: argparse.Namespace) -> int:
    """Print the external term format of a term given in Erlang syntax, as hex."""
    term = _read_term(args.term)
    compressed: bool | int = args.compressed if args.compressed is not None else False
    data = term_to_binary(term, compressed=compressed, minor_version=args.minor_version)
    print(data.hex())
    return 0


def cmd_term_decode(args: argparse.Namespace) -> int:
    """Print, in Erlang syntax, the term that hex-encoded ETF bytes hold."""
    text = sys.stdin.read() if args.hex == "-" else args.hex
    try:
        data = bytes.fromhex("".join(text.split()))
    except ValueError as e:
        raise SystemExit(f"pyekka: not hex: {e}") from None
    print(format_term(binary_to_term(data), pretty=args.pretty))
    return 0


def cmd_term_hash(args: argparse.Namespace) -> int:
    """Print ``erlang:phash2`` of a term given in Erlang syntax."""
    print(phash2(_read_term(args.term), args.range))
    return 0


def cmd_showcase(args: argparse.Namespace) -> int:
    """Encode, decode and hash a few terms, as a first look at the codec."""
    for text in SHOWCASE_TERMS:
        term = parse_term(text)
        data = term_to_binary(term)
        back = binary_to_term(data)
        print(f"term     {format_term(term, pretty=True)}")
        print(f"  etf    {data.hex()}")
        print(f"  back   {format_term(back, pretty=True)}")
        print(f"  phash2 {phash2(term)}  (range 2^32-1: {phash2(term, 4294967295)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pyekka`` command."""
    parser = argparse.ArgumentParser(prog="pyekka", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pyekka {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    show = sub.add_parser("showcase", help="encode, decode and hash a few example terms")
    show.set_defaults(func=cmd_showcase)

    term = sub.add_parser("term", help="the external term format from the command line")
    term_sub = term.add_subparsers(dest="term_command", required=True)
    enc = term_sub.add_parser("encode", help="Erlang term text -> ETF hex")
    enc.add_argument("term", help="a term in Erlang syntax, or - for standard input")
    enc.add_argument("--compressed", type=int, choices=range(10), metavar="LEVEL", default=None)
    enc.add_argument("--minor-version", type=int, choices=(0, 1, 2), default=2)
    enc.set_defaults(func=cmd_term_encode)
    dec = term_sub.add_parser("decode", help="ETF hex -> Erlang term text")
    dec.add_argument("hex", help="hex bytes starting with 83, or - for standard input")
    dec.add_argument("--pretty", action="store_true", help="print printable lists as strings")
    dec.set_defaults(func=cmd_term_decode)
    hsh = term_sub.add_parser("hash", help="erlang:phash2 of a term")
    hsh.add_argument("term", help="a term in Erlang syntax, or - for standard input")
    hsh.add_argument("--range", type=int, default=None, help="as in erlang:phash2/2")
    hsh.set_defaults(func=cmd_term_hash)

    add_node_commands(sub)
    add_ctl_command(sub)
    add_demo_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DecodeError, EncodeError, TermSyntaxError) as e:
        print(f"pyekka: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a pager or `head` that quit early
        sys.stderr.close()
        return 0
