"""Extract pages in worker processes, so that no lxml parser is ever shared by two threads.

trafilatura parses with one module-wide lxml parser (`trafilatura.utils.HTML_PARSER`,
also used by its readability fallback); lxml does not support one parser used by several
threads at once, and extraction on a thread pool crashed `digest preview` with double
frees and segfaults. Here each worker is a single-threaded process, so each has its own
parser, and extraction also uses all cores.

Workers come from a 'forkserver' that has imported trafilatura once (no fork of a process
that runs threads; each worker starts warm). Each slot is a one-process pool holding one
page at a time, so when a worker dies (a native crash, a signal, the OOM killer) we know
which page killed it: that page gets `CRASHED` instead of a `Page` (the caller falls back
to the feed's own text), the slot gets a new process and the run goes on.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
import types
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import Any, TypeVar

from digest.errors import ExtractError
from digest.models import Page

log = logging.getLogger(__name__)
T = TypeVar("T")

CRASHED = "extraction crashed; used the feed text"
# Test-only: a worker asked to extract this exact URL aborts (SIGABRT), like a native
# crash inside lxml would. tests/test_extract_pool.py uses it; never set it otherwise.
ABORT_URL_ENV = "DIGEST_TEST_ABORT_URL"
_PRELOAD = ["digest.collect.warm"]
_PRELOAD_COMPOSE = ["digest.compose.warmup"]
# The site's language, for the forkserver's `digest.compose.warmup` (it takes no arguments).
WARM_LANGUAGE_ENV = "DIGEST_WARM_LANGUAGE"
_WARM_HTML = (
    "<html><head><title>w</title></head><body><article>"
    + "<p>Warm-up paragraph with enough words to count as the text of an article.</p>" * 4
    + "</article></body></html>"
)


def default_workers() -> int:
    """Return how many extraction workers fit this machine: one per usable core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _extract(
    html: bytes, url: str, then: Callable[[Page], T] | None = None
) -> tuple[Page | str, T | None]:
    """Run in a worker: extract one page (an ExtractError comes back as its message),
    then run `then` on the page, here too; a failure there only loses its result."""
    from digest.collect.extract import extract_page

    if url and url == os.environ.get(ABORT_URL_ENV):
        os.abort()
    try:
        page = extract_page(html, url)
    except ExtractError as exc:
        return str(exc), None
    try:
        return page, None if then is None else then(page)
    except Exception:  # the caller computes it again itself, and says why there
        log.debug("page %s: work after extraction failed", url, exc_info=True)
        return page, None


def _warm() -> int:
    """Run in a new worker: pay imports and first-call caches before real pages arrive."""
    # The parent handles Ctrl-C; a worker killed by it would look like a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _extract(_WARM_HTML.encode(), "https://warm.invalid/")
    return os.getpid()


