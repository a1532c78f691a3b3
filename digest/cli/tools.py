"""CLI tools for one page: what the extractor gets from it, and its summary.

Standalone (`digest.cli.STANDALONE`): they run without a config file, with the defaults.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import asdict
from pathlib import Path

import click

from digest.cli.app import App
from digest.config import SUMMARY_METHODS, CollectConfig, SummaryConfig
from digest.errors import ExtractError, FetchError
from digest.text.language import choose_language, to_code


def _read_input(source: str, cfg: CollectConfig) -> tuple[bytes, str]:
    """Read a page from a file, '-' (stdin) or an http(s) URL; return (body, url)."""
    if source == "-":
        return sys.stdin.buffer.read(), "about:stdin"
    from digest.collect.fetch import Fetcher, read_local

    if source.startswith(("http://", "https://")):

        async def get() -> tuple[bytes, str]:
            async with Fetcher(cfg) as fetcher:
                res = await fetcher.fetch(source)
                return res.body, res.final_url

        import asyncio

        return asyncio.run(get())
    if "://" in source:
        raise FetchError(f"{source}: only http(s) URLs, file paths or - are supported")
    path = Path(source)
    if not path.is_file():
        raise FetchError(f"{source}: no such file")
    res = read_local(str(path.resolve()), max_bytes=cfg.max_bytes)
    return res.body, path.resolve().as_uri()


def _collect_cfg(app: App) -> CollectConfig:
    return app.config.collect if app.config_available() else CollectConfig()


@click.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.pass_obj
def extract(app: App, source: str, as_json: bool) -> None:
    """Show what the extractor gets from one page (FILE, URL or -)."""
    from digest.collect.extract import extract_page

    body, url = _read_input(source, _collect_cfg(app))
    page = extract_page(body, url)
    data = asdict(page)
    del data["detected"]  # an internal hand-over between processes, not a finding
    data["date"] = page.date.isoformat() if page.date else None
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for key in ("title", "author", "date", "image", "url", "language"):
        click.echo(f"{key + ':':9} {data[key] or '-'}")
    click.echo(f"text:     {len(page.text.split())} words\n")
    click.echo(page.text)


@click.command(name="summarize")
@click.argument("source", required=False, default="-")
@click.option("--sentences", "-n", type=click.IntRange(1, 50), default=None, help="Sentences.")
@click.option("--method", "-m", type=click.Choice(SUMMARY_METHODS), default=None)
@click.option(
    "--language", "-l", default=None, help="ISO 639-1 code, e.g. en, de (default: detected)."
)
@click.option("--title", "-t", default=None, help="The article's title (a page's own by default).")
@click.option("--jsonl", is_flag=True, help='Read {"id","text"} lines on stdin, write summaries.')
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object with the language.")
@click.option("--explain", is_flag=True, help="Say why each sentence was chosen or skipped.")
@click.pass_obj
def summarize_cmd(
    app: App,
    source: str,
    sentences: int | None,
    method: str | None,
    language: str | None,
    title: str | None,
    jsonl: bool,
    as_json: bool,
    explain: bool,
) -> None:
    """Summarize a text or HTML page (FILE, URL or - for stdin).

    The language is --language, else the page's declared one, else detected from the
    text, else [summary].language; it is reported on stderr (or in --json / --jsonl).
    """
    from digest.collect.extract import extract_page
    from digest.summarize import explain as explain_summary
    from digest.summarize import summarize_jsonl

    cfg = app.config.summary if app.config_available() else SummaryConfig()
    n = sentences or cfg.lead_sentences
    m = method or cfg.method
    fallback = cfg.language or None
    forced: str | None = None
    if language:
        try:
            forced = to_code(language)
        except ValueError:
            raise click.BadParameter(
                f"{language!r} is not a language; write an ISO 639-1 code such as en or de",
                param_hint="--language",
            ) from None
    limits = {"max_words": cfg.max_words, "max_words_oneliner": cfg.max_words_oneliner}
    if jsonl:
        for line in summarize_jsonl(
            sys.stdin,
            sentences=n,
            method=m,
            language=forced,
            fallback_language=fallback,
            **limits,
        ):
            click.echo(line)
        return
    body, url = _read_input(source, _collect_cfg(app))
    text = body.decode("utf-8", errors="replace")
    declared = None
    if text.lstrip()[:1] == "<":
        with contextlib.suppress(ExtractError):  # not a page after all: summarize as text
            page = extract_page(body, url)
            text, declared = page.text, page.declared_language
            title = title or page.title
    lang, how = choose_language(text, source=forced, page=declared, fallback=fallback)
    how = "--language" if how == "source" else how
    decisions = explain_summary(text, sentences=n, method=m, language=lang, title=title, **limits)
    if as_json:
        summary = [d.text for d in decisions if d.chosen]
        data = {"language": lang or None, "language_from": how, "summary": summary}
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"language: {lang or 'unknown'} ({how})", err=True)
    for d in decisions:
        if not explain:
            if d.chosen:
                click.echo(d.text)
            continue
        mark = "+" if d.chosen else "-"
        what = "chosen" if d.chosen else "skipped"
        click.echo(f"{mark} [{d.index + 1}] {what}: {d.reason}\n    {d.text}")
