"""The language model's unpacked copy: written once, read after, never trusted blindly."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from digest.text import langmodel

TEXTS = [
    "The council voted on Tuesday to expand the tram network by 2030.",
    "Der Stadtrat hat am Dienstag beschlossen, das Straßenbahnnetz auszubauen.",
    "Городской совет во вторник проголосовал за расширение трамвайной сети.",
    "市議会は火曜日、路面電車網の拡張を決めた。",
    "ok",
]


@pytest.fixture(scope="module")
def plain() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(langmodel.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _copies(cache: Path) -> list[Path]:
    return sorted(cache.glob("py3langid-*.npz"))


def test_the_first_load_unpacks_the_model_and_later_loads_read_it(
    cache: Path, plain: LanguageIdentifier
) -> None:
    first = langmodel.load_identifier()
    [copy] = _copies(cache)
    assert copy.stat().st_size > 10 * (1 << 20)  # the whole model, not a stub
    written = copy.stat().st_mtime_ns
    second = langmodel.load_identifier()
    assert _copies(cache) == [copy] and copy.stat().st_mtime_ns == written
    for text in TEXTS:
        assert first.classify(text) == plain.classify(text)
        assert second.classify(text) == plain.classify(text)
    assert not list(cache.glob(".tmp-*"))  # nothing half-written left behind


def test_a_damaged_copy_is_ignored_and_removed(cache: Path, plain: LanguageIdentifier) -> None:
    langmodel.load_identifier()
    [copy] = _copies(cache)
    copy.write_bytes(copy.read_bytes()[: 1 << 20])  # cut short, as a full disk would
    model = langmodel.load_identifier()
    assert [model.classify(t) for t in TEXTS] == [plain.classify(t) for t in TEXTS]
    assert not copy.exists()
    langmodel.load_identifier()  # the next load unpacks it again
    assert _copies(cache) == [copy]


def test_copies_of_other_releases_are_removed(cache: Path) -> None:
    cache.mkdir()
    old = cache / "py3langid-0.0.1-123-456.npz"
    old.write_bytes(b"an older release's copy")
    langmodel.load_identifier()
    assert old not in _copies(cache) and len(_copies(cache)) == 1


def test_an_unwritable_cache_leaves_the_model_loading_from_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plain: LanguageIdentifier
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(langmodel.CACHE_ENV, str(blocker / "cache"))
    model = langmodel.load_identifier()
    assert [model.classify(t) for t in TEXTS] == [plain.classify(t) for t in TEXTS]
    assert blocker.read_text() == "not a directory"


def test_the_cache_directory_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(langmodel.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert langmodel.cache_dir() == tmp_path / "xdg" / "digest"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert langmodel.cache_dir() == tmp_path / "home" / ".cache" / "digest"


def test_a_copy_left_half_written_by_a_killed_process_is_removed_once_it_is_old(
    cache: Path,
) -> None:
    cache.mkdir()
    torn, fresh = cache / ".tmp-killed.npz", cache / ".tmp-being-written.npz"
    torn.write_bytes(b"PK half a model")
    fresh.write_bytes(b"PK another process, unpacking now")
    langmodel.load_identifier()  # both recent: either may still be being written
    assert torn.exists() and fresh.exists()
    long_ago = time.time() - langmodel.STALE_SECONDS - 60
    os.utime(torn, (long_ago, long_ago))
    langmodel.load_identifier()  # the copy is there already: the torn one still goes
    assert not torn.exists() and fresh.exists()
    assert len(_copies(cache)) == 1
