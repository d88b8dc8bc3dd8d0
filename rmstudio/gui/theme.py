"""Light and dark themes: the Fusion style with one QPalette each, and colours for roles.

Settings → Theme offers System (the default: follows the OS colour scheme, live), Light and
Dark; the choice is kept in QSettings under ``theme``. Fusion is used for all three because it
draws everything from the palette: the native Windows style ignores a dark palette.

Widgets that need a colour the palette has no role for (an error line, a warning, the diff
highlight) ask ``colour(role)`` instead of testing for dark themselves. Where such a colour
sits in a stylesheet set once, ``themed_style`` sets it and sets it again when the palette
changes, so a live switch repaints it too.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QMainWindow, QMenu, QStyleFactory, QWidget

SETTING = "theme"
CHOICES = [("system", "&System (follows the OS)"), ("light", "&Light"), ("dark", "&Dark")]

# role: (on a light theme, on a dark theme). The dark ones are lighter tints of the same hue:
# the light theme's #c62828 on the dark window has a contrast of 2.5:1, #ff8a80 6.2:1. Each text role
# reaches WCAG AA (4.5:1) on its theme (tests/ui/test_prefs.py checks).
ROLE_COLOURS = {
    "error": ("#c62828", "#ff8a80"),
    "warning": ("#a35200", "#ffb74d"),
    "success": ("#1b5e20", "#81c784"),
    "info": ("#1565c0", "#82b1ff"),
    "diff_background": ("#ffe08a", "#6b4f00"),
    "diff_text": ("#000000", "#ffffff"),
}


def _palette(colours: dict[QPalette.ColorRole, str], disabled_text: str) -> QPalette:
    palette = QPalette()
    for role, value in colours.items():
        palette.setColor(role, QColor(value))
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        palette.setColor(QPalette.Disabled, role, QColor(disabled_text))
    return palette


def light_palette() -> QPalette:
    return _palette({
        QPalette.Window: "#efefef", QPalette.WindowText: "#1e1e1e", QPalette.Base: "#ffffff",
        QPalette.AlternateBase: "#f5f5f5", QPalette.ToolTipBase: "#ffffdc", QPalette.ToolTipText: "#000000",
        QPalette.PlaceholderText: "#6b6b6b", QPalette.Text: "#1e1e1e", QPalette.Button: "#e6e6e6",
        QPalette.ButtonText: "#1e1e1e", QPalette.BrightText: "#ffffff", QPalette.Light: "#ffffff",
        QPalette.Midlight: "#d8d8d8", QPalette.Mid: "#b4b4b4", QPalette.Dark: "#9a9a9a",
        QPalette.Shadow: "#767676", QPalette.Highlight: "#3074c9", QPalette.HighlightedText: "#ffffff",
        QPalette.Link: "#0b57b5", QPalette.LinkVisited: "#6a3ab2",
    }, disabled_text="#9a9a9a")


def dark_palette() -> QPalette:
    return _palette({
        QPalette.Window: "#2b2b2b", QPalette.WindowText: "#e6e6e6", QPalette.Base: "#1e1e1e",
        QPalette.AlternateBase: "#262626", QPalette.ToolTipBase: "#3c3c3c", QPalette.ToolTipText: "#f0f0f0",
        QPalette.PlaceholderText: "#a0a0a0", QPalette.Text: "#e6e6e6", QPalette.Button: "#3a3a3a",
        QPalette.ButtonText: "#e6e6e6", QPalette.BrightText: "#ffffff", QPalette.Light: "#505050",
        QPalette.Midlight: "#444444", QPalette.Mid: "#5a5a5a", QPalette.Dark: "#202020",
        QPalette.Shadow: "#101010", QPalette.Highlight: "#3d7fd6", QPalette.HighlightedText: "#ffffff",
        QPalette.Link: "#6cb0ff", QPalette.LinkVisited: "#b99cff",
    }, disabled_text="#7a7a7a")


def is_dark(palette: QPalette | None = None) -> bool:
    """Whether ``palette`` (the application's by default) is a dark one."""
    palette = palette or QGuiApplication.palette()
    return palette.color(QPalette.Window).lightness() < 128


def colour(role: str, palette: QPalette | None = None) -> str:
    """The colour for ``role`` (a key of ROLE_COLOURS) on the current theme, as '#rrggbb'."""
    light, dark = ROLE_COLOURS[role]
    return dark if is_dark(palette) else light


def effective_theme(choice: str, scheme: Qt.ColorScheme) -> str:
    """'light' or 'dark' for a choice ('system', 'light', 'dark') and the OS colour scheme."""
    if choice in ("light", "dark"):
        return choice
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


class _StyleFollower(QObject):
    """Sets a widget's stylesheet from a template with ``{role}`` fields, again on each palette change."""

    def __init__(self, widget: QWidget, template: str):
        super().__init__(widget)
        self.widget, self.template = widget, template
        self.apply()
        widget.installEventFilter(self)

    def apply(self) -> None:
        sheet = self.template.format(**{role: colour(role) for role in ROLE_COLOURS})
        if self.widget.styleSheet() != sheet:  # setting it sends a palette change: stop there
            self.widget.setStyleSheet(sheet)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        if event.type() in (QEvent.PaletteChange, QEvent.ApplicationPaletteChange):
            self.apply()
        return False


def themed_style(widget: QWidget, template: str) -> None:
    """Give ``widget`` the stylesheet ``template`` with role colours filled in ("color: {error};"),
    kept right when the theme changes."""
    _StyleFollower(widget, template)


class ThemeController(QObject):
    """Applies the chosen theme to the application and follows the OS while the choice is System."""

    sig_changed = Signal(str)  # the theme now shown: 'light' or 'dark'

    def __init__(self, settings: QSettings, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.app = QApplication.instance()
        self.app.setStyle(QStyleFactory.create("Fusion"))
        self.shown = ""
        self.app.styleHints().colorSchemeChanged.connect(self._on_scheme_changed)

    @property
    def choice(self) -> str:
        chosen = str(self.settings.value(SETTING, "system") or "system").lower()
        return chosen if chosen in dict(CHOICES) else "system"

    def set_choice(self, choice: str) -> None:
        if choice not in dict(CHOICES):
            raise ValueError(f"unknown theme {choice!r}: choose one of {', '.join(dict(CHOICES))}")
        self.settings.setValue(SETTING, choice)
        self.apply()

    def apply(self) -> None:
        shown = effective_theme(self.choice, self.os_scheme())
        self.app.setPalette(dark_palette() if shown == "dark" else light_palette())
        # A widget with a stylesheet keeps the palette it was polished with (and passes it on to
        # its children): setting its sheet again makes it take the new one. Only this window's
        # widgets (its dialogs included): walking QApplication.allWidgets() instead segfaulted
        # now and then in the tests, where closed windows are still waiting for deletion.
        window = self.parent()
        if isinstance(window, QWidget):
            for widget in [window, *window.findChildren(QWidget)]:
                if widget.styleSheet():
                    widget.setStyleSheet(widget.styleSheet())
        if shown != self.shown:
            self.shown = shown
            self.sig_changed.emit(shown)

    def os_scheme(self) -> Qt.ColorScheme:
        """The OS colour scheme as Qt reports it (Unknown where the platform does not say)."""
        return self.app.styleHints().colorScheme()

    def _on_scheme_changed(self, _scheme) -> None:
        if self.choice == "system":
            self.apply()


def install_theme(window: QMainWindow, settings: QSettings) -> ThemeController:
    """Apply the remembered theme and add Settings → Theme to ``window``'s menu bar."""
    controller = ThemeController(settings, window)
    controller.apply()
    menu = QMenu("&Theme", window)
    group = QActionGroup(menu)
    group.setExclusive(True)
    controller.actions = {}
    for key, text in CHOICES:
        action = QAction(text, menu, checkable=True)
        action.setChecked(key == controller.choice)
        action.triggered.connect(lambda _checked=False, key=key: controller.set_choice(key))
        group.addAction(action)
        menu.addAction(action)
        controller.actions[key] = action
    settings_menu = next((a.menu() for a in window.menuBar().actions() if a.text() == "&Settings"), None)
    if settings_menu is None:
        settings_menu = window.menuBar().addMenu("&Settings")
    settings_menu.addMenu(menu)
    return controller
