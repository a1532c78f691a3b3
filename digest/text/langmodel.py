"""Load py3langid's language model, from a decompressed copy after the first time.

The model ships LZMA-compressed inside py3langid (4.5 MB; 68 MB unpacked) and
decompressing it is most of its load: 0.5 of 0.7 s, paid by every extraction
forkserver, i.e. by every `digest preview` and `digest run` before the first page
can be extracted. The first load writes the unpacked `.npz` to the user's cache
directory; later loads read that (about 0.15 s). Nothing is downloaded: the copy is
the installed package's own file, unpacked. The cache is best effort: unwritable,
missing or unreadable, the model is read from the package as before.

Where: `$DIGEST_CACHE_DIR`, else `$XDG_CACHE_HOME/digest`, else `~/.cache/digest`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_ENV = "DIGEST_CACHE_DIR"
STALE_SECONDS = 3600
_PREFIX = "py3langid-"


def cache_dir() -> Path:
    """Return the directory for derived data that is safe to delete at any time."""
    if own := os.environ.get(CACHE_ENV):
        return Path(own)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "digest"


def load_identifier() -> Any:
    """Return py3langid's `LanguageIdentifier` with normalized probabilities."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    packed = MODEL_DIR / MODEL_FILE
    unpacked = _unpacked_path(packed)
    if unpacked is not None:
        _remove_torn(unpacked.parent)
        if not unpacked.exists():
            _unpack(packed, unpacked)
        if unpacked.exists():
            try:
                return _from_npz(unpacked, LanguageIdentifier)
            except Exception as exc:  # a damaged file: use the package's own
                log.debug("language model cache %s unreadable (%s); removed", unpacked, exc)
                unpacked.unlink(missing_ok=True)
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _unpacked_path(packed: Path) -> Path | None:
    """Name the copy after everything that could change the packed file.

    None when there is nothing to cache into (no home directory) or this py3langid
    loads its model some other way than the one `_from_npz` repeats.
    """
    try:
        from py3langid.modelio import _to_array  # noqa: F401

        release = version("py3langid")
        st = packed.stat()
        return cache_dir() / f"{_PREFIX}{release}-{st.st_size}-{st.st_mtime_ns}.npz"
    except (ImportError, PackageNotFoundError, OSError, RuntimeError):
        return None


def _unpack(packed: Path, unpacked: Path) -> None:
    """Write the decompressed model next to its final name, then move it there."""
    import lzma

    try:
        unpacked.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=unpacked.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as out, lzma.open(packed) as src:
                shutil.copyfileobj(src, out, length=1 << 20)
            os.replace(tmp, unpacked)  # atomic: a reader sees no file or the whole one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.debug("language model not cached in %s: %s", unpacked.parent, exc)
        return
    for old in unpacked.parent.glob(f"{_PREFIX}*.npz"):  # copies of other releases
        if old != unpacked:
            old.unlink(missing_ok=True)


def _remove_torn(folder: Path) -> None:
    """Remove half-written copies a process killed while unpacking left (68 MB each).

    One younger than `STALE_SECONDS` may be another process's, unpacking right now.
    """
    with contextlib.suppress(OSError):
        for torn in folder.glob(".tmp-*.npz"):
            with contextlib.suppress(OSError):
                if time.time() - torn.stat().st_mtime > STALE_SECONDS:
                    torn.unlink()


def _from_npz(path: Path, identifier_class: Any) -> Any:
    """Build the identifier as `py3langid.modelio.load_model` does, from an unpacked file."""
    import numpy as np
    from py3langid.modelio import _to_array

    # Opened here: np.load leaves its own file open when the archive is damaged.
    with path.open("rb") as f, np.load(f, allow_pickle=False) as data:
        ptc, pc = np.asarray(data["ptc"]), np.asarray(data["pc"])
        classes = data["classes"].tolist()
        nextmove, row = _to_array(data["nextmove"]), _to_array(data["nextmove_row"])
        output = data["out_feat"].tolist()
    return identifier_class(ptc, pc, classes, nextmove, output, norm_probs=True, tk_row=row)
