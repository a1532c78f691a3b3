"""The composed issue as plain JSON: the contract of `digest preview --json` and the archive.

    {"date", "subject", "lead": STORY, "stories": [STORY...], "more": [STORY...]}
    STORY = {"url", "title", "source", "section", "language", "published" (ISO or null),
             "summary": [sentences], "also": [{"url", "source", "title"}]}

`stories` is the roundup in the email's order, `more` the stories only the archive
lists. Every article the issue was composed from appears exactly once across all
`url` and `also[].url` fields (an item without a link has "" there).
"""

from __future__ import annotations

from typing import Any

from digest.compose import article_language
from digest.models import Issue, Story

FORMAT_VERSION = 1


def story_document(story: Story, *, language: str) -> dict[str, Any]:
    """Return one story as a JSON-ready dict."""
    art = story.article
    return {
        "url": art.url,
        "title": art.title,
        "source": art.source,
        "section": story.section,
        "language": article_language(art, language),
        "published": art.published.isoformat() if art.published else None,
        "summary": list(story.sentences),
        "also": [{"url": a.url, "source": a.source, "title": a.title} for a in story.also],
    }


def issue_document(issue: Issue, *, subject: str, language: str) -> dict[str, Any]:
    """Return the composed issue as a JSON-ready dict (see the module docstring)."""
    return {
        "date": issue.date,
        "subject": subject,
        "lead": story_document(issue.lead, language=language),
        "stories": [story_document(s, language=language) for s in issue.roundup],
        "more": [story_document(s, language=language) for s in issue.more],
    }
