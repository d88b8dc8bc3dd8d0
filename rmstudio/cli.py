"""The `rmstudio` command: no subcommand opens the app, subcommands do the headless work."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rmstudio.cli_errors import run_reporting_errors
from rmstudio.cli_progress import TqdmSink
from rmstudio.cli_train import cmd_train_rm


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
    return run_reporting_errors(args)


if __name__ == "__main__":
    sys.exit(main())
