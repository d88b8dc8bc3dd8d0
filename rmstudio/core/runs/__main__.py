"""One child entry point for every run kind.

    python -m rmstudio.core.runs KIND_REF PROJECT CONFIG_JSON [--run-id N]

KIND_REF is ``package.module:NAME`` (see ``kinds``). With ``--run-id`` the parent has begun the
run and records it: the child writes nothing to the project's run tables and streams its events
as JSON lines (``{"event": "progress" | "artifact" | "finished" | "failed", ...}``). Without it
the child records the run itself and still streams its progress (the way a CLI user or a script
runs one kind in a fresh process). A line ``stop`` on stdin asks the run to stop.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from rmstudio.core.runs import codec
from rmstudio.core.runs.kinds import load_kind
from rmstudio.core.runs.launch import run_in_process
from rmstudio.core.runs.recorder import ProjectRecorder, StreamRecorder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rmstudio.core.runs")
    parser.add_argument("kind")
    parser.add_argument("project")
    parser.add_argument("config", help="the kind's config as JSON")
    parser.add_argument("--run-id", type=int)
    args = parser.parse_args(argv)
    if args.run_id is not None and hasattr(os, "nice"):
        # A run the window watches yields the CPU to the window: training takes every core it
        # can, and a window waiting for one stalls (benchmarks/ui_stall.py saw 0.4-0.8 s gaps).
        os.nice(5)
    stream = StreamRecorder(args.run_id)
    try:
        kind = load_kind(args.kind)
        config = codec.loads(kind.config_type, args.config, where=kind.name)
        if args.run_id is not None:
            result = kind.run(args.project, config, stream)
        else:
            recorder = ProjectRecorder(args.project, sink=stream)
            try:
                result = run_in_process(kind, args.project, config, recorder)
            finally:
                recorder.close()
    except Exception as exc:  # noqa: BLE001 - everything is reported to the parent
        stream.emit({"event": "failed", "message": str(exc) or type(exc).__name__,
                     "traceback": traceback.format_exc()})
        return 1
    stream.emit({"event": "finished", "result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
