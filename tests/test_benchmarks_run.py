"""The benchmark scripts are not run by CI, so a rename in the code can break them unseen (one
did: reward_speed.py imported a function that had moved). Each must at least start: imports
resolve and its options parse."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_starts(script):
    run = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                         timeout=120, cwd=script.parent.parent)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage" in run.stdout.lower()
