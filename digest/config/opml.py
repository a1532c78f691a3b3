"""OPML 2.0, the feed readers' exchange format, for `digest sources import/export`.

Import takes every `<outline>` with an `xmlUrl` at any depth (as `r2e opmlimport`
does); a folder outline around feeds becomes their `section`. The parser resolves no
entities and fetches nothing: an OPML file is untrusted input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from xml.sax.saxutils import quoteattr

from digest.errors import ConfigError

MAX_OPML_BYTES = 10_000_000


@dataclass(frozen=True)
class OpmlFeed:
    """One feed listed in an OPML file."""

    name: str
    url: str
    section: str = ""


def parse_opml(data: bytes, *, where: str = "OPML") -> list[OpmlFeed]:
    """Return the feeds an OPML document lists, in document order."""
    from lxml import etree  # imported here: only `sources import` reads OPML

    if len(data) > MAX_OPML_BYTES:
        raise ConfigError(f"{where}: larger than {MAX_OPML_BYTES // 1_000_000} MB; not OPML")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ConfigError(f"{where}: not valid XML ({exc})") from None
    if not isinstance(root.tag, str) or root.tag.lower() != "opml":
        raise ConfigError(f"{where}: not an OPML file (its root element is not <opml>)")
    body = root.find("body")
    if body is None:
        raise ConfigError(f"{where}: an OPML file without <body>")
    feeds: list[OpmlFeed] = []

    def walk(node: etree._Element, section: str) -> None:
        for child in node:
            if not isinstance(child.tag, str) or child.tag != "outline":
                continue
            label = " ".join((child.get("title") or child.get("text") or "").split())
            url = (child.get("xmlUrl") or child.get("xmlurl") or "").strip()
            if url:
                feeds.append(OpmlFeed(name=label, url=url, section=section))
            walk(child, section if url else (label or section))

    walk(body, "")
    return feeds


def write_opml(title: str, feeds: list[OpmlFeed], *, now: datetime) -> str:
    """Return an OPML 2.0 document listing `feeds`, sections as folders."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        "  <head>",
        f"    <title>{_text(title)}</title>",
        f"    <dateCreated>{format_datetime(now)}</dateCreated>",
        "    <docs>https://opml.org/spec2.opml</docs>",
        "  </head>",
        "  <body>",
    ]

    def outline(feed: OpmlFeed, indent: str) -> str:
        return (
            f'{indent}<outline type="rss" text={quoteattr(feed.name)} '
            f"title={quoteattr(feed.name)} xmlUrl={quoteattr(feed.url)}/>"
        )

    sections: dict[str, list[OpmlFeed]] = {}
    for feed in feeds:
        sections.setdefault(feed.section, []).append(feed)
    for section, members in sections.items():
        if not section:
            lines += [outline(f, "    ") for f in members]
            continue
        lines.append(f"    <outline text={quoteattr(section)} title={quoteattr(section)}>")
        lines += [outline(f, "      ") for f in members]
        lines.append("    </outline>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
