"""Which process owns a piece of running work, and is it still alive?

A run or an import in a project says 'running' until its process writes its end. When the
process dies first (killed, out of memory, the machine went down), nothing writes it, so the
next open has to tell a dead owner from a live one: the owner is stored as this host, the pid and
the process's start time (a pid alone is reused), read with psutil on every platform.
"""

from __future__ import annotations

import json
import os
import socket


def _process_started(pid: int) -> float:
    """When process ``pid`` started (seconds since the epoch): with the pid, it names one process,
    even after the pid is reused. psutil comes with accelerate and reads it on every platform."""
    import psutil

    return psutil.Process(pid).create_time()


def process_owner() -> str:
    """The owner stored with a running run: this host, this process and its start time."""
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                       "started": _process_started(os.getpid())})


def owner_alive(owner: str | None) -> bool | None:
    """True when the process that owns a run is still alive, False when it is gone, None when this
    machine cannot tell (no owner recorded, another host: the project lies on a shared folder)."""
    import psutil

    try:
        found = json.loads(owner) if owner else None
        if not isinstance(found, dict) or found.get("host") != socket.gethostname():
            return None
        process = psutil.Process(int(found["pid"]))
        if process.status() == psutil.STATUS_ZOMBIE:  # exited, not yet reaped by its parent
            return False
        # Another process that got the pid later started later: it is not the run's.
        return abs(process.create_time() - float(found["started"])) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # it exists, owned by someone else: do not declare it dead
        return True
    except (ValueError, KeyError, TypeError):
        return None
