"""``pyekka ctl`` against ``pyekka start`` members, all as subprocesses.

Three members run epmd-less on distinct ports of 127.0.0.1 with their data
directories in ``tmp_path``; ``ctl`` joins them into one cluster, checks that they
agree on the member table, takes and releases locks (a lock outlives the ``ctl``
call that took it, and refuses other owners), makes one leave and force-leaves a
killed one. Every wait is for an output line of a member, never a sleep; every
subprocess runs in its own session and is killed in teardown.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pyekka.cli import main
from pyekka.cluster.cluster import ClusterStatus
from pyekka.cluster.ctl import LockOutcome, member_json, status_json, status_term
from pyekka.cluster.member import Member, MemberStatus, MnesiaStatus
from pyekka.node.node import Node
from pyekka.term.types import Atom
from pyekka.testing.processes import Completed, OsProcess, os_process
from tests.cli_nodes import CliEnv, pyekka_argv, run
from tests.otp_nodes import COOKIE, HOST, next_number

A = Atom
STATUS_FIELDS = {"node", "running_nodes", "stopped_nodes", "partitions", "leader"}


class Members:
    """``pyekka start`` subprocesses of one test (killed when the test ends)."""

    def __init__(self, base: int, root: Path, env: dict[str, str], stack: Any) -> None:
        self.base = base
        self.root = root
        self.env = env
        self.stack = stack
        self.procs: dict[str, OsProcess] = {}

    def dist(self) -> list[str]:
        return ["--cookie", COOKIE, "--no-epmd", "--dist-base-port", str(self.base)]

    async def start(self, *extra: str) -> str:
        name = f"ctl{next_number()}@{HOST}"
        argv = pyekka_argv(
            "start",
            "--name",
            name,
            *self.dist(),
            "--dist-interface",
            HOST,
            "--data-dir",
            str(self.root / name),
            "--cluster-name",
            "ctl-test",
            *extra,
        )
        proc = await self.stack.enter_async_context(os_process(argv, self.env))
        self.procs[name] = proc
        await proc.expect(r"cluster running, leader ")
        return name

    async def ctl(self, node: str, *command: str) -> Completed:
        return await run(self.env, "ctl", *self.dist(), "--node", node, *command)

    async def ctl_json(self, node: str, *command: str) -> Any:
        got = await self.ctl(node, "--json", *command)
        assert got.status == 0, got
        return json.loads(got.out)

    async def sees(self, node: str, event: str, after: int = 0) -> None:
        """Wait until ``node`` prints the cluster event line ``event``."""
        await self.procs[node].expect(rf" {re.escape(event)}$", after=after)


@pytest.fixture
async def members(ekka_base: int, tmp_path: Path, cli_env: CliEnv) -> AsyncIterator[Members]:
    async with contextlib.AsyncExitStack() as stack:
        yield Members(ekka_base, tmp_path, cli_env(), stack)


def table(members: list[dict[str, Any]]) -> list[tuple[str, str, str, int]]:
    return [(m["node"], m["status"], m["guid"], m["hash"]) for m in members]


async def test_ctl_runs_a_three_node_cluster(members: Members) -> None:
    n1 = await members.start("--autoheal", "2000", "--autoclean", "5m")
    assert "autoheal after 2s, autoclean after 5m down" in members.procs[n1].output
    n2 = await members.start("--autoheal", "off")
    n3 = await members.start()
    everyone = sorted([n1, n2, n3])

    # join: n2 and n3 join n1 (n3 by its bare name: the host of --node completes it)
    got = await members.ctl(n2, "join", n1)
    assert got == Completed(0, f"{n2} joined the cluster of {n1}\n", "")
    got = await members.ctl(n3, "join", n1.split("@")[0])
    assert got == Completed(0, f"{n3} joined the cluster of {n1}\n", "")
    for node in everyone:
        for other in everyone:
            if other != node:
                await members.sees(node, f"member {other} up")

    # members --json: the same table everywhere, every member up
    tables = [table(await members.ctl_json(node, "members")) for node in everyone]
    assert tables[0] == tables[1] == tables[2]
    assert [(row[0], row[1]) for row in tables[0]] == [(node, "up") for node in everyone]
    assert all(re.fullmatch(r"[0-9a-f]{32}", row[2]) and row[3] >= 0 for row in tables[0])
    text = await members.ctl(n1, "members")
    assert text.status == 0 and text.out.splitlines()[0].split() == [
        "NODE",
        "STATUS",
        "MNESIA",
        "GUID",
        "HASH",
    ]
    status = await members.ctl_json(n2, "status")
    assert status.keys() >= STATUS_FIELDS
    assert status["running_nodes"] == everyone and status["stopped_nodes"] == []
    assert status["leader"] == n1 and status["partitions"] == []

    # a quorum lock taken on n1 stays after ctl exits, and refuses other owners
    got = await members.ctl(n1, "lock", "r", "--type", "quorum")
    assert got.status == 0 and got.out.startswith("locked r (quorum) on "), got
    refused = await members.ctl(n2, "lock", "r", "--type", "quorum")
    assert refused.status == 1 and "lock on r (quorum) refused by" in refused.err, refused
    answer = await members.ctl(n3, "--json", "lock", "r", "--type", "quorum")
    assert answer.status == 1
    assert json.loads(answer.out)["ok"] is False and json.loads(answer.out)["nodes"]
    # re-acquire by the same owner (ctl's holder on n1) is granted, as in ekka
    assert (await members.ctl(n1, "lock", "r", "--type", "quorum")).status == 0
    # unlock only where it was locked
    not_here = await members.ctl(n2, "unlock", "r", "--type", "quorum")
    assert not_here.status == 1 and "is not locked by pyekka ctl" in not_here.err
    got = await members.ctl(n1, "unlock", "r", "--type", "quorum")
    assert got.status == 0 and got.out.startswith("unlocked r (quorum) on "), got
    locked = await members.ctl_json(n2, "lock", "r", "--type", "quorum")
    assert locked["ok"] is True and locked["nodes"]
    assert (await members.ctl(n2, "unlock", "r", "--type", "quorum")).status == 0
    # a term resource, an all lock: every member grants it
    locked = await members.ctl_json(n3, "lock", "{client, 42}", "--term", "--type", "all")
    assert sorted(locked["nodes"]) == everyone
    assert (await members.ctl(n1, "lock", "{client,42}", "--term", "--type", "local")).status == 1
    assert (await members.ctl(n3, "unlock", "{client, 42}", "--term", "--type", "all")).status == 0

    # leave: n3 goes standalone, the others drop it
    assert await members.ctl(n3, "leave") == Completed(0, f"{n3} left its cluster\n", "")
    for node in (n1, n2):
        await members.sees(node, f"member {n3} leaving")
        status = await members.ctl_json(node, "status")
        assert status["running_nodes"] == sorted([n1, n2])
    assert (await members.ctl_json(n3, "status"))["running_nodes"] == [n3]
    again = await members.ctl(n3, "leave")
    assert again.status == 1 and "node_not_in_cluster" in again.err

    # force-leave a killed member
    mark = len(members.procs[n1].lines)
    await members.procs[n2].kill()
    await members.sees(n1, f"member {n2} down", after=mark)
    await members.sees(n1, f"db {n2} down", after=mark)
    status = await members.ctl_json(n1, "status")
    assert status["running_nodes"] == [n1] and status["stopped_nodes"] == [n2]
    got = await members.ctl(n1, "force-leave", n2)
    assert got == Completed(0, f"{n2} was removed from the cluster of {n1}\n", "")
    status = await members.ctl_json(n1, "status")
    assert status.keys() >= STATUS_FIELDS
    assert (status["node"], status["running_nodes"], status["stopped_nodes"]) == (n1, [n1], [])
    assert (status["leader"], status["partitions"]) == (n1, [])
    again = await members.ctl(n1, "force-leave", n2)
    assert again.status == 1 and "node_not_in_cluster" in again.err
    # the killed member is gone: ctl cannot reach it
    gone = await members.ctl(n2, "status")
    assert gone.status == 3 and "cannot connect" in gone.err


async def test_ctl_refuses_nodes_it_cannot_serve(members: Members, make_py: Any) -> None:
    plain: Node = await make_py()  # a node that is no cluster member: no pyekka_ctl
    got = await members.ctl(plain.name.name, "status")
    assert got.status == 1 and "has no pyekka_ctl:status" in got.err, got
    n1 = await members.start()
    wrong = await run(
        members.env,
        *["ctl", "--cookie", "not-the-cookie", "--no-epmd", "--dist-base-port"],
        *[str(members.base), "--node", n1, "status"],
    )
    assert wrong.status == 3 and "wrong cookie" in wrong.err
    got = await members.ctl(n1, "join", f"nobody{next_number()}@{HOST}")
    assert got.status == 1 and "node_down" in got.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lock", "{x,", "--term"], "RESOURCE: "),
        (["join", "a@b@c"], "bad node name"),
    ],
)
def test_bad_ctl_input_is_refused_before_any_connection(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ctl", "--cookie", "c", "--node", "n1@127.0.0.1", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["ctl", "--cookie", "c", "status"],  # no --node
        ["ctl", "--cookie", "c", "--node", "a@h", "lock", "r", "--type", "global"],
        ["ctl", "--cookie", "c", "--node", "a@h", "reboot"],
        ["start", "--name", "a@127.0.0.1", "--cookie", "c", "--autoheal", "sometimes"],
        ["start", "--name", "a@127.0.0.1", "--cookie", "c", "--autoclean", "5"],
    ],
)
def test_bad_ctl_and_start_options_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_json_shapes_of_members_status_and_locks() -> None:
    node, other = A("a@h"), A("b@h")
    member = Member.new(node, bytes(range(16)), mnesia=MnesiaStatus.RUNNING, ltime=(1, 2, 3))
    genuine = Member(other, None, None, MemberStatus.DOWN, MnesiaStatus.NOT_DB)
    assert member_json(member.to_term()) == {
        "node": "a@h",
        "status": "up",
        "mnesia": "running",
        "guid": bytes(range(16)).hex(),
        "hash": member.hash,
        "ltime": "1970-01-12T13:46:42.000003Z",
    }
    assert member_json(genuine)["mnesia"] is False and member_json(genuine)["guid"] is None
    status = ClusterStatus(
        node=node,
        running=True,
        cluster_name=None,
        running_nodes=[node],
        stopped_nodes=[other],
        genuine_nodes=[],
        partitions=[other],
        leader=None,
        coordinator=node,
        members=[member, genuine],
    )
    shown = status_json(status_term(status))
    assert shown == {
        **status.to_json(),
        "members": [member_json(member), member_json(genuine)],
    }
    with pytest.raises(ValueError):
        status_json([])
    assert LockOutcome.from_term((True, [node, (other, 1)])) == LockOutcome(True, ["a@h", "b@h"])
    assert LockOutcome.from_term((A("error"), A("not_locked"))).not_locked
    with pytest.raises(ValueError):
        LockOutcome.from_term((A("badrpc"), A("nodedown")))
