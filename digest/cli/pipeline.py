"""CLI commands for building the digest: preview and collect (the page tools: `tools`)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.table import Table

from digest.cli.app import App, console, report_printed
from digest.errors import DigestError, EmptyIssueError
from digest.models import TOKEN_PLACEHOLDER, Issue, RenderedIssue

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from digest.pipeline import CollectReport
    from digest.store import StoredIssue


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _collect_with_progress(app: App, now: datetime, *, ahead: bool = False) -> CollectReport:
    """Run a collection with a rich progress bar on stderr (`ahead`: an issue follows)."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

    from digest import pipeline

    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} fetched"),
        transient=True,
        console=console,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("collecting", total=None)

        def tick(what: str) -> None:
            bar.update(task, advance=1, description=f"collecting {what[:60]}")

        with report_printed():
            return pipeline.collect_articles(
                app.config, app.store, now=now, progress=tick, ahead=ahead
            )


def _report_table(report: CollectReport) -> Table:
    table = Table(title="Sources", title_justify="left")
    table.add_column("source")
    table.add_column("items", justify="right")
    table.add_column("new", justify="right")
    table.add_column("status")
    for s in report.sources:
        # Errors quote what servers and feeds sent: never let them be rich markup.
        status = "[green]ok[/]" if s.ok else f"[red]failed:[/] {escape(s.error or '')}"
        if s.flagged:
            status += f" [bold red]({s.failures_in_a_row} runs in a row)[/]"
        if s.ok and s.pages_skipped:
            status += f" [yellow]({s.pages_skipped} page(s) skipped)[/]"
        table.add_row(escape(s.source), str(s.entries), str(s.new_articles), status)
    return table


def _print_report(report: CollectReport) -> None:
    """Print the run summary: one row per source, then each skipped page with its reason."""
    console.print(_report_table(report))
    for s in report.sources:
        for warning in s.warnings:
            console.print(escape(f"  {s.source}: page skipped: {warning}"), soft_wrap=True)


@dataclass(frozen=True)
class Preview:
    """What `digest preview` shows: the rendered issue, its JSON, and the composed issue."""

    rendered: RenderedIssue
    doc: dict[str, Any]
    issue: Issue | None = None  # None when the stored, frozen issue is shown


def frozen_issue(app: App, now: datetime) -> StoredIssue | None:
    """Return today's stored issue if deliveries started (it never changes then), else None."""
    from digest import pipeline

    stored = app.store.issue_for_date(pipeline.today(app.config, now))
    if stored is not None and pipeline.is_frozen(app.store, stored):
        return stored
    return None


def _prestart_workers(*, compose: str | None = None) -> None:
    from digest.collect.pool import prestart

    prestart(compose=compose)


def build_preview(app: App, now: datetime, *, collect: bool, quiet: bool = False) -> Preview:
    """Return today's issue: the stored one once deliveries started, else composed afresh."""
    from digest import pipeline

    config, store = app.config, app.store

    def say(text: str) -> None:
        if not quiet:
            console.print(text)

    frozen = frozen_issue(app, now)
    if frozen is not None:
        say(
            f"Today's issue is frozen: it was created at {frozen.created_at:%H:%M} UTC and "
            "deliveries have started, so everyone gets the same issue; showing it."
        )
        return Preview(frozen.rendered(), json.loads(frozen.doc) if frozen.doc else {})
    stored = store.issue_for_date(pipeline.today(config, now))
    if stored is not None:
        say(
            f"Today's issue was stored at {stored.created_at:%H:%M} UTC but nothing was "
            "delivered yet; this preview is composed afresh. `digest send` sends the stored "
            f"one unless you run `digest issue discard --date {stored.date}` first."
        )
    if collect:
        report = _collect_with_progress(app, now, ahead=True)
        if not quiet:
            _print_report(report)
    issue = pipeline.build_issue(config, store, now=now)
    if issue is None:
        raise EmptyIssueError(
            "no new articles today from "
            f"{len(config.sources)} source(s); nothing to preview (see the table above)"
        )
    rendered = pipeline.render_email(config, issue, now=now)
    return Preview(rendered, pipeline.document(config, issue, rendered), issue)


