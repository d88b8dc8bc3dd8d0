"""Guards against a Qt binding that corrupts Python's reference counts.

PySide6 6.12.0 on CPython 3.11 drops one reference to None on every call of a Qt method that
returns nothing; after ~5,000 such calls the interpreter aborts (none_dealloc). The labeler makes
thousands of these calls an hour, so a binding with this bug must never ship.
"""

import sys


def test_void_qt_calls_keep_none_alive(qtbot):
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for _ in range(500):
        label.setText("x")
    assert sys.getrefcount(None) >= before - 50
