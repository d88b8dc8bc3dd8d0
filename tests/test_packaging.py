"""The packaging files agree with each other: desktop entry, icons, sdist contents, frozen launcher."""

from __future__ import annotations

import ast
import configparser
import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGING = REPO / "packaging"


def test_the_desktop_entry_starts_rmstudio_with_its_icon():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(PACKAGING / "linux" / "rmstudio.desktop", encoding="utf-8")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application" and desktop["Terminal"] == "false"
    assert desktop["Exec"].split()[0] == "rmstudio"  # the [project.scripts] command
    assert desktop["Icon"] == "rmstudio" and desktop["StartupWMClass"] == "rmstudio"
    assert desktop["Categories"].endswith(";")
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "rmstudio" in scripts


def test_each_icon_png_has_the_size_its_name_says(qapp):
    from PySide6.QtGui import QImage

    pngs = sorted((REPO / "resources" / "icons").glob("rmstudio-*.png"))
    assert len(pngs) == 8 and (REPO / "resources" / "icons" / "rmstudio.svg").exists()
    for png in pngs:
        size = int(png.stem.split("-")[1])
        image = QImage(str(png))
        assert (image.width(), image.height()) == (size, size), png.name
        assert image.hasAlphaChannel()


def test_the_sdist_holds_the_resources_and_the_packaging():
    sdist = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["sdist"]
    for folder in ("/rmstudio", "/resources", "/packaging", "/tests"):
        assert folder in sdist["include"]


def test_the_pyinstaller_spec_parses_and_names_the_launcher():
    spec = (PACKAGING / "pyinstaller" / "rmstudio.spec").read_text()
    ast.parse(spec)
    assert "rmstudio_launcher.py" in spec and 'collect_submodules("rmstudio")' in spec
    assert (PACKAGING / "pyinstaller" / "rmstudio_launcher.py").exists()


def test_the_frozen_launcher_runs_minus_m_as_python_would(tmp_path):
    """The app starts its children as `sys.executable -m module`; frozen, the launcher answers."""
    launcher = PACKAGING / "pyinstaller" / "rmstudio_launcher.py"
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's rmstudio, as the spec's pathex
    done = subprocess.run([sys.executable, str(launcher), "-m", "rmstudio.cli", "--help"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage: rmstudio" in done.stdout
    plain = subprocess.run([sys.executable, str(launcher), "--help"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0 and "usage: rmstudio" in plain.stdout
