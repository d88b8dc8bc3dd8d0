"""Scoring latency: one response of 128 tokens scored by the embedded model, fp32 and bf16.

Run from the repository root: ``python benchmarks/scoring.py [--repeats 40] [--response-tokens 128]
[--prompt-tokens 48] [--threads N] [--dtypes float32,bfloat16] [--kinds instant,finetuned]``.

What is timed is what the Score page and ``rmstudio.load_reward_model(folder).score(prompt, response)``
do for one typed response: tokenise, one forward pass of SmolLM2-135M-Instruct (the embedded default),
the reward head. Two model kinds, each built here from the embedded model with a random head (the
head's weights do not change the cost): an *instant* model (frozen decoder + linear head on pooled
states; prompt and response in one call through the prompt cache) and a *fine-tuned* one
(``AutoModelForSequenceClassification``, the folder a LoRA/full run exports). Each is loaded through
the public API, then cast to the precision under test.

Alongside, in the same run and at the same precision and thread count, a plain square matmul
(1024³, best of several) gives the machine's reachable peak, so the model's FLOP/s can be read as a
share of it: FLOPs per score = 2 × (decoder linear weights) × tokens + the attention products
(4 × layers × hidden × query tokens × key tokens). Prints a table and writes
benchmarks/results/scoring.json. Target (issue 18): p50 under 50 ms where the CPU has fast bf16.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results" / "scoring.json"
HH = Path(__file__).resolve().parents[1] / "resources" / "examples" / "hh-rlhf-harmless-base-test.jsonl.gz"


def sample_texts(tokenizer, prompt_tokens: int, response_tokens: int) -> tuple[str, str]:
    """A real HH prompt and a response of exactly ``response_tokens`` tokens (HH answers joined)."""
    from rmstudio.core.data.formats import iter_records

    prompt, answers = "", []
    for rec in iter_records(HH):
        if not hasattr(rec, "response_a"):
            continue
        prompt = prompt or rec.prompt.text
        answers.append(rec.response_a.text)
        if len(tokenizer(" ".join(answers), add_special_tokens=False)["input_ids"]) > response_tokens + 8:
            break
    ids = tokenizer(" ".join(answers), add_special_tokens=False)["input_ids"][:response_tokens]
    pids = tokenizer(prompt, add_special_tokens=False)["input_ids"][-prompt_tokens:]
    response = tokenizer.decode(ids)
    # Decoding and encoding again may merge tokens differently: trim until the count is exact.
    while len(tokenizer(response, add_special_tokens=False)["input_ids"]) > response_tokens:
        ids = ids[:-1]
        response = tokenizer.decode(ids)
    return tokenizer.decode(pids), response


def matmul_peak(torch, dtype, size: int = 1024, repeats: int = 12) -> float:
    """Best FLOP/s of a square matmul at ``dtype`` (the reachable peak for this precision here)."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best


def forward_flops(config, linear_weights: int, prompt: int, response: int) -> float:
    tokens = prompt + response
    layers, hidden = config.num_hidden_layers, config.hidden_size
    # The prompt attends to itself (causal, counted in full as the kernels compute it), the
    # response to the prompt and itself.
    attention = 4 * layers * hidden * (prompt * prompt + response * tokens)
    return 2 * linear_weights * tokens + attention


def decoder_linear_weights(torch, decoder) -> int:
    return sum(m.weight.numel() for m in decoder.modules() if isinstance(m, torch.nn.Linear))


def build_instant(folder: Path):
    import torch

    from rmstudio.core.reward.features import FeatureSpec
    from rmstudio.core.reward.instant import InstantHead
    from rmstudio.core.reward.instant_model import InstantRewardModel

    model = InstantRewardModel.from_base("embedded", FeatureSpec(), device="cpu", dtype_name="float32")
    torch.manual_seed(0)
    model.head = InstantHead(model.extractor.dim).eval()
    return model.save(folder / "instant")


