"""``OtpRuntime.start``: a VM started for a test never outlives the process that started it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import pytest

from pyekka.testing.otp import OtpRuntime
from pyekka.testing.wait import wait_until

pytestmark = pytest.mark.otp

# A parent that starts a VM, prints the VM's pid and then waits to be killed.
_PARENT = """
import sys, time
from pathlib import Path
from pyekka.testing.otp import OtpRuntime
vm = OtpRuntime(Path(sys.argv[1])).start()  # no distribution: no epmd
print(vm.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_a_vm_halts_when_its_starter_is_killed(otp: OtpRuntime) -> None:
    if not os.path.isdir("/proc"):
        pytest.skip("reads process states from /proc")
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(otp.erl)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    vm_pid = 0
    try:
        assert parent.stdout is not None
        vm_pid = int(parent.stdout.readline())
        assert _alive(vm_pid)
        parent.kill()  # SIGKILL: the parent cannot clean anything up
        parent.wait(10)
        await wait_until(
            lambda: not _alive(vm_pid),
            timeout=30,
            message=f"the VM {vm_pid} still runs after its starter was killed",
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        if vm_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(vm_pid, signal.SIGKILL)
        parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()
