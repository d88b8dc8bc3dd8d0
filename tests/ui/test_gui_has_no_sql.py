"""The GUI runs no SQL: every query a page needs is a function or Project method in the core.

The import-linter contract in pyproject.toml keeps sqlite3 out of rmstudio.gui; this scan catches
what an import check cannot: ``project.conn.execute(...)`` needs no import, nor does a query in a
string. It reads the source (no Qt needed) and names each finding as file:line.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import rmstudio.gui

GUI = Path(rmstudio.gui.__file__).parent
ROOT = GUI.parent.parent

# Attributes that mean talking to SQLite directly: a cursor's methods and the raw connection.
SQL_ATTRIBUTES = {"execute", "executemany", "executescript", "conn", "cursor"}
# A statement in a string: the keyword (upper case, as this project writes SQL) and then
# something that is not prose. "SELECT 1 FROM", "INSERT INTO", "DELETE FROM", "UPDATE runs SET".
SQL_IN_TEXT = re.compile(
    r"\b(?:SELECT|INSERT|UPDATE|DELETE|REPLACE|PRAGMA)\s+[A-Z]"  # the rule: keyword + UPPER word
    r"|\bSELECT\s+(?:\d|\*|[a-z_]+\.[a-z_*]|[a-z_]+\s*(?:,|\bFROM\b))"  # SELECT 1 / * / l.id / id FROM
    r"|\bUPDATE\s+\w+\s+SET\b"
    r"|\b(?:FROM|JOIN)\s+[a-z_]+\s+(?:WHERE|JOIN|ORDER|GROUP|LIMIT|[a-z]{1,2}\b)")  # FROM labels l


def sql_findings(source: str, name: str) -> list[str]:
    """``name:line: what`` for each raw-SQL use in this Python source."""
    found = []
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.Attribute) and node.attr in SQL_ATTRIBUTES:
            found.append((node.lineno, f"uses .{node.attr}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = SQL_IN_TEXT.search(node.value)
            if match:
                line = node.lineno + node.value[:match.start()].count("\n")
                found.append((line, f"SQL in a string: {match.group(0)!r}"))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if module.split(".")[0] in {"sqlite3", "sqlite_utils"}:
                    found.append((node.lineno, f"imports {module}"))
    return [f"{name}:{line}: {what}" for line, what in sorted(set(found))]


def test_no_gui_module_runs_sql():
    findings = []
    for path in sorted(GUI.glob("*.py")):
        findings += sql_findings(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not findings, ("SQL in the GUI; move each query into the core (labeling/, runs/store.py, "
                          "Project) and call that:\n" + "\n".join(findings))


def test_the_scan_catches_each_kind_of_raw_sql():
    """The guard is only as good as its patterns: each of these must be caught, by line."""
    source = '''
import sqlite3
from sqlite_utils import Database
rows = project.conn.execute("SELECT id FROM prompts ORDER BY id")
conn.executemany(sql, values)
model.conn = project.conn
x = "SELECT 1 FROM labels LIMIT 1"
y = f"""SELECT l.choice, count(*) FROM labels l
        JOIN annotators an ON an.id = l.annotator_id WHERE x IN ({marks})"""
z = "INSERT INTO settings (key, value) VALUES (?, ?)"
w = "UPDATE runs SET status = ?"
v = "DELETE FROM labels WHERE id = ?"
u = "SELECT * FROM runs"
'''
    findings = sql_findings(source, "probe.py")
    lines = {int(f.split(":")[1]) for f in findings}
    assert lines == {2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13}, "\n".join(findings)


def test_the_scan_leaves_prose_and_qt_alone():
    source = '''
self.import_button.clicked.connect(self.import_paths)
text = "Select a file to import, then update the labels; delete a label from its row."
hint = "No labels yet. Label pairs in the Label workspace, or import labeled data."
tip = "Choose from the list"
title = "Run #3 · finetune · finished"
'''
    assert sql_findings(source, "probe.py") == []
