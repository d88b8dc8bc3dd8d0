"""Regenerate the everyday demo's response pairs with the embedded model (run once, ship the result).

    python scripts/make_demo.py            # writes resources/demo/everyday-pairs.jsonl
    python scripts/make_demo.py --round 2  # writes resources/demo/everyday-pairs-2.jsonl

Reads the prompts in resources/demo/everyday.jsonl, samples two responses per prompt with
rmstudio's own generation code and writes unlabeled pairs. Round 1's pairs are all labeled in
resources/demo/everyday-labels.jsonl (by people reading them; not touched here), so a first
instant run is measured at once; round 2 (another seed) ships unlabeled, so the demo's label
queue has work for a newcomer.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rmstudio.core.models.collect import generate_pairs
from rmstudio.core.models.generation import GenerationConfig
from rmstudio.core.data.importer import import_files
from rmstudio.core.store.project import Project

DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo"
ROUNDS = {1: ("everyday-pairs.jsonl", 7), 2: ("everyday-pairs-2.jsonl", 11)}  # file, sampling seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--round", type=int, choices=sorted(ROUNDS), default=1,
                        help="which shipped file to write (default 1)")
    args = parser.parse_args()
    filename, seed = ROUNDS[args.round]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.rmstudio"
        with Project.create(path) as project:
            import_files(project, [DEMO / "everyday.jsonl"])
        config = GenerationConfig(num_responses=2, temperature=0.9, top_p=0.95, max_new_tokens=160, seed=seed)
        result = generate_pairs(path, None, model="embedded", config=config)
        print(result)
        with Project.open(path) as project:
            rows = project.conn.execute(
                """SELECT p.text AS prompt, ra.text AS a, rb.text AS b, ra.model AS model
                   FROM comparisons c JOIN prompts p ON p.id = c.prompt_id
                   JOIN responses ra ON ra.id = c.response_a_id JOIN responses rb ON rb.id = c.response_b_id
                   ORDER BY p.id""").fetchall()
    with open(DEMO / filename, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps({"prompt": r["prompt"], "response_a": r["a"], "response_b": r["b"]},
                                ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} pairs to {DEMO / filename}")


if __name__ == "__main__":
    main()
