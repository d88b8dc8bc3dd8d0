"""Exporting a reward model: a copy of its folder, never over someone's files, and how to load it."""

from __future__ import annotations

import pytest

from rmstudio.core.reward.export_model import (
    ExportError, export_destination, export_model, load_hint, model_kind,
)


def instant_folder(tmp_path):
    folder = tmp_path / "runs" / "7" / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "rmstudio_reward.json").write_text('{"kind": "instant"}')
    (folder / "sub" / "head.bin").write_bytes(b"\x00\x01")
    return folder


def test_export_copies_the_folder_into_a_new_one(tmp_path):
    source = instant_folder(tmp_path)
    out = export_model(source, tmp_path / "exports" / "my-rm")
    assert out == (tmp_path / "exports" / "my-rm").resolve()
    assert (out / "rmstudio_reward.json").read_text() == '{"kind": "instant"}'
    assert (out / "sub" / "head.bin").read_bytes() == b"\x00\x01"
    assert not list((tmp_path / "exports").glob(".*partial"))


def test_an_empty_folder_is_filled_and_a_non_empty_one_refused_in_one_line(tmp_path):
    source = instant_folder(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (export_model(source, empty) / "rmstudio_reward.json").exists()
    with pytest.raises(ExportError) as info:
        export_model(source, empty)
    message = str(info.value)
    assert "not empty" in message and "\n" not in message and "nothing was copied" in message


def test_missing_source_and_a_copy_into_itself_are_refused(tmp_path):
    source = instant_folder(tmp_path)
    with pytest.raises(ExportError, match="missing"):
        export_model(tmp_path / "gone", tmp_path / "out")
    with pytest.raises(ExportError, match="into itself"):
        export_model(source, source / "inside")
    assert not (source / "inside").exists()


def test_the_destination_is_the_picked_folder_or_a_new_one_inside_it(tmp_path):
    source = instant_folder(tmp_path)
    picked = tmp_path / "picked"
    picked.mkdir()
    assert export_destination(picked, source, 7) == picked
    (picked / "notes.txt").write_text("mine")
    assert export_destination(picked, source, 7) == picked / "reward-model-run-7"
    assert export_destination(picked, source).name == "instant-reward-model"


def test_the_hint_names_the_loaders_that_read_each_kind(tmp_path):
    instant = instant_folder(tmp_path)
    assert model_kind(instant) == "instant"
    assert load_hint(instant) == f"Load it with: rmstudio.load_reward_model({str(instant)!r})"
    finetuned = tmp_path / "ft"
    finetuned.mkdir()
    (finetuned / "config.json").write_text("{}")
    assert model_kind(finetuned) == "finetuned"
    hint = load_hint(finetuned)
    assert "rmstudio.load_reward_model(" in hint
    assert "AutoModelForSequenceClassification.from_pretrained(" in hint
