"""`rmstudio score` and `rmstudio explain`: a saved reward model, used from the shell.

Kept apart from cli.py so the scoring commands carry their own input checks: bad input (no
model folder, a bad data line, a missing field) is one line naming what and where, exit status
2 (the status argparse gives a bad command line), never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from rmstudio.cli_errors import reports_bad_input, run_alone
from rmstudio.cli_progress import TqdmSink
from rmstudio.core.errors import FormatError, RmstudioError

def _load(args):
    """The reward model, with any failure to read the folder as one line naming it."""
    from rmstudio.core.reward.api import load
    from rmstudio.core.reward.scoring import RewardModelError

    folder = _model_folder(args)
    try:
        return load(folder, device=args.device, normalized=args.normalized)
    except RmstudioError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # A broken config.json or weights file: transformers and json raise these.
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise RewardModelError(f"{folder}: cannot load the reward model: {reason}") from None


def _model_folder(args) -> Path:
    from rmstudio.core.reward.scoring import RewardModelError

    folder = Path(args.model)
    if not folder.is_dir():
        raise RewardModelError(f"{folder}: no such model folder")
    return folder


def _read_rows(path: str) -> list[tuple[int, dict, list[str], list[str]]]:
    """(line, row, prompts, responses) per row: one response (prompt/response or
    prompt/completion) or a pair (prompt/chosen/rejected); every row checked before any scoring."""
    from rmstudio.core.data.formats import iter_rows
    from rmstudio.core.reward.api import as_text

    rows = []
    for line, row in iter_rows(path):
        if not isinstance(row, dict):
            raise FormatError(path, "expected a JSON object with prompt and response", line=line)
        if "prompt" not in row:
            raise FormatError(path, "missing field 'prompt'", line=line)
        if "chosen" in row or "rejected" in row:
            fields = ["chosen", "rejected"]
        else:
            fields = [next((f for f in ("response", "completion") if f in row), "response")]
        for name in fields:
            if name not in row:
                raise FormatError(path, f"missing field '{name}' (give prompt + response, or prompt + "
                                  "chosen + rejected)", line=line)
        try:
            prompt = as_text(row["prompt"], "prompt")
            responses = [as_text(row[f], f, completion=True) for f in fields]
        except RmstudioError as exc:
            field, _, reason = str(exc).partition(": ")
            raise FormatError(path, reason, line=line, field=field) from None
        rows.append((line, row, [prompt] * len(fields), responses))
    if not rows:
        raise FormatError(path, "no rows to score")
    return rows


def cmd_score(args) -> int:
    if args.best_of is not None:
        return _best_of_n(args)
    if args.policy is not None:
        raise RmstudioError("--policy is the model that writes responses for --best-of N: give --best-of too")
    if args.file is None and (args.prompt is None or args.response is None):
        raise RmstudioError("give --prompt and --response, or --file")
    if args.file is not None and (args.prompt is not None or args.response is not None):
        raise RmstudioError("give either --file or --prompt/--response, not both")
    if args.file is None:
        print(f"{_load(args).score(args.prompt, args.response):.6f}")
        return 0
    _model_folder(args)  # a wrong folder is reported before a long file is read
    rows = _read_rows(args.file)
    model = _load(args)
    prompts = [p for _, _, ps, _ in rows for p in ps]
    responses = [r for _, _, _, rs in rows for r in rs]
    bar = TqdmSink("scoring", "texts", len(prompts))
    try:
        rewards = model.score_rows(prompts, responses, sink=bar)
    finally:
        bar.close()
    out_rows, at, pairs, wins = [], 0, 0, 0.0
    for _, row, ps, _ in rows:
        if len(ps) == 2:
            chosen, rejected = rewards[at], rewards[at + 1]
            out_rows.append({**row, "reward_chosen": chosen, "reward_rejected": rejected})
            pairs += 1
            wins += 1.0 if chosen > rejected else 0.5 if chosen == rejected else 0.0
        else:
            out_rows.append({**row, "reward": rewards[at]})
        at += len(ps)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out_rows)
    # Without --out the rows are the output (stdout) and the summary goes to stderr.
    summary = sys.stdout if args.out else sys.stderr
    if args.out:
        _write_atomically(Path(args.out), text)
    else:
        sys.stdout.write(text)
    print(f"scored {len(rewards)} responses in {len(rows)} rows"
          + (f", wrote {args.out}" if args.out else ""), file=summary)
    if pairs:
        print(f"accuracy {wins / pairs:.4f} on {pairs} pairs (reward_chosen > reward_rejected; a tie "
              "counts half)", file=summary)
    return 0


def _best_of_n(args) -> int:
    """`score MODEL --prompt P --best-of N`: sample N responses with the policy, print them ranked,
    one line each (rank, reward, the text as a JSON string so a newline never splits a line)."""
    from rmstudio.core.models.generation import GenerationConfig
    from rmstudio.core.models.loading import ModelSource, load_causal_lm, pick_device
    from rmstudio.core.reward.best_of_n import MAX_N, best_of_n_responses, lm_generator

    if args.prompt is None or args.response is not None or args.file is not None:
        raise RmstudioError("--best-of N needs --prompt (and neither --response nor --file)")
    if not 1 <= args.best_of <= MAX_N:
        raise RmstudioError(f"--best-of must be from 1 to {MAX_N}, got {args.best_of}")
    if not args.prompt.strip():
        raise RmstudioError("--prompt is empty")
    try:  # the sampling settings' own check, before any model is loaded
        GenerationConfig(seed=args.seed, max_new_tokens=args.max_new_tokens)
    except ValueError as exc:
        raise RmstudioError(str(exc).replace("max_new_tokens", "--max-new-tokens")
                            .replace("seed", "--seed")) from None
    source = ModelSource.parse(args.policy or "embedded")  # a bad path is one line (ModelError)
    model = _load(args)
    device = pick_device(args.device)
    policy, tokenizer = load_causal_lm(source, device=device)
    generator = lm_generator(policy, tokenizer, seed=args.seed, max_new_tokens=args.max_new_tokens)
    bar = TqdmSink("generating", "responses", args.best_of)
    try:
        ranked = best_of_n_responses(generator, model.score, args.prompt, args.best_of, sink=bar)
    finally:
        bar.close()
    for item in ranked:
        print(f"#{item.rank}\t{item.reward:+.6f}\t{json.dumps(item.text, ensure_ascii=False)}")
    return 0


def _write_atomically(path: Path, text: str) -> None:
    """A temp file beside the target, then a rename: a failure never leaves half a file."""
    temp = path.with_name(f".{path.name}.tmp")
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def cmd_explain(args) -> int:
    from rmstudio.core.reward.explain import occlusion, prefix_rewards

    model = _load(args)
    if args.method == "prefix":
        result = prefix_rewards(model, args.prompt, args.response)
        items, reward = list(zip(result.tokens, result.contributions)), result.reward
        how = ("prefix: the change in the reward read after each token"
               + ("; the text was truncated, later tokens are not read" if result.truncated else ""))
    else:
        words = len(args.response.split())
        bar = TqdmSink("occluding", "words", words)
        try:
            result = occlusion(model, args.prompt, args.response, sink=bar)
        finally:
            bar.close()
        items, reward = list(zip(result.words, result.contributions)), result.reward
        how = "occlusion: the reward minus the reward without that word"
    if args.json:
        print(json.dumps({"reward": reward, "method": args.method,
                          "items": [{"text": t, "contribution": c} for t, c in items]}, ensure_ascii=False))
        return 0
    print(f"reward {reward:.6f} ({how})")
    for text, contribution in items:
        print(f"{contribution:+.6f}  {text!r}")
    return 0


def add_parsers(sub) -> None:
    """Add `score`, `explain` and `diagnose` to the `rmstudio` command's subparsers."""
    def common(p):
        p.add_argument("model", help="a reward model folder rmstudio saved (instant or fine-tuned)")
        p.add_argument("--normalized", action="store_true",
                       help="(reward - mean) / std with the training rewards' statistics the folder stores")
        p.add_argument("--device", choices=["cpu", "cuda", "mps"], help="default: the best available")

    p = sub.add_parser("score", help="score responses with a saved reward model")
    common(p)
    p.add_argument("--prompt", help="the prompt (with --response)")
    p.add_argument("--response", help="the response to score; prints its reward")
    p.add_argument("--file", help="score a file of prompt/response or prompt/chosen/rejected rows "
                   "(JSONL, JSON, CSV, Parquet, .gz); adds reward (or reward_chosen / reward_rejected)")
    p.add_argument("--out", help="write the scored rows here as JSONL (default: stdout)")
    p.add_argument("--best-of", type=int, metavar="N",
                   help="with --prompt: sample N responses (1 to 16) with --policy, score them and print "
                   "them ranked, best first: rank, reward and the response as a JSON string per line")
    p.add_argument("--policy", metavar="MODEL",
                   help="the model that writes the --best-of responses: a model folder, a .gguf file, "
                   "a hub id (org/name) or 'embedded' (default: the embedded SmolLM2)")
    p.add_argument("--seed", type=int, default=0, help="seeds the --best-of sampling (default: 0)")
    p.add_argument("--max-new-tokens", type=int, default=128,
                   help="most tokens per --best-of response (default: 128)")
    p.set_defaults(func=reports_bad_input(cmd_score))

    p = sub.add_parser("explain", help="which tokens or words move a response's reward")
    common(p)
    p.add_argument("--prompt", required=True, help="the prompt the response answers")
    p.add_argument("--response", required=True, help="the response whose reward is explained")
    p.add_argument("--method", choices=["prefix", "occlusion"], default="prefix",
                   help="prefix: each token's change in the reward read so far (one forward pass; "
                   "default: prefix); occlusion: the reward lost when each word is left out")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=reports_bad_input(cmd_explain))

    from rmstudio.cli_diagnose import add_parser as add_diagnose_parser

    add_diagnose_parser(sub)


def main(argv: list[str] | None = None) -> int:
    """Run `score` or `explain` on their own (cli.py adds them to `rmstudio` via add_parsers)."""
    return run_alone(add_parsers, argv)

if __name__ == "__main__":
    sys.exit(main())
