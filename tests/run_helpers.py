"""Fixtures shared by the tests of the run panel and the run job (tests/ui/test_run_panel.py,
tests/ui/test_run_job.py): the toy run kind, importable by a child process too, and the one store
writer of a fresh project. Test modules import the fixtures by name (no conftest.py in a subfolder:
tests import ``conftest`` by name)."""

import os
from pathlib import Path

import pytest

from rmstudio.core.store.project import Project

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def toy(monkeypatch):
    """The toy kind of tests/train/test_run_kinds.py, importable by the child too."""
    monkeypatch.syspath_prepend(str(TESTS / "train"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS / "train"), str(TESTS.parent),
                                                      os.environ.get("PYTHONPATH", "")]))
    import test_run_kinds

    return test_run_kinds


@pytest.fixture
def writer(tmp_path, qtbot):
    """The store writer of a new, empty project in tmp_path (stopped at the end of the test)."""
    from rmstudio.gui.store_writer import StoreWriter

    path = tmp_path / "p.rmstudio"
    Project.create(path).close()
    made = StoreWriter(path)
    yield made
    made.stop()
