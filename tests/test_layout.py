"""The rendered issue in a real browser: no sideways scrolling at 375 and 600 px, whatever
the content, even with the word-break rules removed as Yahoo Mail and Outlook.com do.

One headless Chromium (the `chromium` fixture) measures every page; CI installs it.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from digest.models import Issue, Story
from digest.render import make_environment, render_issue
from tests.chromium import Chromium, Layout
from tests.test_golden import NOW, SITE, sample_issue

WIDTHS = (375, 600)  # a phone, and a desktop reading pane (not a phone)
TOKEN = "x" * 5000
LONG_URL = "https://example.com/" + "path-segment_with.dots/" * 20 + "?q=" + "a" * 300 + "&b=c"
_WORD_BREAK = re.compile(r"(?:word-break|overflow-wrap|word-wrap)\s*:[^;\"'}]*;?", re.I)


def retitle(story: Story, title: str, summary: str | None = None) -> Story:
    sentences = (summary,) if summary is not None else story.sentences
    return Story(replace(story.article, title=title), sentences)


def long_tokens(issue: Issue) -> Issue:
    """The sample with 5,000-character tokens in every title and summary, and a long URL."""
    lead = retitle(issue.lead, f"Breaking {TOKEN} news", f"It said {TOKEN} twice.")
    lead = Story(replace(lead.article, source="S" * 80, author="A" * 80), lead.sentences)
    roundup = (
        retitle(issue.roundup[0], TOKEN, TOKEN),
        retitle(issue.roundup[1], f"Read {LONG_URL} now", f"See {LONG_URL}."),
        *issue.roundup[2:],
    )
    return replace(issue, site_name="D" * 80, lead=lead, roundup=roundup)


def portrait(issue: Issue) -> Issue:
    """The sample with a tall lead image that declares its size."""
    art = replace(issue.lead.article, image_width=1000, image_height=2400)
    return replace(issue, lead=Story(art, issue.lead.sentences))


GOLDEN_ISSUES = {"sample": sample_issue(), "long": long_tokens(sample_issue())}


def html_of(issue: Issue, *, yahoo: bool) -> str:
    html = render_issue(
        issue,
        env=make_environment(None),
        now=NOW,
        tz=SITE.tz,
        unsubscribe_url=f"{SITE.url}/unsubscribe?token=x",
        view_url=f"{SITE.url}/archive/2026-11-25",
        postal_address="Example News Ltd, 1 Main Street, Springfield",
    ).html
    return _WORD_BREAK.sub("", html) if yahoo else html


def measure_all(chromium: Chromium, issue: Issue, *, yahoo: bool) -> dict[int, Layout]:
    html = html_of(issue, yahoo=yahoo)
    return {w: chromium.measure(html, w) for w in WIDTHS}


def test_no_issue_scrolls_sideways_even_without_word_break(chromium: Chromium) -> None:
    reference = measure_all(chromium, GOLDEN_ISSUES["sample"], yahoo=False)
    for width, layout in reference.items():
        assert layout.viewport == width and layout.card is not None
        assert not layout.scrolls_sideways, layout
    # The phone layout goes edge to edge; a 600px pane keeps the desktop gutter.
    assert reference[375].card and reference[375].card["left"] == 0
    assert reference[600].card and reference[600].card["left"] > 0
    for name, issue in GOLDEN_ISSUES.items():
        for yahoo in (False, True):
            for width, layout in measure_all(chromium, issue, yahoo=yahoo).items():
                where = f"{name} issue at {width}px{' without word-break' if yahoo else ''}"
                if yahoo:
                    assert layout.word_break_rules == -1, where  # really removed
                assert not layout.scrolls_sideways, f"{where} scrolls sideways: {layout}"
                card, ref = layout.card, reference[width].card
                assert card is not None and ref is not None, where
                assert card["width"] == ref["width"], f"{where}: the card was widened: {layout}"
                assert layout.rightmost <= card["left"] + card["width"] + 0.5, where


def test_a_tall_lead_image_leaves_the_headline_on_the_first_screen(chromium: Chromium) -> None:
    layout = chromium.measure(html_of(portrait(sample_issue()), yahoo=False), 375, 667)
    assert layout.lead_image is not None and layout.lead_title is not None
    assert layout.lead_image["height"] <= 360
    # Shown narrower (1000x2400 at 360 high is 150 wide), never stretched and squashed.
    assert layout.lead_image["width"] <= 150.5 and layout.lead_image["height"] >= 359.5
    assert layout.lead_title["top"] + 32 <= 667
    assert not layout.scrolls_sideways


@pytest.mark.parametrize("width", WIDTHS)
def test_the_lead_image_fills_the_card_when_its_size_is_unknown(
    chromium: Chromium, width: int
) -> None:
    layout = chromium.measure(html_of(sample_issue(), yahoo=False), width)
    assert layout.lead_image is not None and layout.card is not None
    assert 0 < layout.lead_image["width"] <= min(560, layout.card["width"])
    assert layout.lead_image["height"] <= 360
