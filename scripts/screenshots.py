"""Regenerate the README screenshots from the running app (offscreen).

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py

Builds a temporary project from the shipped everyday demo and the HH example, adds a few
labels by two annotators, and grabs each workspace at 1200x800 into docs/screenshots/, in the
light theme, then the welcome screen, Label and Score again in the dark one (``*-dark.png``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def main() -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from rmstudio.core.data.importer import import_files
    from rmstudio.core.store.project import Project
    from rmstudio.core.data.resources import resource
    from rmstudio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "team.rmstudio"
        with Project.create(path) as project:
            import_files(project, [resource("demo", name) for name in
                                   ("everyday.jsonl", "everyday-pairs.jsonl", "everyday-labels.jsonl")])
            # a second annotator on some of the same pairs (agreeing but twice), so agreement
            # has something to show
            given = project.conn.execute(
                "SELECT comparison_id, choice FROM labels ORDER BY comparison_id LIMIT 12").fetchall()
            flip = {"a": "b", "b": "a", "tie": "a", "both_bad": "tie"}
            for i, (cid, choice) in enumerate(given):
                project.set_label(cid, "bob", flip[choice] if i in (3, 8) else choice)
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.IniFormat)
        settings.setValue("annotator", "carol")
        settings.setValue("tour/seen", "true")  # the first-run tour would cover the shots
        settings.setValue("theme", "light")
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
        if "--no-train" not in sys.argv:  # trains an instant model with the embedded backbone
            window.nav.setCurrentRow(4)
            finished = []
            window.train_page.sig_run_finished.connect(finished.append)
            window.train_page.val_share.setValue(35)  # the demo is small: hold out enough to measure
            window.train_page.start()
            deadline = time.time() + 600
            while not finished and time.time() < deadline:
                app.processEvents()
                time.sleep(0.05)
            app.processEvents()
            window.grab().save(str(OUT / "train.png"))
            window.nav.setCurrentRow(7)
            app.processEvents()
            window.grab().save(str(OUT / "runs.png"))
            # Score with the model just trained: a prompt of the demo and three answers.
            window.nav.setCurrentRow(5)
            score = window.score_page
            scored = []
            score.engine.sig_scored.connect(lambda *_a: scored.append(1))
            score.set_texts("How do I keep basil alive indoors?", [
                "Put it on the sunniest windowsill you have, water when the top of the soil is dry, "
                "and pinch off flower buds so it keeps making leaves.",
                "Basil is a plant.",
                "Water it every day no matter what and keep it in a dark corner."])
            score.score_now()
            deadline = time.time() + 300
            while not scored and time.time() < deadline:
                app.processEvents()
                time.sleep(0.05)
            app.processEvents()
            window.grab().save(str(OUT / "score.png"))
            window.nav.setCurrentRow(6)
            app.processEvents()
            window.grab().save(str(OUT / "optimize.png"))
        dark_shots(app, window)
        window.close()
    print(f"wrote screenshots to {OUT}")
    return 0


def dark_shots(app, window) -> None:
    """Label and Score (where a model was trained) and the welcome screen, in the dark theme."""
    window.theme.set_choice("dark")
    shots = [(1, "label-dark")] + ([(5, "score-dark")] if "--no-train" not in sys.argv else [])
    for row, name in shots:
        window.nav.setCurrentRow(row)
        for _ in range(5):  # widgets hear of the new palette through posted events
            app.processEvents()
        window.grab().save(str(OUT / f"{name}.png"))
    window.close_project()
    window.welcome.show_recent([])
    app.processEvents()
    window.grab().save(str(OUT / "welcome-dark.png"))


if __name__ == "__main__":
    sys.exit(main())
