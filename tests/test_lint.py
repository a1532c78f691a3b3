"""The issue lint: a clean rendered issue passes; each kind of damage is named."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import Config, SiteConfig, SmtpConfig
from digest.mail.message import build_template, format_date
from digest.models import TOKEN_PLACEHOLDER, Article, Issue, RenderedIssue, Story
from digest.render import DEFAULT_MAX_SUBJECT, DEFAULT_SUBJECT, make_environment, render_issue
from digest.render.lint import Finding, check_issue, lint_issue, lint_message

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
ROOT = Path(__file__).parent.parent
ADDRESS = "Example News Ltd\n1 Main Street, Springfield"
SITE = SiteConfig(name="The Daily Digest", url="https://news.example.com", postal_address=ADDRESS)
UNSUB = f"https://news.example.com/unsubscribe?token={TOKEN_PLACEHOLDER}"
SMTP = SmtpConfig(
    host="127.0.0.1",
    security="none",
    from_="The Daily Digest <digest@news.example.com>",
    unsubscribe_mailto="unsubscribe@news.example.com",
)


def rendered(
    roundup: int = 3,
    title: str = "Council approves the budget",
    postal_address: str = "",
    subject: tuple[str, int] = ("{site}: {lead}", 120),
) -> RenderedIssue:
    def story(i: int, text: str) -> Story:
        article = Article(
            source="City Desk",
            guid=f"g{i}",
            url=f"https://news.example.com/{i}",
            title=title if i == 0 else f"Story number {i}",
            text=text,
            published=NOW,
            image="https://cdn.example.com/lead.jpg" if i == 0 else None,
        )
        return Story(article, (text,))

    issue = Issue(
        site_name="The Daily Digest",
        site_url="https://news.example.com/",
        date="2026-11-25",
        created_at=NOW,
        lead=story(0, "The council approved a budget on Tuesday."),
        roundup=tuple(story(i, "Something happened in town. " * 8) for i in range(1, roundup + 1)),
    )
    return render_issue(
        issue,
        env=make_environment(None),
        now=NOW,
        tz=ZoneInfo("Europe/Berlin"),
        subject_template=subject[0],
        max_subject=subject[1],
        unsubscribe_url=UNSUB,
        view_url="https://news.example.com/archive/2026-11-25",
        postal_address=postal_address,
    )


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def test_shipped_templates_pass_the_lint() -> None:
    issue = rendered()
    assert lint_issue(issue) == []
    assert '<img class="lead-image"' in issue.html  # the image checks had something to check


def test_size_near_and_over_gmail_clip() -> None:
    issue = rendered()
    pad = "<!-- " + "x" * (95_000 - len(issue.html)) + " -->"
    near = lint_issue(replace(issue, html=issue.html.replace("</body>", pad + "</body>")))
    assert codes(near) == ["size"] and "close to Gmail" in near[0].message
    over = replace(issue, html=issue.html.replace("</body>", pad + pad + "</body>"))
    (finding,) = lint_issue(over)
    assert finding.code == "size" and "clips" in finding.message
    assert "max_roundup" in finding.message


@pytest.mark.parametrize(
    ("old", "new", "code", "needle"),
    [
        ('alt=""', "", "image", "no alt"),
        ('width="560"', "", "image", "no width"),
        ("display:block", "display:inline", "image", "not display:block"),
        ('href="https://news.example.com/1"', 'href="/1"', "link", "absolute http(s)"),
        ('href="https://news.example.com/1"', 'href="ftp://x.example/1"', "link", "absolute"),
        ('href="https://news.example.com/1"', 'href="javascript:alert(1)"', "link", "dangerous"),
        ("<style>", "<style>.lead-title { color: red }\n", "style", "not inlined"),
        ("<body", "<script>x()</script><body", "unsafe", "<script>"),
        (UNSUB, "https://news.example.com/unsubscribe", "unsubscribe", "no unsubscribe link"),
        ("https://news.example.com/unsub", "http://news.example.com/unsub", "unsubscribe", "https"),
    ],
)  # fmt: skip
def test_html_damage_is_named(old: str, new: str, code: str, needle: str) -> None:
    issue = rendered()
    assert old in issue.html
    findings = lint_issue(replace(issue, html=issue.html.replace(old, new)))
    assert code in codes(findings), findings
    assert any(needle in f.message for f in findings if f.code == code), findings


def test_text_part_must_exist_be_text_and_carry_the_unsubscribe_link() -> None:
    issue = rendered()
    assert codes(lint_issue(replace(issue, text="  \n"))) == ["text"]
    html_as_text = "<p>Hello</p><p><a href='x'>there</a></p>\n" + UNSUB
    (finding,) = lint_issue(replace(issue, text=html_as_text))
    assert finding.code == "text" and "HTML tags" in finding.message
    (finding,) = lint_issue(replace(issue, text=issue.text.replace(TOKEN_PLACEHOLDER, "x")))
    assert finding.code == "unsubscribe" and "plain-text" in finding.message


def test_subject_and_preheader() -> None:
    issue = rendered(title="A long headline that goes on and on about the city budget and buses")
    (finding,) = lint_issue(issue)
    assert finding.code == "subject" and f"is {len(issue.subject)} characters" in finding.message
    assert "readers see 'The Daily Digest: A long headline" in finding.message
    assert lint_issue(issue, subject_shown=120) == []
    # The default subject never trips the lint: max_subject defaults to what inboxes show.
    title = "A long headline that goes on and on about the city budget " * 3
    default = rendered(title=title, subject=(DEFAULT_SUBJECT, DEFAULT_MAX_SUBJECT))
    assert lint_issue(default) == [] and default.subject.startswith("A long headline")
    assert codes(lint_issue(replace(rendered(), subject=" "))) == ["subject"]
    assert codes(lint_issue(replace(rendered(), preheader=""))) == ["preheader"]
    assert str(Finding("subject", "x")) == "subject: x"


def built(issue: RenderedIssue) -> bytes:
    template = build_template(issue, smtp=SMTP, site=SITE)
    return template.render(
        to="<reader@example.org>",
        date=format_date(NOW),
        message_id="<1@news.example.com>",
        token="abc",
    )


def test_built_message_passes_and_missing_headers_are_named() -> None:
    raw = built(rendered())
    assert lint_message(raw) == []
    no_post = re.sub(rb"List-Unsubscribe-Post:[^\r]*\r\n", b"", raw)
    assert [f.message for f in lint_message(no_post)] == [
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click is missing (RFC 8058)"
    ]
    no_list = re.sub(rb"List-Unsubscribe:.*?\r\n(?! )", b"", raw, flags=re.S)
    assert "no List-Unsubscribe header" in str(lint_message(no_list))
    http_only = built(rendered()).replace(b"<https://news.example.com/unsub", b"<http://x/")
    assert "no https URI" in str(lint_message(http_only))


def test_html_only_message_lacks_a_text_part() -> None:
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["Subject"] = "Hi"
    msg.set_content("<p>hi</p>", subtype="html")
    findings = lint_message(msg.as_bytes())
    assert "text" in codes(findings)
    assert "the message has no Message-ID header" in [f.message for f in findings]
    assert "the message has no List-Unsubscribe header" in [f.message for f in findings]


def test_check_issue_adds_the_message_checks_when_smtp_is_set(tmp_path: Path) -> None:
    issue = rendered(postal_address=ADDRESS)
    config = Config(path=tmp_path / "config.toml", site=SITE, sources=())
    assert check_issue(config, issue, now=NOW) == []
    assert check_issue(replace(config, smtp=SMTP), issue, now=NOW) == []
    bad = replace(config, smtp=replace(SMTP, unsubscribe_mailto="not an address"))
    (finding,) = check_issue(bad, issue, now=NOW)
    assert finding.code == "headers" and "unsubscribe_mailto" in finding.message


def test_postal_address_is_asked_for_while_unset_and_checked_when_set(tmp_path: Path) -> None:
    unset = replace(SITE, postal_address="")
    config = Config(path=tmp_path / "config.toml", site=unset, sources=())
    (finding,) = check_issue(config, rendered(), now=NOW)
    assert finding.code == "address" and "commercial mail" in finding.message
    assert "[site].postal_address" in finding.message
    # Set, and a template that dropped it from the text part: named.
    issue = rendered(postal_address=ADDRESS)
    no_text = replace(issue, text=issue.text.replace("1 Main Street", "somewhere"))
    (finding,) = check_issue(Config(path=config.path, site=SITE, sources=()), no_text, now=NOW)
    assert finding.code == "address" and "missing from the text part" in finding.message


def test_preview_prints_the_lint_and_strict_fails(tmp_path: Path) -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace('url = "digest/sample/feed.xml"', f'url = "{ROOT}/digest/sample/feed.xml"')
    text = text.replace('method = "position"', 'method = "lead"')  # faster, same lint
    cfg = tmp_path / "config.toml"
    cfg.write_text(text, encoding="utf-8")
    runner = CliRunner()
    args = ["--config", str(cfg), "preview", "--out", str(tmp_path / "p.html"), "--no-collect"]
    collect = runner.invoke(cli, ["--config", str(cfg), "collect"])
    assert collect.exit_code == 0, collect.output
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    for written in (tmp_path / "p.html", tmp_path / "p.txt"):  # times worded as of now
        assert "DIGESTXTIMEX" not in written.read_text("utf-8")
    # The shipped config sets no postal address: the one warning asks for it.
    assert "lint: address: no postal address" in flat and "Lint: 1 warning(s)." in flat
    assert "commercial mail" in flat
    strict = runner.invoke(cli, [*args, "--strict"])
    assert strict.exit_code == 1 and "lint: address" in strict.output
    # The old default subject repeated the site's name and ran past what inboxes show.
    long_subject = text.replace('subject = "{headlines}"', 'subject = "{site} — {lead}"').replace(
        "max_subject = 70", "max_subject = 120"
    )
    cfg.write_text(long_subject, "utf-8")
    res = runner.invoke(cli, args)
    assert "lint: subject: the subject is" in " ".join(res.output.split())
    # With an address, the shipped defaults leave nothing to warn about.
    address = '# postal_address = "Example News Ltd, 1 Main Street, Springfield"'
    assert address in text
    cfg.write_text(text.replace(address, address[2:]), "utf-8")
    clean = runner.invoke(cli, [*args, "--strict"])
    assert clean.exit_code == 0, clean.output
    assert "Lint: no problems found." in clean.output
