"""`rmstudio COMMAND --help` explains every option and says what happens when it is left out."""

from __future__ import annotations

import argparse
import re

import pytest

from rmstudio.cli import build_parser

SUBPARSERS = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices


def _entries(help_text: str) -> dict[str, str]:
    """'--epochs EPOCHS' -> its help text, read from the printed help (the user's view)."""
    entries, current = {}, None
    for line in help_text.splitlines():
        start = re.match(r"^  (\S.*?)(?:\s{2,}(.*))?$", line)
        if start and not line.startswith("   "):
            current = start.group(1)
            entries[current] = start.group(2) or ""
        elif current and line.startswith("   "):
            entries[current] += " " + line.strip()
        else:
            current = None
    return {name: " ".join(text.split()) for name, text in entries.items()}


@pytest.mark.parametrize("command", sorted(SUBPARSERS))
def test_every_option_has_help_and_its_default(command):
    parser = SUBPARSERS[command]
    entries = _entries(parser.format_help())
    for action in parser._actions:
        shown = parser._get_formatter()._format_action_invocation(action)  # '--epochs EPOCHS'
        assert shown in entries, f"{command}: {shown} is missing from --help"
        text = entries[shown]
        assert text, f"{command} {shown}: no help text"
        has_default = action.default not in (None, argparse.SUPPRESS) and not isinstance(action.default, bool)
        if has_default and (action.option_strings or action.nargs == "?"):
            assert f"default: {action.default}" in text, (command, shown, text)


def test_train_rm_help_names_the_defaults_it_used_to_leave_out():
    text = " ".join(SUBPARSERS["train-rm"].format_help().split())
    for expected in ("(default: 0.1)", "seed for the train/validation split", "(default: 0)",
                     "passes over the training pairs (default: 1)", "1e-4 for lora, 3e-5 for full",
                     "pairs per forward pass (default: 8)", "(default: 384)", "(default: instant)"):
        assert expected in text
    assert "(default: None)" not in text and "(default: False)" not in text
