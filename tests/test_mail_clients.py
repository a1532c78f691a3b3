"""The default issue as real mail tools see it: SpamAssassin, w3m (NeoMutt), the text part.

SpamAssassin runs with local rules only (no network tests, no Bayes) on the golden
message; w3m renders its HTML part as NeoMutt's mailcap does. CI installs both.
"""

from __future__ import annotations

import email.policy
import os
import re
import shutil
import subprocess
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from digest.models import RenderedIssue
from tests.test_golden import build_message, render_sample, sample_issue

# Characters that pad the hidden preheader: none may reach a text rendering.
FILLER = re.compile("[\u034f\u200b\u200c\u200d\u00ad\ufeff\u2007]")
HEADLINES = [s.article.title for s in sample_issue().stories]


def need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is needed for this test; install it (.ci/run does)", pytrace=False)
    return path


def parse(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


def parts(raw: bytes) -> tuple[str, str]:
    """Return the (text, html) parts of a message, with LF line ends."""
    msg = parse(raw)
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return tuple(p.get_content().replace("\r\n", "\n") for p in (text, html))


def squeeze(s: str) -> str:
    return re.sub(r"\s+", "", s)


def spam_scores(tmp_path: Path, messages: list[bytes]) -> list[tuple[float, set[str]]]:
    """Score messages with SpamAssassin's local rules in one run; return (score, rules) each."""
    binary = need("spamassassin")
    prefs = tmp_path / "user_prefs"
    prefs.write_text("", encoding="utf-8")
    mbox = b"".join(
        b"From digest@news.example.com Wed Nov 25 07:00:00 2026\n"
        + m.replace(b"\r\n", b"\n")
        + b"\n"
        for m in messages
    )
    result = subprocess.run(
        [binary, "--local", "--mbox", "-x", "-p", str(prefs), "--cf=use_bayes 0"],
        input=mbox,
        capture_output=True,
        timeout=300,
        env={**os.environ, "HOME": str(tmp_path)},  # nothing written to the real home
        check=True,
    )
    # --mbox may answer in any order: match each answer to its message by Message-ID.
    found: dict[str, tuple[float, set[str]]] = {}
    for answer in re.split(rb"^From \S+ ", result.stdout, flags=re.M)[1:]:
        msg = parse(answer.split(b"\n", 1)[1])
        flat = " ".join(str(msg["X-Spam-Status"]).split())
        score = re.search(r"score=(-?[\d.]+)", flat)
        tests = re.search(r"tests=(.*?) autolearn=", flat)
        assert score is not None and tests is not None, flat
        rules = {r.strip() for r in tests[1].split(",") if r.strip() and r.strip() != "none"}
        found[str(msg["Message-ID"])] = (float(score[1]), rules)
    return [found[str(parse(m)["Message-ID"])] for m in messages]


def with_html(issue: RenderedIssue, html: str) -> bytes:
    return build_message(
        RenderedIssue(issue.date, issue.subject, html, issue.text, issue.preheader)
    )


def test_spamassassin_scores_the_default_issue_zero(tmp_path: Path) -> None:
    issue = render_sample()
    # The old preview-text trick, text coloured like the background, as a control.
    old_trick = with_html(
        issue, issue.html.replace("line-height:1px", "line-height:1px; color:#f3f4f6", 1)
    )
    (score, rules), (old_score, old_rules) = spam_scores(
        tmp_path, [build_message(issue), old_trick]
    )
    assert "HTML_FONT_LOW_CONTRAST" in old_rules and old_score > 0  # the check can fail
    assert score <= 0.0, rules
    assert "HTML_FONT_LOW_CONTRAST" not in rules


def w3m_dump(html: str) -> str:
    binary = need("w3m")
    result = subprocess.run(
        [binary, "-dump", "-T", "text/html", "-cols", "80", "-O", "UTF-8"],
        input=html.encode("utf-8"),
        capture_output=True,
        timeout=60,
        check=True,
    )
    return result.stdout.decode("utf-8")


def test_w3m_shows_each_headline_once_and_no_filler() -> None:
    _, html = parts(build_message(render_sample()))
    shown = w3m_dump(html)
    for title in HEADLINES:
        assert squeeze(shown).count(squeeze(title)) == 1, (title, shown)
    assert not FILLER.search(shown), "preheader filler reached the w3m rendering"
    lines = shown.splitlines()
    assert all(line.strip() for line in lines[:1])  # the preview sentence, then the issue
    # "Read more" does not run into the next heading: something separates them.
    (i,) = [n for n, line in enumerate(lines) if "Read more" in line]
    (j,) = [n for n, line in enumerate(lines) if line.strip() == "Recent posts"]
    assert j - i >= 2 and any(not line.strip() or "━" in line for line in lines[i + 1 : j])
    assert "Example News Ltd, 1 Main Street, 10115 Berlin" in " ".join(shown.split())


def test_the_text_part_shows_each_headline_once_with_clear_breaks() -> None:
    text, _ = parts(build_message(render_sample()))
    for title in HEADLINES:
        assert squeeze(text).count(squeeze(title)) == 1, title
    assert not FILLER.search(text)
    assert re.search(r"^Read more: \S+\n\n", text, re.M)
    assert "Example News Ltd, 1 Main Street, 10115 Berlin" in text
