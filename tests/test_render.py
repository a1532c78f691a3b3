"""render + emailsafety: real Jinja and premailer on a full issue, hostile input, overrides."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.errors import RenderError
from digest.models import TOKEN_PLACEHOLDER, Article, Issue, RenderedIssue, Story
from digest.render import make_environment, render_issue, safe_url
from digest.render.emailsafety import check_email_html
from digest.text.clean import html_to_text
from digest.text.storytime import fill_times
from tests.httpserver import LocalHTTPServer, Response

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
SITE = "https://news.example.com/"
UNSUBSCRIBE = f"https://news.example.com/unsubscribe?token={TOKEN_PLACEHOLDER}"
VIEW = "https://news.example.com/archive/2026-11-25"

TOPICS = [
    (
        "City council doubles spending on public transport",
        "The plan adds twelve bus lines and extends two tram routes to the northern suburbs.",
    ),
    (
        "Researchers report faster charging for lithium-sulfur batteries",
        "Two independent groups found a cathode coating that survives a thousand cycles.",
    ),
    (
        "Regional airport to close its second runway for repairs",
        "Flights will be concentrated on the main runway from March until the end of June.",
    ),
    (
        "Local team wins the cup final after extra time",
        "A header in the 112th minute settled a tense match in front of 40,000 fans.",
    ),
    (
        "Heat pumps outsell gas boilers for the first time",
        "Installers say subsidies and falling prices drove the shift over the summer months.",
    ),
    (
        "Library extends opening hours during exam season",
        "Students can study until midnight on weekdays from the first of December.",
    ),
]
CITIES = ["Leipzig", "Porto", "Lyon", "Gdańsk", "Turin"]


def story(i: int, title: str, summary: str, image: str | None = None) -> Story:
    article = Article(
        source=["City Desk", "Science Daily", "Sport & Leisure"][i % 3],
        guid=f"g{i}",
        url=f"https://news.example.com/{i}/{title.lower().replace(' ', '-')}?utm=x&id={i}",
        title=title,
        text=(summary + " ") * 40,
        published=NOW - timedelta(minutes=37 * i + 3),
        author="Jane Doe",
        image=image,
    )
    return Story(article, (summary, "Officials expect the work to finish in three years."))


def big_issue(roundup: int = 30) -> Issue:
    lead = story(
        0,
        "Council approves a budget that doubles transport spending",
        "The city council approved a new budget on Tuesday that doubles spending on public "
        "transport over the next five years, the mayor's office said.",
        image="https://cdn.example.com/img/council.jpg",
    )
    items = tuple(
        story(i, f"{TOPICS[i % 6][0]} in {CITIES[i % 5]}", TOPICS[i % 6][1])
        for i in range(1, roundup + 1)
    )
    return Issue(
        site_name="The Daily Digest", site_url=SITE, date="2026-11-25", created_at=NOW,
        lead=lead, roundup=items,
    )  # fmt: skip


def render(
    issue: Issue,
    templates: Path | None = None,
    subject_template: str = "{headlines}",
    max_subject: int = 70,
    postal_address: str = "",
) -> RenderedIssue:
    return render_issue(
        issue,
        env=make_environment(templates),
        now=NOW,
        tz=BERLIN,
        subject_template=subject_template,
        max_subject=max_subject,
        unsubscribe_url=UNSUBSCRIBE,
        view_url=VIEW,
        postal_address=postal_address,
    )


def at_send(text: str, minutes_later: float = 0, *, html: bool = False) -> str:
    """Return rendered text as a reader gets it when it is sent `minutes_later` than NOW."""
    return fill_times(text, BERLIN, now=NOW + timedelta(minutes=minutes_later), html=html)


def flat(s: str) -> str:
    return " ".join(s.split())


def test_full_issue_is_email_safe_and_inlined() -> None:
    issue = big_issue(30)
    out = render(issue)
    html = out.html
    assert check_email_html(html) == []
    assert len(html.encode("utf-8")) < 102_000
    assert "<script" not in html.lower()
    assert html.startswith("<!DOCTYPE html>")
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "<!--[if mso]>" in html
    # styles are inlined onto elements...
    assert re.search(r'<h1 class="lead-title" style="[^"]*font-size:26px', html)
    assert re.search(r'<img class="lead-image" [^>]*width="560"[^>]*style="display:block', html)
    # ...and only the @media blocks stay behind, in <style>
    outside_comments = re.sub(r"<!--.*?-->", "", html, flags=re.S)
    styles = re.findall(r"<style>(.*?)</style>", outside_comments, re.S)
    assert len(styles) == 1
    assert "@media (max-width: 479px)" in styles[0]  # a 600px reading pane is not a phone
    assert "@media (prefers-color-scheme: dark)" in styles[0]
    assert ".lead-title {" in styles[0] and "!important" in styles[0]
    assert html.count('class="item-title"') == 30
    sent = at_send(html, html=True)
    assert "Recent posts" in sent and "Science Daily · 40 minutes ago" in sent
    assert "City Desk · 1 hour ago" in sent and "City Desk · 3 hours ago" in sent
    assert "Sport &amp; Leisure" in html  # source names are escaped text too
    assert "Wednesday, November 25, 2026" in html
    assert f'href="{UNSUBSCRIBE}"' in html and f'href="{VIEW}"' in html
    assert out.preheader.startswith("The city council approved a new budget")
    assert out.preheader in html and len(out.preheader) <= 150
    # The lead's title alone: a second one would not fit in 70; the site is in From.
    assert out.subject == "Council approves a budget that doubles transport spending"
    assert out.date == "2026-11-25"


def test_text_part_reads_well() -> None:
    issue = big_issue(30)
    text = render(issue).text
    assert text.startswith("THE DAILY DIGEST\nWednesday, November 25, 2026\n")
    for s in issue.stories:
        assert s.article.title in flat(text)
    assert f"Read more: {issue.lead.article.url}" in text
    for n, s in enumerate(issue.roundup, start=1):
        assert f"\n[{n}] {s.article.url}\n" in text
        assert re.search(rf"^{n}\. ", text, re.M)
    assert "Sport & Leisure · " in text  # plain text is not HTML-escaped
    assert "&amp;" not in text
    assert f"Unsubscribe: {UNSUBSCRIBE}" in text
    assert all(len(line) <= 72 or "https://" in line for line in text.splitlines())
    assert "\n\n\n" not in text


def test_hostile_story_is_escaped_and_unlinked() -> None:
    title = html_to_text("Hello <script>alert(1)</script> world")
    assert title == "Hello world"
    hostile = Story(
        article=Article(
            source='Evil <b onmouseover="x()">Feed</b>',
            guid="evil",
            url="javascript:alert(1)",
            title=title,
            text="Some text.",
            published=NOW - timedelta(hours=4),
            image="javascript:alert(2)",
        ),
        sentences=("Look <img src=x onerror=alert(1)> here.",),
    )
    roundup_hostile = replace(
        hostile, article=replace(hostile.article, url=" JaVaScRiPt:alert(3)", guid="evil2")
    )
    issue = replace(big_issue(2), lead=hostile, roundup=(roundup_hostile, *big_issue(2).roundup))
    out = render(issue)
    html = out.html
    assert check_email_html(html) == []
    assert "Hello world" in html
    assert "<script" not in html.lower() and "javascript:" not in html.lower()
    assert "<img src=x" not in html and "onerror=alert" not in html.replace(
        "&lt;img src=x onerror=alert(1)&gt;", ""
    )
    assert "Look &lt;img src=x onerror=alert(1)&gt; here." in html
    assert "&lt;b onmouseover=" in html and "<b " not in html
    assert "lead-image" not in html.split("</style>")[1]  # no image without an http(s) URL
    assert "Read more" not in html  # no button without a link
    assert "javascript:" not in out.text.lower()
    assert "Look <img src=x onerror=alert(1)> here." in out.text  # plain text, harmless
    # the roundup item without a link gets no [n] and no entry in the link list
    assert "1. Hello world\n" in out.text and "\n[1] " not in out.text
    assert "\n[2] https://" in out.text


def test_subject_is_one_capped_line() -> None:
    evil = "Breaking\r\nBcc: victim@example.com\x00 news \u202egnp.exe\u2066 " + "x" * 2000
    issue = big_issue(1)
    issue = replace(
        issue, lead=replace(issue.lead, article=replace(issue.lead.article, title=evil))
    )
    out = render(issue, subject_template="{site} {date}: {lead}", max_subject=120)
    assert len(out.subject) <= 120 and out.subject.endswith("…")
    assert out.subject.startswith("The Daily Digest November 25, 2026: Breaking Bcc:")
    for bad in ("\r", "\n", "\x00", "\u202e", "\u2066"):
        assert bad not in out.subject and bad not in out.preheader
    assert check_email_html(out.html) == []


def test_bad_subject_placeholder_is_a_render_error() -> None:
    with pytest.raises(RenderError, match=r"\{headlines\}, \{lead\}, \{site\} and \{date\}"):
        render(big_issue(1), subject_template="{site} {nope}")


def test_user_template_folder_overrides_shipped(tmp_path: Path) -> None:
    (tmp_path / "digest.txt").write_text(
        "CUSTOM {{ site_name }}: {{ lead.title }}\n{% for i in roundup %}* {{ i.title }}\n"
        "{% endfor %}Bye {{ unsubscribe_url }}\n",
        encoding="utf-8",
    )
    out = render(big_issue(2), tmp_path)
    assert out.text.startswith(
        "CUSTOM The Daily Digest: Council approves a budget that doubles transport spending\n"
    )
    assert out.text.count("\n* ") == 2 and TOKEN_PLACEHOLDER in out.text
    # the HTML still comes from the shipped templates
    assert 'class="lead-title"' in out.html and check_email_html(out.html) == []


def test_user_base_html_override_keeps_shipped_digest_html(tmp_path: Path) -> None:
    shipped = (Path(__file__).parent.parent / "templates" / "base.html").read_text("utf-8")
    (tmp_path / "base.html").write_text(
        shipped.replace("You are receiving this", "Thanks for reading; you get this"), "utf-8"
    )
    out = render(big_issue(2), tmp_path)
    assert "Thanks for reading; you get this" in out.html and 'class="lead-title"' in out.html


def test_template_errors_name_the_template_and_line(tmp_path: Path) -> None:
    (tmp_path / "digest.html").write_text(
        "{% extends 'base.html' %}\n{% block content %}\n{% if %}\n{% endblock %}\n", "utf-8"
    )
    with pytest.raises(RenderError, match=r"digest\.html, line 3"):
        render(big_issue(1), tmp_path)
    (tmp_path / "digest.html").unlink()
    (tmp_path / "digest.txt").write_text("ok {{ site_name }}\n{{ lead.nope }}\n", "utf-8")
    with pytest.raises(RenderError, match=r"digest\.txt, line 2.*nope"):
        render(big_issue(1), tmp_path)


def test_missing_templates_folder_is_a_render_error(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="does not exist"):
        make_environment(tmp_path / "nowhere")


def test_unsubscribe_must_be_a_real_link() -> None:
    with pytest.raises(RenderError, match="unsubscribe_url"):
        render_issue(
            big_issue(1), env=make_environment(None), now=NOW, tz=BERLIN,
            unsubscribe_url="javascript:alert(1)", view_url=VIEW,
        )  # fmt: skip


def test_inlining_never_fetches_stylesheets(tmp_path: Path, http_server: LocalHTTPServer) -> None:
    http_server.routes["/x.css"] = Response(body=".lead-title{color:red}", content_type="text/css")
    shipped = (Path(__file__).parent.parent / "templates" / "base.html").read_text("utf-8")
    link = f'<meta charset="utf-8">\n<link rel="stylesheet" href="{http_server.url("/x.css")}">'
    (tmp_path / "base.html").write_text(shipped.replace('<meta charset="utf-8">', link), "utf-8")
    out = render(big_issue(1), tmp_path)
    assert http_server.requests == []
    assert any("<link>" in p for p in check_email_html(out.html))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/a?b=1&c=2", "https://example.com/a?b=1&c=2"),
        ("  http://example.com/a b  ", "http://example.com/a%20b"),
        ("javascript:alert(1)", ""),
        ("data:text/html,<b>x</b>", ""),
        ("//example.com/x", ""),
        ("/relative/path", ""),
        ("https:///nohost", ""),
        ("https://example.com/\nSet-Cookie", ""),
        ("http://[::1", ""),
        (None, ""),
    ],
)
def test_safe_url(url: str | None, expected: str) -> None:
    assert safe_url(url) == expected


@pytest.mark.parametrize(
    ("snippet", "needle"),
    [
        ("<script>alert(1)</script>", "<script>"),
        ('<iframe src="https://x.example/"></iframe>', "<iframe>"),
        ('<form action="https://x.example/"></form>', "<form>"),
        ('<object data="x"></object>', "<object>"),
        ('<embed src="https://x.example/e">', "<embed>"),
        ('<link rel="stylesheet" href="https://x.example/s.css">', "<link>"),
        ('<base href="https://x.example/">', "<base>"),
        ('<meta http-equiv="Refresh" content="0;url=https://x.example/">', "refresh"),
        ('<p onclick="x()">hi</p>', "onclick"),
        ('<a href="java\tscript:alert(1)">x</a>', "dangerous URL"),
        ('<img src="data:image/png;base64,AAAA" alt="" width="1">', "dangerous URL"),
        ('<a href="vbscript:msgbox">x</a>', "dangerous URL"),
        ('<a href="/relative">x</a>', "absolute http(s)"),
        ('<a href="ftp://x.example/f">x</a>', "absolute http(s)"),
        ('<img src="https://x.example/i.png" width="10">', "no alt"),
        ('<img src="https://x.example/i.png" alt="x">', "no width"),
        ("<table><tr><td>x</td></tr></table>", 'role="presentation"'),
        ("<style>.x { color: red }</style>", "not inlined"),
        ("<style>@import url(https://x.example/s.css);</style>", "active CSS"),
        ('<p style="width: expression(alert(1))">x</p>', "active CSS"),
    ],
)
def test_check_email_html_catches(snippet: str, needle: str) -> None:
    problems = check_email_html(f"<html><body>{snippet}</body></html>")
    assert any(needle in p for p in problems), problems


def test_check_email_html_accepts_mailto_media_and_flags_size() -> None:
    ok = (
        "<html><head><style>@media (max-width: 620px) { .a { width: 100% !important } }</style>"
        '</head><body><table role="presentation"><tr><td>'
        '<a href="mailto:editor@example.com">Write to us</a></td></tr></table></body></html>'
    )
    assert check_email_html(ok) == []
    big = ok.replace("Write to us", "x" * 102_001)
    assert any("Gmail clips" in p for p in check_email_html(big))


def test_render_time_for_thirty_items() -> None:
    issue = big_issue(30)
    env = make_environment(None)
    render_issue(issue, env=env, now=NOW, tz=BERLIN, unsubscribe_url=UNSUBSCRIBE, view_url=VIEW)
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        out = render_issue(
            issue, env=env, now=NOW, tz=BERLIN, unsubscribe_url=UNSUBSCRIBE, view_url=VIEW
        )
        runs.append(time.perf_counter() - start)
    print(f"\nrender+inline, 1 lead + 30 roundup: best {min(runs) * 1000:.1f} ms, "
          f"{len(out.html.encode()) / 1024:.1f} KB HTML")  # fmt: skip
    assert out.html.count('class="item-title"') == 30


def test_long_tokens_get_break_opportunities_after_escaping() -> None:
    from digest.render import BREAK_EVERY, breakable

    MARK = "\ue000"

    assert (
        str(breakable("short words & <b>tags</b>")) == "short words &amp; &lt;b&gt;tags&lt;/b&gt;"
    )
    token = "<&>" + "x" * 100
    out = str(breakable(f"a {token} b"))
    assert out.startswith("a &lt;&amp;&gt;") and out.endswith(" b")
    pieces = out[2:-2].split(MARK)  # the mark becomes <wbr> once premailer is done
    assert "".join(pieces) == "&lt;&amp;&gt;" + "x" * 100  # nothing lost, nothing split mid-entity
    assert all(
        len(p.replace("&lt;", "<").replace("&amp;", "&").replace("&gt;", ">")) <= BREAK_EVERY
        for p in pieces
    )
    url = "https://example.com/a-very/long/path/that/goes/on?and=on&on=and"
    assert "/" + MARK in str(breakable(url)) and "&amp;" in str(breakable(url))
    # A time placeholder is one token that delivery replaces: never broken.
    from digest.text.storytime import time_placeholder

    ph = time_placeholder(NOW)
    assert str(breakable(f"City Desk · {ph}")) == f"City Desk · {ph}"
    assert str(breakable(MARK * 5 + "ok")) == "ok"  # the mark cannot be smuggled in


def test_long_tokens_break_in_shown_text_but_never_in_links() -> None:
    token = "https://example.com/" + "segment/" * 40
    lead = replace(big_issue(1).lead.article, title=f"See {token}", url=token)
    issue = replace(big_issue(1), lead=Story(lead, (f"Summary with {token} inside.",)))
    html = render(issue).html
    assert f'href="{token}"' in html  # the link target is untouched
    title = re.search(r'<h1 class="lead-title"[^>]*>(.*?)</h1>', html, re.S)
    assert title is not None and title[1].count("<wbr>") >= len(token) // 16
    assert "</wbr>" not in html and check_email_html(html) == []
    assert token in render(issue).text  # the text part stays copyable


def test_default_subject_is_the_headlines_within_70() -> None:
    issue = big_issue(3)
    # Lead 57 characters: a second headline would not fit.
    assert render(issue).subject == issue.lead.article.title
    short = replace(issue.lead.article, title="Budget passes")
    second = replace(issue.roundup[0].article, title="Cup final goes to extra time")
    issue = replace(
        issue,
        lead=Story(short, issue.lead.sentences),
        roundup=(Story(second, ("x",)), *issue.roundup[1:]),
    )
    assert render(issue).subject == "Budget passes · Cup final goes to extra time"
    long = replace(issue.lead.article, title="A headline that goes on " * 8)
    cut = render(replace(issue, lead=Story(long, issue.lead.sentences))).subject
    assert len(cut) <= 70 and cut.endswith("…") and "Daily Digest" not in cut


def test_postal_address_in_both_parts_only_when_set() -> None:
    address = "Example News Ltd\n1 Main Street, 10115 Berlin"
    out = render(big_issue(2), postal_address=address)
    shown = "Example News Ltd, 1 Main Street, 10115 Berlin"
    assert shown in out.text and shown in out.html
    assert 'class="postal-address"' in out.html.split("</style>")[-1]
    bare = render(big_issue(2))
    assert "Main Street" not in bare.text and "postal-address" not in bare.html


def test_view_in_browser_comes_first_and_times_only_for_dated_stories() -> None:
    issue = big_issue(2)
    undated = replace(issue.roundup[0].article, published=None, first_seen=NOW)
    issue = replace(issue, roundup=(Story(undated, ("An undated story.",)), *issue.roundup[1:]))
    out = render(issue)
    body = out.html.split("<body", 1)[1]
    assert body.index("View in browser") < body.index('class="site-name"')
    sent = at_send(out.text, 120)
    assert "just now" not in sent and "2 hours ago" in sent
    item = sent.split("1. ", 1)[1].split("\n\n", 1)[0]
    assert "ago" not in item and "just now" not in item  # no time when undated
    assert 'alt=""' in out.html  # the headline follows the image: no second headline


@pytest.mark.parametrize(
    ("size", "box"),
    [
        ((1200, 630), (560, 294)),  # landscape: full width, height from its ratio
        ((1000, 2400), (150, 360)),  # portrait: narrower rather than taller than 360
        ((300, 200), (300, 200)),  # small: never enlarged
        ((None, None), (560, 0)),  # unknown: width only, CSS caps the height
        ((0, 500), (560, 0)),
    ],
)
def test_lead_image_box(size: tuple[int | None, int | None], box: tuple[int, int]) -> None:
    art = replace(big_issue(1).lead.article, image_width=size[0], image_height=size[1])
    html = render(replace(big_issue(1), lead=Story(art, ("Text.",)))).html
    img = re.search(r'<img class="lead-image"[^>]*>', html)
    assert img is not None and f'width="{box[0]}"' in img[0]
    assert (f'height="{box[1]}"' in img[0]) if box[1] else ("height=" not in img[0])
    assert "max-height:360px" in img[0] and "object-fit:cover" in img[0]
