"""The benchmark scripts are not run by CI, so a rename in the code can break them unseen (one
did: reward_speed.py imported a function that had moved). Each must at least start: imports
resolve and its options parse. A helper module the scripts share (no ``__main__`` guard, such
as policy_rule.py) must at least import."""

import subprocess
import sys
from pathlib import Path

import pytest

ALL = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))
BENCHMARKS = [p for p in ALL if 'if __name__ == "__main__":' in p.read_text(encoding="utf-8")]
HELPERS = [p for p in ALL if p not in BENCHMARKS]


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_starts(script):
    run = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                         timeout=120, cwd=script.parent.parent)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage" in run.stdout.lower()


@pytest.mark.parametrize("module", HELPERS, ids=lambda p: p.name)
def test_benchmark_helper_imports(module):
    run = subprocess.run([sys.executable, "-c", f"import {module.stem}"], capture_output=True, text=True,
                         timeout=120, cwd=module.parent)
    assert run.returncode == 0, run.stderr[-2000:]
