"""The one error tree of `digest`.

    DigestError            anything the operator can fix; the CLI prints one line
    ├── ConfigError        config.toml is wrong (exit code 2)
    ├── FetchError         a feed or page could not be fetched or parsed
    ├── ExtractError       a page gave no usable article
    ├── RenderError        a template failed
    ├── DeliveryError      the mail server refused or vanished
    └── StoreError         the database cannot be opened or written

Each message says what failed, where, and what to do about it.
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


class RenderError(DigestError):
    """A template could not be rendered."""


class DeliveryError(DigestError):
    """Mail could not be handed to the SMTP server."""


class StoreError(DigestError):
    """The database could not be opened, migrated or written."""
