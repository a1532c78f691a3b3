"""Imports of the exports people have: Mailchimp, Substack, Buttondown, spreadsheets."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest.cli import cli
from digest.errors import DigestError
from digest.mail import importing
from digest.store import Store
from tests import configfile

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
DATA = Path(__file__).parent / "data" / "imports"


def run(config: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], input=stdin)


def listed(store: Store) -> dict[str, tuple[str, str, str]]:
    return {
        s.email: (s.name, s.status, s.created_at.date().isoformat() if s.created_at else "")
        for s in store.list_subscribers()
    }


def test_a_mailchimp_audience_export_imports_with_names_and_statuses(tmp_path: Path) -> None:
    config = configfile.write_config(tmp_path)
    first = run(config, "subscribers", "import", str(DATA / "mailchimp-subscribed.csv"))
    assert first.exit_code == 1  # one broken row, listed by its line; the rest imported
    assert "mailchimp-subscribed.csv:5: 'not-an-address' is not a valid address" in first.stderr
    assert "imported 3, already on the list 0, rejected 1" in first.stdout
    for name in ("mailchimp-unsubscribed.csv", "mailchimp-cleaned.csv"):
        done = run(config, "subscribers", "import", str(DATA / name))
        assert done.exit_code == 0, done.output
        assert "imported 1, already on the list 0, rejected 0" in done.stdout
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    try:
        assert listed(store) == {
            # First + last name; OPTIN_TIME as the sign-up date; the postal "Address"
            # column is not mistaken for the e-mail address.
            "Ann.Arbor@example.org": ("Ann Arbor", "active", "2024-03-01"),
            "bruno@example.de": ("Bruno Müller", "active", "2024-05-20"),
            "chen.wei@example.cn": ("Wei Chen", "active", "2023-11-02"),  # CONFIRM_TIME
            "dana@example.org": ("Dana Scully", "unsubscribed", "2023-01-10"),
            "erik@example.se": ("Erik Lund", "bounced", "2022-06-01"),  # "cleaned"
        }
    finally:
        store.close()
    # Importing again, in another spelling: nothing new, nobody re-subscribed.
    again = run(
        config,
        "subscribers",
        "import",
        "-",
        stdin="Email Address,First Name\nANN.ARBOR@example.org,Ann\nDANA@example.org,Dana\n",
    )
    assert again.exit_code == 0 and "imported 0, already on the list 2" in again.stdout
    listing = run(config, "subscribers", "list", "--status", "unsubscribed")
    assert listing.stdout == "dana@example.org\tDana Scully\tunsubscribed\t-\t-\t-\n"


def test_substack_and_buttondown_exports_import_without_flags(store: Store) -> None:
    for name in ("substack.csv", "buttondown.csv"):
        text = (DATA / name).read_text(encoding="utf-8")
        report = importing.import_csv(store, text, now=NOW)
        assert report.ok, report.errors
    assert listed(store) == {
        "fatima@example.org": ("", "active", "2024-01-05"),
        "george@example.org": ("", "active", "2023-12-24"),
        "hana@example.jp": ("", "unsubscribed", "2022-08-30"),  # email_disabled
        "ines@example.pt": ("", "active", "2024-02-29"),
        "jon@example.org": ("", "active", "2023-07-04"),  # premium
        "kim@example.kr": ("", "unsubscribed", "2023-03-15"),
        "lea@example.fr": ("", "bounced", "2023-09-01"),  # undeliverable
    }


def test_a_semicolon_spreadsheet_with_other_column_names_imports_with_map(
    tmp_path: Path,
) -> None:
    config = configfile.write_config(tmp_path)
    path = str(DATA / "excel-semicolon.csv")
    plain = run(config, "subscribers", "import", path)
    # The delimiter and the e-mail column are found; "aktiv" is no status we know.
    assert plain.exit_code == 1
    assert "excel-semicolon.csv:2: unknown status 'aktiv'" in plain.stderr
    assert "excel-semicolon.csv:3: unknown status 'aktiv'" in plain.stderr
    assert "imported 1" in plain.stdout  # nora, with no status: active
    mapped = run(
        config,
        "subscribers",
        "import",
        path,
        "--map",
        "vorname=first_name",
        "--map",
        "NACHNAME=last-name",
        "--map",
        "Status=ignore",
        "--map",
        "Angemeldet am=subscribed_at",
    )
    assert mapped.exit_code == 1  # MAX@ is max@, twice in the file
    assert "excel-semicolon.csv:3: MAX@example.de appears twice" in mapped.stderr
    assert "imported 1, already on the list 1, rejected 1" in mapped.stdout
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    try:
        got = listed(store)
        assert sorted(got) == ["max@example.de", "nora@example.at"]
        assert got["max@example.de"] == ("Max Mustermann", "active", "2024-01-02")
        assert got["nora@example.at"][:2] == ("", "active")  # imported first, unmapped
    finally:
        store.close()
    bad = run(config, "subscribers", "import", path, "--map", "Vorname=nickname")
    assert bad.exit_code == 1 and "--map 'Vorname=nickname'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "emails"),
    [
        ("a@x.org\nb@x.org\n", ["a@x.org", "b@x.org"]),  # one column, no header
        ("email\ta name\nc@x.org\tCee\n", ["c@x.org"]),  # tab-separated
        ("E-mail|Name\nd@x.org|Dee\n", ["d@x.org"]),
        ("\ufeffEMAIL ADDRESS;FULL NAME\ne@x.org;Eve\n", ["e@x.org"]),  # Excel's BOM
        ("Subscribed,Email\n2024-01-01,f@x.org\n", ["f@x.org"]),
    ],
)
def test_delimiters_and_header_names_are_found(text: str, emails: list[str]) -> None:
    rows, errors = importing.parse_csv(text)
    assert errors == []
    assert [r.email for r in rows] == emails


def test_statuses_of_other_tools_and_unknown_ones(store: Store) -> None:
    text = (
        "email,status\n"
        "a@x.org,Subscribed\n"
        "b@x.org,unsubscribed\n"
        "c@x.org,cleaned\n"
        "d@x.org,spam complaint\n"  # 5: unknown words are refused, never guessed
        "e@x.org,complained\n"
        "f@x.org,unconfirmed\n"  # 7: never confirmed: not mailed
    )
    rows, errors = importing.parse_csv(text)
    assert [(r.email, r.status) for r in rows] == [
        ("a@x.org", "active"),
        ("b@x.org", "unsubscribed"),
        ("c@x.org", "bounced"),
        ("e@x.org", "complained"),
    ]
    assert [line for line, _ in errors] == [5, 7]
    assert "never confirmed" in errors[1][1]


def test_map_needs_a_header_and_known_fields() -> None:
    with pytest.raises(DigestError, match="COLUMN=FIELD"):
        importing.parse_mapping(["email"])
    rows, errors = importing.parse_csv("a@x.org,Ann\n", importing.parse_mapping(["Courriel=email"]))
    assert rows == [] and "header row" in errors[0][1]
    rows, errors = importing.parse_csv(
        "Courriel,Nom\na@x.org,Ann\n", importing.parse_mapping(["courriel=email", "nom=name"])
    )
    assert errors == [] and [(r.email, r.name) for r in rows] == [("a@x.org", "Ann")]
    # Without a header, a row of many columns says how to name them.
    _rows, errors = importing.parse_csv(io.StringIO("a@x.org,A,active,x\n").getvalue())
    assert "add a header row" in errors[0][1]
