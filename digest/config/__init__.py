"""The configuration as frozen dataclasses, one per table of `config.toml`.

`configload` reads and validates the file into these; nothing downstream ever sees a
raw dict. Defaults here are the defaults of the shipped, commented `config.toml`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from digest.errors import ConfigError

SUMMARY_METHODS = (
    "position",
    "lexrank",
    "textrank",
    "lsa",
    "luhn",
    "kl",
    "sumbasic",
    "edmundson",
    "lead",
)
DEFAULT_USER_AGENT = "digest/0.1 (+https://github.com/digest-newsletter/digest; newsletter bot)"


@dataclass(frozen=True)
class SiteConfig:
    """The publication: its name, public URL, time zone, language and postal address."""

    name: str
    url: str
    timezone: str = "UTC"
    language: str = "en"  # ISO 639-1: the interface's language and the email's lang
    # The sender's physical address for the footer of both parts: CAN-SPAM requires it
    # in commercial mail, many EU senders print an imprint. "" prints none.
    postal_address: str = ""

    @property
    def tz(self) -> ZoneInfo:
        """Return the site's time zone."""
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class SourceConfig:
    """One feed: an http(s) URL or a local file path (resolved absolute at load)."""

    name: str
    url: str
    language: str = ""  # ISO 639-1; "" = from the page, the feed, or the text
    priority: int = 0
    section: str = ""  # roundup heading for this source's stories ("" = none)
    fetch_pages: bool = True
    # For a local feed file: the web address its relative links are published under.
    # Pages below it are read from the feed's folder; links in the email use it.
    public_url: str = ""

    @property
    def is_local(self) -> bool:
        """Return True when the source is a file on disk."""
        return not self.url.startswith(("http://", "https://"))


@dataclass(frozen=True)
class StoreConfig:
    """Where state lives: a SQLAlchemy URL (relative SQLite paths resolved at load)."""

    url: str = "sqlite:///digest.db"


@dataclass(frozen=True)
class CollectConfig:
    """Limits for fetching feeds and pages."""

    timeout: float = 15.0  # seconds per request (connect, read, whole body)
    deadline: float = 120.0  # seconds for a whole collection run
    concurrency: int = 64  # requests in flight at once
    per_host: int = 4  # requests in flight to one host (servers on this machine: no limit)
    max_bytes: int = 5_000_000  # larger bodies are cut off and reported
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT
    lookback_hours: float = 24.0  # first run: keep items this recent
    max_items_per_source: int = 50
    allow_private: bool = False  # let public feeds link to private-network pages
    flag_after_failures: int = 2  # runs failed in a row before a source is flagged


@dataclass(frozen=True)
class SummaryConfig:
    """How stories are summarized."""

    method: str = "position"
    language: str = ""  # ISO 639-1: assumed when nothing else tells; "" = unknown
    lead_sentences: int = 3
    roundup_sentences: int = 1
    max_words: int = 60
    max_words_oneliner: int = 30  # a one-sentence summary (a roundup item) is never longer


@dataclass(frozen=True)
class ComposeConfig:
    """How the lead story and the roundup are chosen."""

    max_roundup: int = 20
    max_per_source: int = 3  # stories per source in the email (the lead counts)
    sections: tuple[str, ...] = ()  # order of the roundup's section headings
    pin: str = ""  # URL of an article that must be the lead story
    min_articles: int = 1
    # ISO 639-1 codes of the articles that may be the lead or in the roundup; () = the
    # site's language; ("*",) = every language, each item marked with its own.
    languages: tuple[str, ...] = ()

    def allows(self, language: str | None, site_language: str) -> bool:
        """Return True when an article in `language` may be the lead or in the roundup."""
        wanted = self.languages or (site_language,)
        # An article whose language nobody could tell is not kept out for it.
        return "*" in wanted or not language or language in wanted


@dataclass(frozen=True)
class RenderConfig:
    """Templates and the subject line."""

    templates: str = ""  # folder overriding the shipped templates ("" = shipped)
    # The lead's title, plus one more story's when both fit: the site's name is in From.
    subject: str = "{headlines}"
    max_subject: int = 70  # what inbox lists show; `digest preview` warns above 70


