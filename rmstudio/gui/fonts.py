"""Emoji in prompts and responses: the installed colour emoji font is made the app's emoji
fallback. Without any emoji font, Qt draws emoji as empty boxes (a bare Linux desktop often
lacks one; the README names the package, fonts-noto-color-emoji).

Why Qt's emoji list and not the app font's family list: appending the emoji font to the app
font's families (["Sans Serif", "Noto Color Emoji"]) made Qt take digits, '#', '*' and spaces
from the emoji font too ("Sans Serif" is an alias, not a family in that list), so all text
spread out. The emoji list (Qt 6.9+) is used for emoji only, and for whole sequences (flags,
skin tones), where a text font with a few monochrome emoji of its own (DejaVu) would split them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from PySide6.QtGui import QFontDatabase

# Best first: colour fonts of each platform, then monochrome ones that still beat a box.
EMOJI_FAMILIES = ("Noto Color Emoji", "Apple Color Emoji", "Segoe UI Emoji", "Twemoji",
                  "Twitter Color Emoji", "JoyPixels", "EmojiOne Color", "OpenMoji Color",
                  "Noto Emoji", "Segoe UI Symbol", "Symbola")
INSTALL_HINT = "emoji show as boxes: install an emoji font (Debian/Ubuntu: fonts-noto-color-emoji)"


def emoji_family(available: Iterable[str]) -> str | None:
    """The best emoji font among the installed ``available`` families, as installed spelled."""
    by_name = {name.casefold(): name for name in available}
    return next((by_name[f.casefold()] for f in EMOJI_FAMILIES if f.casefold() in by_name), None)


def install_emoji_fallback(available: Iterable[str] | None = None) -> str | None:
    """Make the best installed emoji font Qt's emoji fallback (after QApplication exists);
    returns its family, or None when no emoji font is installed (logged, with the package)."""
    family = emoji_family(QFontDatabase.families() if available is None else available)
    if family is None:
        logging.getLogger("rmstudio").info(INSTALL_HINT)
        return None
    # Before Qt 6.9 there is no emoji list: the system's font fallback (fontconfig) still finds
    # an installed emoji font for characters the text font lacks.
    if hasattr(QFontDatabase, "addApplicationEmojiFontFamily") and \
            family not in QFontDatabase.applicationEmojiFontFamilies():
        QFontDatabase.addApplicationEmojiFontFamily(family)
    return family
