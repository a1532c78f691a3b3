"""Read `config.toml` into the `config` dataclasses, validated once.

Every mistake becomes one `ConfigError` line naming the file, the dotted key and
what to write instead.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import types
import typing
from dataclasses import MISSING, fields, replace
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from digest.config import (
    SUMMARY_METHODS,
    CollectConfig,
    ComposeConfig,
    Config,
    RenderConfig,
    ScheduleConfig,
    SiteConfig,
    SmtpConfig,
    SourceConfig,
    StoreConfig,
    SubscribeConfig,
    SummaryConfig,
)
from digest.errors import ConfigError
from digest.text.language import to_code

T = TypeVar("T")

# TOML key -> dataclass field where the TOML name is a Python keyword.
_RENAMES = {"from": "from_"}


def _toml_name(name: str) -> str:
    return {v: k for k, v in _RENAMES.items()}.get(name, name)


def _type_word(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_word(a) for a in get_args(tp) if a is not type(None))
    if origin is list or origin is tuple:
        return "a list"
    return {
        str: "a string in quotes",
        int: "a whole number",
        float: "a number",
        bool: "true or false",
    }.get(tp, str(tp))


def _check_type(value: Any, tp: Any) -> bool:
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp in (str, bool):
        return isinstance(value, tp)
    origin = get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return any(_check_type(value, a) for a in get_args(tp))
    if origin in (list, tuple):
        (item,) = get_args(tp)[:1]
        return isinstance(value, list) and all(_check_type(v, item) for v in value)
    return False


class _Loader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {message}")

    def table(self, cls: type[T], data: Any, key: str) -> T:
        """Build dataclass `cls` from TOML table `data`, rejecting unknown keys and bad types."""
        if not isinstance(data, dict):
            raise self.fail(key, f"expected a table ([{key}]), got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        known = {_toml_name(f.name): f for f in fields(cls) if f.name != "path"}  # type: ignore[arg-type]
        for name in data:
            if name not in known:
                close = difflib.get_close_matches(name, list(known), n=1)
                hint = f'did you mean "{close[0]}"?' if close else f"known keys: {', '.join(known)}"
                raise self.fail(f"{key}.{name}", f"unknown key; {hint}")
        kwargs: dict[str, Any] = {}
        for toml_name, f in known.items():
            if toml_name not in data:
                if f.default is MISSING and f.default_factory is MISSING:
                    raise self.fail(
                        f"{key}.{toml_name}",
                        f"missing; add {toml_name} = … ({_type_word(hints[f.name])})",
                    )
                continue
            value = data[toml_name]
            tp = hints[f.name]
            if not _check_type(value, tp):
                raise self.fail(
                    f"{key}.{toml_name}",
                    f"expected {_type_word(tp)}, got {value!r}",
                )
            if tp is float:
                value = float(value)
            kwargs[f.name] = value
        return cls(**kwargs)


def _language(loader: _Loader, key: str, value: str) -> str:
    """Return the ISO 639-1 code for a config value; old names ("german") still work."""
    try:
        return to_code(value)
    except ValueError:
        raise loader.fail(
            key, f'{value!r} is not a language; write an ISO 639-1 code such as "en" or "de"'
        ) from None


def _suggest_zone(name: str) -> str:
    close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
    return f'"{close[0]}"' if close else '"Europe/Berlin" or "UTC"'


def _validate_http_url(loader: _Loader, key: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise loader.fail(
            key, f"{url!r} is not an http(s) URL; write e.g. https://news.example.com"
        )


def _resolve_source(loader: _Loader, key: str, src: SourceConfig) -> SourceConfig:
    url = src.url.strip()
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        if not parts.netloc:
            raise loader.fail(
                key, f"{url!r} has no host; write e.g. https://news.example.com/feed/"
            )
        return replace(src, url=url)
    if parts.scheme == "file":
        url = parts.path
    elif "://" in url or (parts.scheme and len(parts.scheme) > 1 and ":" in url[:12]):
        raise loader.fail(
            key,
            f"{url!r} is neither an http(s) URL nor a file path; "
            "write https://… (is the scheme misspelled?) or a path to a feed file",
        )
    path = Path(url).expanduser()
    if not path.is_absolute():
        path = loader.path.parent / path
    if not path.is_file():
        raise loader.fail(
            key, f"{url!r} is not an http(s) URL and no such file exists ({path}); fix the path"
        )
    return replace(src, url=str(path.resolve()))


def _resolve_store(loader: _Loader, store: StoreConfig) -> StoreConfig:
    url = store.url
    if "://" not in url:
        raise loader.fail(
            "store.url", f"{url!r} is not a database URL; write e.g. sqlite:///digest.db"
        )
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        raw = url[len("sqlite:///") :]
        if not raw.startswith("/"):
            return StoreConfig(url="sqlite:///" + str((loader.path.parent / raw).resolve()))
    elif url.startswith("sqlite://") and url not in ("sqlite://", "sqlite:///:memory:"):
        raise loader.fail("store.url", f"{url!r}: write sqlite:///relative.db or sqlite:////abs.db")
    return store


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def _parse_time(loader: _Loader, key: str, value: str) -> str:
    m = _TIME_RE.fullmatch(value.strip())
    if m is None or int(m[1]) > 23 or int(m[2]) > 59 or (m[3] is not None and int(m[3]) > 59):
        raise loader.fail(
            key, f'{value!r} is not a time of day; write 24-hour "HH:MM" such as "07:00"'
        )
    text = f"{int(m[1]):02d}:{m[2]}"
    return f"{text}:{m[3]}" if m[3] is not None and m[3] != "00" else text


def _parse_days(loader: _Loader, value: str) -> str:
    """Normalize cron-style weekdays ("mon-fri", "sat,sun", "*") to lower case."""
    text = value.strip().lower().replace(" ", "")
    if text in ("*", "daily", ""):
        return "*"
    for part in text.split(","):
        ends = part.split("-")
        if len(ends) > 2 or not all(e in WEEKDAYS for e in ends):
            raise loader.fail(
                "schedule.days",
                f'{value!r}: write weekday names like "mon-fri" or "mon,wed,fri" '
                f'({", ".join(WEEKDAYS)}), or "*" for every day',
            )
        if len(ends) == 2 and WEEKDAYS.index(ends[0]) > WEEKDAYS.index(ends[1]):
            raise loader.fail(
                "schedule.days", f'{part!r} runs backwards; write "{ends[0]}-sun,mon-{ends[1]}"'
            )
    return text


def _parse_schedule(loader: _Loader, raw: Any) -> ScheduleConfig:
    if isinstance(raw, dict) and "send_at" in raw:
        send_at = raw["send_at"]
        if isinstance(send_at, str):
            send_at = [send_at]
        if not (isinstance(send_at, list) and send_at and all(isinstance(t, str) for t in send_at)):
            raise loader.fail(
                "schedule.send_at",
                f'expected a time such as "07:00" or a list such as ["07:00", "18:00"], '
                f"got {raw['send_at']!r}",
            )
        raw = {**raw, "send_at": send_at}
    sched = loader.table(ScheduleConfig, raw, "schedule")
    times = sorted({_parse_time(loader, "schedule.send_at", t) for t in sched.send_at})
    if sched.collect_every_minutes <= 0:
        raise loader.fail("schedule.collect_every_minutes", "must be greater than 0; e.g. 30")
    if sched.misfire_grace_minutes < 0:
        raise loader.fail("schedule.misfire_grace_minutes", "must be 0 or more; e.g. 30")
    if sched.quiet_day not in ("skip", "send"):
        raise loader.fail("schedule.quiet_day", f'{sched.quiet_day!r}: write "skip" or "send"')
    return replace(sched, send_at=tuple(times), days=_parse_days(loader, sched.days))


def parse_config(data: dict[str, Any], path: Path) -> Config:
    """Validate a parsed TOML document and return the typed configuration."""
    loader = _Loader(path)
    allowed = {
        "site",
        "sources",
        "store",
        "collect",
        "summary",
        "compose",
        "render",
        "smtp",
        "schedule",
        "subscribe",
    }
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = (
                f'did you mean "{close[0]}"?'
                if close
                else f"known tables: {', '.join(sorted(allowed))}"
            )
            raise loader.fail(key, f"unknown table; {hint}")
    if "site" not in data:
        raise loader.fail("site", "missing; add [site] with name, url and timezone")
    site = loader.table(SiteConfig, data["site"], "site")
    site = replace(site, language=_language(loader, "site.language", site.language) or "en")
    _validate_http_url(loader, "site.url", site.url)
    try:
        ZoneInfo(site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise loader.fail(
            "site.timezone",
            f"unknown time zone {site.timezone!r}; write an IANA name such as "
            f"{_suggest_zone(site.timezone)}",
        ) from None

    raw_sources = data.get("sources")
    if not raw_sources:
        raise loader.fail("sources", "missing; add at least one [[sources]] with name and url")
    if not isinstance(raw_sources, list):
        raise loader.fail("sources", "write each source as a [[sources]] table")
    sources: list[SourceConfig] = []
    names: set[str] = set()
    for i, raw in enumerate(raw_sources):
        key = f"sources[{i}]"
        src = loader.table(SourceConfig, raw, key)
        src = _resolve_source(loader, f"{key}.url", src)
        src = replace(src, language=_language(loader, f"{key}.language", src.language))
        if src.public_url:
            _validate_http_url(loader, f"{key}.public_url", src.public_url)
            if not src.public_url.endswith("/"):
                src = replace(src, public_url=src.public_url + "/")
        if src.name in names:
            raise loader.fail(
                f"{key}.name", f"duplicate source name {src.name!r}; names must be unique"
            )
        names.add(src.name)
        sources.append(src)

    store = _resolve_store(loader, loader.table(StoreConfig, data.get("store", {}), "store"))
    collect = loader.table(CollectConfig, data.get("collect", {}), "collect")
    for name in ("timeout", "deadline", "concurrency", "per_host", "max_bytes", "lookback_hours"):
        if getattr(collect, name) <= 0:
            raise loader.fail(f"collect.{name}", "must be greater than 0")
    if collect.flag_after_failures < 1:
        raise loader.fail(
            "collect.flag_after_failures", "must be at least 1 (runs failed in a row); e.g. 3"
        )
    summary = loader.table(SummaryConfig, data.get("summary", {}), "summary")
    if summary.method not in SUMMARY_METHODS:
        raise loader.fail(
            "summary.method",
            f"unknown method {summary.method!r}; write one of {', '.join(SUMMARY_METHODS)}",
        )
    summary = replace(summary, language=_language(loader, "summary.language", summary.language))
    for name in ("lead_sentences", "roundup_sentences", "max_words", "max_words_oneliner"):
        if getattr(summary, name) < 1:
            raise loader.fail(f"summary.{name}", "must be at least 1")
    compose = loader.table(ComposeConfig, data.get("compose", {}), "compose")
    compose = replace(compose, sections=tuple(s.strip() for s in compose.sections))
    if compose.max_roundup < 0:
        raise loader.fail("compose.max_roundup", "must be 0 or more")
    if "*" in compose.languages:
        compose = replace(compose, languages=("*",))
    else:
        codes = (_language(loader, "compose.languages", v) for v in compose.languages)
        compose = replace(compose, languages=tuple(dict.fromkeys(c for c in codes if c)))
    if compose.max_per_source < 1:
        raise loader.fail("compose.max_per_source", "must be at least 1; e.g. 3")
    order = tuple(s.strip() for s in compose.sections)
    if len(set(order)) != len(order) or not all(order):
        raise loader.fail("compose.sections", "write each section name once, none empty")
    compose = replace(compose, sections=order)
    for i, src in enumerate(sources):
        if src.section.strip() != src.section:
            sources[i] = src = replace(src, section=src.section.strip())
        if order and src.section and src.section not in order:
            raise loader.fail(
                f"sources[{i}].section",
                f"{src.section!r} is not in [compose].sections; add it there "
                f"(sections: {', '.join(order)})",
            )
    render = loader.table(RenderConfig, data.get("render", {}), "render")
    if render.templates:
        tdir = Path(render.templates).expanduser()
        if not tdir.is_absolute():
            tdir = path.parent / tdir
        if not tdir.is_dir():
            raise loader.fail(
                "render.templates", f"no such folder {str(tdir)!r}; fix the path or remove the key"
            )
        render = replace(render, templates=str(tdir.resolve()))
    try:
        render.subject.format(site="", lead="", headlines="", date="")
    except (KeyError, IndexError, ValueError) as exc:
        raise loader.fail(
            "render.subject",
            f"bad placeholder ({exc}); use only {{headlines}}, {{lead}}, {{site}} and {{date}}",
        ) from None
    if render.max_subject < 10:
        raise loader.fail("render.max_subject", "must be at least 10 characters; e.g. 70")

    smtp = None
    if "smtp" in data:
        smtp = loader.table(SmtpConfig, data["smtp"], "smtp")
        if smtp.security not in ("starttls", "ssl", "none"):
            raise loader.fail(
                "smtp.security", f'{smtp.security!r}: write "starttls", "ssl" or "none"'
            )
        if not 0 < smtp.port < 65536:
            raise loader.fail("smtp.port", f"{smtp.port} is not a port; write e.g. 587")
        if smtp.connections < 1:
            raise loader.fail("smtp.connections", "must be at least 1")
        if smtp.rate < 0:
            raise loader.fail("smtp.rate", "must be 0 (unlimited) or more")
        if smtp.give_up_hours <= 0:
            raise loader.fail("smtp.give_up_hours", "must be greater than 0; e.g. 24")
        if "@" not in smtp.from_:
            raise loader.fail(
                "smtp.from", f'{smtp.from_!r} has no address; write e.g. "Name <news@example.com>"'
            )
        for key in ("ca_file", "dkim_key"):
            value = getattr(smtp, key)
            if value:
                p = Path(value).expanduser()
                if not p.is_absolute():
                    p = path.parent / p
                if not p.is_file():
                    raise loader.fail(f"smtp.{key}", f"no such file {str(p)!r}; fix the path")
                resolved: dict[str, Any] = {key: str(p.resolve())}
                smtp = replace(smtp, **resolved)
        if smtp.dkim_key and not smtp.dkim_selector:
            raise loader.fail(
                "smtp.dkim_selector", 'required when dkim_key is set; write e.g. "digest"'
            )
        if smtp.bounce_address:
            local, _, domain = smtp.bounce_address.rpartition("@")
            # The token (32 characters and "+") must fit the 64-octet local part.
            if not re.fullmatch(r"[A-Za-z0-9._-]{1,31}", local) or not re.fullmatch(
                r"[A-Za-z0-9.-]+\.[A-Za-z0-9-]+", domain
            ):
                raise loader.fail(
                    "smtp.bounce_address",
                    f"{smtp.bounce_address!r}: write a plain address whose local part has at "
                    'most 31 letters, digits, ".", "-" or "_" (no "+"), e.g. "bounces@example.org"',
                )
        if smtp.soft_bounce_limit < 1:
            raise loader.fail("smtp.soft_bounce_limit", "must be at least 1; the default is 3")

    schedule = _parse_schedule(loader, data.get("schedule", {}))
    subscribe = loader.table(SubscribeConfig, data.get("subscribe", {}), "subscribe")
    for name in ("confirm_hours", "resend_minutes"):
        if getattr(subscribe, name) < 0:
            raise loader.fail(f"subscribe.{name}", "must be 0 or more; e.g. 48")
    for name in ("client_posts", "client_window_minutes"):
        if getattr(subscribe, name) <= 0:
            raise loader.fail(f"subscribe.{name}", "must be greater than 0; e.g. 20")
    if len(set(compose.sections)) != len(compose.sections):
        raise loader.fail("compose.sections", "a section is named twice; name each once")

    return Config(
        path=path,
        site=site,
        sources=tuple(sources),
        store=store,
        collect=collect,
        summary=summary,
        compose=compose,
        render=render,
        smtp=smtp,
        schedule=schedule,
        subscribe=subscribe,
    )


def default_config_path() -> Path:
    """Return $DIGEST_CONFIG or ./config.toml."""
    return Path(os.environ.get("DIGEST_CONFIG") or "config.toml")


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate a config file; raise `ConfigError` with one clear line."""
    p = Path(path) if path is not None else default_config_path()
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{p}: no such config file; run `digest init` to write a commented one here, "
            "or pass --config PATH (or set DIGEST_CONFIG) to use another"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text; save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    return parse_config(data, p.resolve())
