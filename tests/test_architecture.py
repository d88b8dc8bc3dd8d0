"""Rules of the layout that an import contract cannot state (see pyproject.toml for those)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rmstudio"
RUN_WRITES = {"start_run", "claim_run", "log_metrics", "finish_run", "add_artifact"}
RECORDER = {PACKAGE / "core" / "runs" / "recorder.py", PACKAGE / "core" / "runs" / "store.py"}


def test_only_the_recorder_writes_run_rows():
    """A run writes its config, metrics, status and artifacts through its recorder only, so a
    child process or a second rank can be given one that streams or records nothing."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in RECORDER:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == "rmstudio.core.runs.store":
                used = RUN_WRITES & {alias.name for alias in node.names}
                if used:
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {sorted(used)}")
    assert not offenders, "run rows written outside the recorder: " + "; ".join(offenders)
