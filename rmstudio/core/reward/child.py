"""Reward training in a child process (kept for its command line; any kind runs through
``python -m rmstudio.core.runs``).

    python -m rmstudio.core.reward.child PROJECT CONFIG_JSON

The same as ``python -m rmstudio.core.runs rmstudio.core.reward.kind:REWARD PROJECT CONFIG_JSON``:
the child records its own run and streams JSON lines (``progress``, ``artifact``, then
``finished`` or ``failed``); a line ``stop`` on stdin asks it to stop at the next safe point.
"""

from __future__ import annotations

import sys

from rmstudio.core.runs.__main__ import main as run_kind

REWARD_REF = "rmstudio.core.reward.kind:REWARD"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return run_kind([REWARD_REF, *argv])


if __name__ == "__main__":
    sys.exit(main())
