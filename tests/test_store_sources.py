"""Recording a whole run's sources in one transaction keeps the per-source rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.store import SourceResult, Store

T0 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def test_batch_matches_one_by_one(tmp_path: Path) -> None:
    runs = [
        [SourceResult("a", "http://a/f", None, "e1"), SourceResult("b", "http://b/f", "boom")],
        [SourceResult("a", "http://a/f", "HTTP 503"), SourceResult("b", "http://b/f", "boom")],
        [SourceResult("a", "http://a/f", None, None, "Tue"), SourceResult("c", "http://c/f")],
    ]
    batched = Store.open(f"sqlite:///{tmp_path / 'batched.db'}")
    single = Store.open(f"sqlite:///{tmp_path / 'single.db'}")
    for i, run in enumerate(runs):
        now = T0 + timedelta(hours=i)
        got = batched.record_source_results(run, now=now)
        want = {
            r.name: single.record_source_result(
                r.name, r.url, now=now, error=r.error, etag=r.etag, last_modified=r.last_modified
            )
            for r in run
        }
        assert got == want
    states = batched.source_states()
    assert states == single.source_states()
    # Spelled out: b failed twice in a row since the first run; a recovered and kept its etag.
    assert states["b"].consecutive_failures == 2
    assert states["b"].failing_since == T0
    assert states["a"].consecutive_failures == 0
    assert (states["a"].etag, states["a"].last_modified) == (None, "Tue")
    assert states["c"].last_success == T0 + timedelta(hours=2)
