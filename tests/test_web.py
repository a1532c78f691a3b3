"""The readers' web side: the real app under uvicorn on 127.0.0.1, and a real `digest serve`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from starlette.applications import Starlette

from digest.config import Config, SiteConfig, SmtpConfig
from digest.mail.deliver import send_issue
from digest.mail.tokens import strip_tokens
from digest.models import TOKEN_PLACEHOLDER, Article, Issue, Story
from digest.render import make_environment, render_issue
from digest.store import Store, StoredIssue
from digest.web import create_app
from digest.web.unsubscribe import is_one_click
from tests.helpers import add_readers
from tests.smtpserver import LocalSMTPServer, free_port

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
SITE = SiteConfig(name="The Daily Digest", url="https://news.example.com")
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
ROOT = Path(__file__).parent.parent


def make_config(tmp_path: Path, smtp_port: int = 25) -> Config:
    smtp = SmtpConfig(
        host="127.0.0.1",
        port=smtp_port,
        security="none",
        from_="The Daily Digest <digest@news.example.com>",
        backoff=0.05,
        timeout=5.0,
        connections=1,
    )
    return Config(path=tmp_path / "config.toml", site=SITE, sources=(), smtp=smtp)


class LocalWebServer:
    """The app under a real uvicorn server on 127.0.0.1, in a background thread."""

    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5)
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def client(tmp_path: Path, store: Store) -> Iterator[httpx.Client]:
    with LocalWebServer(create_app(make_config(tmp_path), store, clock=lambda: NOW)) as c:
        yield c


def statuses(store: Store) -> dict[str, str]:
    return {s.email: s.status for s in store.list_subscribers()}


def rendered_issue(store: Store, date: str = "2026-11-25", title: str = "Budget") -> StoredIssue:
    """Store an issue rendered by the shipped templates, as `ensure_issue` would."""
    article = Article(
        source="City Desk",
        guid=f"g-{date}",
        url=f"https://news.example.com/{date}/budget",
        title=title,
        text="The council approved a budget.",
        published=NOW,
    )
    issue = Issue(
        site_name=SITE.name,
        site_url=SITE.url,
        date=date,
        created_at=NOW,
        lead=Story(article, ("The council approved a budget.",)),
    )
    out = render_issue(
        issue,
        env=make_environment(None),
        now=NOW,
        tz=ZoneInfo("Europe/Berlin"),
        unsubscribe_url=f"{SITE.url}/unsubscribe?token={TOKEN_PLACEHOLDER}",
        view_url=f"{SITE.url}/archive/{date}",
    )
    return store.create_issue(
        date=date,
        created_at=NOW,
        subject=out.subject,
        html=out.html,
        text=out.text,
        preheader=out.preheader,
        article_ids=[],
    )


def assert_plain_answer(res: httpx.Response) -> None:
    """RFC 8058: no cookies, no redirects; and the token never leaks through Referer."""
    assert "set-cookie" not in res.headers
    assert not res.is_redirect
    assert res.headers["referrer-policy"] == "no-referrer"


def test_one_click_post_unsubscribes_and_next_send_skips(
    tmp_path: Path, store: Store, client: httpx.Client
) -> None:
    subs = add_readers(store, 3)
    res = client.post(f"/unsubscribe?token={subs[1].token}", data=ONE_CLICK)
    assert res.status_code == 200, res.text
    assert_plain_answer(res)
    assert "You are unsubscribed" in res.text and "r•••@example.org" in res.text
    assert f'action="/resubscribe?token={subs[1].token}"' in res.text
    assert statuses(store)["reader1@example.org"] == "unsubscribed"

    # Idempotent: the same POST again answers the same and changes nothing.
    again = client.post(f"/unsubscribe?token={subs[1].token}", data=ONE_CLICK)
    assert again.status_code == 200 and "You are unsubscribed" in again.text
    assert list(statuses(store).values()) == ["active", "unsubscribed", "active"]

    issue = rendered_issue(store)
    with LocalSMTPServer() as server:
        report = send_issue(store, issue, make_config(tmp_path, server.port), now=NOW)
        assert sorted(server.handler.recipients()) == [
            "reader0@example.org",
            "reader2@example.org",
        ]
        received = server.messages[0].parse()
    assert report.sent == 2 and report.failed == 0

    # The List-Unsubscribe URL of a delivered message is the one-click endpoint.
    header = " ".join(str(received["List-Unsubscribe"]).split())
    url = re.search(r"<(https://[^>]+)>", header)
    assert url is not None and received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    who = str(received["To"]).strip("<>")
    path = url.group(1).removeprefix("https://news.example.com")
    res = client.post(path, data=ONE_CLICK)
    assert res.status_code == 200
    assert statuses(store)[who] == "unsubscribed"


def test_multipart_one_click_body_is_accepted(store: Store, client: httpx.Client) -> None:
    (sub,) = add_readers(store, 1)
    # RFC 8058 says receivers SHOULD send multipart/form-data.
    res = client.post(
        f"/unsubscribe?token={sub.token}", files={"List-Unsubscribe": (None, "One-Click")}
    )
    assert res.status_code == 200, res.text
    assert statuses(store) == {"reader0@example.org": "unsubscribed"}


def test_get_only_confirms_and_post_needs_the_one_click_body(
    store: Store, client: httpx.Client
) -> None:
    (sub,) = add_readers(store, 1)
    page = client.get(f"/unsubscribe?token={sub.token}")
    assert page.status_code == 200
    assert_plain_answer(page)
    assert page.headers["cache-control"] == "no-store"
    # The button posts exactly the one-click request.
    assert f'<form method="post" action="/unsubscribe?token={sub.token}">' in page.text
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page.text
    assert statuses(store) == {"reader0@example.org": "active"}  # scanners GET links

    for body in ({}, {"List-Unsubscribe": "Yes"}, {"Other": "One-Click"}):
        res = client.post(f"/unsubscribe?token={sub.token}", data=body)
        assert res.status_code == 400
    big = client.post(f"/unsubscribe?token={sub.token}", content=b"x" * 20_000)
    assert big.status_code == 413
    assert statuses(store) == {"reader0@example.org": "active"}


FORGED = [
    "",
    "short",
    "x" * 65,
    TOKEN_PLACEHOLDER,
    "TESTCOPYXNOTXAXREALXTOKENXXXXXXX",
    "A" * 32,
    "' OR '1'='1' --abcdefghijklmnop",
    "../../../../etc/passwd/xxxxxxxx",
    "é" * 20,
]


def test_forged_or_malformed_tokens_change_nothing(store: Store, client: httpx.Client) -> None:
    subs = add_readers(store, 2)
    store.set_subscriber_status(status="unsubscribed", now=NOW, email=subs[1].email)
    before = statuses(store)
    for token in FORGED:
        for res in (
            client.get("/unsubscribe", params={"token": token}),
            client.post("/unsubscribe", params={"token": token}, data=ONE_CLICK),
            client.post("/resubscribe", params={"token": token}),
        ):
            assert res.status_code == 400, (res.request.method, res.request.url)
            assert_plain_answer(res)
            assert "This link is not valid" in res.text
            assert subs[0].token not in res.text and subs[1].token not in res.text
    assert statuses(store) == before


def test_forged_token_of_the_right_shape_near_a_real_one(
    store: Store, client: httpx.Client
) -> None:
    (sub,) = add_readers(store, 1)
    near = sub.token[:-1] + ("A" if sub.token[-1] != "A" else "B")
    for res in (
        client.post(f"/unsubscribe?token={near}", data=ONE_CLICK),
        client.post(f"/unsubscribe?token={sub.token.lower()}x", data=ONE_CLICK),
        client.post("/unsubscribe", data=ONE_CLICK),
    ):
        assert res.status_code == 400
    assert statuses(store) == {"reader0@example.org": "active"}


def test_resubscribe_undoes_an_unsubscribe_but_not_a_bounce(
    store: Store, client: httpx.Client
) -> None:
    subs = add_readers(store, 2)
    assert client.post(f"/unsubscribe?token={subs[0].token}", data=ONE_CLICK).status_code == 200
    page = client.get(f"/unsubscribe?token={subs[0].token}")
    assert "You are unsubscribed" in page.text and "/resubscribe?token=" in page.text
    res = client.post(f"/resubscribe?token={subs[0].token}")
    assert res.status_code == 200 and "Welcome back" in res.text
    assert_plain_answer(res)
    assert statuses(store)["reader0@example.org"] == "active"

    store.set_subscriber_status(status="bounced", now=NOW, email=subs[1].email)
    res = client.post(f"/resubscribe?token={subs[1].token}")
    assert res.status_code == 200 and "bounced" in res.text
    one_click = client.post(f"/unsubscribe?token={subs[1].token}", data=ONE_CLICK)
    assert one_click.status_code == 200
    assert statuses(store)["reader1@example.org"] == "bounced"

    # A reader who reported our mail as spam is not re-subscribed by a link either.
    store.set_subscriber_status(status="complained", now=NOW, email=subs[0].email)
    res = client.post(f"/resubscribe?token={subs[0].token}")
    assert res.status_code == 200 and "reported our mail as spam" in res.text
    assert client.post(f"/unsubscribe?token={subs[0].token}", data=ONE_CLICK).status_code == 200
    assert statuses(store)["reader0@example.org"] == "complained"


def test_links_with_a_merged_spelling_token_reach_the_merged_reader(
    store: Store, client: httpx.Client
) -> None:
    from tests.test_addresses import _insert_old_reader  # an old store's duplicate rows
    from tests.test_schema import (
        undo_migration_4,
        undo_migration_5,
        undo_migration_7,
        undo_migration_9,
    )

    store.close()
    url = store.db.engine.url.render_as_string(hide_password=False)
    with sa.create_engine(url).begin() as conn:
        undo_migration_9(conn)  # the schema of before migration 4 had neither 5, 7 nor 9
        undo_migration_7(conn)
        undo_migration_5(conn)
        undo_migration_4(conn)
        _insert_old_reader(conn, "Ann@example.org", "active", 9)
        _insert_old_reader(conn, "ann@example.org", "active", 2)
    migrated = Store.open(url, migrate=False)
    migrated.migrate()
    migrated.close()
    token = f"{'ann_example_org':_<32}"  # the merged-away spelling's token (see the helper)
    res = client.post(f"/unsubscribe?token={token}", data=ONE_CLICK)
    assert res.status_code == 200 and "You are unsubscribed" in res.text
    assert statuses(store) == {"Ann@example.org": "unsubscribed"}


def test_archive_lists_issues_and_shows_them_without_tokens(
    store: Store, client: httpx.Client
) -> None:
    subs = add_readers(store, 2)
    rendered_issue(store, "2026-11-24", title="Older <b>news</b> & more")
    issue = rendered_issue(store, "2026-11-25", title="Council approves the budget")
    assert TOKEN_PLACEHOLDER in issue.html  # the stored issue carries the placeholder

    listing = client.get("/archive")
    assert listing.status_code == 200
    assert listing.text.index("2026-11-25") < listing.text.index("2026-11-24")
    assert 'href="/archive/2026-11-25"' in listing.text
    assert "Council approves the budget" in listing.text
    assert "Older &lt;b&gt;news&lt;/b&gt; &amp; more" in listing.text  # subjects are text
    assert "<b>news" not in listing.text
    assert client.get("/archive/").status_code == 200

    page = client.get("/archive/2026-11-25")
    assert page.status_code == 200
    assert "Council approves the budget" in page.text
    assert TOKEN_PLACEHOLDER not in page.text and "token=" not in page.text
    # Read at any later time (and cached): the story's time is a local clock time.
    local = NOW.astimezone(SITE.tz)
    assert f"City Desk · {local:%H:%M}</p>" in page.text and "DIGESTXTIMEX" not in page.text
    for sub in subs:
        assert sub.token not in page.text
    assert 'href="https://news.example.com/unsubscribe"' in page.text
    assert "set-cookie" not in page.headers
    assert "img-src https: http:" in page.headers["content-security-policy"]
    # The generic page the archive's unsubscribe link leads to.
    generic = client.get("/unsubscribe")
    assert generic.status_code == 200 and "personal to you" in generic.text

    for bad in ("/archive/2026-13-45", "/archive/%2e%2e", "/archive/latest", "/archive/2026-11-2"):
        assert client.get(bad).status_code == 404


def test_strip_tokens_handles_every_spelling() -> None:
    p = TOKEN_PLACEHOLDER
    html = f'<a href="https://x.example/u?token={p}">u</a> <a href="https://x.example/u?a=1&amp;token={p}">'
    assert strip_tokens(html) == (
        '<a href="https://x.example/u">u</a> <a href="https://x.example/u?a=1">'
    )
    assert strip_tokens(f"Unsubscribe: https://x.example/u?x=1&token={p}\n{p}") == (
        "Unsubscribe: https://x.example/u?x=1\n"
    )


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"List-Unsubscribe=One-Click", "application/x-www-form-urlencoded", True),
        (b"List-Unsubscribe=One-Click", "", True),
        (b"a=1&List-Unsubscribe=One-Click", "application/x-www-form-urlencoded", True),
        (b"List-Unsubscribe=One-Clickx", "application/x-www-form-urlencoded", False),
        (b"\xff\xfe", "application/x-www-form-urlencoded", False),
        (
            b'--b\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
            b"One-Click\r\n--b--\r\n",
            'multipart/form-data; boundary="b"',
            True,
        ),
        (
            b'--b\r\nContent-Disposition: form-data; name="Other"\r\n\r\nOne-Click\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
            False,
        ),
        (b"garbage", "multipart/form-data; boundary=b", False),
    ],
)
def test_is_one_click(body: bytes, content_type: str, expected: bool) -> None:
    assert is_one_click(body, content_type) is expected


def test_healthz(tmp_path: Path, client: httpx.Client) -> None:
    res = client.get("/healthz")
    assert res.status_code == 200 and res.text == "ok\n"
    broken = Store(sa.create_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}"))
    with LocalWebServer(create_app(make_config(tmp_path), broken)) as c:
        assert c.get("/healthz").status_code == 503


def test_digest_serve_answers_on_loopback(tmp_path: Path) -> None:
    """`digest serve` as a real process: uvicorn on 127.0.0.1 with the one-click flow."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[site]\nname = "The Daily Digest"\nurl = "https://news.example.com"\n\n'
        f'[[sources]]\nname = "Sample"\nurl = "{ROOT / "digest/sample/feed.xml"}"\n\n'
        '[store]\nurl = "sqlite:///digest.db"\n',
        encoding="utf-8",
    )
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    (sub,) = add_readers(store, 1)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest"] + ["--config", str(cfg), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "digest serve did not start"
            time.sleep(0.1)
        res = httpx.post(f"{base}/unsubscribe?token={sub.token}", data=ONE_CLICK, timeout=5)
        assert res.status_code == 200 and "server" not in res.headers
        assert "set-cookie" not in res.headers
        assert store.get_subscriber(token=sub.token) is not None
        assert statuses(store) == {"reader0@example.org": "unsubscribed"}
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
        store.close()
    assert b"Serving https://news.example.com" in out, err


