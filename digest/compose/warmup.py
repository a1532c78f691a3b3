"""Imported by the extraction forkserver when an issue follows the collection.

The workers then make each article's grouping terms and summaries beside its page
(`digest.compose.prepare`); loading the summarizer here, once, before any worker is
forked, spares each worker the import (most of a second) and shares the memory.
"""

from __future__ import annotations

import logging

from digest import startup
from digest.compose import prepare

try:
    prepare.warm()
except Exception:  # an error here would stop the forkserver, and with it all extraction
    logging.getLogger(__name__).warning("summarizer warm-up failed", exc_info=True)
# Frozen like the rest of the forkserver's heap, so the workers' collections never touch
# (and so copy) these pages.
startup.tune_gc()
