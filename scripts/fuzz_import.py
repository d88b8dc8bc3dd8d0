"""Coverage-guided fuzzing of every importer with atheris (libFuzzer), over the same property
as tests/formats/test_fuzz_importers.py:

    import_files either succeeds, or raises an RmstudioError whose message is one line naming
    the file, and a failed import leaves the project exactly as it was.

Each input's first byte picks the file type (.jsonl, .ndjson, .json, .csv, .parquet, or a
gzipped text type); the rest is the file. Anything else (another exception, a broken property)
is reported by libFuzzer as a crash with the input saved; a hang by ``-timeout``.

    pip install atheris
    python scripts/fuzz_import.py -max_total_time=180 -timeout=10 [corpus_dir]
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with atheris.instrument_imports(include=["rmstudio"]):
    from rmstudio.core.data import import_chunks
    from rmstudio.core.data import importer
    from rmstudio.core.errors import FormatError, RmstudioError
    from rmstudio.core.data.formats import Limits
    from rmstudio.core.data.importer import import_files
    from rmstudio.core.store.project import Project

NAMES = ["d.jsonl", "d.ndjson", "d.json", "d.csv", "d.parquet", "d.jsonl.gz", "d.json.gz",
         "d.csv.gz", "d.ndjson.gz"]
LIMITS = Limits(max_bytes=64 * 1024, max_line_bytes=4096, max_json_bytes=16 * 1024,
                max_field_chars=500, max_rows=40, max_ranking_responses=6)
SEED = (b'{"prompt": "p", "chosen": "a b", "rejected": "a c"}\n'
        b'{"prompt": "q", "response_a": "x", "response_b": "y", "choice": "tie", "annotator": "z"}\n'
        b'{"prompt": "r", "responses": ["x", "y", "z"]}\n{"prompt": "s"}\n')

for module in (importer, import_chunks):  # the pause between chunks only slows fuzzing down
    if hasattr(module, "GAP_SECONDS"):
        module.GAP_SECONDS = 0.0

WORK = Path(tempfile.mkdtemp(prefix="rmfuzz-atheris-"))
TEMPLATE = WORK / "template.rmstudio"
(WORK / "seed.jsonl").write_bytes(SEED)
with Project.create(TEMPLATE) as _project:
    import_files(_project, [WORK / "seed.jsonl"])


def snapshot(project: Project) -> tuple:
    conn = project.conn
    digest = hashlib.sha256()
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                 "AND name NOT LIKE 'sqlite_%' ORDER BY name").fetchall():
        for row in sorted(repr(tuple(r)) for r in conn.execute(f'SELECT * FROM "{table}"')):
            digest.update(row.encode("utf-8", "backslashreplace"))
    return project.counts(), digest.hexdigest()


def one_input(data: bytes) -> None:
    if not data:
        return
    name = NAMES[data[0] % len(NAMES)]
    body = data[1:]
    folder = Path(tempfile.mkdtemp(dir=WORK))
    try:
        path = folder / name
        path.write_bytes(body)
        project_path = folder / "p.rmstudio"
        shutil.copyfile(TEMPLATE, project_path)
        with Project.open(project_path) as project:
            before = snapshot(project)
            try:
                import_files(project, [str(path)], LIMITS)
            except RmstudioError as exc:
                message = str(exc)
                if len(message.splitlines()) != 1 or "\r" in message:
                    raise AssertionError(f"error message is not one line: {message!r}") from exc
                if str(path) not in message:
                    raise AssertionError(f"error message names no file: {message!r}") from exc
                if isinstance(exc, FormatError) and exc.line is not None and exc.line < 1:
                    raise AssertionError(f"bad line number: {message!r}") from exc
                if snapshot(project) != before:
                    raise AssertionError(f"a failed import changed the project: {message}") from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
