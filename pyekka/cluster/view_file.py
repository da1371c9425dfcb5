"""The cluster view's file in a node's data directory: atomic save, checked load."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path

from pyekka.cluster.node_view import NodeView
from pyekka.term.types import Atom

__all__ = ["VIEW_FILE", "load_view", "save_view"]

log = logging.getLogger("pyekka.cluster.view")

VIEW_FILE = "cluster_view.json"
"""The view's file in the data directory."""


def save_view(path: Path, view: NodeView) -> None:
    """Write the view to ``path`` atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(view.to_json(), indent=1).encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load_view(path: Path, self_node: Atom, cluster_name: str | None) -> NodeView | None:
    """The view saved at ``path`` for this node and cluster name, or ``None``.

    A missing or unreadable file, or one saved by another node or for another cluster
    name, gives ``None`` (logged).
    """
    try:
        view = NodeView.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring the cluster view in %s: %s", path, exc)
        return None
    if view.self_node != self_node or view.cluster_name != cluster_name:
        log.warning(
            "ignoring the cluster view in %s: saved by %s for cluster %r, not %s for %r",
            path,
            view.self_node.name,
            view.cluster_name,
            self_node.name,
            cluster_name,
        )
        return None
    return view
