"""`rmstudio report PROJECT RUN --out report.html`: one run as a self-contained HTML page
(``rmstudio.core.runs.report``), the same file the app's 'Save report…' writes."""

from __future__ import annotations

import sys


def cmd_report(args) -> int:
    from rmstudio.core.runs.report import write_report
    from rmstudio.core.store.project import Project

    out = args.out or f"run-{args.run}-report.html"
    with Project.open(args.project) as project:
        path = write_report(project, args.run, out)
    print(f"Report of run {args.run} written to {path}", file=sys.stderr)
    return 0


def add_parsers(sub) -> None:
    """Add `report` to the `rmstudio` command's subparsers (a bad run or file is one line, exit 1)."""
    from rmstudio.cli_args import HelpWithDefaults

    p = sub.add_parser("report", help="write one run's settings, results and curves as one HTML file",
                       formatter_class=HelpWithDefaults)
    p.add_argument("project", help="the project file (.rmstudio may be left out)")
    p.add_argument("run", type=int, help="the run's number (the Runs page's first column)")
    p.add_argument("--out", help="the HTML file to write (default: run-RUN-report.html here)")
    p.set_defaults(func=cmd_report)
