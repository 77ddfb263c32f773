from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from models.resolve import BASE_SHA256, ModelError, _join_verified, resolve_model


def test_base_is_joined_once_verified_and_reused(tmp_path: Path) -> None:
    folder = resolve_model("base", cache_dir=tmp_path)
    model_bin = folder / "model.bin"
    assert {p.name for p in folder.iterdir()} >= {"model.bin", "config.json", "tokenizer.json", "vocabulary.json"}
    digest = hashlib.sha256(model_bin.read_bytes()).hexdigest()
    assert digest == BASE_SHA256
    first = model_bin.stat().st_mtime_ns
    assert resolve_model("base", cache_dir=tmp_path) == folder
    assert model_bin.stat().st_mtime_ns == first  # not rewritten
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left


def test_truncated_cache_is_rebuilt(tmp_path: Path) -> None:
    folder = resolve_model("base", cache_dir=tmp_path)
    with (folder / "model.bin").open("r+b") as f:
        f.truncate(1000)
    resolve_model("base", cache_dir=tmp_path)
    assert (folder / "model.bin").stat().st_size > 100_000_000


def test_corrupt_parts_raise_a_one_line_model_error(tmp_path: Path) -> None:
    parts = (tmp_path / "a", tmp_path / "b")
    parts[0].write_bytes(b"not a")
    parts[1].write_bytes(b" model")
    dest = tmp_path / "model.bin"
    with pytest.raises(ModelError) as info:
        _join_verified(tmp_path, dest, parts)
    assert "corrupt" in str(info.value) and "\n" not in str(info.value)
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_tiny_en_and_local_folders_resolve(tmp_path: Path) -> None:
    tiny = resolve_model("tiny.en", cache_dir=tmp_path)
    assert (tiny / "model.bin").is_file()
    assert resolve_model(str(tiny), cache_dir=tmp_path) == tiny


def test_unknown_or_incomplete_models_raise_model_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelError, match="local Hugging Face cache"):
        resolve_model("someone/not-a-cached-model", cache_dir=tmp_path)
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(ModelError, match="incomplete"):
        resolve_model(str(empty), cache_dir=tmp_path)
