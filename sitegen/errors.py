"""Named errors of the report generator; cli.py turns each into a one-line message."""

from __future__ import annotations


class SitegenError(Exception):
    """Anything that stops a build; the previously published site stays as it was."""

    exit_code = 1


class DatabaseError(SitegenError):
    """The log database is missing, unreadable or not the gateway's."""

    exit_code = 2


class PublishError(SitegenError):
    """The output folder cannot be replaced safely."""

    exit_code = 3


class Unavailable(SitegenError):
    """A computed table cannot be filled (e.g. keys.db is absent); the page says why and the
    rest of the site builds."""