def _preview_rendered(app: App, now: datetime, *, collect: bool) -> RenderedIssue:
    return build_preview(app, now, collect=collect, quiet=True).rendered


def _why_table(app: App, issue: Issue, now: datetime) -> Table:
    """Return the lead and the runner-up side by side, signal by signal, in ranking order."""
    from digest import pipeline
    from digest.compose import article_language, rank, story_value

    rules = pipeline.rules(app.config)
    pair = [issue.lead, *rank([*issue.roundup, *issue.more], rules)[:1]]
    table = Table(title="Why this lead (signals in ranking order)", title_justify="left")
    table.add_column("signal")
    for label in ("lead", "runner-up")[: len(pair)]:
        table.add_column(label)
    values = [story_value(s, rules) for s in pair]

    def row(name: str, cells: list[str]) -> None:
        table.add_row(name, *(escape(c) for c in cells))

    row("story", [s.article.title[:60] for s in pair])
    row("pinned", ["yes" if v.pinned else "no" for v in values])
    row(
        "language",
        [
            article_language(s.article, rules.language)
            + ("" if v.in_language else " (never leads)")
            for s, v in zip(pair, values, strict=True)
        ],
    )
    row("priority", [str(v.priority) for v in values])
    row("outlets", [str(v.outlets) for v in values])
    row(
        "image + substance",
        [f"{v.quality} ({'image, ' if v.image else ''}{v.words} words)" for v in values],
    )
    row(
        "published",
        [
            f"{(now - s.article.published).total_seconds() / 3600:.1f} h ago"
            if s.article.published
            else "undated"
            for s in pair
        ],
    )
    return table


PREVIEW_TOKEN = "preview-token"


def _as_read(
    rendered: RenderedIssue, *, now: datetime, tz: ZoneInfo, language: str = "en"
) -> tuple[str, str]:
    """Return (html, text) as a reader would get them now: a token, story times worded now."""
    from digest.text.storytime import fill_times

    html = fill_times(rendered.html, tz, now=now, html=True, language=language)
    text = fill_times(rendered.text, tz, now=now, language=language)
    return html.replace(TOKEN_PLACEHOLDER, PREVIEW_TOKEN), text.replace(
        TOKEN_PLACEHOLDER, PREVIEW_TOKEN
    )


def _write_preview(
    rendered: RenderedIssue, out: Path, *, now: datetime, tz: ZoneInfo, language: str = "en"
) -> Path:
    """Write the preview (HTML, and the text part beside it), creating the folder."""
    html, text = _as_read(rendered, now=now, tz=tz, language=language)
    txt = out.with_suffix(".txt")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
        txt.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DigestError(
            f"cannot write the preview to {out}: {exc.strerror or exc}; pick another --out"
        ) from None
    return txt


def _watched(app: App) -> tuple[tuple[str, float, int], ...]:
    """Return what a change of which re-renders the preview: the config and the templates."""
    from digest.render import SHIPPED_TEMPLATES

    files = [app.config_path]
    folders = [SHIPPED_TEMPLATES]
    if app.config.render.templates:
        folders.append(Path(app.config.render.templates))
    files += sorted(p for f in folders if f.is_dir() for p in f.iterdir() if p.is_file())
    out: list[tuple[str, float, int]] = []
    for path in files:
        try:
            st = path.stat()
            out.append((str(path), st.st_mtime, st.st_size))
        except OSError:
            out.append((str(path), 0.0, -1))
    return tuple(out)


