"""The message template: encoded once, personalized by substitution, every header rule."""

from __future__ import annotations

import quopri
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config import SiteConfig, SmtpConfig
from digest.mail.message import (
    MessageTemplate,
    build_template,
    dkim_sign,
    mailbox,
    qp_encode,
    unstructured,
)
from digest.mail.tokens import new_token
from digest.models import TOKEN_PLACEHOLDER, RenderedIssue

SITE = SiteConfig(name="The Daily Digest", url="https://news.example.com/")
SMTP = SmtpConfig(
    host="127.0.0.1",
    port=25,
    security="none",
    from_="The Daily Digest <digest@News.Example.com>",
    unsubscribe_mailto="unsubscribe@news.example.com",
)
UNSUB = f"https://news.example.com/unsubscribe?token={TOKEN_PLACEHOLDER}"


def issue(subject: str = "The Daily Digest — Café prices soar", **kw: str) -> RenderedIssue:
    # The placeholder lands at every offset of a 76-column QP line at least once.
    straddle = "\n".join("y" * i + f'<a href="{UNSUB}">u</a>' for i in range(80))
    html = (
        "<!doctype html><html><body><p>" + "Ünïcödé text, long line. " * 200 + "</p>\n"
        f"{straddle}\n.starts with a dot\nFrom the top\n<p>trailing space </p> \n"
        f'<p><a href="{UNSUB}">Unsubscribe</a></p></body></html>'
    )
    text = f"Today's news.\n\n.leading dot\nUnsubscribe: {UNSUB}\n"
    return RenderedIssue(
        date="2026-11-25",
        subject=subject,
        html=kw.get("html", html),
        text=kw.get("text", text),
    )


def render(template: MessageTemplate, token: str, to: str = "<a@example.org>") -> bytes:
    return template.render(
        to=to,
        date="Wed, 25 Nov 2026 07:00:00 +0000",
        message_id=template.new_message_id(),
        token=token,
    )


