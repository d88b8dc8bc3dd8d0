"""Regenerate the README screenshots from the running app (offscreen).

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py

Builds a temporary project from the shipped everyday demo and the HH example, adds a few
labels by two annotators, and grabs each workspace at 1200x800 into docs/screenshots/, in the
light theme, then the welcome screen, Label and Score again in the dark one (``*-dark.png``),
and the first-run tour as a new user meets it (``tour.png``).
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

    from rmstudio.core.data.demo import DEMOS
    from rmstudio.core.data.importer import import_files
    from rmstudio.core.store.project import Project
    from rmstudio.core.data.resources import resource
    from rmstudio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "team.rmstudio"
        with Project.create(path) as project:
            import_files(project, [resource(path) for path in DEMOS["everyday"][1]])
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
        for name in ("data", "label", "browse"):
            go(window, name)
            app.processEvents()
            window.grab().save(str(OUT / f"{name}.png"))
        if "--no-train" not in sys.argv:  # trains an instant model with the embedded backbone
            go(window, "train")
            finished = []
            window.train_page.sig_run_finished.connect(finished.append)
            window.train_page.start()  # the demo is small: the run cross-validates by prompt
            deadline = time.time() + 600
            while not finished and time.time() < deadline:
                app.processEvents()
                time.sleep(0.05)
            app.processEvents()
            window.grab().save(str(OUT / "train.png"))
            go(window, "runs")
            app.processEvents()
            window.grab().save(str(OUT / "runs.png"))
            # Score with the model just trained: a prompt of the demo and three answers.
            go(window, "score")
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
            go(window, "optimize")
            app.processEvents()
            window.grab().save(str(OUT / "optimize.png"))
            diagnose_shot(app, window)
        dark_shots(app, window)
        window.close()
        tour_shot(app, Path(tmp))
    print(f"wrote screenshots to {OUT}")
    return 0


def go(window, name: str) -> None:
    """Show the workspace called ``name`` (by its title: rows move when a workspace is added)."""
    titles = [window.nav.item(row).text().lower() for row in range(window.nav.count())]
    window.nav.setCurrentRow(titles.index(name))


def wait(app, done, seconds: float) -> None:
    deadline = time.time() + seconds
    while not done() and time.time() < deadline:
        app.processEvents()
        time.sleep(0.05)
    app.processEvents()


def diagnose_shot(app, window) -> None:
    """Diagnose with the model just trained, on all the project's labeled pairs."""
    go(window, "diagnose")
    page = window.diagnostics_page
    app.processEvents()
    page.run()
    wait(app, lambda: page._job is None, 600)
    window.grab().save(str(OUT / "diagnose.png"))


def tour_shot(app, folder: Path) -> None:
    """The first launch: a fresh settings file, so the tour opens over the welcome screen."""
    from PySide6.QtCore import QSettings

    from rmstudio.gui.main_window import MainWindow

    settings = QSettings(str(folder / "first-run.ini"), QSettings.IniFormat)
    settings.setValue("theme", "light")
    window = MainWindow(settings=settings)
    window.resize(1200, 800)
    window.show()
    for _ in range(5):
        app.processEvents()
    window.welcome.show_recent([])
    window.grab().save(str(OUT / "tour.png"))
    window.close()


def dark_shots(app, window) -> None:
    """Label and Score (where a model was trained) and the welcome screen, in the dark theme."""
    window.theme.set_choice("dark")
    shots = ["label"] + (["score"] if "--no-train" not in sys.argv else [])
    for name in shots:
        go(window, name)
        for _ in range(5):  # widgets hear of the new palette through posted events
            app.processEvents()
        window.grab().save(str(OUT / f"{name}-dark.png"))
    window.close_project()
    window.welcome.show_recent([])
    app.processEvents()
    window.grab().save(str(OUT / "welcome-dark.png"))


if __name__ == "__main__":
    sys.exit(main())
