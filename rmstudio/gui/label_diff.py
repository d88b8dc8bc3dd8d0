"""The Label page's "Highlight differences" view: both responses rendered as markdown, as they
are without it, with the words that differ between them marked.

Words are compared, not characters or layout. When the two responses share less than half
their words, nearly every word would be marked and the marks say nothing, so none are shown
and the view says why instead.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from rmstudio.gui.label_render import markdown_html
from rmstudio.gui.theme import ROLE_COLOURS

MIN_SHARED = 0.5  # below this share of words in common, mark nothing
# Markers (Unicode private use) put around changed words in the markdown source; they pass
# through markdown untouched and become <span>s in the HTML it makes.
START, END = "\ue000", "\ue001"
_WORD = re.compile(r"\S+")
# What gets marked inside a changed word: runs without markdown syntax, so a marker never
# splits "**", "`", "[...](...)", a table rule or a list bullet, and the markdown reads the same.
_PLAIN_RUN = re.compile(r"[^\s*_`\[\]()<>!#|~\\&=:+\-]+")
_LIST_MARKER = re.compile(r"\d+[.)]")  # "1." starting a line: marking it would undo the list
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_TAG = re.compile(r"(<[^>]*>)")
_GAP = re.compile(END + r"([ \t]+)" + START)


@dataclass
class DiffView:
    left: str
    right: str
    shared: float  # share of words the two have in common, 0-1
    note: str  # why nothing is marked, or ""


def diff_colors(dark: bool) -> tuple[str, str]:
    """(background, text) for changed words: explicit both, so it reads on either palette."""
    side = 1 if dark else 0
    return ROLE_COLOURS["diff_background"][side], ROLE_COLOURS["diff_text"][side]


def diff_view(left: str, right: str, dark: bool) -> DiffView:
    words_a, words_b = list(_WORD.finditer(left)), list(_WORD.finditer(right))
    matcher = difflib.SequenceMatcher(None, [w.group() for w in words_a],
                                      [w.group() for w in words_b], autojunk=False)
    shared = matcher.ratio() if words_a or words_b else 1.0
    changed_a: set[int] = set()
    changed_b: set[int] = set()
    note = ""
    if shared < MIN_SHARED:
        note = (f"These responses share only {shared:.0%} of their words, so nothing is "
                "highlighted: compare them as a whole.")
    else:
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag != "equal":
                changed_a.update(range(i1, i2))
                changed_b.update(range(j1, j2))
    background, foreground = diff_colors(dark)
    span = f'<span style="background-color:{background}; color:{foreground};">'
    return DiffView(_render(left, words_a, changed_a, span), _render(right, words_b, changed_b, span),
                    shared, note)


def _render(text: str, words: list[re.Match], changed: set[int], span: str) -> str:
    return _marks_to_spans(markdown_html(_with_markers(text, words, changed)), span)


def _with_markers(text: str, words: list[re.Match], changed: set[int]) -> str:
    out, done = [], 0
    for index in sorted(changed):
        word = words[index]
        line_start = text.rfind("\n", 0, word.start()) + 1
        line_end = text.find("\n", word.end())
        line = text[line_start: len(text) if line_end < 0 else line_end]
        if _FENCE.match(line):
            continue  # "```python": a marker would end the fence's language and the code block
        if not text[line_start:word.start()].strip() and _LIST_MARKER.fullmatch(word.group()):
            continue
        out.append(text[done:word.start()])
        out.append(_PLAIN_RUN.sub(lambda m: START + m.group() + END, word.group()))
        done = word.end()
    out.append(text[done:])
    # Changed words next to each other on a line read as one mark, spaces between them included.
    return _GAP.sub(r"\1", "".join(out))


def _marks_to_spans(html_text: str, span: str) -> str:
    """Markers in text become spans; one that markdown put inside a tag (a link's address) is
    dropped, with its partner, so no span is left open."""
    parts = _TAG.split(html_text)
    for i, part in enumerate(parts):
        if i % 2:  # a tag
            parts[i] = part.replace(START, "").replace(END, "")
        else:
            parts[i] = _balanced(part).replace(START, span).replace(END, "</span>")
    return "".join(parts)


def _balanced(text: str) -> str:
    """Drop a marker whose partner is not in the same piece of text (the other one was in a tag)."""
    out, open_at = [], None
    for ch in text:
        if ch == START:
            if open_at is not None:
                out[open_at] = ""
            open_at = len(out)
        elif ch == END:
            if open_at is None:
                continue
            open_at = None
        out.append(ch)
    if open_at is not None:
        out[open_at] = ""
    return "".join(out)