def parse(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_headers_and_parts_follow_every_rule() -> None:
    template = build_template(issue(), smtp=SMTP, site=SITE)
    token = new_token()
    data = render(template, token, to=mailbox("ann@example.org", "Ann O'Neil"))
    msg = parse(data)
    assert msg["From"].addresses[0].addr_spec == "digest@News.Example.com"
    assert msg["From"].addresses[0].display_name == "The Daily Digest"
    assert msg["To"].addresses[0].addr_spec == "ann@example.org"
    assert msg["To"].addresses[0].display_name == "Ann O'Neil"
    assert msg["Subject"] == "The Daily Digest — Café prices soar"
    assert b"=?utf-8?b?" in data.split(b"\r\n\r\n", 1)[0]  # non-ASCII as encoded words
    assert msg["MIME-Version"] == "1.0"
    assert msg["Date"].datetime is not None
    assert re.fullmatch(r"<[^@<>\s]+@news\.example\.com>", msg["Message-ID"])
    assert msg["List-Id"] == "The Daily Digest <digest.news.example.com>"
    assert msg["List-Unsubscribe"] == (
        f"<https://news.example.com/unsubscribe?token={token}>, "
        f"<mailto:unsubscribe@news.example.com?subject=unsubscribe%20{token}>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        body = part.get_content()
        assert f"unsubscribe?token={token}" in body
        assert TOKEN_PLACEHOLDER not in body
    html = parts[1].get_content().replace("\r\n", "\n")
    assert html.count(f"token={token}") == 81
    assert "Ünïcödé text" in html and ".starts with a dot" in html
    assert "<p>trailing space </p> \n" in html
    assert TOKEN_PLACEHOLDER.encode() not in data


def test_lines_are_short_crlf_and_dot_safe() -> None:
    template = build_template(issue(), smtp=SMTP, site=SITE)
    data = render(template, new_token())
    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    lines = data.split(b"\r\n")
    head, body = data.split(b"\r\n\r\n", 1)
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    # Only the List-Unsubscribe URL (one unbreakable token) may pass 78 columns.
    # Only the two unsubscribe URLs (which cannot be folded) may pass 78 columns.
    assert [line for line in head.split(b"\r\n") if len(line) > 78] == [
        line
        for line in head.split(b"\r\n")
        if line.startswith((b"List-Unsubscribe: <https", b" <mailto:"))
    ]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert not any(line.startswith(b".") for line in lines)


@pytest.mark.parametrize(
    "subject",
    [
        "Evil\r\nBcc: victim@example.org",
        "Evil\nBcc: victim@example.org",
        "Evil\rBcc: victim@example.org",
        "Evil\u2028Bcc: victim@example.org",
        "Évil\r\n\r\nbody injection",
        "Tab\tand\x00null\x7f",
    ],
)
def test_subject_is_one_line_whatever_the_title(subject: str) -> None:
    template = build_template(issue(subject), smtp=SMTP, site=SITE)
    msg = parse(render(template, new_token()))
    assert msg["Bcc"] is None
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert msg["Subject"] == " ".join(subject.replace("\x00", "").replace("\x7f", "").split())
    assert msg.get_content_type() == "multipart/alternative"


def test_long_and_tricky_subjects_round_trip() -> None:
    for subject in ("Ü" * 300, "plain " * 60, "looks =?utf-8?q?encoded?= but is not", "x" * 200):
        header = unstructured("Subject", subject)
        assert all(len(line) <= 998 for line in header.split("\r\n"))
        msg = parse((header + "\r\n").encode())
        assert msg["Subject"] == " ".join(subject.split())


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Zoë Ünger", "Zoë Ünger"),
        ('Smith, John "JJ"', 'Smith, John "JJ"'),
        ("Eve\r\nBcc: x@y.org", "Eve Bcc: x@y.org"),
        ("", ""),
    ],
)
def test_to_header_display_names(name: str, shown: str) -> None:
    template = build_template(issue(), smtp=SMTP, site=SITE)
    msg = parse(render(template, new_token(), to=mailbox("zoe@example.org", name)))
    assert msg["Bcc"] is None
    (addr,) = msg["To"].addresses
    assert addr.addr_spec == "zoe@example.org"
    assert addr.display_name == shown


def test_mailbox_refuses_header_breaking_addresses() -> None:
    for bad in ("a@b.org\r\nBcc: c@d.org", "a b@c.org", "<a@b.org>", "a@b.org,c@d.org"):
        with pytest.raises(ValueError):
            mailbox(bad)


def test_render_refuses_bad_tokens_and_line_breaks() -> None:
    template = build_template(issue(), smtp=SMTP, site=SITE)
    for token in ("", "a\r\n.", "a b", "x" * 65, "tok=en"):
        with pytest.raises(ValueError):
            render(template, token)
    with pytest.raises(ValueError):
        render(template, new_token(), to="<a@b.org>\r\nBcc: c@d.org")


def test_no_mailto_when_not_configured() -> None:
    smtp = SmtpConfig(from_="news@example.com")
    msg = parse(render(build_template(issue(), smtp=smtp, site=SITE), "tok"))
    assert msg["List-Unsubscribe"] == "<https://news.example.com/unsubscribe?token=tok>"
    assert msg["List-Id"] == "The Daily Digest <digest.example.com>"
    assert msg["From"].addresses[0].addr_spec == "news@example.com"


def test_personalization_is_substitution_not_a_rebuild() -> None:
    template = build_template(issue(), smtp=SMTP, site=SITE)
    a, b = new_token(), new_token()
    one, two = render(template, a), render(template, b)
    # Same length tokens: the messages differ only where the token and Message-ID go.
    assert len(one) == len(two)
    assert (
        one.replace(a.encode(), b"T" * 32).split(b"Message-ID")[1].split(b"\r\n", 1)[1]
        == (two.replace(b.encode(), b"T" * 32).split(b"Message-ID")[1].split(b"\r\n", 1)[1])
    )
    # To, Date, Message-ID; the token twice in List-Unsubscribe (https, mailto), once in the
    # text part and 81 times in the HTML.
    assert template.slots == (0, 1, 2) + (3,) * (2 + 1 + 81)


