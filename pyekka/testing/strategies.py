"""Hypothesis strategies for Erlang terms, as pyekka's decoder returns them.

Every value drawn here is in *decoded form*: decoding its encoding gives back an
``exact_equal`` value (atoms ``true``/``false`` are bools, charlists are lists of
ints, maps are ``dict`` or, when a dict cannot hold them, :class:`ErlMap`, node
fields are always :class:`Atom`). Nothing here needs a live VM.

``erlang_terms()`` is the one to reach for; the smaller strategies are public for
tests that need one kind of term.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from pyekka.term.order import map_key_sort_key as map_key
from pyekka.term.types import (
    Atom,
    BitString,
    ExportFun,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
    map_from_pairs,
)

__all__ = [
    "atom_names",
    "atoms",
    "bitstrings",
    "erlang_terms",
    "export_funs",
    "floats",
    "integers",
    "leaf_terms",
    "local_funs",
    "maps",
    "node_atoms",
    "pids",
    "ports",
    "references",
]

_U32 = st.integers(min_value=0, max_value=0xFFFFFFFF)
_COMMON_NAMES = (
    "ok",
    "error",
    "true",
    "false",
    "undefined",
    "",
    "nonode@nohost",
    "ekka1@127.0.0.1",
    "$gen_call",
    "é",
    "日本",
    "\U0001f600",
)


def atom_names(max_size: int = 255) -> st.SearchStrategy[str]:
    """Valid atom texts: at most ``max_size`` (<= 255) characters, no surrogates."""
    return st.one_of(
        st.sampled_from(_COMMON_NAMES),
        st.text(max_size=min(max_size, 20)),
        st.text(min_size=250, max_size=max_size) if max_size >= 250 else st.nothing(),
        st.text(alphabet=st.characters(min_codepoint=0x80, max_codepoint=0xFF), max_size=40),
    )


def _atom_value(name: str) -> Any:
    if name == "true":
        return True
    if name == "false":
        return False
    return Atom(name)


def atoms() -> st.SearchStrategy[Any]:
    """Atoms in decoded form: :class:`Atom`, or ``True``/``False``."""
    return st.builds(_atom_value, atom_names())


def node_atoms() -> st.SearchStrategy[Atom]:
    """Atoms for node/module/function fields: always :class:`Atom`, never a bool.

    ``nonode@nohost`` is left out: a VM that is not distributed takes a pid, port or
    reference of that node (creation 0) as its own and rejects it unless its fields
    fit the VM's local ranges, which would only add noise to differential tests.
    """
    return st.builds(Atom, atom_names(max_size=60).filter(lambda n: n != "nonode@nohost"))


def integers() -> st.SearchStrategy[int]:
    """Integers for every integer encoding, bignums of more than 255 bytes included."""
    return st.one_of(
        st.integers(min_value=0, max_value=255),
        st.integers(min_value=-(1 << 31), max_value=(1 << 31) - 1),
        st.integers(min_value=-(1 << 70), max_value=1 << 70),
        st.integers(min_value=-(1 << 2100), max_value=1 << 2100),
        st.sampled_from([256, -1, (1 << 31) - 1, -(1 << 31), 1 << 31, -(1 << 31) - 1]),
    )


def floats() -> st.SearchStrategy[float]:
    """Finite floats (Erlang has no NaN or infinity); ``-0.0`` and subnormals included."""
    return st.floats(allow_nan=False, allow_infinity=False)


def bitstrings() -> st.SearchStrategy[BitString]:
    """Bitstrings whose size is not a whole number of bytes."""
    return st.builds(
        BitString, st.binary(min_size=1, max_size=12), st.integers(min_value=1, max_value=7)
    )


def pids() -> st.SearchStrategy[Pid]:
    """Pids with full 32-bit id, serial and creation."""
    return st.builds(Pid, node_atoms(), _U32, _U32, _U32)


def ports() -> st.SearchStrategy[Port]:
    """Ports: ids both below and above 2**28 (``NEW_PORT_EXT`` / ``V4_PORT_EXT``)."""
    ids = st.one_of(
        st.integers(min_value=0, max_value=(1 << 28) - 1),
        st.integers(min_value=0, max_value=(1 << 64) - 1),
    )
    return st.builds(Port, node_atoms(), ids, _U32)


def references() -> st.SearchStrategy[Reference]:
    """References with 1..5 id words (3 is what a VM makes).

    No zero-word references: OTP 25 decodes one alone but rejects it inside most
    containers (a VM quirk), so it would only add noise to differential tests.
    """
    words = st.one_of(
        st.tuples(_U32, _U32, _U32), st.lists(_U32, min_size=1, max_size=5).map(tuple)
    )
    return st.builds(Reference, node_atoms(), _U32, words)


def export_funs() -> st.SearchStrategy[ExportFun]:
    """``fun M:F/A`` values."""
    return st.builds(ExportFun, node_atoms(), node_atoms(), st.integers(min_value=0, max_value=255))


def local_funs(free_vars: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Fun]:
    """Local funs (``NEW_FUN_EXT``), with free variables drawn from ``free_vars``."""
    small = st.integers(min_value=0, max_value=(1 << 31) - 1)
    return st.builds(
        Fun,
        node_atoms(),
        st.integers(min_value=0, max_value=255),
        small,
        small,
        _U32,
        st.binary(min_size=16, max_size=16),
        pids(),
        st.lists(free_vars if free_vars is not None else leaf_terms(), max_size=3),
    )


def leaf_terms() -> st.SearchStrategy[Any]:
    """Terms with no other terms inside (no lists, tuples, maps or local funs)."""
    return st.one_of(
        integers(),
        atoms(),
        floats(),
        st.binary(max_size=40),
        bitstrings(),
        pids(),
        ports(),
        references(),
        export_funs(),
    )


def maps(
    keys: st.SearchStrategy[Any],
    values: st.SearchStrategy[Any],
    *,
    min_size: int = 0,
    max_size: int = 6,
) -> st.SearchStrategy[Any]:
    """Maps with distinct Erlang keys: a ``dict``, or an ``ErlMap`` where a dict can't hold them.

    Keys such as ``1`` and ``1.0`` (or ``1`` and ``true``) are distinct in Erlang but
    collide in a dict; unhashable keys (lists, maps) cannot live in one at all.
    """
    pairs = st.lists(
        st.tuples(keys, values),
        min_size=min_size,
        max_size=max_size,
        unique_by=lambda kv: map_key(kv[0]),
    )
    return pairs.map(map_from_pairs)


def _improper_lists(children: st.SearchStrategy[Any]) -> st.SearchStrategy[ImproperList]:
    return st.builds(ImproperList, st.lists(children, min_size=1, max_size=4), leaf_terms())


def erlang_terms(
    *, max_leaves: int = 25, local_fun_terms: bool = True, big_maps: bool = True
) -> st.SearchStrategy[Any]:
    """Any Erlang term, nested: every type the codec handles, maps with mixed keys.

    ``big_maps`` adds (rarely) maps of 33..40 keys, which OTP writes in hash-trie
    order; ``local_fun_terms`` adds local funs.
    """

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        options = [
            st.lists(children, max_size=6),
            st.lists(st.integers(min_value=0, max_value=255), min_size=1, max_size=8),
            st.lists(children, max_size=6).map(tuple),
            maps(st.one_of(leaf_terms(), children), children),
            _improper_lists(children),
        ]
        if local_fun_terms:
            options.append(local_funs(children))
        nested = st.one_of(*options)
        if not big_maps:
            return nested
        big = maps(
            st.one_of(integers(), st.binary(max_size=8), atoms()),
            leaf_terms(),
            min_size=33,
            max_size=40,
        )
        # Big maps are slow to draw: about one container in sixteen.
        return st.integers(min_value=0, max_value=15).flatmap(lambda i: big if i == 0 else nested)

    return st.recursive(leaf_terms(), extend, max_leaves=max_leaves)
