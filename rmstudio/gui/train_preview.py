"""What the Train page says will train: the split of the project's labels, in words.

Kept apart from the page so the wording (counts, warnings) is read and tested in one place.
"""

from __future__ import annotations

from html import escape

from rmstudio.gui.theme import colour


def preview_html(split: dict, left_out: dict, objective: str) -> str:
    """Rich text for ``split`` (``reward.train.split_preview``) and the labels training leaves
    out (``labeling.stats.labels_left_out_of_training``)."""
    s = split
    if objective == "regression":
        return (f"<b>{s['ratings']:,}</b> rated responses: the reward learns to predict the rating "
                f"(mean squared error on the rating, standardised on the training split)<br>"
                f"train <b>{s['train']:,}</b> responses from {s['prompts_train']:,} prompts<br>"
                f"validation <b>{s['val']:,}</b> responses from {s['prompts_val']:,} prompts"
                + _warning(s))
    if not s["pairs"]:
        text = "<b>No labeled pairs yet.</b> Label some pairs (A, B or tie) or import labeled data first."
    elif s.get("folds"):
        text = (f"<b>{s['pairs']:,}</b> labeled pairs ({s['ties']:,} ties) from "
                f"{s['prompts_train']:,} prompts<br>"
                f"cross-validated in <b>{s['folds']}</b> folds by prompt: each pair is scored once by a head "
                f"that never saw its prompt (the share would hold out too few pairs to measure)<br>"
                f"the saved model trains on all <b>{s['train']:,}</b> pairs")
    else:
        text = (f"<b>{s['pairs']:,}</b> labeled pairs ({s['ties']:,} ties)<br>"
                f"train <b>{s['train']:,}</b> pairs from {s['prompts_train']:,} prompts<br>"
                f"validation <b>{s['val']:,}</b> pairs from {s['prompts_val']:,} prompts")
        decided = s.get("val_decided", s["val"])
        if decided != s["val"]:  # accuracy counts preferences only: say so, or 4 here reads as 3 there
            text += f" ({decided:,} with a preference; ties count in the loss only)"
        text += _warning(s)
    return text + (f"<br><small>Left out: {left_out.get('both_bad', 0):,} both-bad and "
                   f"{left_out.get('skip', 0):,} skipped labels (no preference between the two). "
                   "Each annotator's label is one example.</small>")


def _warning(split: dict) -> str:
    """The split's warning (too few validation items to measure), in red, or nothing."""
    if not split.get("warning"):
        return ""
    warning = split["warning"][0].upper() + split["warning"][1:]
    return f"<br><span style='color:{colour('error')}'>{escape(warning)}.</span>"