def test_dkim_signature_covers_list_headers_and_verifies() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import base64

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    template = build_template(issue(), smtp=SMTP, site=SITE)
    for _ in range(2):
        signed = dkim_sign(
            render(template, new_token()), selector="digest", domain=template.domain, key=pem
        )
        header = parse(signed)["DKIM-Signature"]
        tags = dict(t.strip().split("=", 1) for t in "".join(header.split()).split(";") if "=" in t)
        signed_headers = tags["h"].lower().split(":")
        assert "list-unsubscribe" in signed_headers
        assert "list-unsubscribe-post" in signed_headers
        assert tags["d"] == "news.example.com"

        def dns(name: bytes, timeout: int = 5) -> bytes:
            assert name == b"digest._domainkey.news.example.com."
            return record

        assert dkim.verify(signed, dnsfunc=dns)
        tampered = signed.replace(b"List-Unsubscribe-Post: List", b"List-Unsubscribe-Post: list")
        assert not dkim.verify(tampered, dnsfunc=dns)


pieces = list("ab .=\t\r\n-_ü€\x00") + [TOKEN_PLACEHOLDER, "=?", "F", "From ", " \n"]
text_st = st.lists(st.sampled_from(pieces), max_size=200).map("".join)


@settings(max_examples=300, deadline=None)
@given(text_st)
def test_quoted_printable_round_trips_and_keeps_the_placeholder_whole(text: str) -> None:
    encoded = qp_encode(text)
    lines = encoded.split(b"\r\n")
    assert all(len(line) <= 76 for line in lines)
    assert not any(line.startswith((b".", b"From ")) for line in lines)
    assert encoded.count(TOKEN_PLACEHOLDER.encode()) == text.count(TOKEN_PLACEHOLDER)
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    decoded = quopri.decodestring(encoded.replace(b"\r\n", b"\n")).decode("utf-8")
    assert decoded == normalized + "\n"


def test_sender_without_address_is_a_config_error() -> None:
    from digest.errors import ConfigError

    with pytest.raises(ConfigError, match="smtp.from"):
        build_template(issue(), smtp=SmtpConfig(from_="Just a name"), site=SITE)
    assert parseaddr(SMTP.from_)[1] == "digest@News.Example.com"


def test_story_times_are_slots_worded_per_send_within_line_limits() -> None:
    from datetime import UTC, datetime, timedelta

    from digest.text.storytime import time_placeholder

    published = datetime(2026, 2, 3, 6, 20, tzinfo=UTC)
    ph = time_placeholder(published)
    # At every offset of a QP line, at the start of a line (an absolute "Feb 3, …" there
    # must not become an mbox "From"-like line), and in HTML.
    text = "\n".join("y" * i + f"x · {ph}" for i in range(80)) + f"\n{ph}\n"
    html = "<p>" + "\n".join("z" * i + f"<span>{ph}</span>" for i in range(80)) + "</p>"
    template = build_template(issue(text=text + UNSUB, html=html + UNSUB), smtp=SMTP, site=SITE)
    assert len(template.times) == 161 and TOKEN_PLACEHOLDER.encode() not in b"".join(
        template.segments
    )
    sent = published + timedelta(hours=2)
    for times, words in ((template.times_at(sent), "2 hours ago"), (None, "Feb 3, 06:20")):
        raw = template.render(
            to="<a@example.org>",
            date="Wed, 03 Feb 2026 08:20:00 +0000",
            message_id="<1@news.example.com>",
            token="tok",
            times=times,
        )
        assert b"DIGESTXTIME" not in raw
        encoded_body = raw.split(b"\r\n\r\n", 1)[1]
        assert all(len(line) <= 76 for line in encoded_body.split(b"\r\n")), "QP line too long"
        body = parse(raw)
        plain, rich = (p.get_content() for p in body.iter_parts())
        assert plain.count(words) == 81 and rich.count(words) == 80
    with pytest.raises(ValueError, match="times_at"):
        template.render(to="<a@example.org>", date="x", message_id="<1@x>", token="tok", times=())
