"""The frozen app's entry point: the `rmstudio` command, and `-m module` for its own children.

rmstudio starts training runs and model probes as ``sys.executable -m rmstudio.core...``. In a
PyInstaller build ``sys.executable`` is this program, not Python, so it answers ``-m`` itself by
running the module from the bundle, as Python would.
"""

from __future__ import annotations

import multiprocessing
import runpy
import sys


def main() -> int:
    multiprocessing.freeze_support()
    if len(sys.argv) >= 3 and sys.argv[1] == "-m":
        module = sys.argv[2]
        sys.argv = [sys.argv[0], *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    from rmstudio.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
