"""`rmstudio train-rm`: train a reward model on a project's labels from the shell, print how it
did on the validation split (and on a test file when given), and copy the model out.

The parser lives in cli_args.py (its finetune defaults come from the core's config); this is
what the command does once the line is parsed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rmstudio.cli_progress import TqdmSink, TrainProgress


def cmd_train_rm(args) -> int:
    import shutil

    from rmstudio.core.reward.train import RewardTrainConfig, train_reward_model

    finetune = {k: v for k, v in {"epochs": args.epochs, "learning_rate": args.lr,
                                  "batch_size": args.batch_size, "max_length": args.max_length,
                                  "overlong": args.overlong, "head_init": args.head_init,
                                  "keep_best": False if args.export_last else None,
                                  "distill_weight": args.distill, "average_last": args.average_last,
                                  "bf16": False if args.no_bf16 else None}.items()
                if v is not None}
    if args.watch_test and not args.test_file:
        print("rmstudio: error: --watch-test needs --test-file", file=sys.stderr)
        return 2
    try:
        config = RewardTrainConfig(method=args.method, objective=args.objective, base=args.base,
                                   val_fraction=args.val_fraction, cross_validation=args.cross_validation,
                                   seed=args.seed, annotators=args.annotator, device=args.device,
                                   finetune=finetune if args.method != "instant" else {},
                                   monitor_file=args.test_file if args.watch_test else None)
    except ValueError as exc:
        print(f"rmstudio: error: {exc}", file=sys.stderr)
        return 2
    test_pairs = None
    if args.test_file:  # read now: a bad test file fails before training, not after it
        from rmstudio.core.reward.data import pairs_from_file

        test_pairs = pairs_from_file(args.test_file)
        if not test_pairs:
            print(f"rmstudio: error: {args.test_file} holds no labeled pairs to test on", file=sys.stderr)
            return 2
    from rmstudio.core.reward.ranks import current

    if not current(cpu=args.device == "cpu").is_main:
        # `accelerate launch --num_processes N`: the other ranks train with rank 0, which alone
        # opens the project for writing, records the run and prints (train_reward_model)
        train_reward_model(args.project, config)
        return 0  # a failure all ranks share is rank 0's to report (and its exit status)
    progress = TrainProgress()
    try:
        result = train_reward_model(args.project, config, sink=progress)
    finally:
        progress.close()
    metrics = result.get("metrics", {})
    evaluation = result.get("evaluation") or {}
    cross_validation = result.get("cross_validation")
    if cross_validation:
        print(f"{result['status']}: run {result['run_id']}, {result.get('train_pairs', '?')} pairs, "
              f"{cross_validation['folds']}-fold cross-validation by prompt, {result['seconds']:.1f} s")
    else:
        print(f"{result['status']}: run {result['run_id']}, {result.get('train_pairs', '?')} train / "
              f"{result.get('val_pairs', '?')} validation pairs, {result['seconds']:.1f} s")
    if result.get("validation_warning"):
        print(f"rmstudio: warning: {result['validation_warning']}", file=sys.stderr)
    if cross_validation:
        from rmstudio.core.reward.cross_validation import describe

        folds = ", ".join(f"{f['accuracy']:.2f}" for f in cross_validation["per_fold"])
        print(f"{describe(cross_validation)}; per fold {folds}; out-of-fold accuracy "
              f"{evaluation.get('accuracy', float('nan')):.3f} on {evaluation.get('pairs', 0)} pairs "
              f"(prefer-longer baseline {evaluation.get('baseline_longer', float('nan')):.3f}); "
              f"the saved model is fitted on all {result.get('train_pairs', '?')} pairs")
    elif evaluation.get("responses"):  # the regression objective
        print(f"validation RMSE {evaluation['rmse']:.3f} on {evaluation['responses']} rated responses, "
              f"Pearson {evaluation['pearson'] if evaluation['pearson'] is not None else float('nan'):.3f}"
              + (f", accuracy {evaluation['accuracy']:.3f} on the {evaluation['pairs']} pairs "
                 "the ratings imply" if evaluation.get("pairs") else ""))
    elif evaluation.get("pairs"):
        print(f"validation accuracy {evaluation['accuracy']:.3f} (prefer-longer baseline "
              f"{evaluation['baseline_longer']:.3f}), ECE {evaluation['ece']:.3f}")
    elif "val/accuracy" in metrics:
        print(f"validation accuracy {metrics['val/accuracy']:.3f}")
    if args.out and result.get("model_dir"):
        out = Path(args.out)
        if out.exists() and any(out.iterdir()):
            print(f"rmstudio: error: {out} exists and is not empty; the model stays in "
                  f"{result['model_dir']}", file=sys.stderr)
            return 1
        shutil.copytree(result["model_dir"], out, dirs_exist_ok=True)
        print(f"model written to {out}")
    if test_pairs and result.get("model_dir"):
        from rmstudio.core.reward.evaluate import evaluate_pairs
        from rmstudio.core.reward.scoring import load_reward_model

        pairs = test_pairs
        scorer = load_reward_model(result["model_dir"], device=args.device)
        sink = TqdmSink("testing", "texts", total=2 * len(pairs))
        try:
            r_c, r_r = scorer.score_pairs(pairs, sink)
        finally:
            sink.close()
        report = evaluate_pairs(pairs, r_c, r_r)
        print(f"test file {args.test_file}: accuracy {report['accuracy']:.3f} on {report['pairs']} pairs "
              f"(prefer-longer {report['baseline_longer']:.3f}), ECE {report['ece']:.3f}")
    return 0 if result["status"] == "finished" else 1
