"""The archive: past issues as they were sent, with no reader's token in them.

GET  /archive                  past issues, newest first
GET  /archive/YYYY-MM-DD       an issue as sent, then "More stories today": the
                               day's stories the email left out
GET  /archive/YYYY-MM-DD.json  the composed issue as JSON (digest.compose.document)
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from html import escape
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from digest.mail.tokens import strip_tokens
from digest.store import StoredIssue
from digest.text import i18n
from digest.text.storytime import fill_times
from digest.web.pages import HEADERS, Pages

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ARCHIVE_LIMIT = 1000
# Archived issues load remote images and inline styles, and post nothing.
ARCHIVE_HEADERS = {
    **HEADERS,
    "Cache-Control": "public, max-age=300",
    "Content-Security-Policy": (
        "default-src 'none'; img-src https: http:; style-src 'unsafe-inline'; "
        "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


class ArchivePages(Pages):
    """The archive's list, its issues and their JSON."""

    async def archive(self, request: Request) -> Response:
        """List past issues, newest first."""
        issues: list[StoredIssue] = await run_in_threadpool(
            lambda: self.store.list_issues(limit=ARCHIVE_LIMIT)
        )
        if not issues:
            return self.page(self._("Archive"), "<p>" + self._("No issues yet.") + "</p>")
        rows = "".join(
            f'<li><span class="date">{escape(self._date(i.date))}</span>'
            f'<a href="{self.prefix}/archive/{escape(i.date)}">{escape(i.subject)}</a></li>'
            for i in issues
        )
        return self.page(self._("Archive"), f"<ul>{rows}</ul>")

    def _date(self, iso: str) -> str:
        """Return an issue's ISO date as the site's language writes it in full."""
        try:
            return i18n.long_date(date.fromisoformat(iso), self.language)
        except ValueError:
            return iso

    async def archived_issue(self, request: Request) -> Response:
        """Show one issue as it was sent, with no subscriber's token in it."""
        date = request.path_params["date"]
        issue = None
        if _DATE.fullmatch(date):
            issue = await run_in_threadpool(lambda: self.store.issue_for_date(date))
        if issue is None:
            return self.page(
                self._("Not found"),
                "<p>" + self._("There is no issue for that date.") + "</p>",
                404,
            )
        # Cached and read at any time later: story times are absolute ("07:42").
        day = datetime.fromisoformat(date).date()
        html = fill_times(
            issue.html, self.config.site.tz, now=None, day=day, html=True, language=self.language
        )
        html = strip_tokens(html)
        more = more_stories_html(json.loads(issue.doc), self.language) if issue.doc else ""
        if more:
            cut = html.rfind("</body>")
            html = html[:cut] + more + html[cut:] if cut >= 0 else html + more
        return HTMLResponse(html, headers=ARCHIVE_HEADERS)

    async def archived_json(self, request: Request) -> Response:
        """Return one issue as composed, in the JSON format of `digest preview --json`."""
        date = request.path_params["date"]
        issue = None
        if _DATE.fullmatch(date):
            issue = await run_in_threadpool(lambda: self.store.issue_for_date(date))
        if issue is None or not issue.doc:
            return JSONResponse({"error": "no issue for that date"}, status_code=404)
        headers = {**ARCHIVE_HEADERS, "Content-Type": "application/json; charset=utf-8"}
        return Response(issue.doc, headers=headers)


def _http(url: object) -> str:
    text = url if isinstance(url, str) else ""
    return text if urlsplit(text).scheme in ("http", "https") and "\n" not in text else ""


def _story_item(story: dict[str, Any]) -> str:
    title = escape(str(story.get("title") or "(untitled)"))
    url = _http(story.get("url"))
    head = f'<a href="{escape(url)}">{title}</a>' if url else f"<strong>{title}</strong>"
    summary = " ".join(str(x) for x in story.get("summary") or ())
    also = [
        f'<a href="{escape(u)}">{escape(str(a.get("source", "")))}</a>'
        if (u := _http(a.get("url")))
        else escape(str(a.get("source", "")))
        for a in story.get("also") or ()
    ]
    return (
        f"<li>{head}<br><small>{escape(str(story.get('source', '')))}"
        + (f" · Also: {', '.join(also)}" if also else "")
        + "</small>"
        + (f"<br>{escape(summary)}" if summary else "")
        + "</li>"
    )


def more_stories_html(doc: dict[str, Any], language: str = "en") -> str:
    """Return the archive's "More stories today" list for an issue document, or ""."""
    more = [s for s in doc.get("more") or () if isinstance(s, dict)]
    if not more:
        return ""
    items = "".join(_story_item(s) for s in more)
    return (
        '<div id="more" style="max-width:600px;margin:0 auto;padding:8px 20px 32px;'
        "font:15px/1.5 -apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,"
        'sans-serif"><h2 style="font-size:18px">'
        + escape(i18n.translate(language, "More stories today"))
        + "</h2>"
        f'<ul style="padding-left:18px">{items}</ul></div>'
    )
