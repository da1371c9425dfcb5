"""The benchmark scripts run end to end (``--quick --json``); no timing is asserted.

Speed targets live in the benchmarks' own output, never in tests: this only keeps the
scripts working as the code under them changes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run(script: str, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_cluster_bench_measures_every_lock_type_and_a_heal() -> None:
    report = _run("cluster_bench.py")
    assert {"locks", "heal"} <= set(report)
    text = json.dumps(report["locks"])
    for lock_type in ("local", "leader", "quorum", "all"):
        assert lock_type in text


@pytest.mark.otp
def test_dist_bench_compares_python_with_otp() -> None:
    from pyekka.testing.otp import discover_otp

    if not discover_otp().runtimes:
        pytest.skip("no Erlang/OTP runtime found")
    report = _run("dist_bench.py")
    assert report["runtimes"] and report["payloads"]
