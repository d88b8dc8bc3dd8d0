"""Running a kind: in this process, or in a child process that streams its events back.

``run_in_process`` is what the CLI and tests use: it begins (or resumes) the run on the
recorder, runs the kind, and finishes the run with its status, or with 'failed'/'cancelled'
and the error when the kind raises. ``child_command`` is the command line of the same run in
a fresh interpreter (``python -m rmstudio.core.runs KIND PROJECT CONFIG --run-id N``): the
parent begins the run, the child only streams (``StreamRecorder``), and the parent applies
each event to its own recorder (``apply_event``), so one process writes the project.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from rmstudio.core.runs import codec
from rmstudio.core.runs.kinds import RunKind, kind_ref
from rmstudio.core.runs.recorder import RunRecorder


def start(kind: RunKind, project_path: str | Path, config, recorder: RunRecorder) -> int:
    """Begin the run on ``recorder`` (or resume the one the config names); its id."""
    kind.precheck(project_path, config)
    resume = kind.resume_of(project_path, config)
    if resume is not None:
        recorder.resume(resume)
    else:
        recorder.begin(kind.name, kind.describe(config), codec.encode(config))
    return recorder.run_id


def run_in_process(kind: RunKind, project_path: str | Path, config, recorder: RunRecorder) -> dict:
    start(kind, project_path, config, recorder)
    try:
        result = kind.run(project_path, config, recorder)
    except BaseException as exc:
        status = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
        recorder.finish(status, f"{exc}\n{traceback.format_exc()}")
        raise
    recorder.finish(result.get("status", "finished"))
    return result


def child_command(kind: RunKind, project_path: str | Path, config, run_id: int | None) -> list[str]:
    """The command that runs ``config`` of ``kind`` in a child process."""
    command = [sys.executable, "-m", "rmstudio.core.runs", kind_ref(kind), str(project_path),
               codec.dumps(config)]
    return command + (["--run-id", str(run_id)] if run_id is not None else [])
