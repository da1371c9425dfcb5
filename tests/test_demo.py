"""``pyekka demo``: the milestones of ``--json`` (a subprocess), the OTP node of
``--with-erlang``, Ctrl-C in the middle, and no OS process left behind.

Every demo subprocess gets a unique marker in its environment, which every process
it starts inherits; "no process left" means no process of this machine carries the
marker once the demo has exited (plus, for the OTP VM, its reported pid is gone).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyekka.cli_demo import describe_milestone
from pyekka.demo import Milestone
from tests.cli_nodes import CliEnv, pyekka_argv

MARKER = "PYEKKA_DEMO_TEST_MARKER"
EXIT_TIMEOUT = 30.0
SEQUENCE = [
    "started",
    "cluster_formed",
    "lock_acquired",
    "lock_refused",
    "lock_released",
    "partitioned",
    "network_restored",
    "healed",
]

needs_erl = pytest.mark.skipif(shutil.which("erl") is None, reason="no `erl` on PATH")


def marked_pids(marker: str) -> list[int]:
    """Pids of the live processes whose environment holds ``MARKER=marker``."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    """Whether ``pid`` is no live process (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


class DemoRun:
    """``pyekka demo ARGS`` as a subprocess with a marker; killed (with its session)
    if still running at the end."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.marker = uuid.uuid4().hex
        env = {**env, MARKER: self.marker}
        self.proc = subprocess.Popen(
            pyekka_argv("demo", *args),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.events: list[dict[str, Any]] = []

    def next_event(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"demo ended early; stderr:\n{self.stderr()}")
        event = json.loads(line)
        self.events.append(event)
        return event

    def until(self, name: str) -> dict[str, Any]:
        while True:
            event = self.next_event()
            if event["event"] == name:
                return event

    def finish(self) -> int:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))
        return self.proc.wait(EXIT_TIMEOUT)

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for pid in marked_pids(self.marker):  # never leave anything behind, even on failure
            os.kill(pid, signal.SIGKILL)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def demo_env(cli_env: CliEnv, tmp_path: Path) -> dict[str, str]:
    return cli_env(XDG_CACHE_HOME=str(tmp_path / "cache"))


@pytest.fixture
def start_demo(demo_env: dict[str, str]) -> Iterator[Any]:
    runs: list[DemoRun] = []

    def start(*args: str) -> DemoRun:
        run = DemoRun(demo_env, *args)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()


def names(event: dict[str, Any], key: str) -> list[str]:
    return sorted(event[key])


def check_milestones(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The facts every demo run must show; the events by name."""
    kinds = [e["event"] for e in events]
    by_name = {e["event"]: e for e in events}
    assert kinds[: len(SEQUENCE)] == SEQUENCE, kinds
    assert kinds[-1] == "stopped", kinds
    assert len(kinds) == len(set(kinds))
    times = [e["t"] for e in events]
    assert times == sorted(times) and times[0] >= 0
    nodes = names(by_name["started"], "nodes")
    assert len(nodes) == 3 and all(n.endswith("@127.0.0.1") for n in nodes)
    formed = by_name["cluster_formed"]
    assert names(formed, "members") == nodes
    assert formed["leader"] in nodes
    acquired, refused = by_name["lock_acquired"], by_name["lock_refused"]
    assert acquired["resource"] == refused["resource"]
    assert acquired["type"] == refused["type"] == "quorum"
    assert refused["node"] != acquired["node"]
    assert refused["held_by"] == acquired["node"]
    assert acquired["granted_by"] and set(acquired["granted_by"]) <= set(nodes)
    assert refused["refused_by"] and set(refused["refused_by"]) <= set(nodes)
    assert by_name["lock_released"]["released"] is True
    left, right = by_name["partitioned"]["sides"]
    assert left and right and sorted(left + right) == nodes
    cut = {frozenset(pair) for pair in by_name["partitioned"]["cut"]}
    assert cut == {frozenset((a, b)) for a in left for b in right}
    healed = by_name["healed"]
    assert healed["heal_seconds"] > 0
    assert healed["t"] - by_name["network_restored"]["t"] <= healed["heal_seconds"] + 0.05
    assert names(healed, "members") == nodes
    assert healed["rebooted"] and set(healed["rebooted"]) <= set(nodes)
    assert by_name["stopped"]["clean"] is True and by_name["stopped"]["errors"] == []
    return by_name


def test_demo_json_shows_every_milestone_and_leaves_no_process(start_demo: Any) -> None:
    run = start_demo("--json")
    started = time.monotonic()
    assert run.finish() == 0, run.stderr()
    assert time.monotonic() - started < 20
    by_name = check_milestones(run.events)
    assert "erlang_rpc" not in by_name
    assert marked_pids(run.marker) == []
    # the human rendering has a line for every milestone
    for event in run.events:
        facts = {k: v for k, v in event.items() if k not in ("event", "t")}
        lines = describe_milestone(Milestone(event["event"], event["t"], facts))
        assert lines and lines[0].startswith(f"[{event['t']:6.2f} s]")


@needs_erl
def test_demo_with_erlang_calls_an_otp_node_and_kills_it(start_demo: Any) -> None:
    run = start_demo("--json", "--with-erlang")
    assert run.finish() == 0, run.stderr()
    by_name = check_milestones(run.events)
    kinds = [e["event"] for e in run.events]
    assert kinds.index("healed") < kinds.index("erlang_rpc") < kinds.index("stopped")
    rpc = by_name["erlang_rpc"]
    expected = subprocess.run(
        ["erl", "-noshell", "-eval", "io:put_chars(erlang:system_info(otp_release)), halt()."],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    assert rpc["otp_release"] == expected
    assert rpc["ping"] == "pong"
    assert rpc["called_from"] in by_name["started"]["nodes"]
    assert rpc["called_from"] in rpc["erlang_sees"]
    assert rpc["node"].endswith("@127.0.0.1")
    assert gone(rpc["os_pid"])
    assert marked_pids(run.marker) == []


def interrupt(run: DemoRun) -> int:
    """Ctrl-C (SIGINT to the process group, as a terminal sends it); the exit status."""
    started = time.monotonic()
    os.killpg(run.proc.pid, signal.SIGINT)
    status = run.proc.wait(EXIT_TIMEOUT)
    assert time.monotonic() - started < 5, "the demo did not stop promptly"
    return status


def test_ctrl_c_in_the_middle_stops_everything(start_demo: Any) -> None:
    run = start_demo("--json", "--pace", "0.3")
    run.until("partitioned")
    assert interrupt(run) == 130, run.stderr()
    assert "interrupted" in run.stderr()
    assert "stopped" not in [e["event"] for e in run.events]
    assert marked_pids(run.marker) == []


@needs_erl
def test_ctrl_c_with_the_otp_node_running_kills_it(start_demo: Any) -> None:
    run = start_demo("--json", "--with-erlang", "--pace", "1")
    rpc = run.until("erlang_rpc")
    assert not gone(rpc["os_pid"])
    assert rpc["os_pid"] in marked_pids(run.marker)  # the marker does reach children
    assert interrupt(run) == 130, run.stderr()
    assert gone(rpc["os_pid"])
    assert marked_pids(run.marker) == []


def test_demo_without_a_terminal_prints_steps_and_tables(start_demo: Any) -> None:
    run = start_demo()
    assert run.proc.wait(EXIT_TIMEOUT) == 0, run.stderr()
    assert run.proc.stdout is not None
    text = run.proc.stdout.read()
    assert "\x1b[" not in text  # no redraws when stdout is not a terminal
    assert "cluster formed: 3 members" in text
    assert "autoheal after 300 ms" in text
    assert "autoheal: one cluster again after" in text
    assert "waiting:" in text
    assert text.rstrip().splitlines()[-1].split()[2] == "stopped"
    assert marked_pids(run.marker) == []