class ExtractPool:
    """Worker processes extracting pages as they arrive; use `async with ExtractPool():`."""

    def __init__(self, workers: int | None = None, *, compose: str | None = None) -> None:
        self.workers = workers or default_workers()
        self._ctx = _context(compose=compose)
        self._free: asyncio.Queue[int] = asyncio.Queue()
        self._slots: list[ProcessPoolExecutor | None] = [None] * self.workers
        self._busy: set[int] = set()
        self._ready: asyncio.Future[None] | None = None
        self.crashes = 0

    async def __aenter__(self) -> ExtractPool:
        # Starting the forkserver waits for it to import trafilatura: do it on a thread,
        # so the feeds download meanwhile.
        self._ready = asyncio.ensure_future(asyncio.to_thread(self._start_all))
        self._ready.add_done_callback(self._open_slots)
        return self

    def _open_slots(self, ready: asyncio.Future[None]) -> None:
        if not ready.cancelled() and ready.exception() is None:
            for i in range(self.workers):
                self._free.put_nowait(i)

    def _start_all(self) -> None:
        for i in range(self.workers):
            self._slots[i] = self._start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ready is not None:
            with suppress(Exception):
                await asyncio.shield(self._ready)
        self.close()

    def _start(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=self._ctx)
        with _main_hidden():
            pool.submit(_warm)  # starts the process now, while feeds are still downloading
        return pool

    def pids(self) -> list[int]:
        """Return the process ids of the live workers (for tests and diagnostics)."""
        return [
            p.pid
            for pool in self._slots
            if pool is not None
            for p in list(getattr(pool, "_processes", {}).values())
            if p.pid is not None and p.is_alive()
        ]

    async def extract(self, html: bytes, url: str) -> Page | str:
        """Extract one page in a worker: a Page, an ExtractError message, or `CRASHED`."""
        return (await self.extract_then(html, url, None))[0]

    async def extract_then(
        self, html: bytes, url: str, then: Callable[[Page], T] | None
    ) -> tuple[Page | str, T | None]:
        """Extract one page in a worker, then run `then(page)` in that worker as well.

        `then` must pickle (a module-level function, or a `functools.partial` of one);
        its result is None when the page yields none or `then` fails.
        """
        crash = f"page {url}: extraction worker crashed; using the feed text"
        done = await self._run(crash, _extract, html, url, then)
        return done if done is not None else (CRASHED, None)

    async def call(self, fn: Callable[..., T], *args: Any) -> T | None:
        """Run `fn(*args)` in a free worker (it must pickle); None if the worker died."""
        return await self._run(f"{getattr(fn, '__name__', 'work')}: worker crashed", fn, *args)

    async def renew(self) -> None:
        """Replace every worker with a fresh one from the forkserver, the old ones gone
        first: a worker that extracted a day of pages holds their memory to its end."""
        if self._ready is None:
            raise RuntimeError("use ExtractPool as `async with ExtractPool() as pool:`")
        await asyncio.shield(self._ready)
        slots = [await self._free.get() for _ in range(self.workers)]  # all idle now
        try:
            await asyncio.to_thread(self._renew, slots)
        finally:
            for slot in slots:
                self._free.put_nowait(slot)

    def _renew(self, slots: list[int]) -> None:
        for slot in slots:
            old = self._slots[slot]
            if old is not None:
                old.shutdown(wait=True)
            self._slots[slot] = self._start()

    async def _run(self, crash: str, fn: Callable[..., T], *args: Any) -> T | None:
        if self._ready is None:
            raise RuntimeError("use ExtractPool as `async with ExtractPool() as pool:`")
        await asyncio.shield(self._ready)  # raises if the workers could not start
        slot = await self._free.get()
        self._busy.add(slot)
        try:
            pool = self._slots[slot]
            assert pool is not None
            try:
                return await asyncio.wrap_future(pool.submit(fn, *args))
            except BrokenExecutor:
                self.crashes += 1
                log.warning("%s", crash)
                self._replace(slot)
                return None
            except asyncio.CancelledError:
                # The run's deadline: the worker may be stuck on this page; do not wait for it.
                self._replace(slot, kill=True)
                raise
        finally:
            self._busy.discard(slot)
            self._free.put_nowait(slot)

    def _replace(self, slot: int, *, kill: bool = False) -> None:
        old = self._slots[slot]
        if old is not None:
            if kill:
                _kill(old)
            old.shutdown(wait=False, cancel_futures=True)
        self._slots[slot] = self._start()

    def close(self) -> None:
        """Stop every worker (a worker still busy after the run is killed)."""
        for i, pool in enumerate(self._slots):
            if pool is not None:
                if i in self._busy:
                    _kill(pool)
                pool.shutdown(wait=True, cancel_futures=True)
                self._slots[i] = None


@contextmanager
def _main_hidden() -> Iterator[None]:
    """Start processes without re-running the caller's main script in them.

    multiprocessing re-imports `__main__` in a new worker; a user's script calling
    `collect_articles` without an `if __name__ == "__main__":` guard would then start
    collecting again in every worker. The workers only need `digest`, so they get none.
    """
    saved = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = saved


def _kill(pool: ProcessPoolExecutor) -> None:
    for proc in list(getattr(pool, "_processes", {}).values()):
        if proc.is_alive():
            proc.kill()


def prestart(*, compose: str | None = None) -> None:
    """Start the forkserver now, without waiting for it.

    It imports trafilatura and loads the language model (about a second of CPU) on
    the other core while this process still imports the pipeline and fetches feeds,
    so the workers are warm when the first page arrives. With `compose` (an issue in
    that language is composed after the collection) it loads the summarizer too, for
    the work the workers do beside each page (`digest.compose.prepare`). Idempotent:
    the first start decides what is preloaded.
    """
    if _context(compose=compose).get_start_method() == "forkserver":
        from multiprocessing import forkserver

        with _main_hidden():
            forkserver.ensure_running()


def _context(*, compose: str | None = None) -> multiprocessing.context.BaseContext:
    """Return a forkserver context that preloads trafilatura (spawn where there is none)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        preload = list(_PRELOAD)
        if compose is not None:
            preload += _PRELOAD_COMPOSE
            # Read by the preloaded module: the forkserver starts with this environment.
            os.environ[WARM_LANGUAGE_ENV] = compose
        ctx.set_forkserver_preload(preload)
        return ctx
    return multiprocessing.get_context("spawn")
