"""Benchmark `digest send`: N subscribers to a local aiosmtpd sink vs a bare smtplib loop.

    python bench/bench_send.py                     # 10,000 subscribers, 4 connections
    python bench/bench_send.py -n 2000 --connections 2 --db-dir /dev/shm
    python bench/bench_send.py -n 2000 --sections 2 --choices 1   # all readers share one choice
    python bench/bench_send.py -n 2000 --sections 8 --choices 8   # eight distinct choices

Prints messages/second for the real send (template substitution + ledger commits +
SMTP), for a bare loop that sends one prebuilt message's bytes over one smtplib
connection to the same sink in the same run, their ratio, and peak memory (RSS of
this process). The sink runs in its own process so it does not compete for our GIL.

With `--sections K` the config names K sections (one source each, three stories per
source, a real composed and rendered issue) and reader i chooses section
i mod `--choices` (0 = nobody chooses: everyone gets the full issue); the send then
renders one variant per distinct choice, and the figures include those renders.
"""

from __future__ import annotations

import argparse
import resource
import smtplib
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.config import Config, SiteConfig, SmtpConfig  # noqa: E402
from digest.mail.deliver import send_issue  # noqa: E402
from digest.mail.message import build_template, format_date, mailbox  # noqa: E402
from digest.models import TOKEN_PLACEHOLDER, RenderedIssue  # noqa: E402
from digest.store import Store  # noqa: E402

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