@dataclass(frozen=True)
class SmtpConfig:
    """The outgoing mail server."""

    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password_env: str = "DIGEST_SMTP_PASSWORD"
    from_: str = "The Daily Digest <digest@news.example.com>"
    ca_file: str = ""  # trust this CA bundle instead of the system's
    timeout: float = 30.0
    connections: int = 2
    rate: float = 0.0  # messages per second overall; 0 = unlimited
    max_attempts: int = 5
    backoff: float = 1.0  # first retry delay in seconds, doubled each time
    # A reader the server keeps refusing for now (4xx, a full mailbox's 552) this long
    # is marked failed for the issue, instead of being retried by every later send.
    give_up_hours: float = 24.0
    unsubscribe_mailto: str = ""  # address for List-Unsubscribe mailto; "" = none
    # Envelope sender with each reader's token in it (VERP): bounces+TOKEN@example.org.
    bounce_address: str = ""  # "" = the From address, no VERP
    soft_bounce_limit: int = 3  # soft bounces on issues in a row that mark a reader bounced
    dkim_key: str = ""
    dkim_selector: str = ""

    def password(self) -> str:
        """Return the SMTP password from the environment (never stored in the file)."""
        return os.environ.get(self.password_env, "") if self.password_env else ""


@dataclass(frozen=True)
class ScheduleConfig:
    """When `digest run` collects and sends, in the site's time zone."""

    # Times of day, "HH:MM" (or "HH:MM:SS"). One issue a day: the first time that runs
    # creates and sends it; later ones only retry deliveries still pending.
    send_at: tuple[str, ...] = ("07:00",)
    days: str = "*"  # cron-style weekdays: "mon-fri", "mon,wed,fri"; "*" = every day
    collect_every_minutes: float = 30.0
    misfire_grace_minutes: float = 30.0  # a send this late (machine was down) still goes out
    quiet_day: str = "skip"  # below [compose].min_articles: "skip" the day or "send" a short issue


@dataclass(frozen=True)
class SubscribeConfig:
    """Readers signing up on `digest serve`: double opt-in and its abuse limits."""

    confirm_hours: float = 48.0  # a confirmation link works this long
    resend_minutes: float = 60.0  # at most one confirmation mail per address this often
    client_posts: int = 20  # form posts one client address may make per window ...
    client_window_minutes: float = 10.0  # ... of this many minutes (then 429)


@dataclass(frozen=True)
class Config:
    """The whole, validated configuration."""

    path: Path
    site: SiteConfig
    sources: tuple[SourceConfig, ...]
    store: StoreConfig = field(default_factory=StoreConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    summary: SummaryConfig = field(default_factory=SummaryConfig)
    compose: ComposeConfig = field(default_factory=ComposeConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    smtp: SmtpConfig | None = None
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    subscribe: SubscribeConfig = field(default_factory=SubscribeConfig)

    @property
    def sections(self) -> tuple[str, ...]:
        """Return every section readers can choose, in issue order ([compose].sections first)."""
        out = list(self.compose.sections)
        for src in self.sources:
            if src.section and src.section not in out:
                out.append(src.section)
        return tuple(out)

    def section_of(self, source: str) -> str:
        """Return the section of a source's stories ("" when the config names no sections)."""
        for src in self.sources:
            if src.name == source:
                return src.section or (self.sections[0] if self.sections else "")
        return self.sections[0] if self.sections else ""

    @property
    def base_dir(self) -> Path:
        """Return the folder relative paths in the config are resolved against."""
        return self.path.parent

    def require_smtp(self) -> SmtpConfig:
        """Return `[smtp]`, or fail with a hint when a sending command lacks it."""
        if self.smtp is None:
            raise ConfigError(
                f"{self.path}: [smtp] is missing; add an [smtp] table with host, port, "
                'security, username, password_env and from (see the README "Sending" section)'
            )
        return self.smtp
