"""Files that ship with rmstudio (demo data, examples, icons).

In a wheel they live in ``rmstudio/resources`` (force-included from the top-level
``resources/``); in a source checkout they are read from ``resources/`` directly.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[2]  # rmstudio/


def resources_dir() -> Path:
    for candidate in (_PACKAGE / "resources", _PACKAGE.parent / "resources"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("rmstudio's resources folder is missing; reinstall rmstudio")


def resource(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
