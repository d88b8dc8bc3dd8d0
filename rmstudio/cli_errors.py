"""How a headless command fails: one `rmstudio: error:` line and an exit status, never a traceback.

``reports_bad_input`` wraps the commands that check their own input (score, explain, diagnose,
optimize, compare): their errors are the user's input, status 2 as argparse gives a bad command
line. ``run_reporting_errors`` is the last net around every command `rmstudio` runs.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from rmstudio.core.errors import RmstudioError

BAD_INPUT = 2


def reports_bad_input(command, also: tuple[type[Exception], ...] = ()):
    """Run a command; a RmstudioError (or one of ``also``, e.g. a config's own ValueError) is the
    user's input: one line, exit status 2."""
    caught = (RmstudioError, *also)

    def run(args) -> int:
        try:
            return command(args)
        except caught as exc:
            print(f"rmstudio: error: {exc}", file=sys.stderr)
            return BAD_INPUT

    run.__name__ = command.__name__
    return run


def run_alone(add_parsers, argv: list[str] | None = None) -> int:
    """Run one cli_*.py module's commands on their own (cli.py adds them to `rmstudio` through the
    same ``add_parsers``)."""
    parser = argparse.ArgumentParser(prog="rmstudio")
    add_parsers(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def run_reporting_errors(args) -> int:
    """Run the parsed command; whatever escapes it becomes one line and the status a shell expects."""
    try:
        code = args.func(args)
        # Flush here, not at exit: a reader that went away (`rmstudio stats P | head -1`)
        # must raise below, where it is handled, not in the interpreter's final flush.
        if sys.stdout is not None:  # None under pythonw (the app started without a console)
            sys.stdout.flush()
        return code
    except RmstudioError as exc:
        print(f"rmstudio: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rmstudio: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader closed the pipe: stop quietly, as cat or grep do. Python flushes stdout
        # once more at exit and would then print "Exception ignored ... BrokenPipeError", so
        # point stdout at devnull first (the recipe in the `signal` module's docs).
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # stdout replaced by a non-file object
            pass
        # 141 = 128 + SIGPIPE, the status a shell reports for `seq 1e9 | head -1`'s seq: the
        # output was cut short, so not 0, yet under `set -o pipefail` scripts see exactly what
        # any other Unix tool gives them.
        return 141
    except OSError as exc:
        # A full disk, a read-only folder, a file that vanished: one line naming the file(s)
        # and the reason ("No space left on device"), not a traceback. BrokenPipeError is an
        # OSError too, so it must stay above.
        names = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
        where = f"{' -> '.join(names)}: " if names else ""
        reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
        print(f"rmstudio: error: {where}{reason}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        # The project database failed under us (disk full, locked, corrupt): name the project.
        project = getattr(args, "project", None)
        where = f"{project}: " if project else ""
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(f"rmstudio: error: {where}project database error: {reason}", file=sys.stderr)
        return 1
