"""Imported once by the extraction forkserver: what every worker needs, loaded before forking.

Workers fork from the forkserver with all of this already in memory (shared copy-on-write),
so neither the trafilatura import nor the language model (about 0.7 s to decompress) is
paid again per worker, and the main process never loads the model for extracted pages.
"""

from __future__ import annotations

import lxml.html  # noqa: F401
import trafilatura  # noqa: F401

from digest import startup
from digest.collect import extract  # noqa: F401
from digest.text import language

language.detect("Loading the language model once, here, before any worker is forked.")
# Workers inherit all of the above, frozen, and the same rarer collections.
startup.tune_gc()
