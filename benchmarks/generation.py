"""Generation throughput: rmstudio's batched generate_responses vs a plain per-prompt loop.

Run from the repository root: ``python benchmarks/generation.py [--device cuda] [--max-new-tokens 64]``.
Both methods use the embedded SmolLM2-135M-Instruct, the same prompts and sampling settings
(2 responses each); tokens count generated tokens up to and including EOS, not padding.
Prints a table and writes benchmarks/results/generation.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from rmstudio.core.models.generation import GenerationConfig, format_prompt, generate_responses  # noqa: E402
from rmstudio.core.models.loading import load_causal_lm, pick_device  # noqa: E402
from rmstudio.core.data.records import Text  # noqa: E402

PROMPTS = [
    "What should I cook for dinner tonight with rice and eggs?",
    "How do I politely decline a meeting invitation?",
    "Give me three tips for sleeping better.",
    "Explain what a mortgage is in simple terms.",
    "Write a short birthday message for my sister.",
    "How often should I water a cactus?",
    "What is a good way to start learning to run?",
    "Why is the sky blue?",
]
RESULTS = Path(__file__).resolve().parent / "results" / "generation.json"


class TokenSink:
    def __init__(self):
        self.tokens = 0

    def log(self, step, metrics):
        self.tokens = int(metrics.get("tokens", self.tokens))

    def should_stop(self):
        return False


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()  # waits for the GPU so the clock measures the work


def run_rmstudio(model, tokenizer, prompts, config, device):
    sink = TokenSink()
    _sync(device)
    started = time.perf_counter()
    generate_responses(model, tokenizer, list(enumerate(prompts)), config, sink)
    _sync(device)
    return sink.tokens, time.perf_counter() - started


def run_plain(model, tokenizer, prompts, config, device):
    eos = tokenizer.eos_token_id
    tokens = 0
    _sync(device)
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    for prompt in prompts:
        text = format_prompt(tokenizer, prompt)
        inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(device)
        with torch.inference_mode():
            out = model.generate(
                **inputs, do_sample=True, temperature=config.temperature, top_p=config.top_p,
                max_new_tokens=config.max_new_tokens, num_return_sequences=config.num_responses,
                pad_token_id=tokenizer.pad_token_id,
            )
        for row in out[:, inputs["input_ids"].shape[1]:].tolist():
            tokens += row.index(eos) + 1 if eos in row else len(row)
    _sync(device)
    return tokens, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: best available)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=GenerationConfig.batch_size)
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; the fastest counts")
    args = parser.parse_args()

    device = pick_device(args.device)
    started = time.perf_counter()
    model, tokenizer = load_causal_lm("embedded", device=device)
    load_s = time.perf_counter() - started
    prompts = [Text(p) for p in PROMPTS]
    config = GenerationConfig(num_responses=2, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)

    # Warm up kernels and allocator once so neither method pays first-call costs.
    generate_responses(model, tokenizer, [(0, prompts[0])], GenerationConfig(max_new_tokens=4))

    # Rounds alternate the methods so a noisy neighbour (shared CPUs) hurts both alike; the
    # fastest round of each is reported, all rounds are kept in the JSON.
    methods = (("rmstudio generate_responses", run_rmstudio), ("plain per-prompt generate", run_plain))
    timings: dict[str, list[tuple[int, float]]] = {name: [] for name, _ in methods}
    for _ in range(max(1, args.repeats)):
        for name, runner in methods:
            timings[name].append(runner(model, tokenizer, prompts, config, device))
    rows = []
    for name, runs in timings.items():
        tokens, seconds = min(runs, key=lambda run: run[1])
        rows.append({"method": name, "prompts": len(prompts), "tokens": tokens, "seconds": round(seconds, 3),
                     "tokens_per_s": round(tokens / seconds, 1),
                     "all_seconds": [round(s, 3) for _, s in runs]})

    print(f"device={device} dtype={model.dtype} load={load_s:.2f}s batch_size={config.batch_size} "
          f"max_new_tokens={config.max_new_tokens} best of {max(1, args.repeats)}")
    print(f"{'method':<30} {'prompts':>7} {'tokens':>7} {'seconds':>8} {'tokens/s':>9}")
    for row in rows:
        print(f"{row['method']:<30} {row['prompts']:>7} {row['tokens']:>7} {row['seconds']:>8.2f} "
              f"{row['tokens_per_s']:>9.1f}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "device": device,
        "device_name": (torch.cuda.get_device_name(0) if device.startswith("cuda")
                        else platform.processor() or platform.machine()),
        "dtype": str(model.dtype),
        "torch": torch.__version__,
        "load_seconds": round(load_s, 3),
        "config": {"num_responses": 2, "max_new_tokens": config.max_new_tokens,
                   "temperature": config.temperature, "top_p": config.top_p, "batch_size": config.batch_size},
        "results": rows,
    }
    temp = RESULTS.with_suffix(".json.tmp")
    temp.write_text(json.dumps(report, indent=2) + "\n")
    temp.replace(RESULTS)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
