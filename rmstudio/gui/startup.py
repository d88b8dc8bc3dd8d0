"""What the app sets up before and around its window: a platform check that explains a missing
system library, the log file, the handler for uncaught exceptions, and the window icon.

Qt's xcb plugin (the X11 one, and XWayland's) loads a dozen system libraries when QApplication
starts; a missing one aborts the process with a long message that never names the package to
install. ``platform_problem`` looks for them first and says it in one line.
"""

from __future__ import annotations

import ctypes.util
import logging
import logging.handlers
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from rmstudio.core.paths import log_file

log = logging.getLogger("rmstudio")

# (name for ctypes.util.find_library, the Debian/Ubuntu package that has it): what Qt 6's
# libqxcb.so links beyond X11 itself (ldd on PySide6/Qt/plugins/platforms/libqxcb.so).
XCB_LIBRARIES = [
    ("xcb-cursor", "libxcb-cursor0"),
    ("xkbcommon-x11", "libxkbcommon-x11-0"),
    ("xcb-icccm", "libxcb-icccm4"),
    ("xcb-keysyms", "libxcb-keysyms1"),
    ("xcb-image", "libxcb-image0"),
    ("xcb-render-util", "libxcb-render-util0"),
    ("xcb-shape", "libxcb-shape0"),
    ("xcb-randr", "libxcb-randr0"),
    ("xcb-xkb", "libxcb-xkb1"),
    ("X11-xcb", "libx11-xcb1"),
    ("xcb", "libxcb1"),
    ("xkbcommon", "libxkbcommon0"),
]


def missing_xcb_packages(find: Callable[[str], str | None] | None = None) -> list[str]:
    """The apt packages whose library Qt's xcb plugin needs and this system lacks."""
    find = find or ctypes.util.find_library
    return [package for name, package in XCB_LIBRARIES if not find(name)]


def platform_problem(environ=None, platform: str | None = None,
                     find: Callable[[str], str | None] | None = None) -> str | None:
    """One line saying why Qt cannot start its window here, or None (then start it).

    Only on Linux when QT_QPA_PLATFORM is unset: Qt then picks xcb (X11), except in a Wayland
    session, where it picks wayland and needs none of these."""
    environ = os.environ if environ is None else environ
    platform = platform or sys.platform
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return None
    if environ.get("WAYLAND_DISPLAY") and environ.get("XDG_SESSION_TYPE") == "wayland":
        return None
    missing = missing_xcb_packages(find)
    if not missing:
        return None
    return (f"rmstudio: Qt's X11 (xcb) plugin needs system libraries that are missing; install them with "
            f"`sudo apt install {' '.join(missing)}`, or run with QT_QPA_PLATFORM=wayland on a Wayland "
            f"desktop or QT_QPA_PLATFORM=offscreen without a screen.")


def configure_logging(level: int = logging.INFO) -> Path:
    """Log the 'rmstudio' logger (and warnings) to the rotated log file; returns its path."""
    path = log_file()
    root = logging.getLogger()
    if not any(getattr(h, "rmstudio_log", False) for h in root.handlers):
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3,
                                                       encoding="utf-8")
        handler.rmstudio_log = True
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(level)
        root.addHandler(handler)
        if root.level == logging.NOTSET or root.level > level:
            root.setLevel(level)
        logging.captureWarnings(True)
    return path


def one_line(exc: BaseException) -> str:
    """'ValueError: the message's first line' (what the message box shows)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def handle_uncaught(exc_type, exc, tb, parent=None, show: Callable | None = None) -> None:
    """Log an exception nothing caught, with its traceback, and tell the user in one line.

    The app keeps running: Qt calls slots from its event loop, so an exception in one ends only
    that slot, and the user should know it happened rather than see a button do nothing."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    log.error("uncaught exception:\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))
    message = f"{one_line(exc)}\n\nThe details are in the log: Help → Open log file ({log_file()})."
    if show is None:
        from PySide6.QtWidgets import QMessageBox

        show = lambda text: QMessageBox.critical(parent, "Something went wrong", text)  # noqa: E731
    try:
        show(message)
    except Exception:  # noqa: BLE001 - a failing message box must not hide the first error
        log.exception("could not show the error message")


def install_excepthook(parent=None) -> None:
    """Send uncaught exceptions to the log and a message box over ``parent``."""
    sys.excepthook = lambda exc_type, exc, tb: handle_uncaught(exc_type, exc, tb, parent)


def icon_files() -> list[Path]:
    """The icon's PNG sizes (resources/icons), smallest first."""
    from rmstudio.core.data.resources import resource

    folder = resource("icons")
    return sorted(folder.glob("rmstudio-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))


def app_icon():
    """The window icon: the SVG (sharp at any scale, high-DPI screens included) where Qt's SVG
    icon engine is installed, with the PNGs for the sizes they were drawn at; the PNGs alone
    without it."""
    from PySide6.QtGui import QIcon, QImageReader

    from rmstudio.core.data.resources import resource

    icon = QIcon()
    svg = resource("icons") / "rmstudio.svg"
    if svg.exists() and b"svg" in [bytes(f) for f in QImageReader.supportedImageFormats()]:
        icon.addFile(str(svg))  # first: the SVG engine then serves every size the PNGs lack
    for path in icon_files():
        icon.addFile(str(path))
    return icon