def _serve(app: App, out: Path, port: int, rendered: RenderedIssue, poll: float = 0.3) -> None:
    """Serve the preview on 127.0.0.1; re-render and reload the page on template or config edits."""
    from digest.cli.previewserver import PreviewServer

    def publish(r: RenderedIssue) -> None:
        server.publish(
            *_as_read(r, now=_now(), tz=app.config.site.tz, language=app.config.site.language)
        )

    try:
        server = PreviewServer(port)
    except OSError as exc:
        raise DigestError(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; "
            "leave out --port to take any free one"
        ) from None
    publish(rendered)
    server.start()
    console.print(
        f"Serving the preview on {server.url} "
        "(it reloads on template or config changes; Ctrl-C stops)",
        soft_wrap=True,
    )
    seen = _watched(app)
    try:
        while True:
            time.sleep(poll)
            try:
                now_seen = _watched(app)
            except DigestError:
                continue
            if now_seen == seen:
                continue
            seen = now_seen
            try:
                app.reload_config()
                now = _now()
                fresh = _preview_rendered(app, now, collect=False)
                _write_preview(
                    fresh, out, now=now, tz=app.config.site.tz, language=app.config.site.language
                )
                publish(fresh)
                console.print(f"{datetime.now(tz=UTC):%H:%M:%S} changed; re-rendered")
            except DigestError as exc:
                message = " ".join(str(exc).split())
                console.print(f"[red]re-render failed:[/] {escape(message)}", soft_wrap=True)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@click.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("preview.html"),
    show_default=True,
    help="Where to write the HTML (the text part goes beside it as .txt).",
)
@click.option("--open", "open_", is_flag=True, help="Open the preview in a browser.")
@click.option(
    "--serve",
    is_flag=True,
    help="Serve the preview on 127.0.0.1, reloading it on template or config changes.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port for --serve (0: any free port).",
)
@click.option("--no-collect", is_flag=True, help="Use only articles already collected.")
@click.option("--strict", is_flag=True, help="Exit with status 1 when the lint finds anything.")
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the composed issue as JSON (see the README for the format).",
)
@click.pass_obj
def preview(
    app: App,
    out: Path,
    open_: bool,
    serve: bool,
    port: int,
    no_collect: bool,
    strict: bool,
    json_out: Path | None,
) -> None:
    """Collect and render today's issue to a local HTML file, then lint it."""
    if not no_collect:
        _prestart_workers(compose=app.config.site.language)
    now = _now()
    shown = build_preview(app, now, collect=not no_collect)
    rendered = shown.rendered
    txt = _write_preview(
        rendered, out, now=now, tz=app.config.site.tz, language=app.config.site.language
    )
    if shown.issue is not None:
        console.print(_why_table(app, shown.issue, now))
        console.print(
            f"{len(shown.issue.articles)} article(s) in {1 + len(shown.issue.roundup)} "
            f"stories shown and {len(shown.issue.more)} more in the archive."
        )
    if json_out is not None:
        if not shown.doc:
            raise DigestError("today's stored issue predates the JSON format; nothing to write")
        json_out.write_text(
            json.dumps(shown.doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        console.print(f"Wrote {json_out}")
    console.print(f"Subject: {rendered.subject}")
    console.print(f"Wrote {out} ({len(rendered.html.encode()) / 1024:.1f} KB) and {txt}")
    from digest.render.lint import check_issue

    findings = check_issue(app.config, rendered, now=now)
    for finding in findings:
        console.print(f"[yellow]lint:[/] {escape(str(finding))}")
    console.print(f"Lint: {len(findings)} warning(s)." if findings else "Lint: no problems found.")
    if findings and strict:
        sys.exit(1)
    if open_:
        import webbrowser

        webbrowser.open(out.resolve().as_uri())
    if serve:
        _serve(app, out, port, rendered)


def report_json(report: CollectReport) -> dict[str, object]:
    """Return a collection report as JSON-ready data (`digest collect --json`)."""
    return {
        "new_articles": report.new_articles,
        "cutoff": report.cutoff.isoformat(),
        "failed": len(report.failures),
        "sources": [
            {
                "name": s.source,
                "url": s.url,
                "ok": s.ok,
                "items": s.entries,
                "new": s.new_articles,
                "error": s.error,
                "failures_in_a_row": s.failures_in_a_row,
                "flagged": s.flagged,
                "pages_skipped": s.pages_skipped,
                "warnings": list(s.warnings),
            }
            for s in report.sources
        ],
    }


@click.command(name="collect")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.pass_obj
def collect_cmd(app: App, as_json: bool) -> None:
    """Fetch all sources now and store new articles."""
    _prestart_workers()
    if as_json:
        from digest import pipeline

        with report_printed():
            report = pipeline.collect_articles(app.config, app.store, now=_now())
        click.echo(json.dumps(report_json(report), ensure_ascii=False, indent=2))
    else:
        report = _collect_with_progress(app, _now())
        _print_report(report)
        console.print(f"{report.new_articles} new article(s).")
    if report.failures and len(report.failures) == len(report.sources):
        sys.exit(1)
