"""A missing library of Qt's xcb plugin is named in one line (exit code 1), not a Qt abort."""

from __future__ import annotations

import ctypes.util

from rmstudio.gui.startup import XCB_LIBRARIES, missing_xcb_packages, platform_problem

LINUX_X11 = {"DISPLAY": ":0", "XDG_SESSION_TYPE": "x11"}


def without(*names):
    return lambda name: None if name in names else f"lib{name}.so.0"


def test_all_libraries_present_is_no_problem():
    assert missing_xcb_packages(without()) == []
    assert platform_problem(LINUX_X11, "linux", without()) is None


def test_a_missing_library_names_its_package_and_the_alternatives():
    line = platform_problem(LINUX_X11, "linux", without("xcb-cursor", "xcb-icccm"))
    assert "\n" not in line
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4`" in line
    assert "QT_QPA_PLATFORM=offscreen" in line and "QT_QPA_PLATFORM=wayland" in line


def test_no_check_off_linux_with_a_platform_chosen_or_in_a_wayland_session():
    missing = without(*[name for name, _package in XCB_LIBRARIES])
    assert platform_problem(LINUX_X11, "win32", missing) is None
    assert platform_problem(LINUX_X11, "darwin", missing) is None
    assert platform_problem({**LINUX_X11, "QT_QPA_PLATFORM": "offscreen"}, "linux", missing) is None
    assert platform_problem({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, "linux",
                            missing) is None


def test_run_app_prints_the_line_and_returns_1(monkeypatch, capsys):
    from rmstudio.gui import app

    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(app.sys, "platform", "linux")
    monkeypatch.setattr(ctypes.util, "find_library", without("xkbcommon-x11"))
    assert app.run_app() == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "libxkbcommon-x11-0" in err
