"""Erlang term text: :func:`parse_term` / :func:`parse_terms` and :func:`format_term`.

The public face of the term-text modules:

* :mod:`pyekka.term.text_parse`: Erlang syntax to terms, as OTP 25's ``erl_scan`` +
  ``erl_parse:parse_term/1`` read it (``file:consult/1`` for :func:`parse_terms`);
  failures raise :class:`~pyekka.term.errors.TermSyntaxError` with a line and column.
  Its tokenizer is :mod:`pyekka.term.text_scan`, its bit syntax
  :mod:`pyekka.term.text_bits`.
* :mod:`pyekka.term.text_format`: terms to the text OTP 25's ``io_lib:format`` prints
  with ``~tw`` (``~tp`` on one line with ``pretty=True``), node names standing where
  OTP's text depends on the printing VM (pids, ports, references).

Both directions are iterative: deep terms never raise ``RecursionError``.
"""

from pyekka.term.text_format import format_term
from pyekka.term.text_parse import DEFAULT_MAX_DEPTH, parse_term, parse_terms

__all__ = ["DEFAULT_MAX_DEPTH", "format_term", "parse_term", "parse_terms"]