def build_finetuned(folder: Path):
    from rmstudio.core.reward.finetune_export import save_reward_stats
    from rmstudio.core.reward.finetune_model import load_reward_backbone

    model, tokenizer = load_reward_backbone("embedded")
    out = folder / "finetuned"
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    save_reward_stats(out, 0.0, 1.0)
    return out


def set_precision(torch, rm, kind: str, dtype) -> tuple[object, object]:
    """Cast the loaded model to ``dtype``; return (decoder, config) for the FLOP count."""
    scorer = rm.scorer
    if kind == "instant":
        decoder = scorer.instant.extractor.decoder
        decoder.to(dtype)
        return decoder, decoder.config
    model = scorer.hf[0]
    model.to(dtype)
    return model.model, model.config


def time_scores(rm, prompt: str, response: str, repeats: int) -> list[float]:
    for _ in range(3):
        rm.score(prompt, response)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        rm.score(prompt, response)
        times.append(time.perf_counter() - start)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=40, help="timed scores per row (default 40)")
    parser.add_argument("--response-tokens", type=int, default=128, help="response length (default 128)")
    parser.add_argument("--prompt-tokens", type=int, default=48, help="prompt length kept (default 48)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own)")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="precisions (default float32,bfloat16)")
    parser.add_argument("--kinds", default="instant,finetuned", help="model kinds (default instant,finetuned)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args()

    import torch

    import rmstudio
    from rmstudio.core.models.loading import fast_bf16

    if args.threads:
        torch.set_num_threads(args.threads)
    kinds = [k for k in args.kinds.split(",") if k]
    dtypes = [d for d in args.dtypes.split(",") if d]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = {"instant": build_instant, "finetuned": build_finetuned}
        built = {kind: folders[kind](Path(tmp)) for kind in kinds}
        peaks = {name: matmul_peak(torch, getattr(torch, name)) for name in dtypes}
        for kind in kinds:
            rm = rmstudio.load_reward_model(built[kind], device="cpu")
            tokenizer = rm.scorer.instant.extractor.tokenizer if kind == "instant" else rm.scorer.hf[1]
            prompt, response = sample_texts(tokenizer, args.prompt_tokens, args.response_tokens)
            n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
            n_response = len(tokenizer(response, add_special_tokens=False)["input_ids"]) + 1  # + end
            for name in dtypes:
                decoder, config = set_precision(torch, rm, kind, getattr(torch, name))
                times = time_scores(rm, prompt, response, args.repeats)
                p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
                flops = forward_flops(config, decoder_linear_weights(torch, decoder), n_prompt, n_response)
                rows.append({"kind": kind, "dtype": name, "prompt_tokens": n_prompt,
                             "response_tokens": n_response, "p50_ms": 1000 * p50, "p95_ms": 1000 * p95,
                             "mean_ms": 1000 * statistics.fmean(times), "gflop_per_score": flops / 1e9,
                             "model_gflops": flops / p50 / 1e9, "matmul_peak_gflops": peaks[name] / 1e9,
                             "share_of_peak": flops / p50 / peaks[name]})

    print(f"\nScoring one response ({args.response_tokens} tokens) with the embedded model, "
          f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"fast bf16: {fast_bf16('cpu')}")
    print(f"{'kind':<10} {'dtype':<9} {'p50 ms':>8} {'p95 ms':>8} {'GFLOP':>7} {'GFLOP/s':>8} "
          f"{'matmul peak':>12} {'share':>6}")
    for r in rows:
        print(f"{r['kind']:<10} {r['dtype']:<9} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['gflop_per_score']:7.2f} "
              f"{r['model_gflops']:8.1f} {r['matmul_peak_gflops']:12.1f} {r['share_of_peak']:6.1%}")
    target = [r for r in rows if r["dtype"] == "bfloat16"]
    if target and fast_bf16("cpu"):
        best = min(r["p50_ms"] for r in target)
        print(f"target p50 < 50 ms with bf16: {'met' if best < 50 else 'MISSED'} (best {best:.1f} ms)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "threads": torch.get_num_threads(), "fast_bf16": fast_bf16("cpu"),
                    "torch": torch.__version__},
        "repeats": args.repeats, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
