"""The soak benchmark, briefly: a busy house for thirty seconds loses no ring and answers every
command (its timing figures are for people; nothing here asserts a time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).parent.parent / "bench" / "soak.py"


def test_thirty_busy_seconds_lose_nothing_and_fail_nothing():
    run = subprocess.run([sys.executable, str(SOAK), "--clients", "100", "--minutes", "0.5"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    figures = dict(item.split("=") for item in run.stdout.strip().splitlines()[-1].split())
    assert set(figures) == {"p50_ms", "p99_ms", "fanout_p99_ms", "rss_slope_MB_per_min",
                            "fds_end", "errors", "lost_events"}
    assert figures["errors"] == "0", run.stdout[-3000:]
    assert figures["lost_events"] == "0", run.stdout[-3000:]
