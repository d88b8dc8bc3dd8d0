"""The `rmstudio` command: no subcommand opens the app, subcommands do the headless work."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rmstudio.core.errors import RmstudioError


class TqdmSink:
    """A progress sink drawn as a tqdm bar on stderr (silent when stderr is not a terminal)."""

    def __init__(self, desc: str, unit: str, total: int | None = None):
        from tqdm import tqdm

        self.bar = tqdm(desc=desc, unit=unit, total=total, disable=None, dynamic_ncols=True)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.bar.update(step - self.bar.n)

    def should_stop(self) -> bool:
        return False

    def close(self) -> None:
        self.bar.close()


def cmd_new(args) -> int:
    from rmstudio.core.store.project import Project

    with Project.create(args.project) as project:
        print(f"created {project.path}")
    return 0


def cmd_import(args) -> int:
    from rmstudio.core.data.formats import Limits
    from rmstudio.core.data.importer import import_files
    from rmstudio.core.store.project import Project

    limits = Limits(max_line_bytes=args.max_record_mb * 2**20)
    with Project.open(args.project) as project:
        sink = TqdmSink("importing", "records")
        try:
            report = import_files(project, args.files, limits=limits, sink=sink)
        finally:
            sink.close()
        print(report.summary())
    return 0


def cmd_export(args) -> int:
    from rmstudio.core.data.exporter import export_project
    from rmstudio.core.store.project import Project

    with Project.open(args.project) as project:
        report = export_project(project, args.out, schema=args.schema, file_format=args.format,
                                annotator=args.annotator)
    print(report.summary())
    return 0


def cmd_stats(args) -> int:
    from rmstudio.core.store.project import Project
    from rmstudio.core.labeling.stats import format_stats, project_stats

    with Project.open(args.project) as project:
        stats = project_stats(project)
    print(json.dumps(stats.as_dict(), indent=2) if args.json else format_stats(stats))
    return 0


def cmd_generate(args) -> int:
    from rmstudio.core.models.collect import generate_pairs, prompts_without_pairs
    from rmstudio.core.models.generation import GenerationConfig
    from rmstudio.core.models.loading import pick_device
    from rmstudio.core.store.project import Project

    try:
        config = GenerationConfig(num_responses=args.num_responses, temperature=args.temperature,
                                  top_p=args.top_p, max_new_tokens=args.max_new_tokens, seed=args.seed,
                                  batch_size=args.batch_size)
    except ValueError as exc:
        print(f"rmstudio: error: {exc}", file=sys.stderr)
        return 2
    with Project.open(args.project) as project:
        if args.all_prompts:
            ids = [r[0] for r in project.conn.execute("SELECT id FROM prompts ORDER BY id")]
        else:
            ids = prompts_without_pairs(project)
    ids = ids[: args.limit] if args.limit else ids
    if not ids:
        print("nothing to do: every prompt already has pairs (use --all-prompts to add more)")
        return 0
    sink = TqdmSink("generating", "prompts", total=len(ids))
    try:
        result = generate_pairs(args.project, ids, model=args.model, config=config, model_b=args.model_b,
                                device=pick_device(args.device), sink=sink)
    finally:
        sink.close()
    print(f"{result['status']}: {result['prompts_done']}/{result['prompts']} prompts, "
          f"{result['comparisons']} new comparisons (run {result['run_id']})")
    return 0


class TrainProgress:
    """tqdm bars for reward training: feature extraction, then steps with the latest metrics."""

    def __init__(self):
        self.bar = None
        self.stage = None

    def log(self, step: int, metrics: dict) -> None:
        from tqdm import tqdm

        stage = metrics.get("stage", self.stage)
        if stage != self.stage and stage in ("features", "train"):
            self.close()
            total = metrics.get("total") or metrics.get("total_steps")
            self.bar = tqdm(desc="features" if stage == "features" else "training", total=total,
                            unit="texts" if stage == "features" else "steps", disable=None)
        self.stage = stage
        if self.bar is not None:
            done = metrics.get("done", step)
            self.bar.update(max(0, done - self.bar.n))
            shown = {k.split("/")[-1] if k.startswith("train/") else k: round(v, 3)
                     for k, v in metrics.items() if "/" in k and isinstance(v, float)}
            if shown:
                self.bar.set_postfix(shown, refresh=False)

    def should_stop(self) -> bool:
        return False

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


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
              + (f", accuracy {evaluation['accuracy']:.3f} on the {evaluation['pairs']} pairs the ratings imply"
                 if evaluation.get("pairs") else ""))
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


def cmd_backup(args) -> int:
    from rmstudio.core.store.project import Project

    with Project.open(args.project) as project:
        backup = project.backup("manual")
    print(f"backup written: {backup.path} ({backup.size / 1024:,.0f} KiB)")
    return 0


def cmd_restore(args) -> int:
    from rmstudio.core.store.backups import backup_dir, list_backups, newest_good_backup, restore_backup
    from rmstudio.core.store.schema import SCHEMA_VERSION

    project = Path(args.project)
    backups = list_backups(project)
    if args.backup is None and not args.latest:
        if not backups:
            print(f"no backups of {project} yet (`rmstudio backup {project}` makes one)")
            return 1
        print(f"backups of {project}, newest first:")
        for backup in backups:
            print(f"  {backup.describe()}")
        print(f"restore one with `rmstudio restore {project} FILE`, or the newest good one with --latest")
        return 0
    if args.latest:
        chosen = newest_good_backup(project)
        if chosen is None:
            print(f"rmstudio: error: no intact backup of {project} to restore", file=sys.stderr)
            return 1
        source = chosen.path
    else:
        source = Path(args.backup)
        if not source.exists() and (backup_dir(project) / args.backup).exists():
            source = backup_dir(project) / args.backup  # a name from the list
    kept = restore_backup(project, source, SCHEMA_VERSION)
    print(f"restored {project} from {source.name}")
    if kept != project:
        print(f"the file it replaced is kept as {kept}")
    return 0


def cmd_demo(args) -> int:
    from rmstudio.core.data.demo import HH_WARNING, demo_project_path

    if args.name == "hh-harmless":
        print(f"Content warning: {HH_WARNING}", file=sys.stderr)
    print(demo_project_path(args.name))
    return 0


def cmd_gui(args) -> int:
    from rmstudio.gui.app import run_app

    return run_app(project=args.project, demo=args.demo)


def build_parser() -> argparse.ArgumentParser:
    from rmstudio.cli_args import DEVICES, HelpWithDefaults, add_train_rm_parser

    parser = argparse.ArgumentParser(
        prog="rmstudio", formatter_class=HelpWithDefaults,
        description="Reward Model Studio: collect, label, train and score preference data locally. "
        "Run without a command to open the app.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, formatter_class=HelpWithDefaults)

    project_help = "the project file (.rmstudio may be left out)"
    p = add("gui", "open the app (the default)")
    p.add_argument("project", nargs="?", help="project file to open (default: the start page)")
    p.add_argument("--demo", choices=["everyday", "hh-harmless"],
                   help="open a ready demo project (created on first use)")
    p.set_defaults(func=cmd_gui)

    p = add("new", "create an empty project file")
    p.add_argument("project", help="path of the new project (.rmstudio is added if missing)")
    p.set_defaults(func=cmd_new)

    p = add("import", "import preference data (JSONL, JSON, CSV, Parquet, .gz)")
    p.add_argument("project", help=project_help)
    p.add_argument("files", nargs="+", metavar="FILE", help="data files, imported all or nothing")
    p.add_argument("--max-record-mb", type=int, default=32,
                   help="refuse records (lines) larger than this many MiB")
    p.set_defaults(func=cmd_import)

    p = add("export", "export labeled data for TRL / datasets")
    p.add_argument("project", help=project_help)
    p.add_argument("out", help="output file: .jsonl, .jsonl.gz, .json, .parquet or .csv")
    p.add_argument("--format", choices=["jsonl", "json", "parquet", "csv"],
                   help="file format (default: from the extension)")
    p.add_argument("--schema", choices=["explicit", "conversational", "labels"], default="explicit",
                   help="explicit: prompt/chosen/rejected text; conversational: message "
                   "lists; labels: every label of every annotator, as given")
    p.add_argument("--annotator", help="only this annotator's labels (default: every annotator's)")
    p.set_defaults(func=cmd_export)

    p = add("stats", "counts, label distribution and per-annotator numbers")
    p.add_argument("project", help=project_help)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_stats)

    p = add("generate", "sample response pairs for prompts with a local model")
    p.add_argument("project", help=project_help)
    p.add_argument("--model", default="embedded",
                   help="'embedded' (SmolLM2-135M-Instruct), a model folder, a .gguf file or a hub id")
    p.add_argument("--model-b", help="a second model for response B (default: --model writes both)")
    p.add_argument("--all-prompts", action="store_true",
                   help="generate for every prompt, not only those without pairs yet")
    p.add_argument("--limit", type=int, help="at most this many prompts (default: all of them)")
    p.add_argument("--num-responses", type=int, default=2, help="responses per prompt")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    p.add_argument("--top-p", type=float, default=0.95,
                   help="sample only from the likeliest tokens that make up this much probability")
    p.add_argument("--max-new-tokens", type=int, default=128, help="longest response, in tokens")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same responses)")
    p.add_argument("--batch-size", type=int, default=8, help="prompts generated together")
    p.add_argument("--device", choices=DEVICES, help="default: the best available")
    p.set_defaults(func=cmd_generate)

    add_train_rm_parser(sub, cmd_train_rm)

    p = add("backup", "write a backup of the project now (SQLite's online backup)")
    p.add_argument("project", help=project_help)
    p.set_defaults(func=cmd_backup)

    p = add("restore", "list a project's backups, or restore one over the project")
    p.add_argument("project", help="the project file")
    p.add_argument("backup", nargs="?", help="the backup file, a path or a name from the list "
                   "(default: list the backups)")
    p.add_argument("--latest", action="store_true", help="restore the newest backup that passes "
                   "its integrity check")
    p.set_defaults(func=cmd_restore)

    p = add("demo", "create a demo project if needed and print its path")
    p.add_argument("name", nargs="?", default="everyday", choices=["everyday", "hh-harmless"],
                   help="which demo")
    p.set_defaults(func=cmd_demo)
    from rmstudio.cli_score import add_parsers as add_score_parsers
    add_score_parsers(sub)
    from rmstudio.cli_optimize import add_parsers as add_optimize_parsers
    add_optimize_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["gui", *(argv if argv is not None else sys.argv[1:])])
    import os
    import sqlite3

    try:
        code = args.func(args)
        # Flush here, not at exit: a reader that went away (`rmstudio stats P | head -1`)
        # must raise below, where it is handled, not in the interpreter's final flush.
        if sys.stdout is not None:  # None under pythonw (the app started without a console)
            sys.stdout.flush()
        return code
    except RmstudioError as exc:
        print(f"rmstudio: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rmstudio: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader closed the pipe: stop quietly, as cat or grep do. Python flushes stdout
        # once more at exit and would then print "Exception ignored ... BrokenPipeError", so
        # point stdout at devnull first (the recipe in the `signal` module's docs).
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # stdout replaced by a non-file object
            pass
        # 141 = 128 + SIGPIPE, the status a shell reports for `seq 1e9 | head -1`'s seq: the
        # output was cut short, so not 0, yet under `set -o pipefail` scripts see exactly what
        # any other Unix tool gives them.
        return 141
    except OSError as exc:
        # A full disk, a read-only folder, a file that vanished: one line naming the file(s)
        # and the reason ("No space left on device"), not a traceback. BrokenPipeError is an
        # OSError too, so it must stay above.
        names = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
        where = f"{' -> '.join(names)}: " if names else ""
        reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
        print(f"rmstudio: error: {where}{reason}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        # The project database failed under us (disk full, locked, corrupt): name the project.
        project = getattr(args, "project", None)
        where = f"{project}: " if project else ""
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(f"rmstudio: error: {where}project database error: {reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
