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
