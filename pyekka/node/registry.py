"""Locally registered process names (``register/2``, ``whereis/1`` ...)."""

from __future__ import annotations

from pyekka.node.exits import BadArg
from pyekka.term.types import Atom, Pid

__all__ = ["NameRegistry"]

_UNDEFINED = Atom("undefined")


class NameRegistry:
    """Names to pids and back; a pid has at most one name, a name one pid."""

    def __init__(self) -> None:
        self._by_name: dict[Atom, Pid] = {}
        self._by_pid: dict[Pid, Atom] = {}

    def check_free(self, name: Atom) -> None:
        """Raise ``BadArg`` unless ``name`` could be registered now."""
        if type(name) is not Atom or name == _UNDEFINED:
            raise BadArg(f"not a registrable name: {name!r}")
        if name in self._by_name:
            raise BadArg(f"name {name.name!r} is already registered")

    def register(self, name: Atom, pid: Pid) -> None:
        """Bind ``name`` to ``pid`` (liveness is the caller's check); ``BadArg`` if
        the name is taken or invalid, or the pid already has a name."""
        self.check_free(name)
        if pid in self._by_pid:
            raise BadArg(f"process already registered as {self._by_pid[pid].name!r}")
        self._by_name[name] = pid
        self._by_pid[pid] = name

    def unregister(self, name: Atom) -> Pid:
        """Remove ``name``; ``BadArg`` when it is not registered."""
        pid = self._by_name.pop(name, None) if type(name) is Atom else None
        if pid is None:
            raise BadArg(f"name {name!r} is not registered")
        del self._by_pid[pid]
        return pid

    def whereis(self, name: Atom) -> Pid | None:
        """The pid registered as ``name``, or ``None``."""
        return self._by_name.get(name)

    def name_of(self, pid: Pid) -> Atom | None:
        """The name of ``pid``, or ``None``."""
        return self._by_pid.get(pid)

    def drop_pid(self, pid: Pid) -> Atom | None:
        """Forget the name of a terminated process; the name it had, if any."""
        name = self._by_pid.pop(pid, None)
        if name is not None:
            del self._by_name[name]
        return name

    def registered(self) -> list[Atom]:
        """Every registered name."""
        return list(self._by_name)
