"""Shared test set-up: headless Qt, and every cache/settings path under a temp folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))  # tests can `import tiny_models`

REPO = Path(__file__).resolve().parents[1]
HH_FILE = REPO / "resources" / "examples" / "hh-rlhf-harmless-base-test.jsonl.gz"


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path_factory, monkeypatch):
    """Tests never touch the user's caches, demo projects or Qt settings."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("RMSTUDIO_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(base / "config"))
    if "RMSTUDIO_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("RMSTUDIO_CACHE_DIR", str(base / "cache"))


@pytest.fixture
def project(tmp_path):
    from rmstudio.core.store.project import Project

    with Project.create(tmp_path / "test.rmstudio") as proj:
        yield proj


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# -- the policy tests (tests/policy/): here, not in a conftest.py of their own, because tests
# import this module by name (`from conftest import write_jsonl`) and a second conftest module
# would shadow it when the whole suite runs.

@pytest.fixture(autouse=True)
def one_torch_thread_for_policy_tests(request):
    """Policy tests run torch on one thread: their matrices are 32 wide, and on a shared 2-core
    machine a second intra-op thread only waits for the other (a GRPO step took 5 s, not 0.3 s)."""
    if "policy" not in Path(str(request.node.fspath)).parts:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def policy_model(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent / "policy"))
    from policy_helpers import save_policy_model

    return save_policy_model(tmp_path / "policy")
