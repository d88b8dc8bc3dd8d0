"""HTML for the Label page: markdown for prompts and responses, turns with role headers, and
a word-level difference view. Plain functions of text (the page only sets the HTML)."""

from __future__ import annotations

import difflib
import html
import re

import markdown

from rmstudio.core.data.records import Text

ROLE_TITLES = {"user": "User", "assistant": "Assistant", "system": "System", "tool": "Tool"}
_TOKENS = re.compile(r"\s+|[^\s]+")
# Anthropic HH-style flat dialogues: "\n\nHuman: ...\n\nAssistant: ..."
_HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}


def _markdown() -> markdown.Markdown:
    md = markdown.Markdown(extensions=["fenced_code", "tables", "sane_lists"])
    # Raw HTML in a response is shown as text, not rendered: the annotator must see what the
    # model wrote (a "<b>" included), and nothing in the data may restyle the page.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md


_MD = _markdown()


def markdown_html(text: str) -> str:
    _MD.reset()
    return _MD.convert(text)


def _role_header(role: str, color: str) -> str:
    title = ROLE_TITLES.get(role, role.title())
    return (f'<p style="margin-top:10px; margin-bottom:2px; font-weight:600; color:{color};">'
            f"{html.escape(title)}</p>")


def text_html(text: Text, role_color: str, turns: bool) -> str:
    """A prompt or response as HTML: a conversation as turns with role headers (``turns``, or
    any response with more than one message), otherwise the markdown of its flat text."""
    messages = text.messages
    if messages and (turns or len(messages) > 1):
        return "".join(_role_header(m.role, role_color) + markdown_html(m.content) for m in messages)
    if messages and len(messages) == 1:
        return markdown_html(messages[0].content)
    if turns:
        parts = _HH_TURN.split(text.text)
        if len(parts) >= 3 and not parts[0].strip():
            pairs = zip(parts[1::2], parts[2::2])
            return "".join(_role_header(_HH_ROLES[who], role_color)
                           + (markdown_html(said) if said.strip() else "<p><i>(to answer)</i></p>")
                           for who, said in pairs)
    return markdown_html(text.text)


def diff_colors(dark: bool) -> tuple[str, str]:
    """(background, text) for changed words: explicit both, so it reads on either palette."""
    return ("#6b4f00", "#ffffff") if dark else ("#ffe08a", "#000000")


def diff_html(left: str, right: str, dark: bool) -> tuple[str, str]:
    """Both texts as pre-wrapped HTML with the words that differ between them marked."""
    a, b = _TOKENS.findall(left), _TOKENS.findall(right)
    background, foreground = diff_colors(dark)
    mark = f'<span style="background-color:{background}; color:{foreground};">{{}}</span>'
    out_a, out_b = [], []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for tokens, start, end, out in ((a, i1, i2, out_a), (b, j1, j2, out_b)):
            run = "".join(tokens[start:end])
            core = run.strip()
            if tag == "equal" or not core:
                out.append(html.escape(run))
                continue
            # One mark per changed run (spaces inside it included), spaces around it outside.
            lead, trail = run[: len(run) - len(run.lstrip())], run[len(run.rstrip()):]
            out.append(html.escape(lead) + mark.format(html.escape(core)) + html.escape(trail))
    wrap = '<div style="white-space: pre-wrap;">{}</div>'
    return wrap.format("".join(out_a)), wrap.format("".join(out_b))


def flat_response(text: Text) -> str:
    """The words a response says (assistant turns joined), for the difference view."""
    if text.messages:
        return "\n\n".join(m.content for m in text.messages)
    return text.text
