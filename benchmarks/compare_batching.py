"""Before/after comparison's sampling: one prompt at a time (as compare_policies sampled until
policy2) against batches of ``COMPARE_BATCH`` left-padded prompts (``compare_sampling``).

    python benchmarks/compare_batching.py [--prompts 16] [--tokens 64] [--skip-embedded] [--skip-tiny]

Times ``sample_responses`` of one policy on the same prompts with batch 1 and batch 16, on a
tiny random Llama (tests/policy/policy_helpers) and on the embedded SmolLM2-135M-Instruct, on
the CPU. Prints the seconds and writes benchmarks/results/compare_batching.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "policy")]

from rmstudio.core.data.records import Text  # noqa: E402
from rmstudio.core.models.generation import GenerationConfig  # noqa: E402
from rmstudio.core.progress import NullSink  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "compare_batching.json"


def prompts(n: int) -> list:
    from rmstudio.core.data.resources import resource  # the shipped demo prompts

    lines = resource("demo/everyday.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    texts = list(dict.fromkeys(row["prompt"] for row in rows))[:n]
    return [(None, Text(t)) for t in texts]


def time_model(name: str, location: str, items: list, tokens: int) -> dict:
    from rmstudio.core.models.loading import load_causal_lm
    from rmstudio.core.policy.compare_sampling import COMPARE_BATCH, sample_responses

    model, tokenizer = load_causal_lm(location, device="cpu")
    model.eval()
    sampling = GenerationConfig(max_new_tokens=tokens, temperature=0.7, seed=0)
    out = {"model": name, "prompts": len(items), "max_new_tokens": tokens}
    for label, batch in (("one_at_a_time_s", 1), (f"batch_{COMPARE_BATCH}_s", COMPARE_BATCH)):
        started = time.perf_counter()
        sample_responses(model, tokenizer, items, sampling, False, NullSink(), 0, len(items), batch=batch)
        out[label] = round(time.perf_counter() - started, 2)
        print(f"{name}: {label} {out[label]} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--skip-tiny", action="store_true")
    args = parser.parse_args()
    from policy_helpers import save_policy_model

    items = prompts(args.prompts)
    results = {"machine": platform.platform(), "runs": []}
    if not args.skip_tiny:
        with tempfile.TemporaryDirectory() as tmp:
            tiny = str(save_policy_model(Path(tmp) / "tiny"))
            results["runs"].append(time_model("tiny", tiny, items, args.tokens))
    if not args.skip_embedded:
        results["runs"].append(time_model("embedded", "embedded", items, args.tokens))
    out = RESULTS.with_name(RESULTS.stem + ("_embedded" if args.skip_tiny else "") + ".json")
    out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
