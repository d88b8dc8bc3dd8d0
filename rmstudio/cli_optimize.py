"""`rmstudio optimize` and `rmstudio compare`: tune a policy against a reward model (GRPO, RLOO) or
the labels (DPO), then set it against the model it started from.

Kept apart from cli.py, as cli_score.py is: these commands carry their own input checks. Bad
input (an unknown run id, a missing folder, a method that does not exist, a setting out of range)
is one `rmstudio: error:` line and exit status 2, as argparse gives a bad command line, checked
before any model is loaded; a run that is cancelled or stops short exits 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rmstudio.cli_errors import reports_bad_input, run_alone
from rmstudio.cli_progress import CompareProgress, OptimizeProgress
from rmstudio.core.errors import RmstudioError

def resolve_reward(project_path: str, value: str | None) -> str:
    """``--reward`` as PolicyConfig.reward reads it: a reward run's id (its model folder), a
    folder, package.module:function, or 'live' (an instant model the run fits on the project's
    labels and keeps in its folder); left out, the project's newest reward model."""
    from rmstudio.core.policy.live_reward import LIVE
    from rmstudio.core.reward.catalog import reward_models
    from rmstudio.core.store.project import Project

    if value == LIVE:
        return LIVE
    if value and not value.isdigit():
        folder = Path(value).expanduser()
        if folder.is_dir():
            return str(folder.resolve())
        module, colon, function = value.partition(":")
        if colon and module and function and not any(c in module for c in "/\\"):
            return value  # module:function, checked when the run is prechecked
        raise RmstudioError(f"--reward {value}: no such reward model folder (give a reward run's id, "
                            "a folder or package.module:function)")
    with Project.open(project_path) as project:
        entries = reward_models(project)
    if value is None:
        if not entries:
            raise RmstudioError("the project has no reward model yet: train one (`rmstudio train-rm`) "
                                "or give --reward")
        return entries[0].path
    found = [e for e in entries if e.run_id == int(value)]
    if not found:
        have = ", ".join(str(e.run_id) for e in entries) or "none"
        raise RmstudioError(f"--reward {value}: no reward model from run {value} in this project "
                            f"(runs with one: {have})")
    return found[0].path


def _policy_config(args):
    from rmstudio.core.policy.config import ONLINE, PolicyConfig

    reward = ""
    if args.method in ONLINE:
        reward = resolve_reward(args.project, args.reward)
    elif args.reward:
        raise RmstudioError("--reward is for grpo and rloo: dpo learns from the labeled pairs directly")
    return PolicyConfig(method=args.method, policy=args.policy, reward=reward, lora=args.lora,
                        lora_rank=args.lora_rank, beta=args.beta, num_generations=args.num_generations,
                        max_completion_length=args.max_completion_length, learning_rate=args.learning_rate,
                        max_steps=args.max_steps, per_device_batch=args.batch, save_steps=args.save_steps,
                        held_out_fraction=args.held_out_fraction, seed=args.seed, device=args.device,
                        check_reward=args.check_reward or "", guard_every=args.guard_every,
                        resume=args.resume)


def _final(metrics: dict, *keys: str) -> str:
    return ", ".join(f"{name} {metrics[key]:.4g}" for key, name in keys if key in metrics)


def cmd_optimize(args) -> int:
    from rmstudio.core.policy.kind import POLICY
    from rmstudio.core.runs.launch import run_in_process
    from rmstudio.core.runs.recorder import ProjectRecorder

    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RmstudioError(f"--out {out} exists and is not an empty folder")  # before, not after, training
    config = _policy_config(args)
    progress = OptimizeProgress()
    recorder = ProjectRecorder(args.project, sink=progress)
    try:
        result = run_in_process(POLICY, args.project, config, recorder)
    finally:
        progress.close()
        recorder.close()
    metrics = result.get("metrics", {})
    print(f"{result['status']}: run {result['run_id']} ({config.method}), {result['steps']}/"
          f"{result['total_steps']} steps, {result['train_items']} train / {result['held_out_items']} "
          f"held-out items, {result['seconds']:.1f} s")
    final = _final(metrics, ("train/reward", "final reward"), ("train/kl", "KL"), ("train/loss", "loss"),
                   ("rewards/accuracies", "accuracy"), ("val/rewards/accuracies", "held-out accuracy"))
    if final:
        print(final)
    if result.get("warning"):
        print(f"warning: {result['warning']}")
    run_folder = Path(result["model_dir"]).parent if result.get("model_dir") else None
    if run_folder is None:
        print(f"no final model; the last checkpoint is {result.get('checkpoint') or 'none'} "
              "(--resume continues from it)")
        return 1
    form = "a LoRA adapter (--out merges it)" if config.lora else "the whole model"
    print(f"policy: {result['model_dir']} ({form})")
    if out is not None:
        from rmstudio.core.policy.export import export_policy

        export_policy(run_folder, out)
        print(f"exported to {out}; load it with AutoModelForCausalLM.from_pretrained({str(out)!r})")
    print(f"compare it with its start: rmstudio compare {args.project} --run {result['run_id']}")
    return 0 if result["status"] == "finished" else 1


