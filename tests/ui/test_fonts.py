"""Emoji fall back to an installed emoji font instead of showing as boxes."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QFontDatabase

from rmstudio.gui.fonts import emoji_family, install_emoji_fallback


def test_the_best_installed_emoji_font_is_chosen():
    assert emoji_family(["DejaVu Sans", "Noto Emoji", "noto color emoji"]) == "noto color emoji"
    assert emoji_family(["DejaVu Sans", "Symbola"]) == "Symbola"
    assert emoji_family(["DejaVu Sans", "Liberation Serif"]) is None


@pytest.fixture
def emoji_list(qapp):
    saved = QFontDatabase.applicationEmojiFontFamilies()
    yield
    QFontDatabase.setApplicationEmojiFontFamilies(saved)


def test_an_installed_emoji_font_becomes_the_emoji_fallback(emoji_list, qapp):
    font = qapp.font()
    assert install_emoji_fallback(["DejaVu Sans", "Noto Color Emoji"]) == "Noto Color Emoji"
    assert "Noto Color Emoji" in QFontDatabase.applicationEmojiFontFamilies()
    assert qapp.font() == font  # text keeps its font: digits and spaces must not come from emoji


def test_without_an_emoji_font_the_log_names_the_package(emoji_list, caplog):
    before = QFontDatabase.applicationEmojiFontFamilies()
    with caplog.at_level("INFO", logger="rmstudio"):
        assert install_emoji_fallback(["DejaVu Sans"]) is None
    assert QFontDatabase.applicationEmojiFontFamilies() == before
    assert "fonts-noto-color-emoji" in caplog.text
