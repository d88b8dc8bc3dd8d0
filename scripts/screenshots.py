"""Regenerate the README screenshots from the running app (offscreen).

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py

Builds a temporary project from the shipped everyday demo and the HH example, adds a few
labels by two annotators, and grabs each workspace at 1200x800 into docs/screenshots/.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def main() -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from rmstudio.core.importer import import_files
    from rmstudio.core.project import Project
    from rmstudio.core.resources import resource
    from rmstudio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "team.rmstudio"
        with Project.create(path) as project:
            import_files(project, [resource("examples", "hh-rlhf-harmless-base-test.jsonl.gz")])
            ids = [r[0] for r in project.conn.execute("SELECT id FROM comparisons ORDER BY id LIMIT 40")]
            for i, cid in enumerate(ids[:30]):
                project.set_label(cid, "alice", "ab"[i % 3 == 0], note="clearer refusal" if i == 4 else None)
            for i, cid in enumerate(ids[:20]):
                project.set_label(cid, "bob", "ab"[i % 4 == 0] if i % 5 else "tie")
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.IniFormat)
        settings.setValue("annotator", "carol")
        window = MainWindow(settings=settings)
        window.resize(1200, 800)
        window.show()
        app.processEvents()
        window.welcome.show_recent([])
        window.grab().save(str(OUT / "welcome.png"))
        window.open_project(path)
        for row, name in [(0, "data"), (1, "label"), (3, "browse")]:
            window.nav.setCurrentRow(row)
            app.processEvents()
            window.grab().save(str(OUT / f"{name}.png"))
        window.close()
    print(f"wrote screenshots to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