def cmd_compare(args) -> int:
    from rmstudio.core.policy.compare import compare_policies, human_win_rate, send_comparisons_to_labeling
    from rmstudio.core.store.project import Project

    run = args.run if args.run.isdigit() else Path(args.run)
    if args.human:
        if not args.run.isdigit():
            raise RmstudioError("--human needs --run as a run id (the comparisons are named after it)")
        with Project.open(args.project) as project:
            verdict = human_win_rate(project, int(args.run))
        print(f"humans on run {args.run}: {verdict.labeled} of {verdict.comparisons} comparisons labeled "
              f"({verdict.both_bad} both-bad labels left out)")
        print(f"tuned policy's win rate: {verdict.win.describe()}")
        return 0
    from rmstudio.core.models.generation import GenerationConfig

    sampling = GenerationConfig(temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                                seed=args.seed)
    reward = resolve_reward(args.project, args.reward) if args.reward else None
    check = resolve_reward(args.project, args.check) if args.check else None
    bar = CompareProgress()
    try:
        comparison = compare_policies(args.project, run, n_prompts=args.prompts or None, sampling=sampling,
                                      reward=reward, check=check, sink=bar, device=args.device)
    finally:
        bar.close()
    print(f"{len(comparison.rows)} held-out prompts: '{comparison.start_name}' vs '{comparison.tuned_name}'")
    print(f"reward {comparison.reward_spec}: tuned wins {comparison.reward.describe()}")
    if comparison.check is not None:
        print(f"check {comparison.check_spec}: tuned wins {comparison.check.describe()}")
    print(f"rows written to {Path(comparison.run_folder) / 'comparison.json'}")
    if args.send:
        with Project.open(args.project) as project:
            sent = send_comparisons_to_labeling(project, comparison)
        print(f"sent {sent['sent']} comparisons to the label queue ({sent['added']} new, {sent['skipped']} "
              "skipped: equal or empty responses); after labeling them: "
              f"rmstudio compare {args.project} --run {args.run} --human")
    return 0


