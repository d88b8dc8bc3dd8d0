"""`rmstudio diagnose`: a reward model read against a labeled set, from the shell.

The same figures as the Diagnose workspace (``core.reward.diagnostics``): accuracy, reward vs
length, calibration, accuracy by annotator and the most confident disagreements; ``--out``
writes all of them, per pair too, as JSON. Bad input is one line and exit status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SHOWN_DISAGREEMENTS = 10


def _num(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def cmd_diagnose(args) -> int:
    from rmstudio.cli_progress import TqdmSink
    from rmstudio.cli_score import _load, _write_atomically
    from rmstudio.core.reward.diagnostics import diagnose, labeled_set

    pairs = labeled_set(args.source, args.run)  # a bad set is reported before the model loads
    args.normalized = False  # raw rewards: the figures compare a model with itself
    model = _load(args)
    bar = TqdmSink("scoring", "pairs", len(pairs))
    try:
        d = diagnose(model, pairs, bar)
    finally:
        bar.close()
    if args.out:
        _write_atomically(Path(args.out), json.dumps(d.to_json(), ensure_ascii=False, indent=1) + "\n")
    print(f"{len(d.rows)} pairs with a preference ({d.ties_left_out} ties left out)"
          + (f", wrote {args.out}" if args.out else ""))
    if not d.rows:
        return 0
    print(f"accuracy {d.accuracy:.4f} (prefer-longer {d.baseline_longer:.4f}), ECE {d.ece:.4f}")
    print(f"reward vs length ({d.length_unit}): Pearson {_num(d.pearson, '+.3f')}, Spearman "
          f"{_num(d.spearman, '+.3f')}, n {d.correlation_n}")
    for a in d.by_annotator:
        print(f"annotator {a.name}: accuracy {a.accuracy:.3f} [95% {a.low:.3f}, {a.high:.3f}] "
              f"on {a.pairs} pairs")
    print(f"{len(d.disagreements)} disagreements (the model prefers the rejected response)"
          + (", most confident first:" if d.disagreements else ""))
    for r in d.disagreements[:SHOWN_DISAGREEMENTS]:
        where = f"comparison {r.comparison_id}" if r.comparison_id > 0 else f"line {-r.comparison_id}"
        print(f"  {where}: P(chosen) {r.p_chosen:.3f}, annotators {', '.join(r.annotators)}")
    return 0


def add_parser(sub) -> None:
    from rmstudio.cli_errors import reports_bad_input

    p = sub.add_parser("diagnose", help="a reward model against a labeled set: accuracy, length, "
                       "calibration, annotators, disagreements")
    p.add_argument("model", help="a reward model folder rmstudio saved (instant or fine-tuned)")
    p.add_argument("source", help="a project (its labeled pairs) or a preference file in any format "
                   "`import` reads")
    p.add_argument("--run", type=int, help="with a project: only the validation split of this reward run "
                   "(its recorded seed and share; default: every labeled pair)")
    p.add_argument("--out", help="write every figure and each pair's rewards as JSON here")
    p.add_argument("--device", choices=["cpu", "cuda", "mps"], help="default: the best available")
    p.set_defaults(func=reports_bad_input(cmd_diagnose))


if __name__ == "__main__":
    sys.exit("run it as `rmstudio diagnose`")
