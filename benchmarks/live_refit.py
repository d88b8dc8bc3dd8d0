"""Where a live instant model's refit spends its time, on the demo project's 40 labels.

Run from the repository root: ``python benchmarks/live_refit.py [--base embedded|FOLDER]
[--device cpu]``. It copies the everyday demo (40 labeled pairs, 27 that train), then:
1. a first refresh (loads the backbone, embeds every labeled response: the cold start),
2. a refresh with nothing new (the cache is warm: reads + head fit only),
3. one more labeled pair (a new prompt with two responses) and a refresh: embeds 2 responses.
Prints the seconds of each stage (read / load / features / fit) and the validation figure, and
writes benchmarks/results/live_refit-<base>.json. ``--base`` may be a tiny model folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmstudio.core.data.demo import demo_project_path  # noqa: E402
from rmstudio.core.data.importer import import_files  # noqa: E402
from rmstudio.core.reward.live import LiveInstantModel  # noqa: E402
from rmstudio.core.store.project import Project  # noqa: E402


def _add_labeled_pair(path: Path) -> None:
    row = {"prompt": "How do I keep bread fresh for longer?", "choice": "a", "annotator": "benchmark",
           "response_a": "Keep it in a bread box or a paper bag at room temperature; freeze slices you "
                         "will not eat within two days.",
           "response_b": "Bread is a food made of flour."}
    file = path.with_name("one-more.jsonl")
    file.write_text(json.dumps(row) + "\n")
    with Project.open(path) as project:
        import_files(project, [file])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="embedded")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    path = demo_project_path("everyday", folder)
    live = LiveInstantModel(base=args.base, device=args.device)
    rows = []
    for step in ("cold start", "warm, nothing new", "one new labeled pair"):
        if step == "one new labeled pair":
            _add_labeled_pair(path)
        started = time.perf_counter()
        status = live.refresh(path)
        rows.append({"step": step, "seconds": time.perf_counter() - started, "timings": status.timings,
                     "pairs": status.pairs, "val_accuracy": status.val_accuracy,
                     "val_accuracy_std": status.val_accuracy_std, "folds": status.folds})
        stages = ", ".join(f"{k} {v:.2f}" for k, v in status.timings.items())
        print(f"{step:>22}: {rows[-1]['seconds']:6.2f} s ({stages}); {status.pairs} pairs, "
              f"accuracy {status.val_accuracy:.2f} ± {status.val_accuracy_std or 0:.2f} "
              f"({status.folds} folds)")
    name = "embedded" if args.base == "embedded" else "tiny"
    out = Path(__file__).parent / "results" / f"live_refit-{name}.json"
    out.write_text(json.dumps({"base": args.base, "device": args.device, "machine": platform.machine(),
                               "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