SECURITY = ("referrer-policy", "x-content-type-options", "content-security-policy", "cache-control")


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/archive/2026-11-25/", 404),
        ("GET", "/unsubscribe/", 404),
        ("GET", "/healthz/", 404),
        ("GET", "/no/such/page", 404),
        ("DELETE", "/unsubscribe", 405),
        ("PUT", "/archive", 405),
    ],
)
def test_no_redirect_and_every_answer_has_the_security_headers(
    store: Store, client: httpx.Client, method: str, path: str, code: int
) -> None:
    """A trailing slash once answered 307 to http://<Host header>/…, carrying the token."""
    rendered_issue(store)
    res = client.request(
        method, f"{path}?token=secret-token-value-1234", headers={"Host": "evil.example"}
    )
    assert res.status_code == code and not res.is_redirect, (res.status_code, res.headers)
    assert "location" not in res.headers
    assert "evil.example" not in res.text and "secret-token" not in res.text
    for name in SECURITY:
        assert name in res.headers, (name, res.headers)
    assert res.headers["referrer-policy"] == "no-referrer"


def test_the_usual_answers_keep_their_own_headers(store: Store, client: httpx.Client) -> None:
    rendered_issue(store)
    page = client.get("/archive/2026-11-25")
    assert (
        page.status_code == 200
        and "img-src https: http:" in page.headers["content-security-policy"]
    )
    assert page.headers.get_list("content-security-policy") == [
        page.headers["content-security-policy"]
    ]
    assert client.get("/healthz").headers["x-content-type-options"] == "nosniff"
