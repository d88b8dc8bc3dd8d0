"""Where rmstudio keeps files outside a project: caches and settings.

Environment variables override every location so tests (and careful users) never touch
the real home directory.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Model caches (converted embedded model, downloaded models). ``RMSTUDIO_CACHE_DIR`` wins."""
    override = os.environ.get("RMSTUDIO_CACHE_DIR")
    if override:
        path = Path(override)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "rmstudio"
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Where the demo projects are created. ``RMSTUDIO_DATA_DIR`` wins."""
    override = os.environ.get("RMSTUDIO_DATA_DIR")
    if override:
        path = Path(override)
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        path = Path(base) / "rmstudio"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_file() -> Path:
    """The app's log (Python logging, rotated): ``<data dir>/logs/rmstudio.log``."""
    folder = data_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "rmstudio.log"
