"""Access to the golden vectors made by a real OTP VM (``../shared/vectors``).

The vectors live beside the repository, not in it. ``PYEKKA_VECTORS`` may point at
them; otherwise ``<repo>/../shared/vectors`` is used. Tests that need them skip with
a clear reason when they are absent (the live OTP tests cover the same ground).
"""

from __future__ import annotations

import json
import os
import struct
from functools import cache
from pathlib import Path
from typing import Any

import pytest

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

REPO = Path(__file__).resolve().parents[1]
VECTORS_DIR = Path(os.environ.get("PYEKKA_VECTORS", REPO.parent / "shared" / "vectors"))
SKIP_REASON = (
    f"golden vectors not found at {VECTORS_DIR.name!r} beside the repository "
    "(set PYEKKA_VECTORS); the live OTP tests cover the same ground"
)


def have_vectors() -> bool:
    """Whether the shared vectors directory is present."""
    return (VECTORS_DIR / "etf.jsonl").is_file()


requires_vectors = pytest.mark.skipif(not have_vectors(), reason=SKIP_REASON)


@cache
def load(name: str) -> tuple[dict, ...]:
    """All records of ``<name>.jsonl`` (cached)."""
    path = VECTORS_DIR / f"{name}.jsonl"
    if not path.is_file():
        pytest.skip(SKIP_REASON)
    with path.open(encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f if line.strip())


def records(name: str, **match: Any) -> list:
    """Records for ``pytest.mark.parametrize`` with their ids; empty when absent."""
    if not have_vectors():
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-vectors")]
    out = []
    for r in load(name):
        if all(r.get(k) == v for k, v in match.items()):
            out.append(pytest.param(r, id=r["id"]))
    return out


def _atom(name: str) -> Any:
    if name == "true":
        return True
    if name == "false":
        return False
    return Atom(name)


def node_atom(name: str) -> Atom:
    """Node names are always atoms (never booleans)."""
    return Atom(name)


def from_typed(t: Any) -> Any:
    """Build the expected Python value from a vector's typed ``term`` field."""
    if isinstance(t, int):
        return t
    kind = t[0]
    if kind == "float":
        return struct.unpack(">d", bytes.fromhex(t[1]))[0]
    if kind == "atom":
        return _atom(t[1])
    if kind == "binary":
        return bytes.fromhex(t[1])
    if kind == "bitstring":
        return BitString(bytes.fromhex(t[1]), t[2])
    if kind == "list":
        return [from_typed(x) for x in t[1]]
    if kind == "improper_list":
        return ImproperList([from_typed(x) for x in t[1]], from_typed(t[2]))
    if kind == "tuple":
        return tuple(from_typed(x) for x in t[1])
    if kind == "map":
        return map_from_pairs([(from_typed(k), from_typed(v)) for k, v in t[1]])
    if kind == "pid":
        return Pid(node_atom(t[1]), t[2], t[3], t[4])
    if kind == "port":
        return Port(node_atom(t[1]), t[2], t[3])
    if kind == "ref":
        return Reference(node_atom(t[1]), t[2], tuple(t[3]))
    if kind == "export":
        return ExportFun(Atom(t[1]), Atom(t[2]), t[3])
    if kind == "fun":
        f = t[1]
        return Fun(
            Atom(f["module"]),
            f["arity"],
            f["old_index"],
            f["old_uniq"],
            f["new_index"],
            bytes.fromhex(f["new_uniq"]),
            from_typed(f["pid"]),
            tuple(from_typed(x) for x in f["free_vars"]),
        )
    raise ValueError(f"unknown typed term {t!r}")
