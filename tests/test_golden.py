"""Golden files: the rendered HTML, text and MIME message of a fixed sample issue.

Any change to the templates, the renderer or the message builder shows up here as a
diff. When the change is intended, regenerate the files and review the diff in git:

    DIGEST_REGEN_GOLDEN=1 pytest tests/test_golden.py

Message-ID, MIME boundary and Date are scrubbed: they differ on every send.
"""

from __future__ import annotations

import difflib
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.config import SiteConfig, SmtpConfig
from digest.mail.message import build_template, format_date
from digest.models import TOKEN_PLACEHOLDER, Article, Issue, RenderedIssue, Story
from digest.render import make_environment, render_issue
from digest.render.emailsafety import check_email_html
from digest.render.lint import lint_issue, lint_message

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("DIGEST_REGEN_GOLDEN") == "1"
NOW = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
SITE = SiteConfig(
    name="The Daily Digest",
    url="https://news.example.com",
    timezone="Europe/Berlin",
    postal_address="Example News Ltd\n1 Main Street, 10115 Berlin",
)
SENT = NOW + timedelta(hours=2)  # the golden message goes out two hours after rendering
SMTP = SmtpConfig(
    host="127.0.0.1",
    security="none",
    from_="The Daily Digest <digest@news.example.com>",
    unsubscribe_mailto="unsubscribe@news.example.com",
)


def _story(
    n: int,
    source: str,
    title: str,
    sentences: tuple[str, ...],
    *,
    url: bool = True,
    author: str | None = None,
    image: str | None = None,
) -> Story:
    article = Article(
        source=source,
        guid=f"sample-{n}",
        url=f"https://news.example.com/sample/{n}" if url else "",
        title=title,
        text=" ".join(sentences),
        published=NOW - timedelta(minutes=25 * n + 10),
        author=author,
        image=image,
    )
    return Story(article, sentences)


def sample_issue() -> Issue:
    """Return the fixed sample issue: a lead with an image and a varied roundup."""
    lead = _story(
        0,
        "City Desk",
        "Council approves a budget that doubles transport spending",
        (
            "The city council approved a budget on Tuesday that doubles spending on public "
            "transport over the next five years.",
            "Twelve new bus lines will open and two tram routes reach the northern suburbs.",
            "Critics say the plan leaves cycling with less than promised.",
        ),
        author="Jane Doe",
        image="https://cdn.example.com/img/council.jpg",
    )
    roundup = (
        _story(
            1,
            "Science Daily",
            "Researchers report faster charging for lithium-sulfur batteries",
            ("Two groups found a cathode coating that survives a thousand charge cycles.",),
        ),
        _story(
            2,
            "Sport & Leisure",
            "Local team wins the cup final after extra time",
            ("A header in the 112th minute settled a tense match in front of 40,000 fans.",),
        ),
        _story(
            3,
            "City Desk",
            "Library extends opening hours during exam season",
            ("Students can study until midnight on weekdays from the first of December.",),
            url=False,
        ),
        _story(
            4,
            "Science Daily",
            "Donaudampfschifffahrtsgesellschaftskapitänswitwenrentenversicherung explained",
            ("Some words are longer than a phone screen is wide; the layout must cope.",),
        ),
    )
    return Issue(
        site_name=SITE.name,
        site_url=SITE.url + "/",
        date="2026-11-25",
        created_at=NOW,
        lead=lead,
        roundup=roundup,
    )


def render_sample(issue: Issue | None = None) -> RenderedIssue:
    """Render the sample issue (or a variant of it) with the shipped templates."""
    base = SITE.url
    return render_issue(
        issue or sample_issue(),
        env=make_environment(None),
        now=NOW,
        tz=SITE.tz,
        unsubscribe_url=f"{base}/unsubscribe?token={TOKEN_PLACEHOLDER}",
        view_url=f"{base}/archive/2026-11-25",
        preferences_url=f"{base}/preferences?token={TOKEN_PLACEHOLDER}",
        postal_address=SITE.postal_address,
    )


def scrub(message: bytes) -> str:
    """Return a message as LF text with its per-send values replaced by fixed markers."""
    text = message.decode("ascii").replace("\r\n", "\n")
    text = re.sub(r"^Message-ID: <[^>]+>$", "Message-ID: <SCRUBBED>", text, flags=re.M)
    text = re.sub(r"^Date: .*$", "Date: SCRUBBED", text, flags=re.M)
    return re.sub(r"=_digest_[0-9a-f]+", "=_digest_BOUNDARY", text)


def build_message(issue: RenderedIssue) -> bytes:
    template = build_template(issue, smtp=SMTP, site=SITE)
    return template.render(
        to="<reader@example.org>",
        date=format_date(SENT),
        message_id=template.new_message_id("golden"),
        token="SUBSCRIBERTOKEN",
        times=template.times_at(SENT),
    )


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
    expected = path.read_text(encoding="utf-8") if path.exists() else ""
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), f"golden/{name}", "rendered", lineterm=""
        )
        shown = "\n".join(list(diff)[:80])
        pytest.fail(
            f"{name} differs from the golden file; if intended, run "
            f"DIGEST_REGEN_GOLDEN=1 pytest tests/test_golden.py and review the diff\n{shown}",
            pytrace=False,
        )


def test_golden_html() -> None:
    html = render_sample().html
    assert check_email_html(html) == []
    check_golden("issue.html", html)


def test_golden_text() -> None:
    rendered = render_sample()
    assert lint_issue(rendered) == []
    check_golden("issue.txt", rendered.text)


def test_golden_message() -> None:
    raw = build_message(render_sample())
    assert lint_message(raw) == []
    assert b"SUBSCRIBERTOKEN" in raw and TOKEN_PLACEHOLDER.encode() not in raw
    check_golden("message.eml", scrub(raw))


def test_scrub_replaces_every_per_send_value() -> None:
    a = scrub(build_message(render_sample()))
    b = scrub(build_message(render_sample()))
    assert a == b  # fresh Message-ID and boundary each time, identical once scrubbed
    assert "Message-ID: <SCRUBBED>" in a and "Date: SCRUBBED" in a
    assert "=_digest_BOUNDARY" in a and "\r" not in a
