"""The wheel: it holds the resources, installs into a fresh environment, and the app starts from it.

Builds the wheel (``pip wheel . --no-deps``), installs it with ``--no-deps`` into a new venv whose
heavy dependencies (torch, PySide6, transformers) come from the environment running the tests
(a .pth file names its site-packages), then starts the app offscreen from that venv, outside the
source tree, on the demo project: what a user who ran ``pip install rmstudio-*.whl`` gets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Without hatchling here pip fetches it into an isolated build environment (the configured index).
    offline = ["--no-build-isolation"] if _has_hatchling() else []
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", *offline, "-q",
                            "-w", str(out)], capture_output=True, text=True, timeout=180)
    assert built.returncode == 0, built.stderr[-2000:]
    (path,) = out.glob("rmstudio-*.whl")
    return path


def _has_hatchling() -> bool:
    try:
        import hatchling  # noqa: F401
    except ImportError:
        return False
    return True


def test_the_wheel_holds_the_package_resources_and_icons(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("rmstudio/__init__.py", "rmstudio/gui/help_menu.py",
                     "rmstudio/core/reward/export_model.py",
                     "rmstudio/resources/demo/everyday.jsonl",
                     "rmstudio/resources/examples/hh-rlhf-harmless-base-test.jsonl.gz",
                     "rmstudio/resources/icons/rmstudio.svg", "rmstudio/resources/icons/rmstudio-512.png",
                     "rmstudio/resources/icons/rmstudio-16.png"):
        assert expected in names, expected
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("dist-info/entry_points.txt"))).decode()
    assert "rmstudio = rmstudio.cli:main" in entry_points


START = r"""
import json, sys
from pathlib import Path
import rmstudio
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from rmstudio.core.data.resources import resources_dir
from rmstudio.gui import app as gui_app

qt = QApplication(sys.argv[:1])
seen = {}
def look():
    window = next(w for w in qt.topLevelWidgets() if w.objectName() == "" and w.inherits("QMainWindow"))
    seen.update(title=window.windowTitle(), visible=window.isVisible(), icon=not qt.windowIcon().isNull(),
                help=window.menuBar().actions()[-1].text())
    qt.quit()
QTimer.singleShot(500, look)
code = gui_app.run_app(demo="everyday")
print(json.dumps({"file": rmstudio.__file__, "resources": str(resources_dir()), "code": code, **seen}))
"""


def test_the_app_starts_from_the_wheel_in_a_fresh_venv(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True).strip())
    # A plain path, not site.addsitedir: the test environment's .pth files (an editable rmstudio)
    # must not put the source tree on the path.
    (site / "heavy_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                                "--no-index", "-q", str(wheel)], capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(QT_QPA_PLATFORM="offscreen", RMSTUDIO_DATA_DIR=str(tmp_path / "data"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), HF_HUB_OFFLINE="1")
    started = subprocess.run([str(python), "-c", START], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=120)
    assert started.returncode == 0, started.stderr[-3000:]
    seen = json.loads(started.stdout.strip().splitlines()[-1])
    assert Path(seen["file"]).is_relative_to(env_dir), seen["file"]  # the wheel's copy, not the source
    assert Path(seen["resources"]).is_relative_to(env_dir)
    assert seen["code"] == 0 and seen["visible"] and seen["icon"] and seen["help"] == "&Help"
    assert seen["title"].startswith("demo-everyday")  # the demo project, built from the wheel's resources
    assert (tmp_path / "data" / "logs" / "rmstudio.log").exists()
