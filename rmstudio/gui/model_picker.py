"""Pick where a causal LM comes from: the embedded model, a local folder or GGUF file, a hub id.

The picker only names a model (a ``ModelSource``); nothing is loaded here. A picked folder or
file is checked at once with ``ModelSource.parse`` and a problem is shown in red under the
picker, so a bad path is caught before a run starts.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPushButton,
    QVBoxLayout, QWidget,
)

from rmstudio.core.models.loading import ModelError, ModelSource
from rmstudio.gui.theme import themed_style

# (kind, what the user sees); the order is the combo box order.
KINDS = [
    ("embedded", "Embedded: SmolLM2-135M-Instruct (default)"),
    ("hf_dir", "Local model folder…"),
    ("gguf", "Local GGUF file…"),
    ("hub", "Hugging Face hub id"),
]
PLACEHOLDERS = {
    "hf_dir": "A folder with config.json and model.safetensors",
    "gguf": "A .gguf file",
    "hub": "org/name, for example HuggingFaceTB/SmolLM2-360M-Instruct",
}
HUB_NOTE = ("Downloads the model when this computer is online (it is cached afterwards); "
            "offline, only a model already in the cache can be used.")
TRUST_WARNING = (
    "This model asks to run its own Python code.\n\n"
    "That code runs with your user rights: it can read and change your files and use the "
    "network. Allow it only for a model from a source you trust.\n\n"
    "This applies only to the model chosen here. Allow custom code?"
)


class ModelPicker(QWidget):
    """Choose a model source; ``source()`` returns it or raises ModelError (also shown inline)."""

    sig_changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.kind_box = QComboBox()
        for kind, text in KINDS:
            self.kind_box.addItem(text, kind)
        self.kind_box.currentIndexChanged.connect(self._on_kind_changed)
        layout.addWidget(self.kind_box)

        row = QHBoxLayout()
        self.location_edit = QLineEdit()
        self.location_edit.editingFinished.connect(self.validate)
        self.location_edit.textEdited.connect(self._on_location_edited)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._on_browse_clicked)
        row.addWidget(self.location_edit, 1)
        row.addWidget(self.browse_button)
        layout.addLayout(row)

        self.hub_note = QLabel(HUB_NOTE)
        self.hub_note.setWordWrap(True)
        self.hub_note.setStyleSheet("color: palette(placeholder-text); font-size: 12px;")
        layout.addWidget(self.hub_note)

        self.trust_box = QCheckBox("Allow custom code (trust_remote_code)")
        self.trust_box.setToolTip("Some models ship their own Python code; it runs with your user rights.")
        self.trust_box.clicked.connect(self._on_trust_clicked)
        layout.addWidget(self.trust_box)

        self.error_label = QLabel("")
        self.error_label.setObjectName("model_error")
        self.error_label.setWordWrap(True)
        themed_style(self.error_label, "color: {error};")
        self.error_label.hide()
        layout.addWidget(self.error_label)
        self._on_kind_changed()

    # -- public --------------------------------------------------------------------------

    def kind(self) -> str:
        return self.kind_box.currentData()

    def set_source(self, kind: str, location: str = "") -> None:
        """Preselect a source (used by tests and to restore a previous choice)."""
        self.kind_box.setCurrentIndex(self.kind_box.findData(kind))
        self.location_edit.setText(location)
        if kind != "embedded":
            self.validate()

    def source(self) -> ModelSource:
        """The chosen model; raises ModelError with a message for the user on bad input."""
        try:
            source = self._parse()
        except ModelError as exc:
            self._show_error(str(exc))
            raise
        self._clear_error()
        return source

    def validate(self) -> bool:
        """Check the current choice now and show any problem inline; True when it is usable."""
        try:
            self.source()
        except ModelError:
            return False
        return True

    def error(self) -> str:
        return self.error_label.text() if self.error_label.isVisibleTo(self) else ""

    # -- internals -----------------------------------------------------------------------

    def _parse(self) -> ModelSource:
        kind = self.kind()
        if kind == "embedded":
            return ModelSource("embedded")
        text = self.location_edit.text().strip()
        if not text:
            what = {"hf_dir": "a model folder", "gguf": "a .gguf file", "hub": "a hub id like org/name"}[kind]
            raise ModelError(f"Choose {what} first.")
        if text.lower() in ("embedded", "default"):
            raise ModelError(f"'{text}' is not a {'hub id' if kind == 'hub' else 'path'}; "
                             "pick the embedded model in the list above instead.")
        path = Path(text).expanduser()
        if kind == "hf_dir" and not path.exists():
            raise ModelError(f"The folder '{text}' does not exist.")
        if kind == "gguf" and not (path.is_file() and path.suffix.lower() == ".gguf"):
            raise ModelError(f"'{text}' is not a .gguf file." if path.exists()
                             else f"The GGUF file '{text}' does not exist.")
        source = ModelSource.parse(text, trust_remote_code=self.trust_box.isChecked())
        if source.kind != kind:
            expected = {"hf_dir": f"'{text}' is not a model folder (a folder with config.json)",
                        "gguf": f"'{text}' is not a .gguf file",
                        "hub": f"'{text}' is a local path, not a hub id; choose it as a local model"}
            raise ModelError(expected[kind] + ".")
        return source

    def _on_kind_changed(self) -> None:
        kind = self.kind()
        local = kind in ("hf_dir", "gguf")
        self.location_edit.setVisible(kind != "embedded")
        self.location_edit.setPlaceholderText(PLACEHOLDERS.get(kind, ""))
        self.browse_button.setVisible(local)
        self.hub_note.setVisible(kind == "hub")
        # The embedded model is ours: it never runs custom code.
        self.trust_box.setVisible(kind != "embedded")
        self._forget_trust()
        self._clear_error()
        if kind != "embedded" and self.location_edit.text().strip():
            self.validate()
        self.sig_changed.emit()

    def _on_location_edited(self, _text: str) -> None:
        self._clear_error()
        self._forget_trust()
        self.sig_changed.emit()

    def _forget_trust(self) -> None:
        # Permission to run custom code was given for one model, not for whatever comes next.
        self.trust_box.setChecked(False)

    def _on_browse_clicked(self) -> None:
        if self.kind() == "hf_dir":
            path = QFileDialog.getExistingDirectory(self, "Choose a model folder", self.location_edit.text())
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF file", self.location_edit.text(),
                                                  "GGUF models (*.gguf);;All files (*)")
        if path:
            if path != self.location_edit.text():
                self._forget_trust()
            self.location_edit.setText(path)
            self.validate()
            self.sig_changed.emit()

    def _on_trust_clicked(self, checked: bool) -> None:
        if checked:
            answer = QMessageBox.warning(self, "Allow custom code?", TRUST_WARNING,
                                         QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
            if answer != QMessageBox.Yes:
                self.trust_box.setChecked(False)
        self.sig_changed.emit()

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()

    def _clear_error(self) -> None:
        self.error_label.clear()
        self.error_label.hide()
