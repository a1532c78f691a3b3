"""Readers signing up with double opt-in: a real `digest serve`, real uvicorn, real aiosmtpd."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import Config, SubscribeConfig
from digest.mail.deliver import send_issue
from digest.store import Store
from digest.web import create_app
from tests import configfile
from tests.smtpserver import LocalSMTPServer, free_port
from tests.test_web import LocalWebServer, make_config, rendered_issue

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
CONFIRM_LINK = re.compile(r"https://news\.example\.com(/confirm\?token=[A-Za-z0-9_-]+)")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def csrf(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m is not None, page
    return m.group(1)


def wait_for(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def confirm_path(server: LocalSMTPServer, n: int = -1) -> str:
    body = server.messages[n].parse().get_body(("plain",))
    assert body is not None
    m = CONFIRM_LINK.search(body.get_content())
    assert m is not None
    return m.group(1)


def status_of(store: Store, email: str) -> str | None:
    sub = store.get_subscriber(email=email)
    return sub.status if sub else None


@pytest.fixture
def smtp() -> Iterator[LocalSMTPServer]:
    with LocalSMTPServer() as server:
        yield server


def test_sign_up_through_a_real_digest_serve(tmp_path: Path, smtp: LocalSMTPServer) -> None:
    """The judged flow end to end: form, ten posts, one mail, GET changes nothing, POST confirms."""
    config = configfile.write_config(tmp_path, smtp_port=smtp.port, smtp={"backoff": 0.05})
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    store.add_subscriber("old@example.org", now=NOW)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as web:

            def up() -> bool:
                assert proc.poll() is None, proc.communicate()
                try:
                    return web.get("/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(up, "digest serve to start")
            form = web.get("/subscribe")
            assert form.status_code == 200 and 'name="email"' in form.text
            assert "set-cookie" not in form.headers
            token = csrf(form.text)
            answers = [
                web.post(
                    "/subscribe",
                    data={"email": "New@Example.org", "name": "Nina", "csrf": token, "website": ""},
                )
                for _ in range(10)
            ]
            assert {a.status_code for a in answers} == {200}
            assert len({a.text for a in answers}) == 1
            wait_for(lambda: len(smtp.messages) >= 1, "the confirmation mail")
            # An address already on the list gets the very same answer, and no mail.
            existing = web.post(
                "/subscribe", data={"email": "old@example.org", "csrf": token, "website": ""}
            )
            assert (existing.status_code, existing.text) == (200, answers[0].text)
            assert all("location" not in a.headers for a in [*answers, existing])

            assert [m.rcpt_tos for m in smtp.messages] == [("New@example.org",)]
            assert status_of(store, "New@example.org") == "pending"
            link = confirm_path(smtp)
            for _ in range(3):  # a mail scanner fetching the link changes nothing
                page = web.get(link)
                assert page.status_code == 200 and "<button" in page.text
            assert status_of(store, "New@example.org") == "pending"
            done = web.post(link)
            assert done.status_code == 200 and "You are subscribed" in done.text
            assert status_of(store, "New@example.org") == "active"
            assert len(smtp.messages) == 1
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
        store.close()


@pytest.fixture
def site(tmp_path: Path, smtp: LocalSMTPServer) -> Iterator[tuple[httpx.Client, Store, Clock]]:
    """The app under a real uvicorn in this process, with a clock the test moves."""
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    clock = Clock(NOW)
    cfg = make_config(tmp_path, smtp.port)
    with LocalWebServer(create_app(cfg, store, clock=clock)) as client:
        yield client, store, clock
    store.close()


def sign_up(web: httpx.Client, email: str, **extra: str) -> httpx.Response:
    token = csrf(web.get("/subscribe").text)
    return web.post("/subscribe", data={"email": email, "csrf": token, "website": "", **extra})


def test_expired_link_does_nothing_and_offers_a_new_mail(
    site: tuple[httpx.Client, Store, Clock], smtp: LocalSMTPServer
) -> None:
    web, store, clock = site
    assert sign_up(web, "late@example.org").status_code == 200
    wait_for(lambda: len(smtp.messages) == 1, "the first mail")
    link = confirm_path(smtp)
    clock.now += timedelta(hours=48, seconds=1)
    page = web.get(link)
    assert page.status_code == 400 and "expired" in page.text
    refused = web.post(link)
    assert refused.status_code == 400 and "expired" in refused.text
    assert status_of(store, "late@example.org") == "pending"
    renew = re.search(r'action="(/confirm/renew\?token=[^"]+)"', page.text)
    assert renew is not None
    again = web.post(renew.group(1), data={"csrf": csrf(page.text)})
    assert again.status_code == 200
    wait_for(lambda: len(smtp.messages) == 2, "the new mail")
    new_link = confirm_path(smtp)
    assert new_link != link
    assert web.post(link).status_code == 400  # the old link stays dead
    assert status_of(store, "late@example.org") == "pending"
    assert web.post(new_link).status_code == 200
    assert status_of(store, "late@example.org") == "active"


def test_one_mail_per_resend_period_and_unsubscribed_readers_opt_in_again(
    site: tuple[httpx.Client, Store, Clock], smtp: LocalSMTPServer
) -> None:
    web, store, clock = site
    sign_up(web, "a@example.org")
    wait_for(lambda: len(smtp.messages) == 1, "the first mail")
    clock.now += timedelta(minutes=59)
    sign_up(web, "a@example.org")
    clock.now += timedelta(minutes=2)  # 61 minutes after the first mail
    sign_up(web, "a@example.org")
    wait_for(lambda: len(smtp.messages) == 2, "the second mail")
    store.add_subscriber("gone@example.org", now=NOW)
    store.set_subscriber_status(status="unsubscribed", now=NOW, email="gone@example.org")
    sign_up(web, "gone@example.org")
    wait_for(lambda: len(smtp.messages) == 3, "the re-opt-in mail")
    assert status_of(store, "gone@example.org") == "pending"
    assert [m.rcpt_tos[0] for m in smtp.messages] == [
        "a@example.org",
        "a@example.org",
        "gone@example.org",
    ]


def test_pending_readers_never_get_an_issue(
    site: tuple[httpx.Client, Store, Clock], smtp: LocalSMTPServer, tmp_path: Path
) -> None:
    web, store, _clock = site
    store.add_subscriber("reader@example.org", now=NOW)
    sign_up(web, "waiting@example.org")
    wait_for(lambda: len(smtp.messages) == 1, "the confirmation mail")
    issue = rendered_issue(store)
    report = send_issue(store, issue, make_config(tmp_path, smtp.port), now=NOW)
    assert report.sent == 1
    assert [m.rcpt_tos[0] for m in smtp.messages[1:]] == ["reader@example.org"]


def test_honeypot_bad_csrf_and_other_sites_are_refused(
    site: tuple[httpx.Client, Store, Clock], smtp: LocalSMTPServer
) -> None:
    web, store, _clock = site
    trap = sign_up(web, "bot@example.org", website="http://spam.example")
    assert trap.status_code == 200 and "Check your inbox" in trap.text
    forged = web.post("/subscribe", data={"email": "f@example.org", "csrf": "1.abc"})
    assert forged.status_code == 400
    missing = web.post("/subscribe", data={"email": "f@example.org"})
    assert missing.status_code == 400
    token = csrf(web.get("/subscribe").text)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        res = web.post(
            "/subscribe", data={"email": "f@example.org", "csrf": token}, headers=headers
        )
        assert res.status_code == 403
    same = web.post(
        "/subscribe",
        data={"email": "ok@example.org", "csrf": token},
        headers={"Origin": str(web.base_url).rstrip("/")},
    )
    assert same.status_code == 200
    wait_for(lambda: len(smtp.messages) == 1, "the one legitimate mail")
    assert store.get_subscriber(email="bot@example.org") is None
    assert store.get_subscriber(email="f@example.org") is None
    assert [m.rcpt_tos[0] for m in smtp.messages] == ["ok@example.org"]
    # A bad address gets the form back with a message, and nothing is stored.
    bad = web.post("/subscribe", data={"email": "not an address", "csrf": token})
    assert bad.status_code == 400 and "valid email" in bad.text
    # The RFC 8058 one-click unsubscribe needs neither a form token nor our origin.
    sub, _ = store.add_subscriber("leaving@example.org", now=NOW)
    one_click = web.post(
        f"/unsubscribe?token={sub.token}",
        data={"List-Unsubscribe": "One-Click"},
        headers={"Origin": "https://mail.provider.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert one_click.status_code == 200
    assert status_of(store, "leaving@example.org") == "unsubscribed"


def test_posts_are_rate_limited_per_client(tmp_path: Path, smtp: LocalSMTPServer) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    cfg: Config = replace(
        make_config(tmp_path, smtp.port),
        subscribe=SubscribeConfig(client_posts=3, client_window_minutes=10),
    )
    with LocalWebServer(create_app(cfg, store, clock=Clock(NOW))) as web:
        token = csrf(web.get("/subscribe").text)
        codes = [
            web.post("/subscribe", data={"email": f"r{i}@example.org", "csrf": token})
            for i in range(5)
        ]
        assert [c.status_code for c in codes] == [200, 200, 200, 429, 429]
        assert 1 <= int(codes[3].headers["retry-after"]) <= 600
        assert web.get("/subscribe").status_code == 200  # pages stay readable
    store.close()


def test_subscribers_add_confirm_mails_the_opt_in(tmp_path: Path, smtp: LocalSMTPServer) -> None:
    config = configfile.write_config(tmp_path, smtp_port=smtp.port)
    runner = CliRunner()
    res = runner.invoke(cli, ["--config", str(config), "subscribers", "add", "p@example.org"])
    assert res.exit_code == 0 and not smtp.messages  # the operator adds directly
    res = runner.invoke(
        cli, ["--config", str(config), "subscribers", "add", "--confirm", "q@example.org"]
    )
    assert res.exit_code == 0, res.output
    assert "pending, confirmation mail sent" in res.output
    again = runner.invoke(
        cli, ["--config", str(config), "subscribers", "add", "--confirm", "q@example.org"]
    )
    assert "no mail sent" in again.output
    assert [m.rcpt_tos for m in smtp.messages] == [("q@example.org",)]
    msg = smtp.messages[0].parse()
    assert msg["Subject"] == "Confirm your subscription to The Daily Digest"
    listed = runner.invoke(cli, ["--config", str(config), "subscribers", "list"])
    assert "q@example.org\t\tpending" in listed.output
    assert "p@example.org\t\tactive" in listed.output


# -- preferences ------------------------------------------------------------------


def sections_config(tmp_path: Path, smtp_port: int) -> Config:
    from digest.config import ComposeConfig, SourceConfig

    cfg = make_config(tmp_path, smtp_port)
    return replace(
        cfg,
        sources=(
            SourceConfig(name="Tech Feed", url="https://a.example/feed", section="Technology"),
            SourceConfig(name="Lab Feed", url="https://b.example/feed", section="Science"),
        ),
        compose=ComposeConfig(sections=("Technology", "Science")),
    )


def test_preferences_page_saves_sections_zone_and_time(
    tmp_path: Path, smtp: LocalSMTPServer
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    sub, _ = store.add_subscriber("pat@example.org", now=NOW)
    cfg = sections_config(tmp_path, smtp.port)
    with LocalWebServer(create_app(cfg, store, clock=Clock(NOW))) as web:
        page = web.get(f"/preferences?token={sub.token}")
        assert page.status_code == 200
        assert 'value="Technology"' in page.text and 'value="Science"' in page.text
        assert 'list="zones"' in page.text and '<option value="Asia/Kolkata">' in page.text
        # The browser's zone fills the field through a script the CSP allows by nonce.
        nonce = re.search(r'<script nonce="([^"]+)">', page.text)
        assert nonce is not None and "resolvedOptions().timeZone" in page.text
        assert f"'nonce-{nonce.group(1)}'" in page.headers["content-security-policy"]
        assert "Unsubscribe" in page.text
        data = {
            "csrf": csrf(page.text),
            "timezone": "Asia/Kolkata",
            "send_at": "06:45",
            "section": "Science",
        }
        saved = web.post(f"/preferences?token={sub.token}", data=data)
        assert saved.status_code == 200 and "Saved." in saved.text
        got = store.get_subscriber(email="pat@example.org")
        assert got is not None
        assert (got.timezone, got.send_at, got.sections) == ("Asia/Kolkata", "06:45", ("Science",))
        bad = web.post(
            f"/preferences?token={sub.token}",
            data={**data, "timezone": "Mars/Olympus_Mons"},
        )
        assert bad.status_code == 400 and "unknown time zone" in bad.text
        assert (
            web.post(f"/preferences?token={sub.token}", data={**data, "csrf": "9.nope"}).status_code
            == 400
        )
        assert web.get("/preferences?token=not-a-real-token-at-all").status_code == 400
        got = store.get_subscriber(email="pat@example.org")
        assert got is not None and got.timezone == "Asia/Kolkata"
    store.close()


def test_subscribers_set_list_export_import_keep_preferences(tmp_path: Path) -> None:
    extra = '\n[compose]\nsections = ["Technology", "Science"]\n'
    config = configfile.write_config(tmp_path, source_keys={"section": "Technology"}, extra=extra)
    runner = CliRunner()

    def run(*args: str) -> str:
        res = runner.invoke(cli, ["--config", str(config), *args])
        assert res.exit_code == 0, res.output
        return res.stdout

    run("subscribers", "add", "ann@example.org", "--name", "Ann")
    out = run(
        "subscribers", "set", "ann@example.org", "--timezone", "Australia/Lord_Howe",
        "--send-at", "7:05", "--sections", "Science",
    )  # fmt: skip
    assert out == "ann@example.org\tAnn\tactive\tAustralia/Lord_Howe\t07:05\tScience\n"
    bad = runner.invoke(
        cli, ["--config", str(config), "subscribers", "set", "ann@example.org", "--sections", "X"]
    )
    assert bad.exit_code == 1 and "unknown section 'X'" in bad.output
    bad = runner.invoke(
        cli,
        ["--config", str(config), "subscribers", "set", "ann@example.org", "--send-at", "25:00"],
    )
    assert bad.exit_code == 1 and "not a time of day" in bad.output
    assert "Australia/Lord_Howe\t07:05\tScience" in run("subscribers", "list")
    exported = run("subscribers", "export")
    assert "ann@example.org,Ann,active,Australia/Lord_Howe,07:05,Science" in exported
    # The export imports into a fresh store with the preferences intact.
    other = tmp_path / "other"
    other.mkdir()
    config2 = configfile.write_config(other, source_keys={"section": "Technology"}, extra=extra)
    (other / "list.csv").write_text(exported, encoding="utf-8")
    res = runner.invoke(
        cli, ["--config", str(config2), "subscribers", "import", str(other / "list.csv")]
    )
    assert res.exit_code == 0, res.output
    listed = runner.invoke(cli, ["--config", str(config2), "subscribers", "list"]).stdout
    assert listed == "ann@example.org\tAnn\tactive\tAustralia/Lord_Howe\t07:05\tScience\n"
    # Back to the defaults.
    out = run("subscribers", "set", "ann@example.org", "--timezone", "", "--sections", "")
    assert out == "ann@example.org\tAnn\tactive\t-\t07:05\t-\n"


def test_subscribe_config_is_checked(tmp_path: Path) -> None:
    from digest.config.load import load_config
    from digest.errors import ConfigError

    good = configfile.write_config(
        tmp_path, extra="\n[subscribe]\nconfirm_hours = 0.5\nresend_minutes = 0\n"
    )
    cfg = load_config(good).subscribe
    assert (cfg.confirm_hours, cfg.resend_minutes, cfg.client_posts) == (0.5, 0.0, 20)
    for extra, key in (
        ("confirm_hours = -1", "subscribe.confirm_hours: must be 0 or more"),
        ("client_posts = 0", "subscribe.client_posts: must be greater than 0"),
        (
            "resend_minute = 5",
            'subscribe.resend_minute: unknown key; did you mean "resend_minutes"',
        ),
    ):
        bad = configfile.write_config(tmp_path, extra=f"\n[subscribe]\n{extra}\n")
        with pytest.raises(ConfigError, match=re.escape(key)):
            load_config(bad)


def test_sign_up_pages_and_mail_are_in_the_sites_language(
    tmp_path: Path, smtp: LocalSMTPServer
) -> None:
    """A German site signs readers up in German: pages, errors, the mail and its subject."""
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    base = make_config(tmp_path, smtp.port)
    cfg = replace(base, site=replace(base.site, language="de", name="Die <Zeitung>"))
    with LocalWebServer(create_app(cfg, store, clock=Clock(NOW))) as web:
        form = web.get("/subscribe").text
        assert '<html lang="de">' in form
        assert "<title>Die &lt;Zeitung&gt; abonnieren · Die &lt;Zeitung&gt;</title>" in form
        assert "Die &lt;Zeitung&gt; per E-Mail erhalten." in form  # escaped inside the text
        assert ">Abonnieren</button>" in form and "E-Mail-Adresse" in form
        assert "Subscribe" not in form and "Email address" not in form
        bad = sign_up(web, "not-an-address")
        assert bad.status_code == 400
        assert "Bitte geben Sie eine gültige E-Mail-Adresse ein." in bad.text
        sent = sign_up(web, "anna@example.de")
        assert "Sehen Sie in Ihr Postfach" in sent.text and "Spam-Ordner" in sent.text
        wait_for(lambda: len(smtp.messages) == 1, "the confirmation mail")
        mail = smtp.messages[0].parse()
        assert mail["Subject"] == "Bestätigen Sie Ihr Abonnement von Die <Zeitung>"
        body = mail.get_body(("plain",))
        assert body is not None
        text = body.get_content().replace("\r\n", "\n")
        assert text.startswith("Hallo,\n\njemand (hoffentlich Sie) möchte Die <Zeitung>")
        assert "Der Link gilt 48 Stunden." in text
        page = web.get(confirm_path(smtp))
        assert "Abonnement bestätigen" in page.text and "a•••@example.de" in page.text
        done = web.post(confirm_path(smtp))
        assert "Sie haben abonniert" in done.text and "ab der nächsten Ausgabe" in done.text
        prefs = re.search(r'href="(/preferences\?token=[^"]+)"', done.text)
        assert prefs is not None
        settings = web.get(prefs.group(1)).text
        assert "Ihre Einstellungen" in settings and "Einstellungen speichern" in settings
        assert "Zeitzone" in settings and "Zustellzeit" in settings
        assert ">Abmelden</button>" in settings
        wrong = web.post(prefs.group(1), data={"csrf": csrf(settings), "timezone": "Mars/Olympus"})
        assert wrong.status_code == 400
        assert "unbekannte Zeitzone &#39;Mars/Olympus&#39;" in wrong.text
    store.close()