def sink(port: int) -> None:
    """Run an aiosmtpd server that counts messages and keeps nothing."""
    import asyncio

    from aiosmtpd.controller import Controller

    class Count:
        n = 0

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
            Count.n += 1
            return "250 OK"

    controller = Controller(Count(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        controller.stop()
    del asyncio


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def issue_content() -> tuple[str, str]:
    """Return (html, text) the size of a typical inlined issue (~40 KB HTML)."""
    unsub = f"https://news.example.com/unsubscribe?token={TOKEN_PLACEHOLDER}"
    story = (
        '<tr><td style="padding:16px 24px;font-family:Georgia,serif;font-size:16px;'
        'line-height:1.5;color:#222222"><h2 style="margin:0 0 8px;font-size:20px">'
        '<a href="https://example.com/story/{i}" style="color:#1a4d8f;text-decoration:none">'
        "Story number {i}: city council approves a new budget for public transport</a></h2>"
        '<p style="margin:0">The plan adds twelve bus lines, extends two tram routes to the '
        "northern suburbs and funds a night service that residents have requested for a decade. "
        "Council members voted 31 to 9 in favour after a debate of six hours.</p></td></tr>\n"
    )
    html = (
        '<!doctype html><html><body style="margin:0;background:#f4f4f4">'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0">'
        + "".join(story.format(i=i) for i in range(60))
        + f'<tr><td><a href="{unsub}">Unsubscribe</a></td></tr></table></body></html>'
    )
    text = (
        "".join(
            f"Story number {i}: city council approves a new budget\nhttps://example.com/story/{i}\n\n"
            for i in range(60)
        )
        + f"Unsubscribe: {unsub}\n"
    )
    return html, text


def start_sink(script: str) -> tuple[subprocess.Popen[str], int]:
    """Start `script --sink PORT` in its own process; return it and the port once it listens.

    Closing the process's stdin stops it.
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, script, "--sink", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("the sink did not start")
    return proc, port


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--subscribers", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--db-dir", default=None, help="folder for the SQLite file (default: tmp)")
    parser.add_argument("--sections", type=int, default=0, help="sections in the config")
    parser.add_argument("--choices", type=int, default=0, help="distinct reader choices")
    parser.add_argument("--sink", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        sink(args.sink)
        return

    proc, port = start_sink(__file__)
    assert proc.stdin is not None
    try:
        with tempfile.TemporaryDirectory(dir=args.db_dir) as tmp:
            run(args, port, Path(tmp))
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def run(args: argparse.Namespace, port: int, tmp: Path) -> None:
    """Set up the store, run the bare loop and the real send, print the comparison."""
    n = args.subscribers
    store = Store.open(f"sqlite:///{tmp / 'bench.db'}")
    store.import_subscribers(
        [(f"reader{i}@example.org", f"Reader {i}", "active") for i in range(n)], now=NOW
    )
    smtp = SmtpConfig(host="127.0.0.1", port=port, security="none", connections=args.connections)
    site = SiteConfig(name="The Daily Digest", url="https://news.example.com")
    config = Config(path=tmp / "config.toml", site=site, sources=(), smtp=smtp)
    if args.sections:
        config, issue = sectioned_issue(store, config, args.sections)
        html, text = issue.html, issue.text
        if args.choices:
            store.import_preferences(
                [
                    (f"reader{i}@example.org", "", "", (f"Section {i % args.choices}",))
                    for i in range(n)
                ],
                now=NOW,
            )
        print(f"sections {args.sections}, distinct reader choices {args.choices}")
    else:
        html, text = issue_content()
        issue = store.create_issue(
            date="2026-11-25",
            created_at=NOW,
            subject="The Daily Digest — Council approves transport budget",
            html=html,
            text=text,
            preheader="",
            article_ids=[],
        )
    rendered = RenderedIssue(date=issue.date, subject=issue.subject, html=html, text=text)
    template = build_template(rendered, smtp=smtp, site=site)
    prebuilt = template.render(
        to=mailbox("reader0@example.org", "Reader 0"),
        date=format_date(NOW),
        message_id=template.new_message_id(),
        token="A" * 32,
    )
    print(f"subscribers {n}, message {len(prebuilt) / 1024:.1f} KB, connections {smtp.connections}")

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as conn:
        for i in range(n):
            conn.sendmail(template.sender, [f"reader{i}@example.org"], prebuilt)
    bare = n / (time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_SELF)
    bare_cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / n * 1000
    print(f"bare smtplib loop (1 connection, prebuilt bytes): {bare:8.0f} msg/s")
    print(f"  (client CPU {bare_cpu:.2f} ms/message)")

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    report = send_issue(store, issue, config, now=NOW)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / n * 1000
    rss_before = before.ru_maxrss
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert report.sent == n and report.to_retry == 0, report
    if args.sections:
        print(f"variants rendered: {len(store_variants(store, issue.id))}")
    ours = n / elapsed
    print(f"digest send ({smtp.connections} connections, ledger):        {ours:8.0f} msg/s")
    print(f"ratio to the bare loop: {ours / bare:.2f}x (our CPU {cpu:.2f} ms/message)")
    print(f"peak RSS {rss_after / 1024:.0f} MB (before the send {rss_before / 1024:.0f} MB)")
    store.close()


STORY = (
    "The {topic} team announced a result on Tuesday after months of careful work. "
    "Researchers said the finding could change how the field approaches the problem. "
    "Independent experts called the work promising but asked for more data. "
    "The group plans to publish the full details next spring."
)


def sectioned_issue(store: Store, config: Config, k: int) -> tuple[Config, Any]:
    """Store 3 stories per section in k sections; compose, render and store the issue."""
    from dataclasses import replace
    from datetime import timedelta

    from digest import pipeline
    from digest.config import ComposeConfig, SourceConfig
    from digest.models import Article

    sources = tuple(
        SourceConfig(name=f"Feed {j}", url=f"https://s{j}.example/feed", section=f"Section {j}")
        for j in range(k)
    )
    config = replace(
        config,
        sources=sources,
        compose=ComposeConfig(sections=tuple(s.section for s in sources), max_roundup=40),
    )
    items = [
        (
            Article(
                source=src.name,
                guid=f"{src.name}-{i}",
                url=f"https://s{j}.example/{i}",
                title=f"Story {i} of section {j}",
                text=STORY.format(topic=f"section {j}"),
                published=NOW - timedelta(hours=i + 1),
                first_seen=NOW,
            ),
            f"story {i} of section {j}",
        )
        for j, src in enumerate(sources)
        for i in range(3)
    ]
    articles = store.add_articles(items)
    composed = pipeline.compose_articles(config, articles, now=NOW)
    assert composed is not None
    out = pipeline.render_email(config, composed, now=NOW)
    issue = store.create_issue(
        date=composed.date,
        created_at=NOW,
        subject=out.subject,
        html=out.html,
        text=out.text,
        preheader=out.preheader,
        article_ids=[s.article.id for s in composed.stories if s.article.id is not None],
    )
    return config, issue


def store_variants(store: Store, issue_id: int) -> list[Any]:
    """Return the stored variants' section keys of an issue."""
    import sqlalchemy as sa

    from digest.store.schema import issue_variants

    with store.db.begin() as conn:
        return list(
            conn.execute(
                sa.select(issue_variants.c.sections).where(issue_variants.c.issue_id == issue_id)
            ).scalars()
        )


if __name__ == "__main__":
    main()