def add_parsers(sub) -> None:
    """Add `optimize` and `compare` to the `rmstudio` command's subparsers."""
    from rmstudio.cli_args import DEVICES, HelpWithDefaults
    from rmstudio.core.policy.compare import DEFAULT_PROMPTS
    from rmstudio.core.policy.config import DEVICES as POLICY_DEVICES, METHODS, PolicyConfig

    d = PolicyConfig(method="dpo")  # the defaults (dpo: the one method that needs no reward to be made)
    p = sub.add_parser("optimize", formatter_class=HelpWithDefaults,
                       help="tune a policy with GRPO, RLOO (against a reward) or DPO (on the labels)")
    p.add_argument("project", help="the project file (.rmstudio may be left out)")
    # not argparse choices: a wrong method is then one error line, not usage text
    p.add_argument("--method", default="grpo", help=f"one of {', '.join(METHODS)}: grpo and rloo sample "
                   "completions of the project's prompts and score them with --reward; dpo learns the "
                   "labeled pairs")
    p.add_argument("--reward", help="grpo/rloo: a reward run's id in this project, a reward model folder, "
                   "package.module:function, or 'live' (an instant model fitted now on the project's labels, "
                   "kept in the run folder) (default: the project's newest reward model)")
    p.add_argument("--check-reward", help="grpo/rloo: a second reward the policy never trains on, scored "
                   "by the over-optimisation guard (a folder or package.module:function), or 'auto': an "
                   "instant model fitted on the labels --reward did not train on")
    p.add_argument("--guard-every", type=int, default=d.guard_every,
                   help="grpo/rloo: evaluate the guard every this many steps (needs --check-reward; 0: off)")
    p.add_argument("--policy", default=d.policy,
                   help="the model to tune: 'embedded' (SmolLM2-135M-Instruct), a model folder, a .gguf "
                   "file or a hub id")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--lora", dest="lora", action="store_true", default=True,
                      help="train a LoRA adapter on every linear layer (the default)")
    form.add_argument("--full", dest="lora", action="store_false",
                      help="train all weights instead of a LoRA (default: a LoRA)")
    p.add_argument("--lora-rank", type=int, default=d.lora_rank, help="LoRA rank (alpha is twice it)")
    p.add_argument("--beta", type=float, default=d.beta,
                   help="KL coefficient holding the policy near its start (dpo: DPO's beta); 0 drops it")
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="optimizer steps in all")
    p.add_argument("--learning-rate", type=float, default=d.learning_rate, help="AdamW step size")
    p.add_argument("--batch", type=int, default=d.per_device_batch, help="completions (grpo/rloo: whole "
                   "groups of --num-generations) or labeled pairs (dpo) per step")
    p.add_argument("--num-generations", type=int, default=d.num_generations,
                   help="grpo/rloo: completions sampled per prompt")
    p.add_argument("--max-completion-length", type=int, default=d.max_completion_length,
                   help="most tokens of a sampled completion")
    p.add_argument("--save-steps", type=int, default=d.save_steps, help="checkpoint every this many steps")
    p.add_argument("--held-out-fraction", type=float, default=d.held_out_fraction,
                   help="share of prompts never trained on, kept for `rmstudio compare`")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="seed of the held-out split, sampling and training")
    p.add_argument("--device", choices=POLICY_DEVICES, default=d.device,
                   help="where to train: auto is CUDA when present, else the CPU")
    p.add_argument("--resume", action="store_true", help="continue the latest unfinished policy run from its "
                   "last checkpoint (default: start a new run)")
    p.add_argument("--out", help="also export the tuned policy (LoRA merged) to this new folder as a plain "
                   "Hugging Face model (default: it stays in the run folder)")
    p.set_defaults(func=reports_bad_input(cmd_optimize, also=(ValueError,)))

    p = sub.add_parser("compare", help="a policy run's tuned model against its start on held-out prompts",
                       formatter_class=HelpWithDefaults)
    p.add_argument("project", help="the project file (.rmstudio may be left out)")
    p.add_argument("--run", required=True, help="the policy run: its id, or its folder")
    p.add_argument("--prompts", type=int, default=DEFAULT_PROMPTS,
                   help="compare on the first this many held-out prompts; 0 for all of them")
    p.add_argument("--reward", help="score with this reward (a reward run's id, a folder or module:function; "
                   "default: the one the run optimised, for dpo the newest reward model)")
    p.add_argument("--check", help="also score with a second reward the run never saw (default: none)")
    p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature")
    p.add_argument("--max-new-tokens", type=int, default=128, help="longest response, in tokens")
    p.add_argument("--seed", type=int, default=0, help="sampling seed; each prompt gets the same seed "
                   "for both policies")
    p.add_argument("--device", choices=DEVICES, help="default: the best available")
    p.add_argument("--send", action="store_true", help="add the pairs to the label queue, named "
                   "'policy start' and 'policy run N step S' (default: only print the win rates)")
    p.add_argument("--human", action="store_true", help="print the win rate in the labels people gave "
                   "those pairs instead of sampling (default: sample and score)")
    p.set_defaults(func=reports_bad_input(cmd_compare, also=(ValueError,)))


def main(argv: list[str] | None = None) -> int:
    """Run `optimize` or `compare` on their own (cli.py adds them to `rmstudio` via add_parsers)."""
    return run_alone(add_parsers, argv)

if __name__ == "__main__":
    sys.exit(main())
