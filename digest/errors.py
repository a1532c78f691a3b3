"""The one error tree of `digest`.

    DigestError              anything the operator can fix; the CLI prints one line (exit 1)
    ├── ConfigError          config.toml is wrong (exit 2)
    ├── FetchError           a feed or page could not be fetched or parsed
    ├── ExtractError         a page gave no usable article
    ├── SummaryError         an unknown summary method or an unsupported language (exit 2)
    ├── EmptyIssueError      nothing new to put in today's issue (exit 5)
    ├── RenderError          a template failed
    ├── AddressError         an e-mail address is not valid
    ├── PreferenceError      a reader's time zone, delivery time or sections are not valid
    ├── ReportError          a returned mail is not a bounce or complaint we can use
    ├── DeliveryError        the mail server refused or vanished
    ├── StoreError           the database cannot be opened or written
    └── LockError            another process holds, or took over, a lock in the store
        ├── LockHeldError    another live process holds it
        └── LockLostError    ours was taken over (we looked dead to another process)

Each message says what failed, where, and what to do about it. `exit_code` is what the
`digest` command exits with when the error ends it.
"""

from __future__ import annotations


class DigestError(Exception):
    """An error the user can act on; the CLI shows it as one line."""

    exit_code = 1


class ConfigError(DigestError):
    """The configuration file is invalid."""

    exit_code = 2


class FetchError(DigestError):
    """A source or page could not be fetched or parsed."""


class ExtractError(DigestError):
    """A page did not yield an article."""


class SummaryError(DigestError):
    """The summarizer was asked for a method or language it does not have."""

    exit_code = 2


class EmptyIssueError(DigestError):
    """There is nothing new to put in an issue today."""

    exit_code = 5


class RenderError(DigestError):
    """A template could not be rendered."""


class AddressError(DigestError):
    """An e-mail address is not valid."""


class PreferenceError(DigestError):
    """A reader's preference (time zone, delivery time, sections) is not valid.

    `template` and `values` say it again for a translator: the preferences page shows
    it in the site's language (`str()` is the English text, for the CLI).
    """

    def __init__(self, template: str, **values: str) -> None:
        super().__init__(template % values if values else template)
        self.template = template
        self.values = values


class ReportError(DigestError):
    """A message is not a bounce or complaint we can use; nothing was changed."""


class DeliveryError(DigestError):
    """Mail could not be handed to the SMTP server."""


class StoreError(DigestError):
    """The database could not be opened, migrated or written."""


class LockError(DigestError):
    """A named lock in the store could not be had or kept."""


class LockHeldError(LockError):
    """Another live process holds the lock."""


class LockLostError(LockError):
    """Our lock was taken over (we looked dead to another process)."""
