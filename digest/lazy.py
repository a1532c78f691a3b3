"""Packages that import their parts on first use (PEP 562).

`import digest`, `digest.store` or `digest.collect` costs almost nothing: a name is
imported from its home module the first time it is looked up, then kept. So the CLI
starts without SQLAlchemy, and extraction workers import `digest.collect.extract`
without httpx.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def exports(
    package: str, homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a package's `__getattr__` and `__dir__` for names living in `homes`
    (name → module); use `__getattr__, __dir__ = lazy.exports(__name__, HOMES)`."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(homes))

    return __getattr__, __dir__
