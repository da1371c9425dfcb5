"""pyekka's replicated cluster view without a network: merges, syncs between two
:class:`ClusterDb` objects, running nodes and partitions, the data directory file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyekka.cluster.cluster_view import (
    VIEW_FILE,
    ClusterDb,
    DbEvent,
    NodeKind,
    NodeView,
    ViewEntry,
    load_view,
    save_view,
)
from pyekka.cluster.member import MnesiaStatus
from pyekka.term.types import Atom

A = Atom
N1, N2, N3, E1 = A("n1@h"), A("n2@h"), A("n3@h"), A("e1@h")

entries = st.dictionaries(
    st.sampled_from([N1, N2, N3, E1]),
    st.builds(
        ViewEntry,
        st.booleans(),
        st.integers(0, 5),
        st.sampled_from(list(NodeKind)),
    ),
)


def merged(*copies: dict[A, ViewEntry]) -> dict[A, ViewEntry]:
    view = NodeView(N1)
    for copy in copies:
        view.merge(copy)
    return view.entries


@given(entries, entries, entries)
def test_merge_is_commutative_associative_idempotent(a: dict, b: dict, c: dict) -> None:
    assert merged(a, b) == merged(b, a)
    assert merged(merged(a, b), c) == merged(a, merged(b, c))
    assert merged(a, a) == merged(a)


def test_newer_stamp_wins_and_removal_wins_a_tie() -> None:
    view = NodeView(N1, {N2: ViewEntry(True, 5)})
    assert view.merge({N2: ViewEntry(True, 4)}) == []
    assert view.merge({N2: ViewEntry(False, 5)}) == [N2]
    assert view.merge({N2: ViewEntry(True, 5)}) == []
    assert not view.is_member(N2)
    assert view.merge({N2: ViewEntry(True, 6)}) == [N2]
    assert view.is_member(N2)


def test_stamps_only_grow_and_terms_round_trip() -> None:
    view = NodeView.standalone(N1, "c", now_us=100)
    assert view.add(N2, now_us=50)
    assert view.entries[N2].stamp == 101  # after every stamp in the view
    assert not view.add(N2)
    assert view.add(E1, NodeKind.GENUINE, now_us=500)
    assert view.remove(N2, now_us=10) and view.entries[N2].stamp == 501
    assert view.db_nodes() == [N1] and view.genuine_nodes() == [E1]
    assert NodeView.entries_from_term(view.to_term()) == view.entries
    assert NodeView.from_json(view.to_json()).entries == view.entries
    for bad in ([(N1, True, 1)], [(N1, 1, 1, A("pyekka"))], [(N1, True, 1, A("other"))], (1,)):
        with pytest.raises(ValueError):
            NodeView.entries_from_term(bad)


def pair(tmp_path: Path | None = None) -> tuple[ClusterDb, ClusterDb]:
    a = ClusterDb(N1, "c", None if tmp_path is None else tmp_path / "a")
    b = ClusterDb(N2, "c", None if tmp_path is None else tmp_path / "b")
    return a, b


def sync(x: ClusterDb, y: ClusterDb) -> ViewEntry | None:
    """``x`` syncs with ``y`` (what the rpc would carry)."""
    return x.handle_sync_reply(y.self_node, y.handle_sync(x.sync_request()))


def joined() -> tuple[ClusterDb, ClusterDb, list[DbEvent], list[DbEvent]]:
    a, b = pair()
    ea: list[DbEvent] = []
    eb: list[DbEvent] = []
    a.on_event(ea.append)
    b.on_event(eb.append)
    a.start()
    b.start()
    a.add(N2)  # b asks a to join: a adds it and hands its view over
    b.adopt(a.view.entries)
    assert sync(b, a) == b.view.entries[N2]
    return a, b, ea, eb


def test_sync_makes_both_running() -> None:
    a, b, ea, eb = joined()
    for db in (a, b):
        assert db.running_nodes() == [N1, N2] and db.stopped_nodes() == []
        assert db.cluster_view().to_term() == ([N1, N2], [])
        assert db.cluster_status(N1) is MnesiaStatus.RUNNING
        assert db.cluster_status(E1) is MnesiaStatus.NOT_DB
        assert db.is_node_in_cluster() and db.is_node_in_cluster(N1)
    assert ea == [DbEvent("mnesia_up", N2)] and eb == [DbEvent("mnesia_up", N1)]


def test_down_and_back_with_the_same_incarnation_is_a_partition() -> None:
    a, b, ea, eb = joined()
    a.peer_down(N2)
    b.peer_down(N1)
    assert a.running_nodes() == [N1] and a.stopped_nodes() == [N2]
    sync(a, b)
    sync(b, a)
    assert ea[-2:] == [DbEvent("mnesia_down", N2), DbEvent("inconsistent_database", N2)]
    assert eb[-2:] == [DbEvent("mnesia_down", N1), DbEvent("inconsistent_database", N1)]
    assert a.is_inconsistent(N2) and b.is_inconsistent(N1)
    assert a.cluster_view().to_term() == ([N1], [N2])
    sync(a, b)  # reported once per incarnation
    assert ea.count(DbEvent("inconsistent_database", N2)) == 1
    # b restarts its db (autoheal's reboot): consistent again on both sides
    b.stop()
    b.start()
    sync(b, a)
    assert a.running_nodes() == b.running_nodes() == [N1, N2]
    assert not a.is_inconsistent(N2) and ea[-1] == DbEvent("mnesia_up", N2)


def test_db_down_cast_needs_the_current_incarnation() -> None:
    a, b, ea, _ = joined()
    a.peer_db_down(N2, b"old")
    assert a.running_nodes() == [N1, N2]
    a.peer_db_down(N2, b.incarnation)
    assert a.running_nodes() == [N1] and ea[-1] == DbEvent("mnesia_down", N2)


def test_removal_reaches_the_removed_node_and_strangers_are_not_merged() -> None:
    a, b, ea, _ = joined()
    removed: list[bool] = []
    b.on_removed(lambda: removed.append(True))
    a.remove(N2)
    assert a.running_nodes() == [N1] and ea[-1] == DbEvent("mnesia_down", N2)
    # b syncs (say after a restart): a does not merge b's stale view, b learns it left
    entry = sync(b, a)
    assert entry is not None and not entry.member
    assert a.db_nodes() == [N1]
    assert removed == [True] and b.db_nodes() == [N2] and b.view.entries.keys() == {N2}
    # a node that does not know us at all neither merges nor drops
    c = ClusterDb(N3, "c")
    c.add(N1)
    assert sync(c, a) is None and c.db_nodes() == [N1, N3]
    # another cluster name: no merge either way
    d = ClusterDb(N3, "other")
    d.add(N1)
    a.add(N3)
    assert sync(d, a) is None and a.running_nodes() == [N1]


def test_set_genuine_replaces_the_genuine_members() -> None:
    a, _b, _, _ = joined()
    assert a.set_genuine([E1, A("e2@h")]) == [E1, A("e2@h")]
    assert a.set_genuine([E1]) == [A("e2@h")]
    assert a.view.genuine_nodes() == [E1] and a.db_nodes() == [N1, N2]
    assert a.cluster_status(E1) is MnesiaStatus.NOT_DB and not a.is_node_in_cluster(E1)


def test_the_view_is_saved_atomically_and_restored(tmp_path: Path) -> None:
    a = ClusterDb(N1, "c", tmp_path)
    assert not a.restored and a.db_nodes() == [N1]
    a.add(N2)
    a.add(E1, NodeKind.GENUINE)
    data = json.loads((tmp_path / VIEW_FILE).read_text())
    assert data["node"] == "n1@h" and data["cluster_name"] == "c"
    assert [e["node"] for e in data["entries"]] == ["e1@h", "n1@h", "n2@h"]
    assert [p.name for p in tmp_path.iterdir()] == [VIEW_FILE]
    again = ClusterDb(N1, "c", tmp_path)
    assert again.restored and again.view.entries == a.view.entries


def test_a_view_of_another_node_or_cluster_or_garbage_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    view = NodeView.standalone(N1, "c")
    view.add(N2)
    save_view(tmp_path / VIEW_FILE, view)
    with caplog.at_level(logging.WARNING):
        assert load_view(tmp_path / VIEW_FILE, N2, "c") is None
        assert load_view(tmp_path / VIEW_FILE, N1, "other") is None
        assert load_view(tmp_path / "missing.json", N1, "c") is None
        (tmp_path / "bad.json").write_text("{not json")
        assert load_view(tmp_path / "bad.json", N1, "c") is None
    assert len(caplog.records) == 3
    loaded = load_view(tmp_path / VIEW_FILE, N1, "c")
    assert loaded is not None and loaded.db_nodes() == [N1, N2]


def test_malformed_sync_requests_are_refused() -> None:
    a, _ = pair()
    for bad in (A("sync"), (A("sync"), N2), (A("sync"), "n2", b"c", A("undefined"), [])):
        with pytest.raises(ValueError):
            a.handle_sync(bad)
    with pytest.raises(ValueError):
        a.handle_sync_reply(N2, (A("error"), A("x")))
