"""Label page HTML: an unclosed ** stays literal; the difference view keeps the markdown and
marks nothing on responses that have little in common."""

from __future__ import annotations

import re

from rmstudio.gui.label_diff import MIN_SHARED, diff_view
from rmstudio.gui.label_render import markdown_html

MARK = "background-color"


def marked(html: str) -> list[str]:
    return re.findall(r'<span style="background-color:[^"]*">([^<]*)</span>', html)


# -- an unclosed ** ---------------------------------------------------------------------

def test_an_unclosed_double_star_stays_literal_instead_of_bolding_the_rest():
    text = "The **key idea\nis this.\nMore text here and 2**3 = 8\n\nLast paragraph."
    html = markdown_html(text)
    assert "<strong>" not in html
    assert "**key idea" in html and "2**3" in html


def test_closed_bold_still_renders_next_to_an_unclosed_one():
    html = markdown_html("**Title:** text and **open\n\n**a **b** c and `x**y`")
    assert html.count("<strong>") == 2
    assert "<strong>Title:</strong>" in html and "<strong>b</strong>" in html
    assert "**open" in html and "**a" in html and "<code>x**y</code>" in html


def test_double_stars_in_code_blocks_are_left_alone():
    html = markdown_html("```\nx = 2**3\n```\n\n**bold** and ***both***")
    assert "x = 2**3" in html and "\\*" not in html
    assert "<strong>bold</strong>" in html and "<strong><em>both</em></strong>" in html


# -- the difference view ----------------------------------------------------------------

def test_similar_responses_mark_only_the_changed_words_and_keep_markdown():
    left = "# Steps\n\n1. Preheat the **oven** to 180 degrees.\n2. Bake for `20` minutes.\n\nEnjoy!"
    right = "# Steps\n\n1. Preheat the **oven** to 200 degrees.\n2. Bake for `25` minutes.\n\nEnjoy!"
    view = diff_view(left, right, dark=False)
    assert view.note == "" and view.shared >= MIN_SHARED
    assert marked(view.left) == ["180", "20"] and marked(view.right) == ["200", "25"]
    for html in (view.left, view.right):  # the markdown is rendered, not shown as source
        assert "<h1>" in html and "<ol>" in html and "<strong>oven</strong>" in html
        assert "<code>" in html and "**" not in html and "white-space: pre-wrap" not in html


def test_unlike_responses_mark_nothing_and_say_why():
    left = "Paris is the capital of France, a city on the Seine known for its museums."
    right = "I cannot help with that request. Please ask me something else instead."
    view = diff_view(left, right, dark=True)
    assert view.shared < MIN_SHARED
    assert MARK not in view.left and MARK not in view.right
    assert "nothing is highlighted" in view.note and f"{view.shared:.0%}" in view.note
    assert "Paris is the capital" in view.left  # still shown, as markdown
    assert view.left.startswith("<p>")


def test_marks_never_break_lists_links_tables_or_code_fences():
    left = ("1. first item\n2. second item here\n\n[the docs](http://a.example/x) say so\n\n"
            "| col | val |\n|-----|-----|\n| a | 1 |\n\n```python\nprint('hello')\n```")
    right = ("1. first item\n2. second item there\n\n[the guide](http://b.example/y) say so\n\n"
             "| col | val |\n|-----|-----|\n| a | 2 |\n\n```python\nprint('howdy')\n```")
    view = diff_view(left, right, dark=False)
    assert view.note == ""
    html = view.right
    assert html.count("<li>") == 2 and "<table>" in html and "<pre><code" in html
    assert 'href="http://b.example/y"' in html  # no marker inside the address
    assert "guide" in marked(html) and "there" in marked(html) and "2" in marked(html)
    assert html.count("<span") == html.count("</span>")
    assert "\ue000" not in html and "\ue001" not in html
