"""Argument definitions the `rmstudio` command shares: a help formatter that shows defaults, and
the train-rm subcommand's options (the longest list, kept out of cli.py so that file stays short).

Every option has a help text that says what it does and what happens when it is left out; the
formatter appends "(default: X)" wherever a real default exists and the text does not say it.
"""

from __future__ import annotations

import argparse

from rmstudio.core.reward.finetune_config import DEFAULT_AVERAGE_LAST, DEFAULT_LR, FinetuneConfig

DEVICES = ["cpu", "cuda", "mps"]


class HelpWithDefaults(argparse.HelpFormatter):
    """argparse's ArgumentDefaultsHelpFormatter without its noise: no "(default: None)" or
    "(default: False)" for options whose default is "not given" (their help says what that
    means), and nothing added to a help that already names its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        optional = action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE)
        unset = action.default is None or action.default is False  # `is`: 0 == False
        if not optional or unset or "default" in text or action.default == argparse.SUPPRESS:
            return text
        return f"{text} (default: %(default)s)"


def add_train_rm_parser(sub, func) -> argparse.ArgumentParser:
    """The `train-rm` subcommand; lora/full-only defaults come from FinetuneConfig."""
    ft = FinetuneConfig()
    p = sub.add_parser("train-rm", help="train a reward model on the project's labels",
                       formatter_class=HelpWithDefaults)
    p.add_argument("project", help="the project file (.rmstudio may be left out)")
    p.add_argument("--method", choices=["instant", "lora", "full"], default="instant",
                   help="instant: a head on frozen features (seconds once features are cached); "
                   "lora / full: fine-tune a sequence-classification reward model")
    p.add_argument("--objective", choices=["pairwise", "regression"], default="pairwise",
                   help="pairwise: Bradley-Terry on preference labels; regression: MSE on "
                        "ratings (rankings imported with ratings or scores)")
    p.add_argument("--base", default="embedded", help="backbone: 'embedded', a folder or a .gguf")
    p.add_argument("--out", help="also write the trained model to this folder (default: it is "
                   "kept only in the project's runs folder)")
    p.add_argument("--test-file", help="evaluate the trained model on this labeled preference file "
                   "(default: no test)")
    p.add_argument("--watch-test", action="store_true",
                   help="lora/full: also score the test file at every validation (test/accuracy "
                        "curve); it chooses nothing")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of the prompts held out for validation (no prompt is in both splits)")
    p.add_argument("--cross-validation", choices=["auto", "off"], default="auto",
                   help="auto: an instant run whose validation share would hold out fewer than 30 pairs "
                        "cross-validates by prompt instead (5 folds, fewer with fewer prompts; the mean "
                        "and spread over the folds are reported, the saved model trains on every pair); "
                        "off: always the held-out share. LoRA/full always use the share")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for the train/validation split, the data order and the score head")
    p.add_argument("--annotator", action="append",
                   help="only these annotators' labels (repeatable; default: every annotator's)")
    p.add_argument("--device", choices=DEVICES, help="default: the best available")
    p.add_argument("--epochs", type=int,
                   help=f"lora/full: passes over the training pairs (default: {ft.epochs})")
    lr = ", ".join(f"{v:.0e} for {k}".replace("e-0", "e-") for k, v in DEFAULT_LR.items())
    p.add_argument("--lr", type=float, help=f"lora/full: peak learning rate (default: {lr})")
    p.add_argument("--batch-size", type=int,
                   help=f"lora/full: pairs per forward pass (default: {ft.batch_size})")
    p.add_argument("--max-length", type=int, help="lora/full: most tokens of prompt + response in "
                   f"one sequence (default: {ft.max_length})")
    p.add_argument("--overlong", choices=["truncate", "skip"],
                   help="lora/full: a longer pair keeps the end of its prompt and the start of its "
                   f"response (truncate) or is left out (skip) (default: {ft.overlong})")
    p.add_argument("--head-init", choices=["probe", "random"],
                   help=f"score head start: a linear probe on frozen features or random "
                        f"(default: {ft.head_init})")
    p.add_argument("--distill", type=float, metavar="W",
                   help="learn from the instant model too: each target = (1-W) * label + W * the "
                        "instant model's P(chosen better), fitted on the same split first (0-1; "
                        f"default: {ft.distill_weight:g})")
    average = ", ".join(f"{v:g} for {k}" for k, v in DEFAULT_AVERAGE_LAST.items())
    p.add_argument("--average-last", type=float, metavar="F",
                   help="export the mean of the weights over the last share F of the steps "
                        f"(0.5 = the second half; 0 = off; default: {average})")
    p.add_argument("--no-bf16", action="store_true",
                   help="lora/full: train in float32 even where bf16 autocast is fast (by default bf16 "
                        "is used on CUDA with bf16 and on CPUs with AMX or AVX512-BF16)")
    p.add_argument("--export-last", action="store_true",
                   help="export the last step's weights even when an earlier validation was clearly better")
    p.set_defaults(func=func)
    return p
