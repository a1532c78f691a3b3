"""Rows to models (one mapper for every table) and the key that identifies an address.

No SQLAlchemy here, so the quick read path (`digest.store.quick`) and the subscriber
module can use these without paying for it. A row is any mapping from column name to
value (datetimes already decoded).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from typing import TYPE_CHECKING, Any, TypeVar

from digest.models import Delivery, Subscriber

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    M = TypeVar("M", bound=DataclassInstance)
else:
    M = TypeVar("M")


def from_row(model: type[M], row: Any, **values: Any) -> M:
    """Build a model from a row mapping: each field from its column, unless given in `values`.

    Fields without a column keep their defaults; columns without a field are ignored.
    """
    kwargs = {
        f.name: values[f.name] if f.name in values else row[f.name]
        for f in dataclasses.fields(model)
        if f.name in values or f.name in row
    }
    return model(**kwargs)


def subscriber_from_row(r: Any) -> Subscriber:
    """Return the Subscriber of a `subscribers` row mapping (NULL preferences = defaults)."""
    sections = r.get("sections")
    return from_row(
        Subscriber,
        r,
        timezone=r.get("timezone") or "",
        send_at=r.get("send_at") or "",
        sections=tuple(json.loads(sections)) if sections else (),
    )


def delivery_from_row(r: Any) -> Delivery:
    """Return the Delivery of a `deliveries` row mapping (NULL attempts count as 0)."""
    return from_row(Delivery, r, attempts=r["attempts"] or 0)


def address_key(address: str) -> str:
    """Return the identity of an address: local part case-folded, domain IDNA and lower-case.

    Two spellings with the same key are one reader (`Bob@Example.org`, `bob@example.org`).
    The unique index of migration 4 holds these keys: changing this function needs a
    migration that recomputes them.
    """
    local, _, domain = address.strip().rpartition("@")
    domain = domain.strip().rstrip(".")
    if not domain.isascii():
        # Callers pass addresses from `normalize_address`, already ASCII; this is for
        # anything else (an invalid IDN keeps its lower-cased text: still a stable key).
        with contextlib.suppress(UnicodeError):
            domain = domain.encode("idna").decode("ascii")
    return f"{local.casefold()}@{domain.lower()}"
